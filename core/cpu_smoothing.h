/* The CPU kernels of label smoothing's uniform cross-entropy (core/backend.h's
 * uniform_cross_entropy_forward / _backward), kept apart from core/cpu_kernels.c's table. */
#ifndef TP_CPU_SMOOTHING_H
#define TP_CPU_SMOOTHING_H

#include <stdint.h>

void tp_cpu_uniform_cross_entropy_forward(float *loss, float *logsumexp, const float *logits, const int32_t *targets,
                                          int64_t rows, int64_t classes, int64_t ld);
void tp_cpu_uniform_cross_entropy_backward(float *dlogits, float dloss, const float *logits, const float *logsumexp,
                                           const int32_t *targets, int64_t rows, int64_t classes, int64_t ld);

#endif
