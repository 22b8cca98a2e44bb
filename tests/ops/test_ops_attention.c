/* Op tests for tp_attention: forward against a naive double-precision softmax(q k^T / sqrt(d)
 * + mask) v (padding keys and future keys get -10000, as TencentPretrain adds), backward (q, k,
 * v) against central finite differences -- without dropout and with dropout, whose mask is a
 * fixed function of (seed, stream, index) and so leaves a differentiable function.  Dropout's
 * forward is observed through v = identity, which makes the output the dropped probabilities. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;
/* Each score mixes a whole head, so fp32 rounding noise dominates at small steps: worst error
 * ~3e-4 at step 1e-3, ~1e-4 at 3e-3, ~5e-5 at 1e-2 (softmax is smooth on that scale). */
static const tp_gradcheck_options fd_options = {.step = 1e-2, .max_elements = 0, .seed = 51};

typedef struct {
    const char *name;
    int64_t batch, seq, heads, head_dim;
    tp_mask_kind mask;
    const int32_t *key_valid;
    float dropout;
} attention_case;

static tp_tensor *attention_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    const attention_case *c = user;
    return tp_attention(ctx, in[0], in[1], in[2], c->batch, c->seq, c->heads, c->mask, c->key_valid, c->dropout);
}

static int key_visible(const attention_case *c, int64_t b, int64_t i, int64_t j)
{
    if (c->mask == TP_MASK_CAUSAL) return j <= i;
    if (c->mask == TP_MASK_PREFIX) { /* TencentPretrain: (seg == 1) + (seg > 0) + tril >= 2 */
        int32_t seg = c->key_valid[b * c->seq + j];
        return (seg == 1) + (seg > 0) + (j <= i) >= 2;
    }
    return !c->key_valid || c->key_valid[b * c->seq + j];
}

/* Softmax over keys of the scaled scores of query i in (batch b, head h), into probs[seq]. */
static void reference_probs(const attention_case *c, const float *q, const float *k, int64_t b, int64_t h, int64_t i,
                            double *probs)
{
    int64_t d = c->head_dim, hidden = c->heads * d;
    const float *query = q + (b * c->seq + i) * hidden + h * d;
    double max = -INFINITY, sum = 0;
    for (int64_t j = 0; j < c->seq; j++) {
        const float *key = k + (b * c->seq + j) * hidden + h * d;
        double score = 0;
        for (int64_t e = 0; e < d; e++) score += (double)query[e] * key[e];
        probs[j] = score / sqrt((double)d) + (key_visible(c, b, i, j) ? 0.0 : -10000.0);
        max = fmax(max, probs[j]);
    }
    for (int64_t j = 0; j < c->seq; j++) sum += probs[j] = exp(probs[j] - max);
    for (int64_t j = 0; j < c->seq; j++) probs[j] /= sum;
}

/* out [batch*seq, heads*head_dim] without dropout */
static void attention_reference(const attention_case *c, const float *q, const float *k, const float *v, double *out)
{
    int64_t d = c->head_dim, hidden = c->heads * d;
    double *probs = tp_xmalloc((size_t)c->seq * sizeof *probs);
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t h = 0; h < c->heads; h++)
            for (int64_t i = 0; i < c->seq; i++) {
                reference_probs(c, q, k, b, h, i, probs);
                for (int64_t e = 0; e < d; e++) {
                    double sum = 0;
                    for (int64_t j = 0; j < c->seq; j++) sum += probs[j] * v[(b * c->seq + j) * hidden + h * d + e];
                    out[(b * c->seq + i) * hidden + h * d + e] = sum;
                }
            }
    free(probs);
}

typedef struct {
    tp_tensor *in[3];
    int64_t numel;
} qkv;

static qkv make_qkv(const attention_case *c, uint64_t seed)
{
    const int64_t shape[2] = {c->batch * c->seq, c->heads * c->head_dim};
    qkv t = {.numel = shape[0] * shape[1]};
    for (int i = 0; i < 3; i++) t.in[i] = tp_test_tensor(backend, 2, shape, seed + (uint64_t)i, 0, 1);
    return t;
}

static void free_qkv(qkv *t)
{
    for (int i = 0; i < 3; i++) tp_test_tensor_free(backend, t->in[i]);
}

/* Forward against the reference (dropout is inactive: the context is not training), then
 * gradients -- with dropout active when the case has some. */
static void test_case(const attention_case *c, uint64_t seed)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    ctx.seed = 77;
    qkv t = make_qkv(c, seed);
    tp_tensor *out = attention_fn(&ctx, t.in, (void *)c);
    CHECK(out->ndim == 2 && out->shape[0] == c->batch * c->seq && out->shape[1] == c->heads * c->head_dim);
    double *expected = tp_xmalloc((size_t)t.numel * sizeof *expected);
    attention_reference(c, t.in[0]->data, t.in[1]->data, t.in[2]->data, expected);
    CHECK(tp_forward_ok(out->data, expected, t.numel, c->name));

    ctx.training = 1;
    tp_gradcheck_result r = tp_gradcheck(&ctx, attention_fn, (void *)c, t.in, 3, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, c->name));
    CHECK(r.checked == 3 * t.numel);
    free(expected);
    free_qkv(&t);
    tp_ctx_free(&ctx);
}

static tp_tensor *self_attention_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    tp_tensor *same[3] = {in[0], in[0], in[0]};
    return attention_fn(ctx, same, user);
}

/* q = k = v: the three gradients of one tensor must add up. */
static void test_self_attention(void)
{
    const attention_case c = {"attention with q = k = v", 2, 5, 2, 3, TP_MASK_FULLY_VISIBLE, NULL, 0.0f};
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    qkv t = make_qkv(&c, 70);
    tp_gradcheck_result r = tp_gradcheck(&ctx, self_attention_fn, (void *)&c, t.in, 1, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, c.name));
    free_qkv(&t);
    tp_ctx_free(&ctx);
}

/* Only q requires a gradient: k and v (say, frozen) must not get a gradient buffer -- one carved
 * from the arena would dangle after tp_ctx_reset and the next backward would write through it. */
static void test_frozen_inputs_get_no_gradient(void)
{
    const attention_case c = {"attention, only q trained", 2, 5, 2, 3, TP_MASK_CAUSAL, NULL, 0.0f};
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    qkv t = make_qkv(&c, 80);
    t.in[1]->requires_grad = t.in[2]->requires_grad = 0;
    tp_gradcheck_result r = tp_gradcheck(&ctx, attention_fn, (void *)&c, t.in, 3, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, c.name));
    CHECK_MSG(t.in[1]->grad == NULL && t.in[2]->grad == NULL, "%s: k or v got a gradient buffer", c.name);
    free_qkv(&t);
    tp_ctx_free(&ctx);
}

/* With head_dim == seq and v = identity per head, out[b*seq + i, h*d + j] is the dropped
 * probability of key j for query i: each must be 0 or p_ij / (1 - p). */
static void test_dropout_forward(void)
{
    enum { SEQ = 24 };
    const attention_case c = {"attention dropout forward", 2, SEQ, 2, SEQ, TP_MASK_FULLY_VISIBLE, NULL, 0.2f};
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 20);
    ctx.training = 1;
    ctx.seed = 5;
    qkv t = make_qkv(&c, 60);
    int64_t hidden = c.heads * c.head_dim;
    for (int64_t row = 0; row < c.batch * SEQ; row++)
        for (int64_t col = 0; col < hidden; col++) t.in[2]->data[row * hidden + col] = row % SEQ == col % SEQ;
    const float *out = attention_fn(&ctx, t.in, (void *)&c)->data;
    int64_t kept = 0, wrong = 0, total = c.batch * c.heads * SEQ * SEQ;
    double probs[SEQ];
    for (int64_t b = 0; b < c.batch; b++)
        for (int64_t h = 0; h < c.heads; h++)
            for (int64_t i = 0; i < SEQ; i++) {
                reference_probs(&c, t.in[0]->data, t.in[1]->data, b, h, i, probs);
                for (int64_t j = 0; j < SEQ; j++) {
                    float value = out[(b * SEQ + i) * hidden + h * SEQ + j];
                    kept += value != 0.0f;
                    wrong += value != 0.0f && fabs(value - probs[j] / (1 - c.dropout)) > 1e-5;
                }
            }
    double fraction = (double)kept / total, tolerance = 5 * sqrt(c.dropout * (1 - c.dropout) / total);
    CHECK_MSG(wrong == 0, "%lld kept probabilities differ from p / (1 - dropout)", (long long)wrong);
    CHECK_MSG(fabs(fraction - (1 - c.dropout)) <= tolerance, "kept fraction %g, expected %g +- %g", fraction,
              1 - c.dropout, tolerance);
    free_qkv(&t);
    tp_ctx_free(&ctx);
}

int main(void)
{
    /* Batch 0 has two padding keys at the end, batch 1 none. */
    static const int32_t key_valid[14] = {1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1};
    /* Prefix LM segments: batch 0 a prefix of 3, a target of 2, 2 padding; batch 1 a prefix of 1. */
    static const int32_t prefix_segments[14] = {1, 1, 1, 2, 2, 0, 0, 1, 2, 2, 2, 2, 2, 2};
    const attention_case cases[] = {
        {"attention fully visible, padding keys", 2, 7, 3, 4, TP_MASK_FULLY_VISIBLE, key_valid, 0.0f},
        {"attention fully visible, no key_valid", 3, 6, 4, 2, TP_MASK_FULLY_VISIBLE, NULL, 0.0f},
        {"attention causal", 2, 5, 2, 3, TP_MASK_CAUSAL, NULL, 0.0f},
        {"attention padding keys, dropout 0.3", 2, 7, 3, 4, TP_MASK_FULLY_VISIBLE, key_valid, 0.3f},
        {"attention causal, dropout 0.3", 2, 5, 2, 3, TP_MASK_CAUSAL, NULL, 0.3f},
        {"attention causal_with_prefix", 2, 7, 3, 4, TP_MASK_PREFIX, prefix_segments, 0.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_case(&cases[i], 10 * i);
    test_self_attention();
    test_frozen_inputs_get_no_gradient();
    test_dropout_forward();
    return tp_test_finish("test_ops_attention");
}
