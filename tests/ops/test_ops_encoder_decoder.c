/* Op tests for the encoder-decoder pieces: tp_attention_general (cross-attention with kv_seq !=
 * seq, padding keys, scale 1 as T5, an additive [seq*kv_seq, heads] bias that takes a gradient,
 * causal with dropout), the RMS norm (T5LayerNorm, no bias) and the element-wise product (gated
 * feed-forward).  Forwards against naive double-precision formulas, backwards against central
 * finite differences. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;
static const tp_gradcheck_options fd_options = {.step = 1e-2, .max_elements = 0, .seed = 53};

typedef struct {
    const char *name;
    int64_t batch, seq, kv_seq, heads, head_dim;
    tp_mask_kind mask;
    const int32_t *key_valid;
    float scale, dropout;
    int with_bias;
} cross_case;

static tp_tensor *cross_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    const cross_case *c = user;
    tp_attention_options options = {c->batch, c->seq, c->kv_seq, c->heads, c->mask, c->key_valid,
                                     c->with_bias ? in[3] : NULL, c->scale, c->dropout};
    return tp_attention_general(ctx, in[0], in[1], in[2], &options);
}

/* softmax(scale q k^T + bias + mask) v in double, without dropout. */
static void cross_reference(const cross_case *c, tp_tensor *const *in, double *out)
{
    int64_t d = c->head_dim, hidden = c->heads * d, keys = c->kv_seq;
    double *p = tp_xmalloc((size_t)keys * sizeof *p);
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t h = 0; h < c->heads; h++)
            for (int64_t i = 0; i < c->seq; i++) {
                double max = -INFINITY, sum = 0;
                for (int64_t j = 0; j < keys; j++) {
                    double score = 0;
                    for (int64_t e = 0; e < d; e++)
                        score += (double)in[0]->data[(b * c->seq + i) * hidden + h * d + e] *
                                 in[1]->data[(b * keys + j) * hidden + h * d + e];
                    int visible = c->mask == TP_MASK_CAUSAL ? j <= i : (!c->key_valid || c->key_valid[b * keys + j]);
                    p[j] = c->scale * score + (c->with_bias ? in[3]->data[(i * keys + j) * c->heads + h] : 0) +
                           (visible ? 0 : -10000.0);
                    max = fmax(max, p[j]);
                }
                for (int64_t j = 0; j < keys; j++) sum += p[j] = exp(p[j] - max);
                for (int64_t e = 0; e < d; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j < keys; j++) acc += p[j] / sum * in[2]->data[(b * keys + j) * hidden + h * d + e];
                    out[(b * c->seq + i) * hidden + h * d + e] = acc;
                }
            }
    free(p);
}

static void test_cross_case(const cross_case *c, uint64_t seed)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    ctx.seed = 91;
    int64_t hidden = c->heads * c->head_dim;
    const int64_t q_shape[2] = {c->batch * c->seq, hidden}, kv_shape[2] = {c->batch * c->kv_seq, hidden},
                  bias_shape[2] = {c->seq * c->kv_seq, c->heads};
    tp_tensor *in[4] = {tp_test_tensor(backend, 2, q_shape, seed, 0, 1), tp_test_tensor(backend, 2, kv_shape, seed + 1, 0, 1),
                        tp_test_tensor(backend, 2, kv_shape, seed + 2, 0, 1),
                        tp_test_tensor(backend, 2, bias_shape, seed + 3, 0, 1)};
    int64_t numel = q_shape[0] * hidden;
    double *expected = tp_xmalloc((size_t)numel * sizeof *expected);
    cross_reference(c, in, expected);
    CHECK(tp_forward_ok(cross_fn(&ctx, in, (void *)c)->data, expected, numel, c->name));
    ctx.training = 1;
    tp_gradcheck_result r = tp_gradcheck(&ctx, cross_fn, (void *)c, in, c->with_bias ? 4 : 3, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, c->name));
    free(expected);
    for (int i = 0; i < 4; i++) tp_test_tensor_free(backend, in[i]);
    tp_ctx_free(&ctx);
}

static tp_tensor *rms_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    (void)user;
    return tp_layer_norm(ctx, in[0], in[1], NULL, TP_NORM_RMS, 1e-6f);
}

/* y = x / sqrt(mean(x^2) + eps) * gamma, no centring and no bias (HF T5LayerNorm). */
static void test_rms_norm(void)
{
    enum { ROWS = 5, COLS = 7 };
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    const int64_t x_shape[2] = {ROWS, COLS}, g_shape[1] = {COLS};
    tp_tensor *in[2] = {tp_test_tensor(backend, 2, x_shape, 301, 0.5, 1), tp_test_tensor(backend, 1, g_shape, 302, 1, 0.3)};
    double expected[ROWS * COLS];
    for (int r = 0; r < ROWS; r++) {
        double squares = 0;
        for (int c = 0; c < COLS; c++) squares += (double)in[0]->data[r * COLS + c] * in[0]->data[r * COLS + c];
        double inv = 1.0 / sqrt(squares / COLS + 1e-6);
        for (int c = 0; c < COLS; c++) expected[r * COLS + c] = in[0]->data[r * COLS + c] * inv * in[1]->data[c];
    }
    CHECK(tp_forward_ok(rms_fn(&ctx, in, NULL)->data, expected, ROWS * COLS, "rms norm"));
    const tp_gradcheck_options options = {.step = TP_GRADIENT_STEP, .seed = 3};
    tp_gradcheck_result r = tp_gradcheck(&ctx, rms_fn, NULL, in, 2, &options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "rms norm"));
    for (int i = 0; i < 2; i++) tp_test_tensor_free(backend, in[i]);
    tp_ctx_free(&ctx);
}

static tp_tensor *mul_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    (void)user;
    return tp_mul(ctx, in[0], in[1]);
}

static tp_tensor *square_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    (void)user;
    return tp_mul(ctx, in[0], in[0]);
}

static void test_mul(void)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    const int64_t shape[2] = {4, 6};
    tp_tensor *in[2] = {tp_test_tensor(backend, 2, shape, 401, 0, 1), tp_test_tensor(backend, 2, shape, 402, 0, 1)};
    double expected[24];
    for (int i = 0; i < 24; i++) expected[i] = (double)in[0]->data[i] * in[1]->data[i];
    CHECK(tp_forward_ok(mul_fn(&ctx, in, NULL)->data, expected, 24, "mul"));
    const tp_gradcheck_options options = {.step = TP_GRADIENT_STEP, .seed = 4};
    tp_gradcheck_result r = tp_gradcheck(&ctx, mul_fn, NULL, in, 2, &options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "mul"));
    r = tp_gradcheck(&ctx, square_fn, NULL, in, 1, &options); /* both gradients into one tensor */
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "mul x * x"));
    for (int i = 0; i < 2; i++) tp_test_tensor_free(backend, in[i]);
    tp_ctx_free(&ctx);
}

int main(void)
{
    /* Batch 0's last two encoder positions are padding. */
    static const int32_t key_valid[10] = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
    const cross_case cases[] = {
        {"cross-attention 3 queries x 5 keys, padding keys", 2, 3, 5, 2, 3, TP_MASK_FULLY_VISIBLE, key_valid,
         0.57735f, 0.0f, 0},
        {"cross-attention, scale 1, bias", 2, 3, 5, 2, 3, TP_MASK_FULLY_VISIBLE, key_valid, 1.0f, 0.0f, 1},
        {"self-attention, bias, 6 queries x 2 keys", 3, 6, 2, 2, 2, TP_MASK_FULLY_VISIBLE, NULL, 1.0f, 0.0f, 1},
        {"causal, bias, dropout 0.3", 2, 4, 4, 3, 2, TP_MASK_CAUSAL, NULL, 1.0f, 0.3f, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_cross_case(&cases[i], 100 + 10 * i);
    test_rms_norm();
    test_mul();
    return tp_test_finish("test_ops_encoder_decoder");
}
