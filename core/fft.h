/* A radix-2 FFT of real input in double precision, for the short frames of audio features
 * (256 or 512 points).  The n-point real transform runs as an n/2-point complex transform of the
 * even/odd samples packed as (re, im), untangled afterwards.  A plan holds the twiddles and the
 * bit-reversal permutation; it is read-only after tp_fft_plan_init, so threads may share it. */
#ifndef TP_FFT_H
#define TP_FFT_H

#include <stdint.h>

typedef struct tp_fft_plan {
    int64_t n;          /* real transform length, a power of two >= 4 */
    double *twiddle_re; /* cos(2 pi k / n), k < n / 2 */
    double *twiddle_im; /* -sin(2 pi k / n) */
    int64_t *reversed;  /* bit reversal of k over log2(n / 2) bits, k < n / 2 */
} tp_fft_plan;

/* -1 with an error unless n is a power of two >= 4. */
int tp_fft_plan_init(tp_fft_plan *plan, int64_t n);
void tp_fft_plan_free(tp_fft_plan *plan);

/* X[k] = sum_t x[t] e^{-2 pi i k t / n} for k = 0 .. n/2: spectrum holds n/2 + 1 (re, im) pairs,
 * that is n + 2 doubles.  x is n doubles (not modified). */
void tp_fft_real(const tp_fft_plan *plan, const double *x, double *spectrum);

#endif
