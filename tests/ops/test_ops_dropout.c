/* Op tests for tp_dropout: identity when p == 0 or not training; with p = 0.3 every output is
 * 0 or x / (1 - p) and the kept fraction matches 1 - p statistically; the mask is a function of
 * (seed, step, rank, call index) only; backward applies the same mask.  tp_dropout_add gives
 * tp_add(tp_dropout(x), residual)'s values and gradients bit for bit, and passes the gradient
 * check. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;
static const float drop = 0.3f;

enum { BIG = 100000 };

static void setup_ctx(tp_ctx *ctx, uint64_t seed, uint64_t step, uint64_t rank)
{
    tp_ctx_init(ctx, backend, 1 << 20);
    ctx->training = 1;
    ctx->seed = seed;
    ctx->step = step;
    ctx->rank = rank;
}

static void test_identity_cases(void)
{
    const int64_t shape[2] = {3, 4};
    tp_tensor *x = tp_test_tensor(backend, 2, shape, 1, 0, 1);
    tp_ctx ctx;
    setup_ctx(&ctx, 7, 0, 0);
    ctx.record = 1;
    CHECK(tp_dropout(&ctx, x, 0.0f) == x);
    ctx.training = 0;
    CHECK(tp_dropout(&ctx, x, drop) == x);
    CHECK(ctx.tape_count == 0);
    tp_ctx_free(&ctx);
    tp_test_tensor_free(backend, x);
}

/* Calls tp_dropout `call + 1` times on x in a fresh step and stores the last call's output. */
static void dropout_output(tp_ctx *ctx, const tp_tensor *x, int call, float *y)
{
    tp_ctx_reset(ctx);
    tp_tensor *out = NULL;
    for (int i = 0; i <= call; i++) out = tp_dropout(ctx, (tp_tensor *)x, drop);
    memcpy(y, out->data, (size_t)tp_numel(x) * sizeof *y);
}

/* Every output is 0 or x / (1 - p); returns the kept fraction (-1 when an output is neither). */
static double kept_fraction(const tp_tensor *x, const float *y)
{
    int64_t n = tp_numel(x), kept = 0;
    for (int64_t i = 0; i < n; i++) {
        if (y[i] == 0.0f) continue;
        double ratio = (double)y[i] / x->data[i];
        if (fabs(ratio * (1.0 - drop) - 1.0) > 1e-6) return -1;
        kept++;
    }
    return (double)kept / n;
}

static double fraction_different(const float *a, const float *b, int64_t n)
{
    int64_t different = 0;
    for (int64_t i = 0; i < n; i++) different += (a[i] == 0.0f) != (b[i] == 0.0f);
    return (double)different / n;
}

static void test_mask_statistics_and_determinism(const tp_tensor *x)
{
    float *first = tp_xmalloc(BIG * sizeof *first), *other = tp_xmalloc(BIG * sizeof *other);
    tp_ctx ctx;
    setup_ctx(&ctx, 1234, 5, 0);
    dropout_output(&ctx, x, 0, first);

    /* 5 standard deviations of a binomial fraction */
    double kept = kept_fraction(x, first), tolerance = 5 * sqrt(drop * (1 - drop) / BIG);
    CHECK_MSG(fabs(kept - (1 - drop)) <= tolerance, "kept fraction %g, expected %g +- %g", kept, 1 - drop, tolerance);

    dropout_output(&ctx, x, 0, other); /* the same step again after a reset */
    CHECK(memcmp(first, other, BIG * sizeof *first) == 0);
    tp_ctx fresh;
    setup_ctx(&fresh, 1234, 5, 0);
    dropout_output(&fresh, x, 0, other);
    CHECK(memcmp(first, other, BIG * sizeof *first) == 0);
    tp_ctx_free(&fresh);

    /* Independent masks disagree on 2 p (1 - p) = 42% of the elements. */
    dropout_output(&ctx, x, 1, other);
    double different = fraction_different(first, other, BIG);
    CHECK_MSG(different > 0.35, "second call in a step: masks differ on only %g", different);
    /* {seed, step, rank} with the step, the rank, the seed changed in turn */
    const uint64_t variants[3][3] = {{1234, 6, 0}, {1234, 5, 1}, {4321, 5, 0}};
    for (int v = 0; v < 3; v++) {
        setup_ctx(&fresh, variants[v][0], variants[v][1], variants[v][2]);
        dropout_output(&fresh, x, 0, other);
        different = fraction_different(first, other, BIG);
        CHECK_MSG(different > 0.35, "seed %llu step %llu rank %llu: masks differ on only %g",
                  (unsigned long long)variants[v][0], (unsigned long long)variants[v][1],
                  (unsigned long long)variants[v][2], different);
        tp_ctx_free(&fresh);
    }
    tp_ctx_free(&ctx);
    free(first);
    free(other);
}

/* loss = y . R with y = dropout(x) as one row: x's gradient must be R / (1 - p) where kept, 0 where dropped. */
static void test_backward_uses_forward_mask(void)
{
    const int64_t n = 4096, row_shape[2] = {1, n};
    tp_tensor *x = tp_test_tensor(backend, 2, row_shape, 2, 0, 1);
    tp_tensor *weights = tp_test_tensor(backend, 2, row_shape, 3, 0, 1);
    weights->requires_grad = 0;
    tp_ctx ctx;
    setup_ctx(&ctx, 99, 3, 0);
    ctx.record = 1;
    tp_tensor *y = tp_dropout(&ctx, x, drop);
    tp_backward(&ctx, tp_linear(&ctx, y, weights, NULL));
    int64_t mismatches = 0;
    for (int64_t i = 0; i < n; i++) {
        double expected = y->data[i] == 0.0f ? 0.0 : weights->data[i] / (1.0 - drop);
        mismatches += fabs(x->grad[i] - expected) > 1e-6 * fabs(expected);
    }
    CHECK_MSG(mismatches == 0, "%lld gradients disagree with the forward mask", (long long)mismatches);
    x->grad = NULL;
    tp_ctx_free(&ctx);
    tp_test_tensor_free(backend, x);
    tp_test_tensor_free(backend, weights);
}

static tp_tensor *dropout_fn(tp_ctx *ctx, tp_tensor *const *in, void *user) { return tp_dropout(ctx, in[0], drop); }

static void test_gradcheck(void)
{
    const int64_t shape[2] = {40, 50};
    const tp_gradcheck_options fd_options = {.step = TP_GRADIENT_STEP, .max_elements = 500, .seed = 31};
    tp_tensor *x = tp_test_tensor(backend, 2, shape, 4, 0, 1);
    tp_ctx ctx;
    setup_ctx(&ctx, 5, 8, 0);
    tp_gradcheck_result r = tp_gradcheck(&ctx, dropout_fn, NULL, &x, 1, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "dropout p=0.3"));
    tp_ctx_free(&ctx);
    tp_test_tensor_free(backend, x);
}

/* y = op(x, residual), then loss = y . weights backward; y and both gradients copied out. */
static void dropout_add_run(int fused, int training, tp_tensor *x, tp_tensor *residual, tp_tensor *weights, float *y,
                            float *dx, float *dresidual)
{
    int64_t n = tp_numel(x);
    tp_ctx ctx;
    setup_ctx(&ctx, 77, 2, 0);
    ctx.record = 1;
    ctx.training = training;
    tp_tensor *out =
        fused ? tp_dropout_add(&ctx, x, drop, residual) : tp_add(&ctx, tp_dropout(&ctx, x, drop), residual);
    tp_backward(&ctx, tp_linear(&ctx, out, weights, NULL));
    memcpy(y, out->data, (size_t)n * sizeof *y);
    memcpy(dx, x->grad, (size_t)n * sizeof *dx);
    memcpy(dresidual, residual->grad, (size_t)n * sizeof *dresidual);
    x->grad = residual->grad = NULL;
    tp_ctx_free(&ctx);
}

static void test_dropout_add_is_the_composition(void)
{
    const int64_t n = 3000, row_shape[2] = {1, n};
    tp_tensor *x = tp_test_tensor(backend, 2, row_shape, 5, 0, 1);
    tp_tensor *residual = tp_test_tensor(backend, 2, row_shape, 6, 0, 1);
    tp_tensor *weights = tp_test_tensor(backend, 2, row_shape, 7, 0, 1);
    weights->requires_grad = 0;
    float *values[2][3];
    for (int training = 0; training <= 1; training++) {
        for (int fused = 0; fused < 2; fused++) {
            for (int k = 0; k < 3; k++) values[fused][k] = tp_xmalloc((size_t)n * sizeof(float));
            dropout_add_run(fused, training, x, residual, weights, values[fused][0], values[fused][1],
                            values[fused][2]);
        }
        const char *names[3] = {"output", "x gradient", "residual gradient"};
        for (int k = 0; k < 3; k++) {
            CHECK_MSG(memcmp(values[0][k], values[1][k], (size_t)n * sizeof(float)) == 0,
                      "dropout_add (training %d): %s differs from add(dropout)", training, names[k]);
            free(values[0][k]), free(values[1][k]);
        }
    }
    tp_test_tensor_free(backend, x);
    tp_test_tensor_free(backend, residual);
    tp_test_tensor_free(backend, weights);
}

static tp_tensor *dropout_add_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    return tp_dropout_add(ctx, in[0], drop, in[1]);
}

static void test_dropout_add_gradcheck(void)
{
    const int64_t shape[2] = {30, 40};
    const tp_gradcheck_options fd_options = {.step = TP_GRADIENT_STEP, .max_elements = 400, .seed = 32};
    tp_tensor *in[2] = {tp_test_tensor(backend, 2, shape, 8, 0, 1), tp_test_tensor(backend, 2, shape, 9, 0, 1)};
    tp_ctx ctx;
    setup_ctx(&ctx, 5, 9, 0);
    tp_gradcheck_result r = tp_gradcheck(&ctx, dropout_add_fn, NULL, in, 2, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "dropout_add p=0.3"));
    tp_ctx_free(&ctx);
    tp_test_tensor_free(backend, in[0]);
    tp_test_tensor_free(backend, in[1]);
}

int main(void)
{
    const int64_t shape[1] = {BIG};
    tp_tensor *x = tp_test_tensor(backend, 1, shape, 1, 0, 1);
    test_identity_cases();
    test_mask_statistics_and_determinism(x);
    test_backward_uses_forward_mask();
    test_gradcheck();
    test_dropout_add_is_the_composition();
    test_dropout_add_gradcheck();
    tp_test_tensor_free(backend, x);
    return tp_test_finish("test_ops_dropout");
}
