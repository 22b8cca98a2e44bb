/* The linear-chain CRF's two log-sum-exp recursions: one definition for the CPU kernels
 * (core/cpu_kernels.c) and the CUDA kernels (cuda/cuda_crf.cu).  Each is evaluated stably as
 * max + log(sum exp(x - max)) in double; tp_crf_problem (core/backend.h) gives the layout. */
#ifndef TP_CRF_MATH_H
#define TP_CRF_MATH_H

#include <math.h>
#include <stdint.h>

#include "backend.h"

#include "host_device.h"

/* Forward: log sum_i exp(alpha_prev[i] + transitions[i, j]) -- every path into tag j. */
static inline TP_HOST_DEVICE double tp_crf_into(const float *alpha_prev, const float *transitions, int64_t classes,
                                                int64_t j)
{
    double max = -INFINITY, sum = 0;
    for (int64_t i = 0; i < classes; i++) max = fmax(max, (double)alpha_prev[i] + transitions[i * classes + j]);
    for (int64_t i = 0; i < classes; i++) sum += exp((double)alpha_prev[i] + transitions[i * classes + j] - max);
    return max + log(sum);
}

/* Backward: log sum_j exp(transitions[i, j] + emissions_next[j] + beta_next[j]) -- every path out
 * of tag i through the next scored position to the end. */
static inline TP_HOST_DEVICE double tp_crf_out_of(const float *transitions, const float *emissions_next,
                                                  const float *beta_next, int64_t classes, int64_t i)
{
    const float *row = transitions + i * classes;
    double max = -INFINITY, sum = 0;
    for (int64_t j = 0; j < classes; j++) max = fmax(max, (double)row[j] + emissions_next[j] + beta_next[j]);
    for (int64_t j = 0; j < classes; j++) sum += exp((double)row[j] + emissions_next[j] + beta_next[j] - max);
    return max + log(sum);
}

/* log sum_j exp(alpha[j] + end[j]): log Z from the last scored position. */
static inline TP_HOST_DEVICE double tp_crf_log_z(const float *alpha_last, const float *end, int64_t classes)
{
    double max = -INFINITY, sum = 0;
    for (int64_t j = 0; j < classes; j++) max = fmax(max, (double)alpha_last[j] + end[j]);
    for (int64_t j = 0; j < classes; j++) sum += exp((double)alpha_last[j] + end[j] - max);
    return max + log(sum);
}

/* The walk along sequence b's chain: its scored position after s (p->seq when none; s = -1
 * gives the first) and before s (-1 when none; s = p->seq gives the last). */
static inline TP_HOST_DEVICE int64_t tp_crf_next(const tp_crf_problem *p, int64_t b, int64_t s)
{
    for (s++; s < p->seq && p->tags[b * p->seq + s] < 0; s++) continue;
    return s;
}

static inline TP_HOST_DEVICE int64_t tp_crf_prev(const tp_crf_problem *p, int64_t b, int64_t s)
{
    for (s--; s >= 0 && p->tags[b * p->seq + s] < 0; s--) continue;
    return s;
}

/* The score of sequence b's gold path: start + emissions + transitions + end (0 without a
 * scored position). */
static inline TP_HOST_DEVICE double tp_crf_gold_score(const tp_crf_problem *p, int64_t b)
{
    double score = 0;
    int32_t previous = -1;
    for (int64_t s = tp_crf_next(p, b, -1); s < p->seq; s = tp_crf_next(p, b, s)) {
        int32_t tag = p->tags[b * p->seq + s];
        score += previous < 0 ? p->start[tag] : p->transitions[previous * p->classes + tag];
        score += p->emissions[(b * p->seq + s) * p->ld + tag];
        previous = tag;
    }
    return previous < 0 ? 0.0 : score + p->end[previous];
}

/* The gradient terms of tag j at sequence b's scored position s (previous: the scored position
 * before it, -1 at the first; last: the sequence's last), each marginal - gold indicator, from log
 * alpha, log beta and log Z: the emission's times scale into demissions (when not NULL), the pair
 * marginals into column j of the sequence's own transition gradient, and start[j] / end[j] at the
 * first / last position, unscaled, into own [classes^2 transitions, classes start, classes end].
 * Only tag j's entries are written: one thread per tag may run them in parallel. */
static inline TP_HOST_DEVICE void tp_crf_tag_gradients(const tp_crf_problem *p, int64_t b, int64_t s, int64_t previous,
                                                       int64_t last, int64_t j, const float *alpha, const float *beta,
                                                       double log_z, float scale, float *demissions, float *own)
{
    int64_t classes = p->classes, row = b * p->seq + s;
    int32_t tag = p->tags[row];
    const float *emissions = p->emissions + row * p->ld;
    double tail_score = (double)emissions[j] + beta[row * classes + j] - log_z; /* from tag j at s to the end */
    float slope = (float)(exp((double)alpha[row * classes + j] + beta[row * classes + j] - log_z) - (tag == j));
    if (demissions) demissions[row * p->ld + j] += scale * slope;
    if (previous < 0) own[classes * classes + j] += slope;
    if (s == last) own[classes * classes + classes + j] += slope;
    if (previous < 0) return;
    const float *alpha_prev = alpha + (b * p->seq + previous) * classes;
    int32_t previous_tag = p->tags[b * p->seq + previous];
    for (int64_t i = 0; i < classes; i++)
        own[i * classes + j] += (float)(exp(alpha_prev[i] + p->transitions[i * classes + j] + tail_score) -
                                        (previous_tag == i && tag == j));
}

#endif
