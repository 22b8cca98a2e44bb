/* Create: the sharpness-aware perturbation of C&F (core/continual.h). */
#include "core/continual.h"

#include <math.h>

/* The sum of squares of the perturbation's direction: (|θ| g)² adaptive, g² otherwise. */
static double direction_norm(const float *theta, const float *grad, const tp_param_segment *segments,
                             int64_t segment_count, int adaptive)
{
    double sum = 0;
    for (int64_t s = 0; s < segment_count; s++) {
        if (segments[s].frozen) continue;
        const float *w = theta + segments[s].offset, *g = grad + segments[s].offset;
        for (int64_t i = 0; i < segments[s].numel; i++) {
            double d = adaptive ? fabs((double)w[i]) * g[i] : (double)g[i];
            sum += d * d;
        }
    }
    return sqrt(sum);
}

double tp_sharpness_perturb(float *theta, const float *grad, const tp_param_segment *segments, int64_t segment_count,
                            double rho, int adaptive)
{
    double norm = direction_norm(theta, grad, segments, segment_count, adaptive);
    double scale = rho / (norm + 1e-12);
    for (int64_t s = 0; s < segment_count; s++) {
        if (segments[s].frozen) continue;
        float *w = theta + segments[s].offset;
        const float *g = grad + segments[s].offset;
        for (int64_t i = 0; i < segments[s].numel; i++) {
            double step = adaptive ? (double)w[i] * w[i] * g[i] * scale : g[i] * scale;
            w[i] = (float)(w[i] + step);
        }
    }
    return norm;
}
