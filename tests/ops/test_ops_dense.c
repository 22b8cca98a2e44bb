/* Op tests for tp_linear, tp_add, tp_scale and tp_act: forward against naive double-precision
 * references, backward against central finite differences, and gradient accumulation for an
 * input used twice.  Also checks that the gradient checker itself notices a wrong gradient, and
 * the CPU product split over the threads (tp_cpu_gemm_threads) against a double reference on 1, 2
 * and 3 threads. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/rng.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;
static const tp_gradcheck_options fd_options = {.step = TP_GRADIENT_STEP, .max_elements = 0, .seed = 11};

/* ---- linear -------------------------------------------------------------------- */

static tp_tensor *linear_fn(tp_ctx *ctx, tp_tensor *const *in, void *with_bias)
{
    return tp_linear(ctx, in[0], in[1], *(const int *)with_bias ? in[2] : NULL);
}

/* y[r, o] = sum_i x[r, i] w[o, i] + b[o] */
static void linear_reference(const tp_tensor *x, const tp_tensor *w, const tp_tensor *b, double *y)
{
    int64_t rows = tp_rows(x), in = tp_cols(x), out = w->shape[0];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double sum = b ? b->data[o] : 0.0;
            for (int64_t i = 0; i < in; i++) sum += (double)x->data[r * in + i] * w->data[o * in + i];
            y[r * out + o] = sum;
        }
}

/* x [2, 3, 5] (3-D input) against W [7, 5]: more output rows than inputs. */
static void test_linear(tp_ctx *ctx, int with_bias)
{
    const int64_t x_shape[3] = {2, 3, 5}, w_shape[2] = {7, 5}, b_shape[1] = {7};
    tp_tensor *in[3] = {tp_test_tensor(backend, 3, x_shape, 1, 0, 1), tp_test_tensor(backend, 2, w_shape, 2, 0, 0.5),
                        tp_test_tensor(backend, 1, b_shape, 3, 0, 1)};
    tp_ctx_reset(ctx);
    tp_tensor *y = linear_fn(ctx, in, &with_bias);
    CHECK(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 7);
    double expected[6 * 7];
    linear_reference(in[0], in[1], with_bias ? in[2] : NULL, expected);
    CHECK(tp_forward_ok(y->data, expected, 6 * 7, with_bias ? "linear with bias" : "linear without bias"));

    tp_gradcheck_result r = tp_gradcheck(ctx, linear_fn, &with_bias, in, with_bias ? 3 : 2, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, with_bias ? "linear with bias" : "linear without bias"));
    CHECK(r.checked == 30 + 35 + (with_bias ? 7 : 0));
    for (int i = 0; i < 3; i++) tp_test_tensor_free(backend, in[i]);
}

/* ---- add, scale ---------------------------------------------------------------- */

static tp_tensor *add_fn(tp_ctx *ctx, tp_tensor *const *in, void *user) { return tp_add(ctx, in[0], in[1]); }

static const float scale_factor = -0.7f;

static tp_tensor *scale_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    return tp_scale(ctx, in[0], scale_factor);
}

static void test_add_and_scale(tp_ctx *ctx)
{
    const int64_t shape[2] = {4, 6};
    tp_tensor *in[2] = {tp_test_tensor(backend, 2, shape, 4, 0, 1), tp_test_tensor(backend, 2, shape, 5, 0, 1)};
    double expected[24];

    tp_ctx_reset(ctx);
    tp_tensor *sum = add_fn(ctx, in, NULL);
    for (int i = 0; i < 24; i++) expected[i] = (double)in[0]->data[i] + in[1]->data[i];
    CHECK(sum->ndim == 2 && sum->shape[0] == 4 && sum->shape[1] == 6);
    CHECK(tp_forward_ok(sum->data, expected, 24, "add"));
    tp_gradcheck_result r = tp_gradcheck(ctx, add_fn, NULL, in, 2, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "add"));

    tp_ctx_reset(ctx);
    tp_tensor *scaled = scale_fn(ctx, in, NULL);
    for (int i = 0; i < 24; i++) expected[i] = (double)scale_factor * in[0]->data[i];
    CHECK(tp_forward_ok(scaled->data, expected, 24, "scale"));
    r = tp_gradcheck(ctx, scale_fn, NULL, in, 1, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "scale"));
    for (int i = 0; i < 2; i++) tp_test_tensor_free(backend, in[i]);
}

/* ---- activations --------------------------------------------------------------- */

static const char *const activation_names[TP_ACT_COUNT] = {"gelu", "gelu_fast", "relu", "silu", "tanh", "quick_gelu"};

/* The textbook formulas; GELU_FAST is TencentPretrain's tanh form with its constant. */
static double activation_reference(tp_activation kind, double x)
{
    switch (kind) {
    case TP_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case TP_ACT_GELU_FAST: return 0.5 * x * (1.0 + tanh(0.7978845608 * x * (1.0 + 0.044715 * x * x)));
    case TP_ACT_RELU: return x > 0 ? x : 0.0;
    case TP_ACT_SILU: return x / (1.0 + exp(-x));
    case TP_ACT_TANH: return tanh(x);
    case TP_ACT_QUICK_GELU: return x / (1.0 + exp(-1.702 * x));
    default: return NAN;
    }
}

static tp_tensor *act_fn(tp_ctx *ctx, tp_tensor *const *in, void *kind)
{
    return tp_act(ctx, in[0], *(const tp_activation *)kind);
}

static void test_activations(tp_ctx *ctx)
{
    const int64_t shape[2] = {8, 12};
    tp_tensor *x = tp_test_tensor(backend, 2, shape, 6, 0, 2.5);
    /* Keep clear of ReLU's kink: a central difference straddling 0 is meaningless there. */
    for (int i = 0; i < 96; i++) x->data[i] += x->data[i] >= 0 ? 0.05f : -0.05f;
    double expected[96];
    for (tp_activation kind = 0; kind < TP_ACT_COUNT; kind++) {
        tp_ctx_reset(ctx);
        tp_tensor *y = act_fn(ctx, &x, &kind);
        for (int i = 0; i < 96; i++) expected[i] = activation_reference(kind, x->data[i]);
        CHECK(tp_forward_ok(y->data, expected, 96, activation_names[kind]));
        tp_gradcheck_result r = tp_gradcheck(ctx, act_fn, &kind, &x, 1, &fd_options);
        CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, activation_names[kind]));
    }
    tp_test_tensor_free(backend, x);
}

/* ---- an input used twice gets the sum of both gradients ------------------------ */

static tp_tensor *add_self_fn(tp_ctx *ctx, tp_tensor *const *in, void *user) { return tp_add(ctx, in[0], in[0]); }

/* x feeds two linears that share one bias, and the second one's output is added to x again
 * (a residual). */
static tp_tensor *two_branches_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    tp_tensor *first = tp_linear(ctx, in[0], in[1], in[3]);
    tp_tensor *second = tp_add(ctx, tp_linear(ctx, in[0], in[2], in[3]), in[0]);
    return tp_add(ctx, first, second);
}

static void test_accumulation(tp_ctx *ctx)
{
    const int64_t x_shape[2] = {5, 6}, w_shape[2] = {6, 6}, b_shape[1] = {6};
    tp_tensor *in[4] = {tp_test_tensor(backend, 2, x_shape, 7, 0, 1), tp_test_tensor(backend, 2, w_shape, 8, 0, 0.5),
                        tp_test_tensor(backend, 2, w_shape, 9, 0, 0.5), tp_test_tensor(backend, 1, b_shape, 10, 0, 1)};
    tp_gradcheck_result r = tp_gradcheck(ctx, add_self_fn, NULL, in, 1, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "add(x, x)"));
    r = tp_gradcheck(ctx, two_branches_fn, NULL, in, 4, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "x into two linears and a residual"));

    /* A caller-owned gradient buffer (as parameters have) receives the gradient too. */
    float owned_grad[30];
    in[0]->grad = owned_grad;
    r = tp_gradcheck(ctx, add_self_fn, NULL, in, 1, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "add(x, x) into a caller-owned gradient"));
    CHECK(in[0]->grad == owned_grad && owned_grad[0] != 0.0f);
    in[0]->grad = NULL;
    for (int i = 0; i < 4; i++) tp_test_tensor_free(backend, in[i]);
}

/* ---- the checker can fail ------------------------------------------------------ */

/* The recorded run (analytic gradient) scales by 2, the finite-difference runs by 3. */
static tp_tensor *inconsistent_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    return tp_scale(ctx, in[0], ctx->record ? 2.0f : 3.0f);
}

static void test_checker_detects_wrong_gradient(tp_ctx *ctx)
{
    const int64_t shape[1] = {10};
    tp_tensor *x = tp_test_tensor(backend, 1, shape, 12, 0, 1);
    tp_gradcheck_result r = tp_gradcheck(ctx, inconsistent_fn, NULL, &x, 1, &fd_options);
    CHECK_MSG(r.max_error > 0.3 && r.max_error < 0.4, "error %g, expected 1/3", r.max_error);
    x->requires_grad = 0;
    r = tp_gradcheck(ctx, inconsistent_fn, NULL, &x, 1, &fd_options);
    CHECK(r.checked == 0 && r.worst_input == -1);
    tp_test_tensor_free(backend, x);
}

/* ---- the CPU product split over the threads --------------------------------------- */

/* c = alpha op(a) op(b) + beta c in double, row-major, as cblas_sgemm defines it. */
static void gemm_reference(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                           int64_t lda, const float *b, int64_t ldb, float beta, const float *c, int64_t ldc,
                           double *out)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double sum = 0;
            for (int64_t p = 0; p < k; p++)
                sum += (double)(trans_a ? a[p * lda + i] : a[i * lda + p]) * (trans_b ? b[j * ldb + p] : b[p * ldb + j]);
            out[i * n + j] = alpha * sum + beta * c[i * ldc + j];
        }
}

/* Every transpose pair; a tall product (split by rows) and a wide one (split by columns, in blocks
 * of 16 with a ragged last block); leading dimensions wider than the matrices, alpha and beta not
 * 1 and 0, so that a block addressed wrongly or an element left unwritten shows. */
static void test_split_gemm(void)
{
    static const int64_t shapes[][3] = {{301, 37, 45}, {29, 523, 71}};
    for (int s = 0; s < 2; s++)
        for (int trans = 0; trans < 4; trans++) {
            int trans_a = trans >> 1, trans_b = trans & 1;
            int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            int64_t lda = (trans_a ? m : k) + 3, ldb = (trans_b ? k : n) + 5, ldc = n + 7;
            int64_t a_size = (trans_a ? k : m) * lda, b_size = (trans_b ? n : k) * ldb, c_size = m * ldc;
            float *a = malloc(sizeof(float) * a_size), *b = malloc(sizeof(float) * b_size);
            float *c0 = malloc(sizeof(float) * c_size), *c[3];
            double *expected = malloc(sizeof(double) * m * n);
            for (int64_t i = 0; i < a_size; i++) a[i] = tp_uniform(3, 1, i) - 0.5f;
            for (int64_t i = 0; i < b_size; i++) b[i] = tp_uniform(3, 2, i) - 0.5f;
            for (int64_t i = 0; i < c_size; i++) c0[i] = tp_uniform(3, 3, i) - 0.5f;
            gemm_reference(trans_a, trans_b, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, c0, ldc, expected);
            for (int threads = 1; threads <= 3; threads++) {
                c[threads - 1] = malloc(sizeof(float) * c_size);
                memcpy(c[threads - 1], c0, sizeof(float) * c_size);
                omp_set_num_threads(threads);
                tp_cpu_gemm_threads(1, trans_a, trans_b, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, c[threads - 1], ldc);
            }
            omp_set_num_threads(2);
            for (int t = 0; t < 3; t++) {
                double worst = 0;
                int padding_kept = 1;
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < ldc; j++) {
                        const float *row = c[t] + i * ldc;
                        if (j >= n)
                            padding_kept &= row[j] == c0[i * ldc + j];
                        else
                            worst = fmax(worst, fabs(row[j] - expected[i * n + j]));
                    }
                CHECK_MSG(worst < 1e-5, "split gemm %dx%dx%d trans %d%d, %d threads: error %g", (int)m, (int)n, (int)k,
                          trans_a, trans_b, t + 1, worst);
                CHECK_MSG(padding_kept, "split gemm %dx%dx%d trans %d%d, %d threads: wrote past n", (int)m, (int)n,
                          (int)k, trans_a, trans_b, t + 1);
            }
            free(a), free(b), free(c0), free(expected);
            for (int t = 0; t < 3; t++) free(c[t]);
        }
}

int main(void)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    test_linear(&ctx, 1);
    test_linear(&ctx, 0);
    test_add_and_scale(&ctx);
    test_activations(&ctx);
    test_accumulation(&ctx);
    test_checker_detects_wrong_gradient(&ctx);
    test_split_gemm();
    tp_ctx_free(&ctx);
    return tp_test_finish("test_ops_dense");
}
