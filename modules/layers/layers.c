#include "layers.h"

#include <math.h>
#include <stdio.h>

void tp_name(char *out, const char *prefix, const char *suffix) { snprintf(out, TP_NAME_MAX, "%s.%s", prefix, suffix); }

void tp_linear_layer_init(tp_linear_layer *layer, tp_build *build, const char *prefix, int64_t in, int64_t out,
                          int with_bias)
{
    char name[TP_NAME_MAX];
    int64_t weight_shape[2] = {out, in}, bias_shape[1] = {out};
    tp_name(name, prefix, "weight");
    layer->weight = tp_param_new(build->params, name, 2, weight_shape, TP_INIT_NORMAL);
    layer->bias = NULL;
    if (with_bias) {
        tp_name(name, prefix, "bias");
        layer->bias = tp_param_new(build->params, name, 1, bias_shape, TP_INIT_NORMAL);
    }
}

void tp_norm_layer_init(tp_norm_layer *layer, tp_build *build, const char *prefix, int64_t size, tp_norm_kind kind,
                        float eps)
{
    char name[TP_NAME_MAX];
    int torch = kind == TP_NORM_TORCH || kind == TP_NORM_RMS; /* weight (and bias) */
    layer->kind = kind;
    layer->eps = eps;
    tp_name(name, prefix, torch ? "weight" : "gamma");
    layer->gamma = tp_param_new(build->params, name, 1, &size, TP_INIT_ONES);
    layer->beta = NULL;
    if (kind == TP_NORM_RMS) return;
    tp_name(name, prefix, torch ? "bias" : "beta");
    layer->beta = tp_param_new(build->params, name, 1, &size, TP_INIT_ZEROS);
}

void tp_self_attention_init(tp_self_attention *attn, tp_build *build, const char *prefix)
{
    const tp_model_config *hp = build->hp;
    char name[TP_NAME_MAX];
    tp_linear_layer *projections[3] = {&attn->query, &attn->key, &attn->value};
    int with_bias = !hp->remove_transformer_bias;
    int64_t inner = hp->heads_num * hp->attention_head_size;
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s.linear_layers.%d", prefix, i);
        tp_linear_layer_init(projections[i], build, name, hp->hidden_size, inner, with_bias);
    }
    tp_name(name, prefix, "final_linear");
    tp_linear_layer_init(&attn->output, build, name, inner, hp->hidden_size, with_bias);
    attn->heads = hp->heads_num;
    attn->dropout = hp->dropout;
    attn->scale = hp->remove_attention_scale ? 1.0f : 1.0f / sqrtf((float)hp->attention_head_size);
    attn->mask = hp->mask;
}

tp_tensor *tp_attention_layer_forward(tp_ctx *ctx, const tp_self_attention *attn, const tp_attention_inputs *in)
{
    tp_tensor *q = tp_linear_layer_forward(ctx, &attn->query, in->x);
    tp_tensor *k = tp_linear_layer_forward(ctx, &attn->key, in->memory);
    tp_tensor *v = tp_linear_layer_forward(ctx, &attn->value, in->memory);
    tp_attention_options options = {in->batch, in->seq,  in->kv_seq,  attn->heads,  in->mask,
                                    in->key_valid, in->bias, attn->scale, attn->dropout};
    return tp_linear_layer_forward(ctx, &attn->output, tp_attention_general(ctx, q, k, v, &options));
}

void tp_feed_forward_init(tp_feed_forward *ff, tp_build *build, const char *prefix)
{
    const tp_model_config *hp = build->hp;
    char name[TP_NAME_MAX];
    int with_bias = !hp->remove_transformer_bias;
    ff->gated = hp->feed_forward_gated;
    if (ff->gated) {
        tp_name(name, prefix, "linear_gate");
        tp_linear_layer_init(&ff->linear_gate, build, name, hp->hidden_size, hp->feedforward_size, with_bias);
    }
    tp_name(name, prefix, "linear_1");
    tp_linear_layer_init(&ff->linear_1, build, name, hp->hidden_size, hp->feedforward_size, with_bias);
    tp_name(name, prefix, "linear_2");
    tp_linear_layer_init(&ff->linear_2, build, name, hp->feedforward_size, hp->hidden_size, with_bias);
    ff->act = hp->hidden_act;
}

tp_tensor *tp_feed_forward_forward(tp_ctx *ctx, const tp_feed_forward *ff, tp_tensor *x)
{
    tp_tensor *inner = ff->gated ? tp_mul(ctx, tp_act(ctx, tp_linear_layer_forward(ctx, &ff->linear_gate, x), ff->act),
                                          tp_linear_layer_forward(ctx, &ff->linear_1, x))
                                 : tp_act(ctx, tp_linear_layer_forward(ctx, &ff->linear_1, x), ff->act);
    return tp_linear_layer_forward(ctx, &ff->linear_2, inner);
}

void *tp_lookup_embedding_create(tp_build *build, const char *prefix, int64_t rows, int64_t row_multiple,
                                 tp_batch_ids_fn ids)
{
    tp_lookup_embedding *self = tp_xmalloc(sizeof *self);
    char name[TP_NAME_MAX];
    int64_t shape[2] = {rows, build->hp->emb_size};
    tp_name(name, prefix, "embedding.weight");
    self->table = tp_param_new_padded(build->params, name, 2, shape, TP_INIT_NORMAL, row_multiple);
    self->ids = ids;
    self->scale = 1.0f;
    return self;
}

tp_tensor *tp_lookup_embedding_rows(tp_ctx *ctx, const tp_lookup_embedding *lookup, const int32_t *ids, int64_t n)
{
    tp_tensor *rows = tp_embedding(ctx, lookup->table, ids, n);
    return lookup->scale == 1.0f ? rows : tp_scale(ctx, rows, lookup->scale);
}

tp_tensor *tp_lookup_embedding_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    tp_lookup_embedding *lookup = self;
    return tp_lookup_embedding_rows(ctx, lookup, lookup->ids(batch), batch->batch_size * batch->seq_length);
}
