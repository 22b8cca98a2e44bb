/* The element-wise losses and their derivatives: one definition for the CPU kernels
 * (core/cpu_kernels.c) and the CUDA kernels (cuda/cuda_loss.cu). */
#ifndef TP_LOSS_MATH_H
#define TP_LOSS_MATH_H

#include <math.h>

#include "backend.h"

#include "host_device.h"

/* BCE with logits in torch's stable form max(x, 0) - x t + log(1 + exp(-|x|)). */
static inline TP_HOST_DEVICE double tp_pointwise_loss_value(tp_pointwise_loss_kind kind, float x, float t)
{
    if (kind == TP_LOSS_SQUARED_ERROR) {
        double d = (double)x - (double)t;
        return d * d;
    }
    double xd = x;
    return (xd > 0 ? xd : 0.0) - xd * t + log1p(exp(-fabs(xd)));
}

/* d loss / dx: sigmoid(x) - t, or 2 (x - t). */
static inline TP_HOST_DEVICE float tp_pointwise_loss_slope(tp_pointwise_loss_kind kind, float x, float t)
{
    if (kind == TP_LOSS_SQUARED_ERROR) return 2.0f * (x - t);
    return 1.0f / (1.0f + expf(-x)) - t;
}

static inline TP_HOST_DEVICE int tp_pointwise_loss_correct(tp_pointwise_loss_kind kind, float x, float t)
{
    return kind == TP_LOSS_BCE_WITH_LOGITS && (x > 0.0f) == (t > 0.5f);
}

#endif
