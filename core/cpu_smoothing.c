/* Label smoothing's uniform cross-entropy on the CPU: see core/backend.h. */
#include "cpu_smoothing.h"

#include <float.h>
#include <math.h>

static float row_logsumexp(const float *row, int64_t classes)
{
    float max = -FLT_MAX;
    double sum = 0;
    for (int64_t c = 0; c < classes; c++) max = row[c] > max ? row[c] : max;
    for (int64_t c = 0; c < classes; c++) sum += exp((double)row[c] - max);
    return max + (float)log(sum);
}

void tp_cpu_uniform_cross_entropy_forward(float *loss, float *logsumexp, const float *logits, const int32_t *targets,
                                          int64_t rows, int64_t classes, int64_t ld)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) logsumexp[r] = targets[r] >= 0 ? row_logsumexp(logits + r * ld, classes) : 0;
    /* The rows in order, so the sum does not depend on the thread count. */
    double total = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (targets[r] < 0) continue;
        double row_sum = 0;
        for (int64_t c = 0; c < classes; c++) row_sum += logits[r * ld + c];
        total += (double)logsumexp[r] - row_sum / (double)classes;
    }
    *loss = (float)total;
}

void tp_cpu_uniform_cross_entropy_backward(float *dlogits, float dloss, const float *logits, const float *logsumexp,
                                           const int32_t *targets, int64_t rows, int64_t classes, int64_t ld)
{
    float uniform = dloss / (float)classes;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        if (targets[r] < 0) continue;
        const float *row = logits + r * ld;
        float *drow = dlogits + r * ld;
        for (int64_t c = 0; c < classes; c++) drow[c] += dloss * expf(row[c] - logsumexp[r]) - uniform;
    }
}
