/* exp, erf and row reductions for the CPU kernels' inner loops.
 *
 * libm's expf and erff are scalar calls, and GCC does not vectorise a loop that calls them: in a
 * BERT step they took a fifth of the time (the vocabulary softmax, attention, GELU).  The
 * functions here are branch-free arithmetic that GCC vectorises (8 lanes with AVX2, 16 with AVX-512):
 *  - tp_vexpf: Cephes' expf (n = round(x / ln 2), a degree-5 polynomial on the remainder),
 *    within 1 ulp of exp over [-87.3, 88.7]; 0 below -87.3 (no subnormals), +inf above 88.72,
 *    NaN for NaN; tp_vexpf_nonpositive the same for x <= 0, faster (softmax, log-sum-exp, erf).
 *  - tp_verff: fdlibm's rational form near 0 and Abramowitz and Stegun 7.1.26 beyond 0.84375
 *    (PyTorch's vectorised CPU erf uses 7.1.26 throughout): absolute error below 3e-7.
 * tests/unit/test_vector_math.c measures both against double-precision libm.
 *
 * The reductions keep 16 partial sums (or maxima) in a fixed lane order and add them in a fixed
 * order at the end, so that GCC vectorises them without reassociating anything: the result
 * depends only on n, never on the thread count or the call site. */
#ifndef TP_VECTOR_MATH_H
#define TP_VECTOR_MATH_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define TP_REDUCE_LANES 16

/* exp(x - n ln 2) for n = round(x / ln 2), by a degree-5 polynomial on the remainder. */
static inline float tp_exp_remainder(float x, float n)
{
    float r = x - n * 0.693359375f; /* ln 2 in two parts: the first is exact in float */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * (r * r) + r + 1.0f;
}

static inline float tp_vexpf(float x)
{
    /* comparisons, not fminf/fmaxf: those keep NaN semantics that GCC will not vectorise.  A NaN
     * fails the first comparison and becomes -87.3, so that the float-to-int conversion below is
     * always defined; the NaN is given back at the end. */
    float clamped = x > -87.33654f ? x : -87.33654f;
    clamped = clamped > 88.7228f ? 88.7228f : clamped;
    float n = rintf(clamped * 1.44269504088896341f);
    float p = tp_exp_remainder(clamped, n);
    /* 2^n as two factors 2^(n/2): n reaches 128 at the top of the range, beyond float's exponent */
    int32_t half = (int32_t)n >> 1;
    int32_t bits_low = (half + 127) << 23, bits_high = ((int32_t)n - half + 127) << 23;
    float scale_low, scale_high;
    memcpy(&scale_low, &bits_low, sizeof scale_low);
    memcpy(&scale_high, &bits_high, sizeof scale_high);
    float result = p * scale_low * scale_high;
    result = x < -87.33654f ? 0.0f : result;
    result = x > 88.7228f ? INFINITY : result;
    return x == x ? result : x;
}

/* tp_vexpf for x <= 0 (x - max in a softmax or a log-sum-exp, -x² in erf): 2^n in one factor and
 * no overflow to handle, 1.28x the speed (the same values; 0 below -87.34, NaN for NaN).  A
 * positive x is taken as 0. */
static inline float tp_vexpf_nonpositive(float x)
{
    float clamped = x > -87.33654f ? x : -87.33654f;
    clamped = clamped < 0.0f ? clamped : 0.0f;
    float n = rintf(clamped * 1.44269504088896341f);
    float p = tp_exp_remainder(clamped, n);
    int32_t bits = ((int32_t)n + 127) << 23; /* n >= -126: one factor */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float result = x < -87.33654f ? 0.0f : p * scale;
    return x == x ? result : x;
}

static inline float tp_verff(float x)
{
    float a = fabsf(x);
    /* |x| < 0.84375: fdlibm's x + x R(x^2), R rational (s_erff.c), exact to an ulp near 0 */
    float z = x * x;
    float r = 1.2837916613e-01f + z * (-3.2504209876e-01f + z * (-2.8481749818e-02f + z * (-5.7702702470e-03f + z * -2.3763017452e-05f)));
    float s = 1.0f + z * (3.9791721106e-01f + z * (6.5022252500e-02f + z * (5.0813062117e-03f + z * (1.3249473704e-04f + z * -3.9602282413e-06f))));
    float near_zero = x + x * (r / s);
    /* elsewhere: Abramowitz and Stegun 7.1.26 */
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    float far = copysignf(1.0f - poly * tp_vexpf_nonpositive(-z), x);
    return a < 0.84375f ? near_zero : far;
}

/* max over x[0..n), n >= 1. */
static inline float tp_row_max(const float *x, int64_t n)
{
    float lanes[TP_REDUCE_LANES];
    for (int l = 0; l < TP_REDUCE_LANES; l++) lanes[l] = -FLT_MAX;
    int64_t i = 0;
    for (; i + TP_REDUCE_LANES <= n; i += TP_REDUCE_LANES)
        for (int l = 0; l < TP_REDUCE_LANES; l++) lanes[l] = x[i + l] > lanes[l] ? x[i + l] : lanes[l];
    float max = -FLT_MAX;
    for (int l = 0; l < TP_REDUCE_LANES; l++) max = lanes[l] > max ? lanes[l] : max;
    for (; i < n; i++) max = x[i] > max ? x[i] : max;
    return max;
}

/* The first index holding the maximum of x[0..n) (n >= 1; 0 when no element compares greater than
 * -FLT_MAX, e.g. all NaN), and that maximum in *max.  Two passes: the maximum (tp_row_max), then
 * the first 16-element block holding it, tested a block at a time.  (One pass that carried each
 * lane's first index ran 1.4-1.6x slower: GCC kept the indices in memory.) */
static inline int64_t tp_row_argmax(const float *x, int64_t n, float *max)
{
    float best = tp_row_max(x, n);
    *max = best;
    if (!(best > -FLT_MAX)) return 0;
    int64_t i = 0;
    for (; i + TP_REDUCE_LANES <= n; i += TP_REDUCE_LANES) {
        int found = 0;
        for (int l = 0; l < TP_REDUCE_LANES; l++) found |= x[i + l] == best;
        if (found) break;
    }
    while (x[i] != best) i++;
    return i;
}

/* sum of exp(x[i] - shift), x unchanged (the cross-entropy's log-sum-exp); shift is at least every
 * x[i] (their maximum).  The lanes add in float over blocks of 2048 elements (128 terms each) and
 * the blocks' sums in double: within 1e-9 of an all-double sum on a vocabulary row, and 1.23x its
 * speed (float lanes need no conversion). */
static inline double tp_sum_exp(const float *x, int64_t n, float shift)
{
    double sum = 0;
    int64_t i = 0;
    while (i + TP_REDUCE_LANES <= n) {
        float lanes[TP_REDUCE_LANES] = {0};
        int64_t block_end = i + 2048 < n ? i + 2048 : n;
        for (; i + TP_REDUCE_LANES <= block_end; i += TP_REDUCE_LANES)
            for (int l = 0; l < TP_REDUCE_LANES; l++) lanes[l] += tp_vexpf_nonpositive(x[i + l] - shift);
        for (int l = 0; l < TP_REDUCE_LANES; l++) sum += lanes[l];
    }
    for (; i < n; i++) sum += tp_vexpf_nonpositive(x[i] - shift);
    return sum;
}

/* x[i] = exp(x[i] - shift) in place, shift at least every x[i]; returns their float sum (a softmax
 * row). */
static inline float tp_exp_in_place(float *x, int64_t n, float shift)
{
    for (int64_t i = 0; i < n; i++) x[i] = tp_vexpf_nonpositive(x[i] - shift);
    float lanes[TP_REDUCE_LANES] = {0};
    int64_t i = 0;
    for (; i + TP_REDUCE_LANES <= n; i += TP_REDUCE_LANES)
        for (int l = 0; l < TP_REDUCE_LANES; l++) lanes[l] += x[i + l];
    float sum = 0;
    for (int l = 0; l < TP_REDUCE_LANES; l++) sum += lanes[l];
    for (; i < n; i++) sum += x[i];
    return sum;
}

/* sum of x[i] * y[i] in float (the softmax backward's row dot product). */
static inline float tp_dot(const float *x, const float *y, int64_t n)
{
    float lanes[TP_REDUCE_LANES] = {0};
    int64_t i = 0;
    for (; i + TP_REDUCE_LANES <= n; i += TP_REDUCE_LANES)
        for (int l = 0; l < TP_REDUCE_LANES; l++) lanes[l] += x[i + l] * y[i + l];
    float sum = 0;
    for (int l = 0; l < TP_REDUCE_LANES; l++) sum += lanes[l];
    for (; i < n; i++) sum += x[i] * y[i];
    return sum;
}

#endif
