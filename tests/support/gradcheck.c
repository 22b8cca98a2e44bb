#include "support/gradcheck.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"

/* R: weights of the scalar L = sum(out * R).  Float-valued so the tape's seed gradient and the
 * double evaluation of L use exactly the same numbers. */
static float *make_weights(uint64_t seed, int64_t n)
{
    float *weights = tp_xmalloc((size_t)n * sizeof *weights);
    uint64_t stream = tp_fnv1a64("gradcheck weights");
    for (int64_t i = 0; i < n; i++) weights[i] = tp_normal(seed, stream, (uint64_t)i);
    return weights;
}

/* L = sum(out * R) in double from the output's float values. */
static double loss_value(tp_ctx *ctx, const tp_tensor *out, const float *weights)
{
    int64_t n = tp_numel(out);
    float *host = tp_xmalloc((size_t)n * sizeof *host);
    ctx->backend->download(host, out->data, (size_t)n * sizeof *host);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)host[i] * weights[i];
    free(host);
    return sum;
}

static double evaluate_loss(tp_ctx *ctx, tp_gradcheck_fn fn, void *user, tp_tensor *const *inputs,
                            const float *weights)
{
    tp_ctx_reset(ctx);
    ctx->record = 0;
    return loss_value(ctx, fn(ctx, inputs, user), weights);
}

tp_tensor *tp_test_weighted_sum(tp_ctx *ctx, tp_tensor *out, const float *weights)
{
    /* out viewed as one row [1, n] times R^T via tp_linear: the view shares out's data and
     * gradient buffer, so backward through the linear seeds out's gradient with R. */
    int64_t n = tp_numel(out);
    tp_tensor *flat = tp_arena_alloc(&ctx->arena, sizeof *flat);
    *flat = *out;
    flat->ndim = 2;
    flat->shape[0] = 1;
    flat->shape[1] = n;
    if (out->requires_grad) flat->grad = tp_grad_of(ctx, out);
    tp_tensor *weight_row = tp_empty_2d(ctx, 1, n);
    ctx->backend->upload(weight_row->data, weights, (size_t)n * sizeof *weights);
    return tp_linear(ctx, flat, weight_row, NULL);
}

/* Runs fn recording, backward from L, and copies each checked input's gradient to analytic[i]
 * (zeros when backward gave it none).  Returns R, sized for the output. */
static float *analytic_gradients(tp_ctx *ctx, tp_gradcheck_fn fn, void *user, tp_tensor *const *inputs,
                                 int n_inputs, uint64_t seed, float **analytic)
{
    float **saved_grads = tp_xcalloc((size_t)n_inputs + 1, sizeof *saved_grads);
    tp_ctx_reset(ctx);
    ctx->record = 1;
    for (int i = 0; i < n_inputs; i++) {
        saved_grads[i] = inputs[i]->grad;
        if (inputs[i]->grad) ctx->backend->zero(inputs[i]->grad, tp_numel(inputs[i]));
    }
    tp_tensor *out = fn(ctx, inputs, user);
    float *weights = make_weights(seed, tp_numel(out));
    if (out->requires_grad) tp_backward(ctx, tp_test_weighted_sum(ctx, out, weights));
    for (int i = 0; i < n_inputs; i++) {
        if (!analytic[i]) continue;
        int64_t n = tp_numel(inputs[i]);
        if (inputs[i]->grad)
            ctx->backend->download(analytic[i], inputs[i]->grad, (size_t)n * sizeof(float));
        else
            memset(analytic[i], 0, (size_t)n * sizeof(float));
        inputs[i]->grad = saved_grads[i];
    }
    free(saved_grads);
    return weights;
}

/* Indices of the elements to perturb: all, or the first max_elements of a seeded shuffle. */
static int64_t *chosen_elements(int64_t n, int64_t max_elements, uint64_t seed, int input, int64_t *count)
{
    int64_t *indices = tp_xmalloc((size_t)n * sizeof *indices);
    for (int64_t i = 0; i < n; i++) indices[i] = i;
    *count = n;
    if (max_elements > 0 && n > max_elements) {
        tp_rng rng = tp_rng_make(seed, tp_fnv1a64("gradcheck subset"), (uint64_t)input << 40);
        tp_rng_shuffle_i64(&rng, indices, n);
        *count = max_elements;
    }
    return indices;
}

static void set_element(tp_ctx *ctx, tp_tensor *t, int64_t index, float value)
{
    ctx->backend->upload(t->data + index, &value, sizeof value);
}

/* Central difference of L in element `index` of input t. */
static double numeric_derivative(tp_ctx *ctx, tp_gradcheck_fn fn, void *user, tp_tensor *const *inputs,
                                 tp_tensor *t, int64_t index, const float *weights, double step)
{
    float original;
    ctx->backend->download(&original, t->data + index, sizeof original);
    double h = step * fmax(fabs(original), 1.0);
    float plus = (float)(original + h), minus = (float)(original - h);
    set_element(ctx, t, index, plus);
    double loss_plus = evaluate_loss(ctx, fn, user, inputs, weights);
    set_element(ctx, t, index, minus);
    double loss_minus = evaluate_loss(ctx, fn, user, inputs, weights);
    set_element(ctx, t, index, original);
    return (loss_plus - loss_minus) / ((double)plus - (double)minus);
}

static void check_input(tp_ctx *ctx, tp_gradcheck_fn fn, void *user, tp_tensor *const *inputs, int input,
                        const float *analytic, const float *weights, const tp_gradcheck_options *options,
                        tp_gradcheck_result *result)
{
    tp_tensor *t = inputs[input];
    int64_t n = tp_numel(t), count;
    int64_t *indices = chosen_elements(n, options->max_elements, options->seed, input, &count);
    double *numeric = tp_xmalloc((size_t)count * sizeof *numeric);
    double scale = 1e-30;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(analytic[i]));
    for (int64_t c = 0; c < count; c++) {
        numeric[c] = numeric_derivative(ctx, fn, user, inputs, t, indices[c], weights, options->step);
        scale = fmax(scale, fabs(numeric[c]));
    }
    for (int64_t c = 0; c < count; c++) {
        double error = fabs(numeric[c] - analytic[indices[c]]) / scale;
        if (!(error <= result->max_error)) { /* NaN counts as the worst */
            result->max_error = error;
            result->worst_input = input;
            result->worst_element = indices[c];
            result->worst_numeric = numeric[c];
            result->worst_analytic = analytic[indices[c]];
        }
    }
    result->checked += count;
    free(numeric);
    free(indices);
}

tp_gradcheck_result tp_gradcheck(tp_ctx *ctx, tp_gradcheck_fn fn, void *user, tp_tensor *const *inputs,
                                 int n_inputs, const tp_gradcheck_options *options)
{
    tp_gradcheck_result result = {.worst_input = -1};
    int saved_record = ctx->record;
    float **analytic = tp_xcalloc((size_t)n_inputs + 1, sizeof *analytic);
    for (int i = 0; i < n_inputs; i++)
        analytic[i] = inputs[i]->requires_grad ? tp_xmalloc((size_t)tp_numel(inputs[i]) * sizeof(float)) : NULL;
    float *weights = analytic_gradients(ctx, fn, user, inputs, n_inputs, options->seed, analytic);
    /* Thousands of tiny evaluations: waking a thread pool for each costs more than it saves. */
    int saved_threads = omp_get_max_threads();
    omp_set_num_threads(1);
    for (int i = 0; i < n_inputs; i++) {
        if (!analytic[i]) continue;
        if (result.worst_input < 0) result.worst_input = i;
        check_input(ctx, fn, user, inputs, i, analytic[i], weights, options, &result);
        free(analytic[i]);
    }
    omp_set_num_threads(saved_threads);
    free(analytic);
    free(weights);
    tp_ctx_reset(ctx);
    ctx->record = saved_record;
    return result;
}

/* TP_TEST_VERBOSE=1 in the environment prints every check's error: the margins behind the tolerances. */
static int verbose(void)
{
    const char *value = getenv("TP_TEST_VERBOSE");
    return value && *value && *value != '0';
}

int tp_gradcheck_ok(const tp_gradcheck_result *result, double tolerance, const char *what)
{
    if (verbose())
        printf("gradcheck %-52s error %.2e over %lld elements\n", what, result->max_error, (long long)result->checked);
    if (result->checked > 0 && result->max_error <= tolerance) return 1;
    if (result->checked == 0)
        fprintf(stderr, "gradcheck %s: no input requires a gradient\n", what);
    else
        fprintf(stderr,
                "gradcheck %s: normalised error %.3g > %.3g at input %d element %lld: numeric %.9g, analytic %.9g "
                "(%lld elements checked)\n",
                what, result->max_error, tolerance, result->worst_input, (long long)result->worst_element,
                result->worst_numeric, result->worst_analytic, (long long)result->checked);
    return 0;
}

tp_tensor *tp_test_tensor(const tp_backend *backend, int ndim, const int64_t *shape, uint64_t seed, double mean,
                          double scale)
{
    tp_tensor *t = tp_xcalloc(1, sizeof *t);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->requires_grad = 1;
    int64_t n = tp_numel(t);
    float *host = tp_xmalloc((size_t)(n ? n : 1) * sizeof *host);
    for (int64_t i = 0; i < n; i++) host[i] = (float)(mean + scale * tp_normal(seed, TP_STREAM_INIT, (uint64_t)i));
    t->data = backend->alloc((size_t)(n ? n : 1) * sizeof *host);
    backend->upload(t->data, host, (size_t)n * sizeof *host);
    free(host);
    return t;
}

void tp_test_tensor_free(const tp_backend *backend, tp_tensor *t)
{
    if (!t) return;
    backend->release(t->data);
    free(t);
}

double tp_max_error_vs_double(const float *actual, const double *expected, int64_t n)
{
    double scale = 1e-30, worst = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(expected[i]));
    for (int64_t i = 0; i < n; i++) {
        double error = fabs((double)actual[i] - expected[i]);
        if (!(error <= worst)) worst = error;
    }
    return worst / scale;
}

int tp_forward_ok(const float *actual, const double *expected, int64_t n, const char *what)
{
    double error = tp_max_error_vs_double(actual, expected, n);
    if (verbose()) printf("forward   %-52s error %.2e\n", what, error);
    if (error <= TP_FORWARD_TOLERANCE) return 1;
    fprintf(stderr, "forward %s: normalised error %.3g > %.3g against the double reference\n", what, error,
            TP_FORWARD_TOLERANCE);
    return 0;
}
