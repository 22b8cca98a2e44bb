/* core/optim against tests/fixtures/optim/{adamw,clip}.json (transformers.AdamW = TencentPretrain's
 * AdamW with and without bias correction, torch.optim.AdamW, torch.nn.utils.clip_grad_norm_;
 * made by tests/reference/make_optim_fixture.py): every float within 1e-6 relative.  Also:
 * frozen segments and uncovered floats untouched, non-finite detection, the same bits for any
 * thread count, and the argument checks. */
#include "core/error.h"
#include "core/fileio.h"
#include "core/optim.h"
#include "support/check.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ADAMW_FIXTURE "tests/fixtures/optim/adamw.json"
#define CLIP_FIXTURE "tests/fixtures/optim/clip.json"
#define MAX_SEGMENTS 8
#define SENTINEL 123.25f

typedef struct fixture {
    cJSON *root;
    tp_param_segment segments[MAX_SEGMENTS];
    int64_t segment_count;
    int64_t floats; /* length of the flat buffers */
} fixture;

static const cJSON *item(const cJSON *object, const char *key) { return cJSON_GetObjectItemCaseSensitive(object, key); }

/* A JSON number array as floats (tp_xmalloc'd); its length in *count. */
static float *float_array(const cJSON *array, int64_t *count)
{
    int64_t n = cJSON_GetArraySize(array);
    float *out = tp_xmalloc((size_t)(n ? n : 1) * sizeof(float));
    int64_t i = 0;
    const cJSON *value;
    cJSON_ArrayForEach(value, array) out[i++] = (float)value->valuedouble;
    if (count) *count = n;
    return out;
}

static int fixture_load(fixture *f, const char *path)
{
    memset(f, 0, sizeof *f);
    char *text = tp_read_file(path, NULL);
    if (!text) return -1;
    f->root = cJSON_Parse(text);
    free(text);
    if (!f->root) return tp_fail("%s: not JSON", path);
    const cJSON *segment;
    cJSON_ArrayForEach(segment, item(f->root, "segments"))
    {
        if (f->segment_count == MAX_SEGMENTS) return tp_fail("%s: too many segments", path);
        f->segments[f->segment_count++] = (tp_param_segment){
            .offset = (int64_t)item(segment, "offset")->valuedouble,
            .numel = (int64_t)item(segment, "numel")->valuedouble,
            .weight_decay = item(segment, "weight_decay")->valuedouble,
            .lr_scale = item(segment, "lr_scale")->valuedouble,
            .frozen = (int)item(segment, "frozen")->valuedouble,
        };
    }
    f->floats = cJSON_GetArraySize(item(f->root, "grads"));
    if (cJSON_IsArray(cJSON_GetArrayItem(item(f->root, "grads"), 0))) /* adamw.json: one array per step */
        f->floats = cJSON_GetArraySize(cJSON_GetArrayItem(item(f->root, "grads"), 0));
    return tp_param_segments_check(f->segments, f->segment_count, f->floats);
}

/* 1 where some non-frozen segment covers float i. */
static int trainable_at(const fixture *f, int64_t i)
{
    for (int64_t s = 0; s < f->segment_count; s++)
        if (!f->segments[s].frozen && i >= f->segments[s].offset && i < f->segments[s].offset + f->segments[s].numel)
            return 1;
    return 0;
}

static int64_t ulps_apart(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0) ia = INT32_MIN - ia;
    if (ib < 0) ib = INT32_MIN - ib;
    return llabs((long long)ia - ib);
}

/* Every trainable float within 1e-6 relative; returns the largest ulp distance. */
static int64_t compare_trainable(const fixture *f, const char *what, const float *actual, const cJSON *expected_json)
{
    int64_t n, worst = 0;
    float *expected = float_array(expected_json, &n);
    CHECK(n == f->floats);
    for (int64_t i = 0; i < n && i < f->floats; i++) {
        if (!trainable_at(f, i)) continue;
        CHECK_MSG(tp_close(actual[i], expected[i], 1e-6, 1e-30), "%s[%lld]: %.9g, reference %.9g", what,
                  (long long)i, actual[i], expected[i]);
        int64_t d = ulps_apart(actual[i], expected[i]);
        if (d > worst) worst = d;
    }
    free(expected);
    return worst;
}

static void run_adamw_variant(const fixture *f, const char *name, tp_adamw_options opt)
{
    int64_t n, steps = cJSON_GetArraySize(item(f->root, "lrs"));
    float *initial = float_array(item(f->root, "params"), &n);
    float *params = float_array(item(f->root, "params"), NULL);
    float *m = tp_xmalloc((size_t)n * sizeof(float)), *v = tp_xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) m[i] = v[i] = trainable_at(f, i) ? 0.0f : SENTINEL;

    for (int64_t t = 0; t < steps; t++) {
        float *grads = float_array(cJSON_GetArrayItem(item(f->root, "grads"), (int)t), NULL);
        double lr = cJSON_GetArrayItem(item(f->root, "lrs"), (int)t)->valuedouble;
        tp_adamw_step(&opt, lr, t + 1, params, grads, m, v, f->segments, f->segment_count);
        free(grads);
    }

    const cJSON *expected = item(item(f->root, "results"), name);
    CHECK_MSG(expected != NULL, "no results for %s", name);
    int64_t worst = compare_trainable(f, name, params, item(expected, "params"));
    int64_t worst_m = compare_trainable(f, name, m, item(expected, "exp_avg"));
    int64_t worst_v = compare_trainable(f, name, v, item(expected, "exp_avg_sq"));
    printf("adamw %-20s max ulps from PyTorch: params %lld, exp_avg %lld, exp_avg_sq %lld\n", name, (long long)worst,
           (long long)worst_m, (long long)worst_v);
    /* Same float operations in the same order as PyTorch's kernels: bit-exact today; allow an ulp or two. */
    CHECK(worst <= 2 && worst_m <= 2 && worst_v <= 2);

    int untouched = 1; /* frozen segments and uncovered floats: bits unchanged */
    for (int64_t i = 0; i < n; i++)
        if (!trainable_at(f, i))
            untouched &= memcmp(&params[i], &initial[i], 4) == 0 && m[i] == SENTINEL && v[i] == SENTINEL;
    CHECK_MSG(untouched, "%s changed a frozen or uncovered float", name);
    free(initial);
    free(params);
    free(m);
    free(v);
}

static void test_adamw_fixture(void)
{
    fixture f;
    CHECK_MSG(fixture_load(&f, ADAMW_FIXTURE) == 0, "%s", tp_last_error());
    if (!f.root) return;
    tp_adamw_options opt = tp_adamw_defaults();
    opt.beta1 = item(f.root, "beta1")->valuedouble;
    opt.beta2 = item(f.root, "beta2")->valuedouble;
    opt.eps = item(f.root, "eps")->valuedouble;
    CHECK(tp_adamw_options_check(&opt) == 0);

    run_adamw_variant(&f, "tencentpretrain", opt);
    opt.correct_bias = 1;
    run_adamw_variant(&f, "tencentpretrain_bias", opt);
    opt.variant = TP_ADAMW_TORCH;
    run_adamw_variant(&f, "torch", opt);
    cJSON_Delete(f.root);
}

static void test_clip_fixture(void)
{
    fixture f;
    CHECK_MSG(fixture_load(&f, CLIP_FIXTURE) == 0, "%s", tp_last_error());
    if (!f.root) return;
    int64_t n;
    float *original = float_array(item(f.root, "grads"), &n);
    for (int64_t i = 0; i < n; i++) /* what no segment trains must be ignored, even NaN */
        if (!trainable_at(&f, i)) original[i] = NAN;
    float *grads = tp_xmalloc((size_t)n * sizeof(float));
    CHECK(tp_grads_finite(original, f.segments, f.segment_count) == 1);

    const cJSON *c;
    int cases = 0;
    cJSON_ArrayForEach(c, item(f.root, "cases"))
    {
        memcpy(grads, original, (size_t)n * sizeof(float));
        double max_norm = item(c, "max_norm")->valuedouble, expected_norm = item(c, "norm")->valuedouble;
        CHECK(tp_close(tp_grad_global_norm(grads, f.segments, f.segment_count), expected_norm, 1e-6, 0));
        double norm = tp_clip_grad_norm(grads, f.segments, f.segment_count, max_norm);
        CHECK_MSG(tp_close(norm, expected_norm, 1e-6, 0), "norm %.9g, torch %.9g", norm, expected_norm);
        compare_trainable(&f, "clipped grads", grads, item(c, "grads_after"));
        int untouched = 1;
        for (int64_t i = 0; i < n; i++)
            if (!trainable_at(&f, i)) untouched &= isnan(grads[i]);
        CHECK(untouched);
        if (max_norm < norm) /* clipped: the new norm is max_norm */
            CHECK(tp_close(tp_grad_global_norm(grads, f.segments, f.segment_count), max_norm, 1e-6, 0));
        cases++;
    }
    CHECK(cases == 2);
    free(original);
    free(grads);
    cJSON_Delete(f.root);
}

static void test_non_finite(void)
{
    float grads[40];
    for (int i = 0; i < 40; i++) grads[i] = (float)(i % 7) - 3.0f;
    tp_param_segment segments[] = {{.offset = 0, .numel = 16}, {.offset = 16, .numel = 8, .frozen = 1},
                                   {.offset = 24, .numel = 16}};
    CHECK(tp_grads_finite(grads, segments, 3) == 1);
    grads[20] = INFINITY; /* frozen: ignored */
    CHECK(tp_grads_finite(grads, segments, 3) == 1);
    CHECK(isfinite(tp_grad_global_norm(grads, segments, 3)));
    grads[39] = -INFINITY;
    CHECK(tp_grads_finite(grads, segments, 3) == 0);
    CHECK(isinf(tp_grad_global_norm(grads, segments, 3)));
    grads[39] = 1.0f;
    grads[3] = NAN;
    CHECK(tp_grads_finite(grads, segments, 3) == 0);

    float before[40];
    memcpy(before, grads, sizeof grads);
    CHECK(isnan(tp_clip_grad_norm(grads, segments, 3, 1.0))); /* not finite: nothing scaled */
    CHECK(memcmp(before, grads, sizeof grads) == 0);
    CHECK(tp_grads_finite(grads, segments, 0) == 1);
    CHECK(tp_grad_global_norm(grads, segments, 0) == 0.0);
}

/* A buffer big enough for many chunks: the same bits with 1 thread and with 3. */
static void test_thread_count_invariance(void)
{
    enum { FLOATS = 300000 };
    tp_param_segment segments[] = {{.offset = 0, .numel = 100003, .weight_decay = 0.01, .lr_scale = 1},
                                   {.offset = 100016, .numel = 7, .lr_scale = 1},
                                   {.offset = 100032, .numel = 50000, .weight_decay = 0.01, .lr_scale = 1, .frozen = 1},
                                   {.offset = 150032, .numel = 149968, .weight_decay = 0.01, .lr_scale = 2}};
    CHECK(tp_param_segments_check(segments, 4, FLOATS) == 0);
    float *buffers[2][4];
    for (int run = 0; run < 2; run++)
        for (int b = 0; b < 4; b++) {
            buffers[run][b] = tp_xmalloc(FLOATS * sizeof(float));
            for (int64_t i = 0; i < FLOATS; i++) /* params, grads, m, v */
                buffers[run][b][i] = b >= 2 ? 0.0f : (float)sin(0.001 * (double)i * (b + 1)) * (b ? 3.0f : 1.0f);
        }
    double norms[2];
    tp_adamw_options opt = tp_adamw_defaults();
    for (int run = 0; run < 2; run++) {
        omp_set_num_threads(run ? 3 : 1);
        float **x = buffers[run];
        norms[run] = tp_clip_grad_norm(x[1], segments, 4, 10.0);
        for (int64_t step = 1; step <= 2; step++) tp_adamw_step(&opt, 1e-3, step, x[0], x[1], x[2], x[3], segments, 4);
    }
    CHECK(memcmp(&norms[0], &norms[1], sizeof(double)) == 0);
    for (int b = 0; b < 4; b++) CHECK(memcmp(buffers[0][b], buffers[1][b], FLOATS * sizeof(float)) == 0);
    for (int run = 0; run < 2; run++)
        for (int b = 0; b < 4; b++) free(buffers[run][b]);
}

static void test_checks(void)
{
    tp_adamw_options opt = tp_adamw_defaults();
    CHECK(opt.beta1 == 0.9 && opt.beta2 == 0.999 && opt.eps == 1e-6 && !opt.correct_bias);
    CHECK(opt.variant == TP_ADAMW_TENCENTPRETRAIN);
    opt.beta2 = 1.0;
    CHECK(tp_adamw_options_check(&opt) == -1);
    CHECK_MSG(strstr(tp_last_error(), "beta2 1 must be in [0, 1)") != NULL, "%s", tp_last_error());
    opt = tp_adamw_defaults();
    opt.eps = -1;
    CHECK(tp_adamw_options_check(&opt) == -1);

    tp_param_segment segments[] = {{.offset = 0, .numel = 10, .lr_scale = 1}, {.offset = 8, .numel = 4, .lr_scale = 1}};
    CHECK(tp_param_segments_check(segments, 2, 100) == -1);
    CHECK_MSG(strstr(tp_last_error(), "segment 1: offset 8 overlaps") != NULL, "%s", tp_last_error());
    segments[1].offset = 10;
    CHECK(tp_param_segments_check(segments, 2, 14) == 0);
    CHECK(tp_param_segments_check(segments, 2, 13) == -1);
    CHECK_MSG(strstr(tp_last_error(), "segment 1: offset 10 + numel 4 outside the buffer of 13 floats") != NULL, "%s",
              tp_last_error());
    segments[0].weight_decay = -0.1;
    CHECK(tp_param_segments_check(segments, 2, 14) == -1);
}

int main(void)
{
    test_adamw_fixture();
    test_clip_fixture();
    test_non_finite();
    test_thread_count_invariance();
    test_checks();
    return tp_test_finish("test_optim");
}
