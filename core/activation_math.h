/* The activation functions and their slopes: one definition for the CPU kernels
 * (core/cpu_kernels.c) and the CUDA kernels (cuda/cuda_elementwise.cu).  On the host, exp and
 * erf are core/vector_math.h's branch-free versions (GCC vectorises the kernels' loops around
 * them); on the device, CUDA's own. */
#ifndef TP_ACTIVATION_MATH_H
#define TP_ACTIVATION_MATH_H

#include <math.h>

#include "backend.h"

#include "host_device.h"

#ifdef __CUDACC__
#define TP_ACT_EXPF expf
#define TP_ACT_ERFF erff
#else
#include "vector_math.h"
#define TP_ACT_EXPF tp_vexpf
#define TP_ACT_ERFF tp_verff
#endif

#define TP_SQRT_HALF 0.70710678118654752440f
#define TP_INV_SQRT_2PI 0.39894228040143267794f
#define TP_GELU_FAST_C 0.7978845608f /* sqrt(2/pi) as TencentPretrain writes it */

/* kind must be a valid tp_activation (the op layer only passes enum values). */
static inline TP_HOST_DEVICE float tp_activate(tp_activation kind, float x)
{
    switch (kind) {
    case TP_ACT_GELU: return 0.5f * x * (1.0f + TP_ACT_ERFF(x * TP_SQRT_HALF));
    case TP_ACT_GELU_FAST: return 0.5f * x * (1.0f + tanhf(x * TP_GELU_FAST_C * (1.0f + 0.044715f * x * x)));
    case TP_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case TP_ACT_SILU: return x / (1.0f + TP_ACT_EXPF(-x));
    case TP_ACT_QUICK_GELU: return x / (1.0f + TP_ACT_EXPF(-1.702f * x));
    default: return tanhf(x); /* TP_ACT_TANH */
    }
}

/* f'(x), given x and y = f(x). */
static inline TP_HOST_DEVICE float tp_activation_slope(tp_activation kind, float x, float y)
{
    switch (kind) {
    case TP_ACT_GELU: return 0.5f * (1.0f + TP_ACT_ERFF(x * TP_SQRT_HALF)) + x * TP_INV_SQRT_2PI * TP_ACT_EXPF(-0.5f * x * x);
    case TP_ACT_GELU_FAST: {
        float t = tanhf(x * TP_GELU_FAST_C * (1.0f + 0.044715f * x * x));
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * TP_GELU_FAST_C * (1.0f + 3.0f * 0.044715f * x * x);
    }
    case TP_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case TP_ACT_SILU: {
        float s = 1.0f / (1.0f + TP_ACT_EXPF(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    case TP_ACT_QUICK_GELU: {
        float s = 1.0f / (1.0f + TP_ACT_EXPF(-1.702f * x));
        return s * (1.0f + 1.702f * x * (1.0f - s));
    }
    default: return 1.0f - y * y; /* TP_ACT_TANH */
    }
}

#endif
