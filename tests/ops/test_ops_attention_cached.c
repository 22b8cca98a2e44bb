/* Op test for tp_attention_cached (incremental causal decoding; inference only, so no gradient
 * check): the queries of positions past .. past+n-1 against key/value caches that hold positions
 * 0 .. past+n-1 must give a naive double-precision softmax(q k^T / sqrt(d) + causal mask) v,
 * -10000 on the later keys as TencentPretrain adds -- for a whole prompt at once (past 0), a
 * few tokens after a prefix, and one token at a time; the cache rows beyond past+n (garbage
 * here: NaN) must not be read.  And the rows equal tp_attention's causal ones on the whole
 * sequence. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;

enum { BATCH = 2, SEQ = 9, HEADS = 3, DIM = 4, HIDDEN = HEADS * DIM, CAPACITY = 12 };

/* Row i of sequence b (position past + i) of the reference output for one head. */
static void reference_row(const float *q, const float *k, const float *v, int64_t b, int64_t h, int64_t position,
                          double *out)
{
    double scores[SEQ], max = -INFINITY, sum = 0;
    const float *query = q + (b * SEQ + position) * HIDDEN + h * DIM;
    for (int64_t j = 0; j < SEQ; j++) {
        const float *key = k + (b * SEQ + j) * HIDDEN + h * DIM;
        double dot = 0;
        for (int64_t e = 0; e < DIM; e++) dot += (double)query[e] * key[e];
        scores[j] = dot / sqrt((double)DIM) + (j <= position ? 0.0 : -10000.0);
        max = fmax(max, scores[j]);
    }
    for (int64_t j = 0; j < SEQ; j++) sum += scores[j] = exp(scores[j] - max);
    for (int64_t e = 0; e < DIM; e++) {
        double value = 0;
        for (int64_t j = 0; j < SEQ; j++) value += scores[j] / sum * v[(b * SEQ + j) * HIDDEN + h * DIM + e];
        out[e] = value;
    }
}

/* The caches hold positions 0 .. past+n-1 of the sequences; the rest is NaN. */
static void fill_caches(const float *k, const float *v, int64_t filled, float *k_cache, float *v_cache)
{
    for (int64_t i = 0; i < BATCH * CAPACITY * HIDDEN; i++) k_cache[i] = v_cache[i] = NAN;
    for (int64_t b = 0; b < BATCH; b++) {
        memcpy(k_cache + b * CAPACITY * HIDDEN, k + b * SEQ * HIDDEN, (size_t)(filled * HIDDEN) * sizeof(float));
        memcpy(v_cache + b * CAPACITY * HIDDEN, v + b * SEQ * HIDDEN, (size_t)(filled * HIDDEN) * sizeof(float));
    }
}

static void check_step(tp_ctx *ctx, const tp_tensor *q, const tp_tensor *k, const tp_tensor *v, int64_t past, int64_t n)
{
    float k_cache[BATCH * CAPACITY * HIDDEN], v_cache[BATCH * CAPACITY * HIDDEN];
    fill_caches(k->data, v->data, past + n, k_cache, v_cache);
    int64_t shape[2] = {BATCH * n, HIDDEN};
    tp_tensor *queries = tp_empty(ctx, 2, shape);
    for (int64_t b = 0; b < BATCH; b++)
        memcpy(queries->data + b * n * HIDDEN, q->data + (b * SEQ + past) * HIDDEN, (size_t)(n * HIDDEN) * sizeof(float));
    tp_tensor *out = tp_attention_cached(ctx, queries, k_cache, v_cache, BATCH, past, CAPACITY, HEADS);
    double *expected = tp_xmalloc((size_t)(BATCH * n * HIDDEN) * sizeof *expected);
    for (int64_t b = 0; b < BATCH; b++)
        for (int64_t i = 0; i < n; i++)
            for (int64_t h = 0; h < HEADS; h++)
                reference_row(q->data, k->data, v->data, b, h, past + i, expected + (b * n + i) * HIDDEN + h * DIM);
    char what[64];
    snprintf(what, sizeof what, "attention_cached past %lld n %lld", (long long)past, (long long)n);
    CHECK(tp_forward_ok(out->data, expected, BATCH * n * HIDDEN, what));
    free(expected);
}

int main(void)
{
    int64_t shape[2] = {BATCH * SEQ, HIDDEN};
    tp_tensor *q = tp_test_tensor(backend, 2, shape, 1, 0, 1), *k = tp_test_tensor(backend, 2, shape, 2, 0, 1);
    tp_tensor *v = tp_test_tensor(backend, 2, shape, 3, 0, 1);
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    check_step(&ctx, q, k, v, 0, SEQ); /* a whole prompt */
    check_step(&ctx, q, k, v, 4, 3);   /* a few tokens after a prefix */
    for (int64_t past = 0; past < SEQ; past++) check_step(&ctx, q, k, v, past, 1);

    /* the same rows as tp_attention's causal mask over the whole sequence */
    tp_tensor *full = tp_attention(&ctx, q, k, v, BATCH, SEQ, HEADS, TP_MASK_CAUSAL, NULL, 0.0f);
    float k_cache[BATCH * CAPACITY * HIDDEN], v_cache[BATCH * CAPACITY * HIDDEN];
    fill_caches(k->data, v->data, SEQ, k_cache, v_cache);
    q->requires_grad = 0; /* the op has no backward: it refuses inputs that need a gradient */
    tp_tensor *cached = tp_attention_cached(&ctx, q, k_cache, v_cache, BATCH, 0, CAPACITY, HEADS);
    double error = tp_max_normalised_error(cached->data, full->data, BATCH * SEQ * HIDDEN);
    CHECK_MSG(error <= 1e-6, "attention_cached vs tp_attention causal: %.3g", error);
    tp_ctx_free(&ctx);
    tp_test_tensor_free(backend, q);
    tp_test_tensor_free(backend, k);
    tp_test_tensor_free(backend, v);
    return tp_test_finish("test_ops_attention_cached");
}
