/* Find (C&F) / EWC penalty, its gradient, and the clamp around the anchor (core/continual.h). */
#include "core/continual.h"

#include <math.h>

double tp_find_penalty(const float *theta, const float *anchor, const float *importance, double lambda,
                       const tp_param_segment *segments, int64_t segment_count)
{
    double sum = 0;
    for (int64_t s = 0; s < segment_count; s++) {
        if (segments[s].frozen) continue;
        for (int64_t i = segments[s].offset; i < segments[s].offset + segments[s].numel; i++) {
            double d = (double)theta[i] - anchor[i];
            sum += importance[i] * d * d;
        }
    }
    return 0.5 * lambda * sum;
}

void tp_find_gradient(float *grad, const float *theta, const float *anchor, const float *importance, double lambda,
                      const tp_param_segment *segments, int64_t segment_count)
{
    float scale = (float)lambda;
    for (int64_t s = 0; s < segment_count; s++) {
        if (segments[s].frozen) continue;
        for (int64_t i = segments[s].offset; i < segments[s].offset + segments[s].numel; i++)
            grad[i] += scale * importance[i] * (theta[i] - anchor[i]);
    }
}

void tp_clamp_to_anchor(float *theta, const float *anchor, double rho, const tp_param_segment *segments,
                        int64_t segment_count)
{
    float r = (float)rho;
    for (int64_t s = 0; s < segment_count; s++) {
        if (segments[s].frozen) continue;
        for (int64_t i = segments[s].offset; i < segments[s].offset + segments[s].numel; i++) {
            float bound = r * fabsf(anchor[i]);
            float low = anchor[i] - bound, high = anchor[i] + bound;
            theta[i] = theta[i] < low ? low : theta[i] > high ? high : theta[i];
        }
    }
}
