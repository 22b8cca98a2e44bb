#include "params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rng.h"

#define INIT_STD 0.02f
#define ALIGN_FLOATS 16 /* 64 bytes */

void tp_params_init(tp_params *params) { memset(params, 0, sizeof *params); }

void tp_params_free(tp_params *params)
{
    for (int64_t i = 0; i < params->count; i++) {
        free(params->items[i]->name);
        free(params->items[i]);
    }
    free(params->items);
    free(params->index);
    if (params->backend) {
        params->backend->release(params->data);
        params->backend->release(params->grad);
    }
    memset(params, 0, sizeof *params);
}

/* TencentPretrain's no-decay list: biases and every layer-norm gain (gamma, or weight of torch norms); also
 * BEiT's relative position bias tables (BEiT's fine-tuning skips their decay; its layer scales are gamma_1/2). */
static int is_no_decay(const char *name)
{
    static const char *const patterns[] = {"bias", "gamma", "beta", "layer_norm.weight", "layer_norm_1.weight",
                                           "layer_norm_2.weight", "relative_position_bias_table", NULL};
    for (int i = 0; patterns[i]; i++)
        if (strstr(name, patterns[i])) return 1;
    return 0;
}

/* Slot of name in the hash index: where it is, or the empty slot where it would go. */
static int64_t index_slot(const tp_params *params, const char *name)
{
    int64_t mask = params->index_capacity - 1, slot = (int64_t)(tp_fnv1a64(name) & (uint64_t)mask);
    while (params->index[slot] && strcmp(params->items[params->index[slot] - 1]->name, name) != 0)
        slot = (slot + 1) & mask;
    return slot;
}

static void index_grow(tp_params *params)
{
    free(params->index);
    params->index_capacity = params->index_capacity ? params->index_capacity * 2 : 128;
    params->index = tp_xcalloc((size_t)params->index_capacity, sizeof *params->index);
    for (int64_t i = 0; i < params->count; i++) params->index[index_slot(params, params->items[i]->name)] = i + 1;
}

tp_tensor *tp_param_new_padded(tp_params *params, const char *name, int ndim, const int64_t *shape,
                               tp_init_kind init, int64_t row_multiple)
{
    if (tp_params_find(params, name)) {
        fprintf(stderr, "tp: internal error: parameter '%s' declared twice\n", name);
        abort();
    }
    if (params->count == params->capacity) {
        params->capacity = params->capacity ? params->capacity * 2 : 64;
        params->items = tp_xrealloc(params->items, (size_t)params->capacity * sizeof *params->items);
    }
    if (2 * (params->count + 1) > params->index_capacity) index_grow(params);
    tp_param *param = tp_xcalloc(1, sizeof *param);
    param->name = tp_xstrdup(name);
    param->tensor.ndim = ndim;
    memcpy(param->tensor.shape, shape, (size_t)ndim * sizeof *shape);
    param->tensor.shape[0] = (shape[0] + row_multiple - 1) / row_multiple * row_multiple;
    param->tensor.requires_grad = 1;
    param->logical_rows = shape[0];
    param->init = init;
    param->no_decay = is_no_decay(name);
    params->items[params->count++] = param;
    params->index[index_slot(params, param->name)] = params->count;
    return &param->tensor;
}

tp_tensor *tp_param_new(tp_params *params, const char *name, int ndim, const int64_t *shape, tp_init_kind init)
{
    return tp_param_new_padded(params, name, ndim, shape, init, 1);
}

tp_tensor *tp_param_new_constant(tp_params *params, const char *name, int ndim, const int64_t *shape, float value)
{
    tp_tensor *tensor = tp_param_new(params, name, ndim, shape, TP_INIT_CONSTANT);
    tp_params_find(params, name)->init_value = value;
    return tensor;
}

tp_param *tp_params_find(const tp_params *params, const char *name)
{
    if (!params->index_capacity) return NULL;
    int64_t item = params->index[index_slot(params, name)];
    return item ? params->items[item - 1] : NULL;
}

void tp_params_allocate(tp_params *params, const tp_backend *backend)
{
    int64_t total = 0;
    for (int64_t i = 0; i < params->count; i++) {
        params->items[i]->offset = total;
        total += (tp_numel(&params->items[i]->tensor) + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    }
    params->backend = backend;
    params->total = total;
    params->data = backend->alloc((size_t)total * sizeof(float));
    params->grad = backend->alloc((size_t)total * sizeof(float));
    backend->zero(params->data, total);
    backend->zero(params->grad, total);
    for (int64_t i = 0; i < params->count; i++) {
        tp_param *param = params->items[i];
        param->tensor.data = params->data + param->offset;
        param->tensor.grad = params->grad + param->offset;
    }
}

void tp_params_initialize(tp_params *params, uint64_t seed)
{
    for (int64_t i = 0; i < params->count; i++) {
        tp_param *param = params->items[i];
        int64_t n = tp_param_logical_numel(param);
        uint64_t stream = TP_STREAM_INIT + tp_fnv1a64(param->name);
        float *values = tp_xcalloc((size_t)tp_numel(&param->tensor), sizeof *values);
        /* each value depends on its index alone: the same for any thread count */
#pragma omp parallel for schedule(static) if (n >= 65536)
        for (int64_t j = 0; j < n; j++)
            values[j] = param->init == TP_INIT_ONES    ? 1.0f
                        : param->init == TP_INIT_ZEROS ? 0.0f
                        : param->init == TP_INIT_CLIP_LOGIT_SCALE ? logf(1.0f / 0.07f)
                        : param->init == TP_INIT_CONSTANT ? param->init_value
                                                       : INIT_STD * tp_normal(seed, stream, (uint64_t)j);
        params->backend->upload(param->tensor.data, values, (size_t)tp_numel(&param->tensor) * sizeof *values);
        free(values);
    }
}

void tp_params_zero_grad(tp_params *params) { params->backend->zero(params->grad, params->total); }

int64_t tp_params_logical_count(const tp_params *params)
{
    int64_t count = 0;
    for (int64_t i = 0; i < params->count; i++) count += tp_param_logical_numel(params->items[i]);
    return count;
}
