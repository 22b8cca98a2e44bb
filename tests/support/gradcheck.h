/* Finite-difference gradient checks for anything built from tp ops.
 *
 * tp_gradcheck() takes a function that builds an output tensor (any shape)
 * from a list of input tensors in a tp_ctx -- one op, a layer, a whole model
 * -- and compares the tape's gradients of L = sum(out * R), R a fixed random
 * tensor, with central differences of L evaluated in double:
 *
 *   dL/dx_j ~ (L(x_j + h) - L(x_j - h)) / (2h),  h = step * max(|x_j|, 1)
 *
 * (2h is taken as the difference of the two perturbed float values actually
 * stored).  Every input with requires_grad set is checked: all its elements,
 * or a random subset of max_elements of them for big tensors.
 *
 * Contract for the inputs: their data must live outside the context's arena
 * (the check resets the context before every evaluation); tp_test_tensor()
 * makes such tensors.  An input's grad is either NULL (the check lets backward
 * allocate it in the arena and sets it back to NULL) or a caller-owned buffer
 * (zeroed first; it holds the input's gradient afterwards).
 *
 * The function is called once with ctx->record == 1 (the analytic gradient)
 * and then with ctx->record == 0 for each finite-difference evaluation (those
 * run with one OpenMP thread: thousands of tiny evaluations gain nothing from
 * waking a thread pool, and lose much on a loaded machine); it must be a pure
 * function of the inputs' data.  Dropout is: its masks depend
 * only on the context's seed, step, rank and call count, and the check resets
 * the context (call count 0) before each evaluation. */
#ifndef TP_TEST_GRADCHECK_H
#define TP_TEST_GRADCHECK_H

#include <stdint.h>

#include "core/ops.h"

/* The op tests' tolerances (docs/testing.md, "op tests", explains them): fp32 forward against a
 * double reference, and tape gradients against central differences of an fp32 forward. */
#define TP_FORWARD_TOLERANCE 1e-5
#define TP_GRADIENT_TOLERANCE 1e-3
/* The usual relative step for fp32 ops: balances fp32 rounding noise (~eps_f32 |L| / h) against
 * the truncation error (~h^2); ops that mix many inputs per output may need a larger one. */
#define TP_GRADIENT_STEP 3e-3

typedef tp_tensor *(*tp_gradcheck_fn)(tp_ctx *ctx, tp_tensor *const *inputs, void *user);

typedef struct tp_gradcheck_options {
    double step;          /* relative perturbation: h = step * max(|x|, 1) */
    int64_t max_elements; /* per input; bigger inputs are checked on a random subset (0: all elements) */
    uint64_t seed;        /* chooses R and the subsets */
} tp_gradcheck_options;

typedef struct tp_gradcheck_result {
    /* Max over checked inputs of max_j |numeric_j - analytic_j| / scale, where scale is the
     * largest |analytic| of the input's gradient or |numeric| of its checked elements. */
    double max_error;
    int worst_input; /* index into inputs; -1 when no input requires a gradient */
    int64_t worst_element;
    double worst_numeric, worst_analytic;
    int64_t checked; /* elements perturbed, all inputs together */
} tp_gradcheck_result;

tp_gradcheck_result tp_gradcheck(tp_ctx *ctx, tp_gradcheck_fn fn, void *user, tp_tensor *const *inputs,
                                 int n_inputs, const tp_gradcheck_options *options);

/* 1 when result.max_error <= tolerance and something was checked; otherwise prints the worst
 * element (naming `what`) to stderr and returns 0.  With TP_TEST_VERBOSE=1 in the environment
 * this and tp_forward_ok print every error, passing or not.  Use as CHECK(tp_gradcheck_ok(&r, 1e-3, "linear")). */
int tp_gradcheck_ok(const tp_gradcheck_result *result, double tolerance, const char *what);

/* The scalar [1, 1] tensor sum(out * weights) (weights: numel(out) host floats), built from ops so
 * that tp_backward on it gives out the gradient `weights`: a loss for any op's output. */
tp_tensor *tp_test_weighted_sum(tp_ctx *ctx, tp_tensor *out, const float *weights);

/* A tensor in backend memory outside any arena, filled with mean + scale * N(0, 1) drawn from
 * (seed, TP_STREAM_INIT, element index); requires_grad set, grad NULL.  Free with tp_test_tensor_free. */
tp_tensor *tp_test_tensor(const tp_backend *backend, int ndim, const int64_t *shape, uint64_t seed, double mean,
                          double scale);
void tp_test_tensor_free(const tp_backend *backend, tp_tensor *t);

/* max_i |actual_i - expected_i| / max_i |expected_i|: float results against a double reference
 * (NaN in actual gives NaN). */
double tp_max_error_vs_double(const float *actual, const double *expected, int64_t n);
/* 1 when that error is <= TP_FORWARD_TOLERANCE; otherwise prints it (naming `what`) and returns 0. */
int tp_forward_ok(const float *actual, const double *expected, int64_t n, const char *what);

#endif
