/* core/scheduler against tests/fixtures/optim/schedules.json: factors at steps 0..50 from
 * transformers' schedule functions (and TencentPretrain's inverse_sqrt / tri_stage, ported in
 * tests/reference/make_optim_fixture.py), within 1e-9 relative; names and setting checks. */
#include "core/error.h"
#include "core/fileio.h"
#include "core/scheduler.h"
#include "support/check.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/optim/schedules.json"

static double number_or(const cJSON *object, const char *key, double fallback)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
    return cJSON_IsNumber(item) ? item->valuedouble : fallback;
}

/* The case's settings over the kind's defaults. */
static int schedule_from_case(const cJSON *c, tp_schedule *out)
{
    const cJSON *kind_name = cJSON_GetObjectItemCaseSensitive(c, "kind");
    tp_schedule s;
    if (!cJSON_IsString(kind_name) || tp_schedule_from_name(&s, kind_name->valuestring) < 0) return -1;
    s.warmup_steps = (int64_t)number_or(c, "warmup_steps", 0);
    s.total_steps = (int64_t)number_or(c, "total_steps", 0);
    s.decay_steps = (int64_t)number_or(c, "decay_steps", 0);
    s.base_lr = number_or(c, "base_lr", 1e-3);
    s.cycles = number_or(c, "cycles", s.cycles);
    s.lr_end = number_or(c, "lr_end", s.lr_end);
    s.power = number_or(c, "power", s.power);
    s.init_scale = number_or(c, "init_scale", s.init_scale);
    s.final_scale = number_or(c, "final_scale", s.final_scale);
    *out = s;
    return 0;
}

static void test_fixture_factors(void)
{
    char *text = tp_read_file(FIXTURE, NULL);
    CHECK_MSG(text != NULL, "%s", tp_last_error());
    if (!text) return;
    cJSON *root = cJSON_Parse(text);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    CHECK(cJSON_GetArraySize(cases) >= 16);
    int kinds_seen[TP_SCHEDULE_KIND_COUNT] = {0};
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        tp_schedule s;
        CHECK_MSG(schedule_from_case(c, &s) == 0, "%s", tp_last_error());
        CHECK_MSG(tp_schedule_check(&s) == 0, "%s", tp_last_error());
        kinds_seen[s.kind] = 1;
        const cJSON *factors = cJSON_GetObjectItemCaseSensitive(c, "factors");
        CHECK(cJSON_GetArraySize(factors) == 51);
        int64_t step = 0;
        const cJSON *expected;
        cJSON_ArrayForEach(expected, factors)
        {
            double actual = tp_schedule_factor(&s, step);
            CHECK_MSG(tp_close(actual, expected->valuedouble, 1e-9, 1e-12),
                      "%s (warmup %lld, total %lld) step %lld: %.17g, reference %.17g", tp_schedule_kind_names[s.kind],
                      (long long)s.warmup_steps, (long long)s.total_steps, (long long)step, actual,
                      expected->valuedouble);
            step++;
        }
    }
    for (int kind = 0; kind < TP_SCHEDULE_KIND_COUNT; kind++)
        CHECK_MSG(kinds_seen[kind], "no fixture case for '%s'", tp_schedule_kind_names[kind]);
    cJSON_Delete(root);
    free(text);
}

static void test_names(void)
{
    char joined[256] = "";
    for (int kind = 0; kind < TP_SCHEDULE_KIND_COUNT; kind++) {
        CHECK(tp_schedule_kind_from_name(tp_schedule_kind_names[kind]) == kind);
        if (kind) strcat(joined, ", ");
        strcat(joined, tp_schedule_kind_names[kind]);
    }
    CHECK(tp_schedule_kind_names[TP_SCHEDULE_KIND_COUNT] == NULL);
    CHECK(strcmp(tp_schedule_names(), joined) == 0);
    CHECK(strcmp(tp_schedule_kind_names[TP_SCHEDULE_TRI_STAGE], "tri_stage") == 0);

    CHECK(tp_schedule_kind_from_name("warmup_linear") == -1);
    CHECK_MSG(strstr(tp_last_error(), "unknown scheduler 'warmup_linear'") != NULL, "%s", tp_last_error());
    CHECK(strstr(tp_last_error(), joined) != NULL);
    CHECK(tp_schedule_kind_from_name("Linear") == -1);
    tp_schedule s = {.kind = TP_SCHEDULE_LINEAR, .total_steps = 7};
    CHECK(tp_schedule_from_name(&s, "cosine ") == -1);
    CHECK(s.kind == TP_SCHEDULE_LINEAR && s.total_steps == 7); /* untouched on failure */
    CHECK(tp_schedule_from_name(&s, "cosine_with_restarts") == 0);
    CHECK(s.kind == TP_SCHEDULE_COSINE_WITH_RESTARTS && s.cycles == 1.0 && s.total_steps == 0);
    CHECK(tp_schedule_kind_from_name("") == -1);
}

static void expect_rejected(tp_schedule s, const char *fragment)
{
    CHECK(tp_schedule_check(&s) == -1);
    CHECK_MSG(strstr(tp_last_error(), fragment) != NULL, "'%s' lacks '%s'", tp_last_error(), fragment);
}

static void test_checks(void)
{
    tp_schedule s = tp_schedule_defaults(TP_SCHEDULE_LINEAR);
    s.warmup_steps = -1;
    expect_rejected(s, "scheduler 'linear': warmup steps -1");

    s = tp_schedule_defaults(TP_SCHEDULE_POLYNOMIAL);
    s.total_steps = 10;
    s.base_lr = 1e-7; /* not above the default lr_end */
    expect_rejected(s, "lr_end (1e-07) must be smaller than the learning rate (1e-07)");
    s.base_lr = 1e-4;
    CHECK(tp_schedule_check(&s) == 0);

    s = tp_schedule_defaults(TP_SCHEDULE_INVERSE_SQRT);
    s.total_steps = 10;
    s.base_lr = 1e-4;
    expect_rejected(s, "'inverse_sqrt': needs at least 1 warmup step");
    s.warmup_steps = 1;
    CHECK(tp_schedule_check(&s) == 0);
    s.base_lr = 0;
    expect_rejected(s, "learning rate (0) must be > 0");

    s = tp_schedule_defaults(TP_SCHEDULE_TRI_STAGE);
    s.final_scale = 0;
    expect_rejected(s, "'tri_stage': final scale 0 must be > 0");
    s = tp_schedule_defaults(TP_SCHEDULE_TRI_STAGE);
    s.decay_steps = -2;
    expect_rejected(s, "decay steps -2");

    s = tp_schedule_defaults(TP_SCHEDULE_COSINE);
    CHECK(s.cycles == 0.5);
    CHECK(tp_schedule_defaults(TP_SCHEDULE_COSINE_WITH_RESTARTS).cycles == 1.0);
    s.kind = TP_SCHEDULE_KIND_COUNT;
    expect_rejected(s, "unknown kind");
}

/* Settings on which TencentPretrain's Python divides by zero: tp's documented choices. */
static void test_edges(void)
{
    tp_schedule s = tp_schedule_defaults(TP_SCHEDULE_TRI_STAGE); /* no warm-up: hold from step 0 */
    s.total_steps = 20;
    s.decay_steps = 10;
    CHECK(tp_schedule_check(&s) == 0);
    CHECK(tp_schedule_factor(&s, 0) == 1.0);
    CHECK(tp_close(tp_schedule_factor(&s, 20), 0.05, 1e-12, 0));
    CHECK(tp_schedule_factor(&s, 21) == 0.05);

    s = tp_schedule_defaults(TP_SCHEDULE_POLYNOMIAL); /* total == warmup: the end value from there */
    s.base_lr = 1e-3;
    s.warmup_steps = s.total_steps = 5;
    CHECK(tp_close(tp_schedule_factor(&s, 4), 0.8, 1e-12, 0));
    CHECK(tp_close(tp_schedule_factor(&s, 5), 1e-4, 1e-9, 0));
    CHECK(tp_close(tp_schedule_factor(&s, 6), 1e-4, 1e-9, 0));
}

int main(void)
{
    test_fixture_factors();
    test_names();
    test_checks();
    test_edges();
    return tp_test_finish("test_scheduler");
}
