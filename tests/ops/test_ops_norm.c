/* Op tests for tp_layer_norm, both kinds: forward against the textbook formulas in double,
 * backward (x, gamma, beta) against central finite differences.  A large eps is included so
 * that eps inside or outside the square root makes a visible difference. */
#include <math.h>
#include <stdio.h>

#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;
/* Layer norm mixes a whole row: worst error ~9e-5 at the usual step 3e-3, against ~1e-3 at
 * 3e-4 (rounding noise) and ~5e-4 at 1e-2 (truncation). */
static const tp_gradcheck_options fd_options = {.step = TP_GRADIENT_STEP, .max_elements = 0, .seed = 21};

typedef struct {
    tp_norm_kind kind;
    float eps;
} norm_case;

static tp_tensor *norm_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    const norm_case *c = user;
    return tp_layer_norm(ctx, in[0], in[1], in[2], c->kind, c->eps);
}

/* TencentPretrain "normal": gamma * (x - mean) / (std_unbiased + eps) + beta;
 * torch: (x - mean) / sqrt(var_biased + eps) * gamma + beta. */
static void norm_reference(const norm_case *c, const float *x, const float *gamma, const float *beta, int64_t rows,
                           int64_t cols, double *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * cols;
        double mean = 0, squares = 0;
        for (int64_t i = 0; i < cols; i++) mean += row[i];
        mean /= cols;
        for (int64_t i = 0; i < cols; i++) squares += (row[i] - mean) * (row[i] - mean);
        double denominator = c->kind == TP_NORM_UNBIASED_STD ? sqrt(squares / (cols - 1)) + c->eps
                                                              : sqrt(squares / cols + c->eps);
        for (int64_t i = 0; i < cols; i++) y[r * cols + i] = gamma[i] * ((row[i] - mean) / denominator) + beta[i];
    }
}

static void test_layer_norm(tp_ctx *ctx, const norm_case *c, double x_scale)
{
    const int64_t x_shape[3] = {2, 3, 9}, param_shape[1] = {9};
    tp_tensor *in[3] = {tp_test_tensor(backend, 3, x_shape, 1, 3.0, x_scale),
                        tp_test_tensor(backend, 1, param_shape, 2, 1.0, 0.3),
                        tp_test_tensor(backend, 1, param_shape, 3, 0.0, 0.5)};
    char what[96];
    snprintf(what, sizeof what, "layer_norm %s eps %g", c->kind == TP_NORM_TORCH ? "torch" : "unbiased-std",
             (double)c->eps);

    tp_ctx_reset(ctx);
    tp_tensor *y = norm_fn(ctx, in, (void *)c);
    CHECK(y->ndim == 3 && y->shape[2] == 9);
    double expected[54];
    norm_reference(c, in[0]->data, in[1]->data, in[2]->data, 6, 9, expected);
    CHECK(tp_forward_ok(y->data, expected, 54, what));

    tp_gradcheck_result r = tp_gradcheck(ctx, norm_fn, (void *)c, in, 3, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, what));
    CHECK(r.checked == 54 + 9 + 9);
    for (int i = 0; i < 3; i++) tp_test_tensor_free(backend, in[i]);
}

int main(void)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    const norm_case cases[] = {
        {TP_NORM_UNBIASED_STD, 1e-6f}, {TP_NORM_TORCH, 1e-5f}, {TP_NORM_UNBIASED_STD, 0.1f}, {TP_NORM_TORCH, 0.1f}};
    /* With the large eps, inputs of spread ~0.3 make eps a sizeable part of the denominator. */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_layer_norm(&ctx, &cases[i], cases[i].eps > 0.01f ? 0.3 : 2.0);
    tp_ctx_free(&ctx);
    return tp_test_finish("test_ops_norm");
}
