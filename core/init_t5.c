#include "init_t5.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define TENCENTPRETRAIN_STD 0.02 /* what tp_params_initialize draws (core/params.c) */

static int ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return n >= m && strcmp(name + n - m, suffix) == 0;
}

/* T5's standard deviation for a parameter, or 0 for one it does not scale. */
static double t5_std(const tp_model_config *hp, const char *name)
{
    double d_model = (double)hp->hidden_size, d_kv = (double)hp->attention_head_size;
    if (ends_with(name, "word.embedding.weight") || strcmp(name, "target.lm.output_layer.weight") == 0) return 1.0;
    if (ends_with(name, "attn.linear_layers.0.weight")) return 1.0 / sqrt(d_model * d_kv);
    if (ends_with(name, "attn.linear_layers.1.weight") || ends_with(name, "attn.linear_layers.2.weight"))
        return 1.0 / sqrt(d_model);
    if (ends_with(name, "attn.final_linear.weight")) return 1.0 / sqrt((double)hp->heads_num * d_kv);
    if (ends_with(name, "feed_forward.linear_1.weight") || ends_with(name, "feed_forward.linear_gate.weight"))
        return 1.0 / sqrt(d_model);
    if (ends_with(name, "feed_forward.linear_2.weight")) return 1.0 / sqrt((double)hp->feedforward_size);
    if (ends_with(name, "relative_attention_bias.weight")) return 1.0 / sqrt(d_model);
    return 0.0;
}

void tp_model_initialize_t5(tp_model *model)
{
    const tp_backend *backend = model->params.backend;
    for (int64_t i = 0; i < model->params.count; i++) {
        tp_param *param = model->params.items[i];
        double std = param->init == TP_INIT_NORMAL ? t5_std(&model->hp, param->name) : 0.0;
        if (std == 0.0) continue;
        int64_t n = tp_param_logical_numel(param);
        float *values = tp_xmalloc((size_t)n * sizeof *values);
        backend->download(values, param->tensor.data, (size_t)n * sizeof *values);
        float factor = (float)(std / TENCENTPRETRAIN_STD);
        for (int64_t j = 0; j < n; j++) values[j] *= factor;
        backend->upload(param->tensor.data, values, (size_t)n * sizeof *values);
        free(values);
    }
}
