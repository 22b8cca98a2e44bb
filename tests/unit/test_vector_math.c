/* core/vector_math.h against double-precision libm (glibc's exp and erf, correctly rounded to
 * within 1 ulp of double): tp_vexpf within 2 float ulp (measured: 0.99) over its whole range, flushing to 0 below
 * it and overflowing to inf above it; tp_verff within 3e-7 absolutely (measured: 2.3e-7, near
 * 0.85 where the formulas meet); the reductions equal their plain double-precision sums. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/vector_math.h"
#include "tests/support/check.h"

/* Distance in float ulps between a float and the double it approximates. */
static double ulps(float actual, double expected)
{
    double ulp = nextafterf((float)fabs(expected), INFINITY) - (float)fabs(expected);
    return fabs(actual - expected) / ulp;
}

static void check_exp(void)
{
    double worst = 0, worst_x = 0, worst_nonpositive = 0, worst_nonpositive_x = 0;
    /* every 997th float between -87.3 and 88.7 (stepping the bit patterns of |x|): about 2 million
     * points of both signs */
    float top = 88.72f;
    uint32_t top_bits;
    memcpy(&top_bits, &top, sizeof top_bits);
    for (uint32_t bits = 0; bits <= top_bits; bits += 997) {
        float magnitude;
        memcpy(&magnitude, &bits, sizeof magnitude);
        for (int sign = 0; sign < 2; sign++) {
            float x = sign ? -magnitude : magnitude;
            if (x < -87.33f) continue;
            double error = ulps(tp_vexpf(x), exp((double)x));
            if (error > worst) worst = error, worst_x = x;
            if (x <= 0.0f) {
                double error_nonpositive = ulps(tp_vexpf_nonpositive(x), exp((double)x));
                if (error_nonpositive > worst_nonpositive)
                    worst_nonpositive = error_nonpositive, worst_nonpositive_x = x;
            }
        }
    }
    printf("tp_vexpf: worst error %.2f ulp at x = %.9g\n", worst, worst_x);
    CHECK_MSG(worst <= 2.0, "worst error %.2f ulp at %.9g", worst, worst_x);
    printf("tp_vexpf_nonpositive: worst error %.2f ulp at x = %.9g\n", worst_nonpositive, worst_nonpositive_x);
    CHECK_MSG(worst_nonpositive <= 2.0, "nonpositive: worst error %.2f ulp at %.9g", worst_nonpositive,
              worst_nonpositive_x);
    CHECK(tp_vexpf_nonpositive(0.0f) == 1.0f && tp_vexpf_nonpositive(-100.0f) == 0.0f);
    CHECK(tp_vexpf_nonpositive(-INFINITY) == 0.0f && isnan(tp_vexpf_nonpositive(NAN)));
    float small[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 0.5f, -0.5f, 1.0f, -1.0f, 10.0f, -10.0f};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        CHECK_MSG(ulps(tp_vexpf(small[i]), exp((double)small[i])) <= 2.0, "exp(%g)", small[i]);
    CHECK(tp_vexpf(-87.4f) == 0.0f);
    CHECK(tp_vexpf(-10000.0f) == 0.0f); /* masked attention scores */
    CHECK(tp_vexpf(-INFINITY) == 0.0f);
    CHECK(isinf(tp_vexpf(89.0f)) && tp_vexpf(89.0f) > 0);
    CHECK(isinf(tp_vexpf(INFINITY)));
    CHECK(isnan(tp_vexpf(NAN)) && isnan(tp_vexpf(-NAN))); /* and no undefined conversion (UBSan) */
    CHECK(isfinite(tp_vexpf(88.72f)) && ulps(tp_vexpf(88.72f), exp((double)88.72f)) <= 2.0);
}

static void check_erf(void)
{
    double worst = 0, worst_x = 0;
    for (int i = -1000000; i <= 1000000; i++) {
        float x = (float)i * 1e-5f; /* [-10, 10] */
        double error = fabs(tp_verff(x) - erf((double)x));
        if (error > worst) worst = error, worst_x = x;
    }
    printf("tp_verff: worst absolute error %.3g at x = %.6g\n", worst, worst_x);
    CHECK_MSG(worst <= 3e-7, "worst error %.3g at %g", worst, worst_x);
    CHECK(tp_verff(0.0f) == 0.0f);
    CHECK(tp_verff(30.0f) == 1.0f && tp_verff(-30.0f) == -1.0f);
    CHECK(isnan(tp_verff(NAN)));
}

/* Ties go to the first index, wherever the tied elements fall among the 16 lanes. */
static void check_argmax_ties(void)
{
    enum { n = 100 };
    float x[n];
    for (int a = 0; a < n; a += 7)
        for (int b = a + 1; b < n; b += 5) {
            for (int i = 0; i < n; i++) x[i] = (float)(i % 13) - 20.0f;
            x[a] = x[b] = 3.0f;
            float max;
            CHECK_MSG(tp_row_argmax(x, n, &max) == a && max == 3.0f, "ties at %d and %d", a, b);
        }
    float one = 5.0f, max;
    CHECK(tp_row_argmax(&one, 1, &max) == 0 && max == 5.0f);
    /* NaN never wins; with no element above -FLT_MAX (all NaN, all -inf) the answer is 0 */
    for (int i = 0; i < n; i++) x[i] = i % 2 ? 2.0f : NAN;
    CHECK(tp_row_argmax(x, n, &max) == 1 && max == 2.0f);
    for (int i = 0; i < n; i++) x[i] = NAN;
    CHECK(tp_row_argmax(x, n, &max) == 0);
    for (int i = 0; i < n; i++) x[i] = -INFINITY;
    CHECK(tp_row_argmax(x, n, &max) == 0);
    /* the maximum in the tail after the last full block of 16 */
    for (int i = 0; i < n; i++) x[i] = -1.0f;
    x[n - 1] = 0.5f;
    CHECK(tp_row_argmax(x, n, &max) == n - 1 && max == 0.5f);
}

static void check_reductions(void)
{
    enum { n = 1000 };
    float x[n], y[n], e[n];
    uint32_t state = 12345;
    for (int i = 0; i < n; i++) {
        state = state * 1664525u + 1013904223u;
        x[i] = (float)(state >> 8) / 16777216.0f * 20.0f - 15.0f;
        y[i] = (float)i / n - 0.5f;
    }
    for (int length = 1; length <= n; length += 37) {
        float max = -FLT_MAX;
        double sum_exp = 0, dot = 0;
        for (int i = 0; i < length; i++) max = x[i] > max ? x[i] : max;
        for (int i = 0; i < length; i++) sum_exp += exp((double)x[i] - max), dot += (double)x[i] * y[i];
        CHECK(tp_row_max(x, length) == max);
        int first = 0;
        while (x[first] != max) first++;
        float argmax_value;
        CHECK(tp_row_argmax(x, length, &argmax_value) == first && argmax_value == max);
        CHECK_MSG(fabs(tp_sum_exp(x, length, max) - sum_exp) <= 4e-7 * sum_exp, "sum_exp n=%d", length);
        for (int i = 0; i < length; i++) e[i] = x[i];
        float sum = tp_exp_in_place(e, length, max);
        CHECK_MSG(fabs(sum - sum_exp) <= 1e-5 * sum_exp, "exp_in_place sum n=%d", length);
        CHECK_MSG(ulps(e[length - 1], exp((double)(float)(x[length - 1] - max))) <= 2.0, "exp_in_place n=%d", length);
        CHECK_MSG(fabs(tp_dot(x, y, length) - dot) <= 1e-5 * (1 + fabs(dot)) * length, "dot n=%d", length);
    }
}

int main(void)
{
    check_exp();
    check_erf();
    check_reductions();
    check_argmax_ties();
    return tp_test_finish("test_vector_math");
}
