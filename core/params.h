/* Model parameters in flat buffers.
 *
 * Modules declare parameters by name (TencentPretrain's state-dict names)
 * while the model is built; tp_params_allocate then lays them out in one
 * contiguous value buffer and one gradient buffer (each parameter 64-byte
 * aligned), so a single all-reduce and a single fused optimizer pass cover
 * the whole model.  A parameter's first dimension may be padded (vocabulary
 * rows rounded up for the kernels): padded rows are zero, never looked up,
 * get zero gradients, and are not saved -- checkpoints hold the logical shape. */
#ifndef TP_PARAMS_H
#define TP_PARAMS_H

#include <stdint.h>

#include "backend.h"
#include "tensor.h"

typedef enum tp_init_kind {
    TP_INIT_NORMAL, /* N(0, 0.02) -- TencentPretrain's initialisation */
    TP_INIT_ONES,   /* layer-norm gains */
    TP_INIT_ZEROS,  /* layer-norm biases */
    TP_INIT_CLIP_LOGIT_SCALE, /* log(1 / 0.07): CLIP's learned temperature (TencentPretrain's, Hugging Face's) */
    TP_INIT_CONSTANT,         /* the parameter's init_value (BEiT's layer scale) */
} tp_init_kind;

typedef struct tp_param {
    char *name;
    tp_tensor tensor;     /* storage shape: shape[0] may exceed logical_rows */
    int64_t logical_rows; /* shape[0] as saved and loaded */
    int64_t offset;       /* into the flat buffers, in floats */
    tp_init_kind init;
    float init_value;     /* TP_INIT_CONSTANT's value */
    int no_decay;         /* TencentPretrain: biases and layer-norm gains get no weight decay */
} tp_param;

typedef struct tp_params {
    tp_param **items;
    int64_t count, capacity;
    int64_t *index;          /* open-addressing hash of names -> item number + 1 (0 = empty) */
    int64_t index_capacity;  /* a power of two, at least twice count */
    float *data, *grad; /* flat buffers in backend memory */
    int64_t total;      /* floats in each flat buffer */
    const tp_backend *backend;
} tp_params;

void tp_params_init(tp_params *params);
void tp_params_free(tp_params *params);
/* Declares a parameter; the returned tensor gets its data pointer at tp_params_allocate.
 * Aborts on a duplicate name (a module bug). */
tp_tensor *tp_param_new(tp_params *params, const char *name, int ndim, const int64_t *shape, tp_init_kind init);
/* As tp_param_new, with shape[0] rounded up to a multiple of row_multiple in storage. */
tp_tensor *tp_param_new_padded(tp_params *params, const char *name, int ndim, const int64_t *shape,
                               tp_init_kind init, int64_t row_multiple);
/* A parameter whose every element starts at value (TP_INIT_CONSTANT). */
tp_tensor *tp_param_new_constant(tp_params *params, const char *name, int ndim, const int64_t *shape, float value);
tp_param *tp_params_find(const tp_params *params, const char *name);
/* Lays out and allocates the flat buffers (zeroed). */
void tp_params_allocate(tp_params *params, const tp_backend *backend);
/* TencentPretrain's initialisation from (seed, TP_STREAM_INIT + fnv1a64(name), element). */
void tp_params_initialize(tp_params *params, uint64_t seed);
void tp_params_zero_grad(tp_params *params);
/* Number of logical (saved) values. */
int64_t tp_params_logical_count(const tp_params *params);
static inline int64_t tp_param_logical_numel(const tp_param *param)
{
    return tp_numel(&param->tensor) / param->tensor.shape[0] * param->logical_rows;
}

#endif
