/* This machine's fp32 peak FLOP/s for the benchmarks' MFU, measured rather than looked up: every
 * OpenMP thread runs independent chains of fused multiply-adds on the widest vectors the CPU has
 * (AVX-512 where it has it, else AVX2 + FMA -- what OpenBLAS's kernels use), all threads at once,
 * and the best of several rounds is the peak.  A core busy with another job's work only lowers a
 * round, which the best of them discards. */
#ifndef TP_BENCH_CPU_PEAK_H
#define TP_BENCH_CPU_PEAK_H

#include <omp.h>
#include <stdint.h>
#include <time.h>

enum { PEAK_CHAINS = 12 }; /* > FMA latency (4) x ports (2): the units never wait for a result */

static double peak_seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 16 floats: one AVX-512 register, two AVX2 ones. */
typedef float fma_vector __attribute__((vector_size(64)));

/* FLOP/s of one thread over `iterations` rounds of PEAK_CHAINS multiply-adds of 16 floats, built for
 * AVX-512 and for the baseline (AVX2 + FMA), the CPU picking at run time. */
__attribute__((target_clones("avx512f", "default"))) static double fma_rate(int64_t iterations)
{
    fma_vector chains[PEAK_CHAINS], scale, shift;
    for (int l = 0; l < 16; l++) scale[l] = 0.999999f, shift[l] = 1e-6f;
    for (int k = 0; k < PEAK_CHAINS; k++)
        for (int l = 0; l < 16; l++) chains[k][l] = (float)k;
    double start = peak_seconds_now();
    for (int64_t i = 0; i < iterations; i++)
#pragma GCC unroll 12 /* the chains stay in registers */
        for (int k = 0; k < PEAK_CHAINS; k++) chains[k] = chains[k] * scale + shift; /* contracted to FMAs */
    double seconds = peak_seconds_now() - start;
    volatile float sink = 0; /* keeps the chains alive */
    for (int k = 0; k < PEAK_CHAINS; k++) sink += chains[k][0];
    (void)sink;
    return (double)iterations * PEAK_CHAINS * 16 * 2 / seconds;
}

/* Sum over the OpenMP threads of their FMA rates, best of 5 rounds of about 50 ms. */
static double measure_peak_flops(void)
{
    double best = 0;
    for (int round = 0; round < 5; round++) {
        double total = 0;
#pragma omp parallel reduction(+ : total)
        total += fma_rate(10000000);
        if (total > best) best = total;
    }
    return best;
}

#endif
