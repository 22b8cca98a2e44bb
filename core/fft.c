#include "fft.h"

#include "error.h"

#include <math.h>
#include <stdlib.h>

int tp_fft_plan_init(tp_fft_plan *plan, int64_t n)
{
    *plan = (tp_fft_plan){0};
    if (n < 4 || (n & (n - 1)) != 0) return tp_fail("FFT length %lld is not a power of two >= 4", (long long)n);
    int64_t half = n / 2;
    int bits = 0;
    while (((int64_t)1 << bits) < half) bits++;
    plan->n = n;
    plan->twiddle_re = tp_xmalloc(sizeof(double) * half);
    plan->twiddle_im = tp_xmalloc(sizeof(double) * half);
    plan->reversed = tp_xmalloc(sizeof(int64_t) * half);
    for (int64_t k = 0; k < half; k++) {
        plan->twiddle_re[k] = cos(2.0 * M_PI * (double)k / (double)n);
        plan->twiddle_im[k] = -sin(2.0 * M_PI * (double)k / (double)n);
        int64_t r = 0;
        for (int b = 0; b < bits; b++) r |= ((k >> b) & 1) << (bits - 1 - b);
        plan->reversed[k] = r;
    }
    return 0;
}

void tp_fft_plan_free(tp_fft_plan *plan)
{
    free(plan->twiddle_re);
    free(plan->twiddle_im);
    free(plan->reversed);
    *plan = (tp_fft_plan){0};
}

/* In-place iterative radix-2 transform of m = n/2 complex values z (interleaved), input already in
 * bit-reversed order.  The m-point twiddle e^{-2 pi i j / m} is the n-point one at 2j. */
static void complex_fft(const tp_fft_plan *plan, double *z, int64_t m)
{
    for (int64_t size = 2; size <= m; size *= 2) {
        int64_t step = 2 * (m / size); /* index step into the n-point twiddle table */
        for (int64_t start = 0; start < m; start += size)
            for (int64_t j = 0; j < size / 2; j++) {
                double wr = plan->twiddle_re[j * step], wi = plan->twiddle_im[j * step];
                double *a = z + 2 * (start + j), *b = z + 2 * (start + j + size / 2);
                double tr = b[0] * wr - b[1] * wi, ti = b[0] * wi + b[1] * wr;
                b[0] = a[0] - tr;
                b[1] = a[1] - ti;
                a[0] += tr;
                a[1] += ti;
            }
    }
}

void tp_fft_real(const tp_fft_plan *plan, const double *x, double *spectrum)
{
    int64_t m = plan->n / 2;
    /* z[k] = x[2k] + i x[2k+1], scattered to bit-reversed positions; spectrum doubles as z. */
    for (int64_t k = 0; k < m; k++) {
        spectrum[2 * plan->reversed[k]] = x[2 * k];
        spectrum[2 * plan->reversed[k] + 1] = x[2 * k + 1];
    }
    complex_fft(plan, spectrum, m);
    /* Untangle: E[k] = (Z[k] + conj Z[m-k]) / 2, O[k] = (Z[k] - conj Z[m-k]) / 2i,
     * X[k] = E[k] + w^k O[k], X[m-k] = conj(E[k] - w^k O[k]); k and m-k are done together. */
    double z0r = spectrum[0], z0i = spectrum[1];
    spectrum[0] = z0r + z0i;
    spectrum[1] = 0.0;
    spectrum[2 * m] = z0r - z0i;
    spectrum[2 * m + 1] = 0.0;
    for (int64_t k = 1; k <= m / 2; k++) {
        double *p = spectrum + 2 * k, *q = spectrum + 2 * (m - k);
        double er = 0.5 * (p[0] + q[0]), ei = 0.5 * (p[1] - q[1]);
        double or_ = 0.5 * (p[1] + q[1]), oi = -0.5 * (p[0] - q[0]);
        double wr = plan->twiddle_re[k], wi = plan->twiddle_im[k];
        double tr = or_ * wr - oi * wi, ti = or_ * wi + oi * wr;
        p[0] = er + tr;
        p[1] = ei + ti;
        q[0] = er - tr;
        q[1] = -(ei - ti);
    }
}
