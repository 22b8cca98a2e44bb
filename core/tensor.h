/* Tensors: a shape, a device and float data (fp32; the CUDA backend adds
 * half-precision copies of its own).  Tensors are contiguous and row-major.
 * Activations are carved from the per-step arena; parameters point into the
 * model's flat parameter buffer and their gradients into the flat gradient
 * buffer (core/params.h). */
#ifndef TP_TENSOR_H
#define TP_TENSOR_H

#include <stdint.h>

#define TP_MAX_DIMS 4

typedef enum tp_device { TP_DEVICE_CPU = 0, TP_DEVICE_CUDA = 1 } tp_device;

typedef struct tp_tensor {
    float *data;
    float *grad;       /* same shape as data; NULL until backward needs it */
    int64_t shape[TP_MAX_DIMS];
    int ndim;
    int requires_grad; /* a parameter, or computed from one while recording */
} tp_tensor;

static inline int64_t tp_numel(const tp_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}
/* Size of the last dimension and the product of the others: a tensor as a matrix of rows. */
static inline int64_t tp_cols(const tp_tensor *t) { return t->shape[t->ndim - 1]; }
static inline int64_t tp_rows(const tp_tensor *t) { return tp_numel(t) / tp_cols(t); }

#endif
