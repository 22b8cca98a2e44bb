/* Op tests for tp_crf_loss and tp_crf_viterbi (the tagging head's CRF):
 *   - against pytorch-crf (tests/fixtures/crf/cases.json, made by tests/reference/make_crf_fixture.py):
 *     the mean NLL, the number of sequences it averages, every gradient (emissions with padded
 *     columns and unscored rows, transitions, start, end) and Viterbi paths, for chains with gaps,
 *     an empty chain, a one-position chain, 9 tags with emissions of spread 6;
 *   - against brute force: log Z and the best path by enumerating all classes^n paths in double
 *     (3 tags, chains of 0-5 positions with gaps);
 *   - the gradients against central finite differences of the loss (all four inputs). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

#define FIXTURE "tests/fixtures/crf/cases.json"

static const tp_backend *const backend = &tp_cpu_backend;
/* A loss is one scalar of order 1-10 whatever element moves (see test_ops_loss.c): step 1e-2. */
static const tp_gradcheck_options fd_options = {.step = 1e-2, .max_elements = 0, .seed = 73};

/* A CRF problem with its four inputs as test tensors (outside any arena) and host tags. */
typedef struct crf_case {
    int64_t batch, seq, classes, ld;
    int32_t *tags;
    tp_tensor *in[4]; /* emissions [batch*seq, ld], transitions [classes, classes], start, end [classes] */
} crf_case;

static void case_init(crf_case *c, int64_t batch, int64_t seq, int64_t classes, int64_t ld, uint64_t seed)
{
    c->batch = batch, c->seq = seq, c->classes = classes, c->ld = ld;
    c->tags = tp_xmalloc((size_t)(batch * seq) * sizeof *c->tags);
    const int64_t emissions[2] = {batch * seq, ld}, transitions[2] = {classes, classes}, vector[1] = {classes};
    c->in[0] = tp_test_tensor(backend, 2, emissions, seed, 0, 1.5);
    c->in[1] = tp_test_tensor(backend, 2, transitions, seed + 1, 0, 1);
    c->in[2] = tp_test_tensor(backend, 1, vector, seed + 2, 0, 1);
    c->in[3] = tp_test_tensor(backend, 1, vector, seed + 3, 0, 1);
}

static void case_free(crf_case *c)
{
    for (int i = 0; i < 4; i++) tp_test_tensor_free(backend, c->in[i]);
    free(c->tags);
}

static tp_tensor *crf_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    const crf_case *c = user;
    return tp_crf_loss(ctx, in[0], in[1], in[2], in[3], c->tags, c->batch, c->seq, c->classes, NULL);
}

/* Sequence b's chain: its scored rows (b*seq + s where the tag is >= 0), in order; returns n. */
static int64_t chain_rows(const crf_case *c, int64_t b, int64_t *rows)
{
    int64_t n = 0;
    for (int64_t s = 0; s < c->seq; s++)
        if (c->tags[b * c->seq + s] >= 0) rows[n++] = b * c->seq + s;
    return n;
}

/* ---- brute force ------------------------------------------------------------------------- */

/* The score of one path (tags path[0..n)) over the chain's rows, in double from the definition. */
static double path_score(const crf_case *c, const int64_t *rows, const int32_t *path, int64_t n)
{
    const float *e = c->in[0]->data, *transitions = c->in[1]->data, *start = c->in[2]->data, *end = c->in[3]->data;
    double score = (double)start[path[0]] + end[path[n - 1]];
    for (int64_t t = 0; t < n; t++) {
        score += e[rows[t] * c->ld + path[t]];
        if (t > 0) score += transitions[path[t - 1] * c->classes + path[t]];
    }
    return score;
}

/* log Z of sequence b by enumerating every path; the best path into best[n]. */
static double brute_force(const crf_case *c, int64_t b, int32_t *best, int64_t *n_out)
{
    int64_t rows[64], n = chain_rows(c, b, rows), paths = 1;
    int32_t path[64];
    *n_out = n;
    if (n == 0) return 0.0;
    for (int64_t t = 0; t < n; t++) paths *= c->classes;
    double sum = 0, top = -INFINITY;
    for (int64_t k = 0; k < paths; k++) {
        for (int64_t t = 0, rest = k; t < n; t++, rest /= c->classes) path[t] = (int32_t)(rest % c->classes);
        double score = path_score(c, rows, path, n);
        sum += exp(score);
        if (score > top) top = score, memcpy(best, path, (size_t)n * sizeof *best);
    }
    return log(sum);
}

static void test_brute_force(void)
{
    crf_case c;
    case_init(&c, 4, 8, 3, 5, 11);
    /* chains of 4, 0, 1 and 5 positions, gaps anywhere; tags as in tp's tagging */
    static const int32_t tags[4 * 8] = {-1, 0, 2, -1, 1, -1, 2, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                        -1, -1, -1, 2,  -1, -1, -1, -1, -1, 1, 1, 0, -1, 2, 0, -1};
    memcpy(c.tags, tags, sizeof tags);
    double total = 0;
    int64_t sequences = 0;
    for (int64_t b = 0; b < c.batch; b++) {
        int32_t best[64], decoded[64];
        int64_t rows[64], n;
        double log_z = brute_force(&c, b, best, &n);
        if (n == 0) continue;
        chain_rows(&c, b, rows);
        int32_t gold[64];
        for (int64_t t = 0; t < n; t++) gold[t] = c.tags[rows[t]];
        total += log_z - path_score(&c, rows, gold, n);
        sequences++;
        tp_crf_viterbi(c.in[0]->data, c.ld, rows, n, c.in[1]->data, c.in[2]->data, c.in[3]->data, c.classes, decoded);
        CHECK_MSG(memcmp(best, decoded, (size_t)n * sizeof *best) == 0, "viterbi: sequence %lld differs from the "
                  "brute-force best path", (long long)b);
    }
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    int64_t count = -1;
    tp_tensor *loss = tp_crf_loss(&ctx, c.in[0], c.in[1], c.in[2], c.in[3], c.tags, c.batch, c.seq, c.classes, &count);
    double expected = total / (double)sequences;
    CHECK(tp_forward_ok(loss->data, &expected, 1, "crf loss vs brute-force log Z"));
    CHECK_MSG(count == sequences, "count %lld, expected %lld", (long long)count, (long long)sequences);
    tp_ctx_free(&ctx);

    tp_ctx_init(&ctx, backend, 1 << 16);
    tp_gradcheck_result r = tp_gradcheck(&ctx, crf_fn, &c, c.in, 4, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "crf loss (emissions, transitions, start, end)"));
    tp_ctx_free(&ctx);
    case_free(&c);
}

/* No scored position anywhere: loss 0, count 0, no gradient. */
static void test_nothing_scored(void)
{
    crf_case c;
    case_init(&c, 2, 3, 3, 3, 21);
    for (int i = 0; i < 6; i++) c.tags[i] = -1;
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    ctx.record = 1;
    int64_t count = -1;
    tp_tensor *loss = tp_crf_loss(&ctx, c.in[0], c.in[1], c.in[2], c.in[3], c.tags, c.batch, c.seq, c.classes, &count);
    CHECK(loss->data[0] == 0.0f && count == 0);
    tp_backward(&ctx, loss);
    for (int64_t i = 0; i < 18; i++) CHECK(c.in[0]->grad[i] == 0.0f);
    for (int i = 0; i < 4; i++) c.in[i]->grad = NULL;
    tp_ctx_free(&ctx);
    case_free(&c);
}

/* ---- pytorch-crf -------------------------------------------------------------------------- */

static const cJSON *item(const cJSON *object, const char *key) { return cJSON_GetObjectItemCaseSensitive(object, key); }

static void floats_of(const cJSON *array, float *out, int64_t n)
{
    CHECK(cJSON_GetArraySize(array) == n);
    for (int64_t i = 0; i < n; i++) out[i] = (float)cJSON_GetArrayItem(array, (int)i)->valuedouble;
}

/* Gradients against pytorch-crf's float64 ones: the marginals are exp(log alpha + log beta - log Z)
 * of fp32 log alpha / beta, whose rounding (6e-8 |log alpha|) reaches 1e-5 at |log alpha| ~ 150
 * (24 positions of emissions of spread 6): 1e-4.  A wrong term gives 0.1 or more. */
#define GRADIENT_VS_REFERENCE_TOLERANCE 1e-4

static int grad_ok(const float *actual, const cJSON *expected_json, int64_t n, const char *what)
{
    double *expected = tp_xmalloc((size_t)n * sizeof *expected);
    for (int64_t i = 0; i < n; i++) expected[i] = cJSON_GetArrayItem(expected_json, (int)i)->valuedouble;
    double error = tp_max_error_vs_double(actual, expected, n);
    free(expected);
    if (getenv("TP_TEST_VERBOSE") || !(error <= GRADIENT_VS_REFERENCE_TOLERANCE))
        fprintf(stderr, "gradient  %-50s error %.2e (tolerance %.0e)\n", what, error, GRADIENT_VS_REFERENCE_TOLERANCE);
    return error <= GRADIENT_VS_REFERENCE_TOLERANCE;
}

static void test_pytorch_crf_case(const cJSON *json)
{
    const char *name = item(json, "name")->valuestring;
    crf_case c;
    case_init(&c, (int64_t)item(json, "batch")->valuedouble, (int64_t)item(json, "seq")->valuedouble,
              (int64_t)item(json, "classes")->valuedouble, (int64_t)item(json, "ld")->valuedouble, 1);
    int64_t tokens = c.batch * c.seq, sizes[4] = {tokens * c.ld, c.classes * c.classes, c.classes, c.classes};
    static const char *const inputs[4] = {"emissions", "transitions", "start", "end"};
    static const char *const grads[4] = {"d_emissions", "d_transitions", "d_start", "d_end"};
    for (int i = 0; i < 4; i++) floats_of(item(json, inputs[i]), c.in[i]->data, sizes[i]);
    for (int64_t i = 0; i < tokens; i++) c.tags[i] = (int32_t)cJSON_GetArrayItem(item(json, "tags"), (int)i)->valueint;

    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    ctx.record = 1;
    int64_t count = -1;
    tp_tensor *loss = tp_crf_loss(&ctx, c.in[0], c.in[1], c.in[2], c.in[3], c.tags, c.batch, c.seq, c.classes, &count);
    double expected = item(json, "loss")->valuedouble;
    CHECK_MSG(tp_forward_ok(loss->data, &expected, 1, name), "%s: loss %.9g, pytorch-crf %.9g", name, loss->data[0],
              expected);
    CHECK_MSG(count == (int64_t)item(json, "count")->valuedouble, "%s: count %lld", name, (long long)count);
    tp_backward(&ctx, loss);
    for (int i = 0; i < 4; i++) {
        char what[160];
        snprintf(what, sizeof what, "%s: %s", name, grads[i]);
        CHECK(grad_ok(c.in[i]->grad, item(json, grads[i]), sizes[i], what));
        c.in[i]->grad = NULL;
    }
    tp_ctx_free(&ctx);

    for (int64_t b = 0; b < c.batch; b++) {
        int64_t rows[256];
        int32_t decoded[256];
        int64_t n = chain_rows(&c, b, rows);
        tp_crf_viterbi(c.in[0]->data, c.ld, rows, n, c.in[1]->data, c.in[2]->data, c.in[3]->data, c.classes, decoded);
        for (int64_t t = 0; t < n; t++) {
            int expected_tag = cJSON_GetArrayItem(item(json, "viterbi"), (int)rows[t])->valueint;
            CHECK_MSG(decoded[t] == expected_tag, "%s: viterbi sequence %lld position %lld: %d, pytorch-crf %d", name,
                      (long long)b, (long long)t, decoded[t], expected_tag);
        }
    }
    case_free(&c);
}

static void test_pytorch_crf(void)
{
    char *text = tp_read_file(FIXTURE, NULL);
    CHECK_MSG(text != NULL, "%s", tp_last_error());
    if (!text) return;
    cJSON *root = cJSON_Parse(text);
    free(text);
    CHECK_MSG(root != NULL, "%s: not JSON", FIXTURE);
    const cJSON *json;
    int cases = 0;
    cJSON_ArrayForEach(json, item(root, "cases")) test_pytorch_crf_case(json), cases++;
    CHECK(cases == 3);
    cJSON_Delete(root);
}

int main(void)
{
    test_brute_force();
    test_nothing_scored();
    test_pytorch_crf();
    return tp_test_finish("test_ops_crf");
}
