/* "transformer": a stack of layers_num transformer layers.
 *   post-LN (BERT): h = LN1(x + drop(attn(x)));  y = LN2(h + drop(ff(h)))
 *   pre-LN:         h = x + drop(attn(LN1(x)));  y = h + drop(ff(LN2(h)));  final encoder.layer_norm
 * ALBERT (TencentPretrain's names): factorized_embedding_parameterization maps the emb_size
 * input to hidden_size first (encoder.linear); parameter_sharing declares one layer,
 * encoder.transformer.* without an index, and runs it layers_num times (its gradients
 * accumulate over the uses, as every backward kernel adds into its buffers).
 * T5 (relative_position_embedding): one bidirectional bias table, encoder.relative_pos_emb, whose
 * bias every layer's self-attention adds to its scores. */
#include <stdio.h>
#include <stdlib.h>

#include "modules/layers/layers.h"
#include "modules/layers/relative_position.h"

typedef struct transformer_layer {
    tp_self_attention self_attn;
    tp_norm_layer layer_norm_1, layer_norm_2;
    tp_feed_forward feed_forward;
} transformer_layer;

typedef struct transformer_encoder {
    int64_t layers_num;
    int pre_layernorm, parameter_sharing;
    int factorized; /* input_linear maps emb_size -> hidden_size */
    tp_linear_layer input_linear;
    float dropout;
    transformer_layer *layers;
    tp_norm_layer final_norm; /* pre-LN only */
    int relative;
    tp_relative_position relative_pos_emb;
} transformer_encoder;

static void *transformer_create(tp_build *build, const char *prefix)
{
    const tp_model_config *hp = build->hp;
    transformer_encoder *self = tp_xcalloc(1, sizeof *self);
    char name[TP_NAME_MAX];
    int64_t declared = hp->parameter_sharing ? 1 : hp->layers_num;
    self->layers_num = hp->layers_num;
    self->pre_layernorm = hp->layernorm_pre;
    self->parameter_sharing = hp->parameter_sharing;
    self->factorized = hp->factorized_embedding_parameterization;
    self->dropout = hp->dropout;
    if (self->factorized) {
        tp_name(name, prefix, "linear");
        tp_linear_layer_init(&self->input_linear, build, name, hp->emb_size, hp->hidden_size, 1);
    }
    self->layers = tp_xcalloc((size_t)declared, sizeof *self->layers);
    for (int64_t i = 0; i < declared; i++) {
        char layer_prefix[TP_NAME_MAX];
        transformer_layer *layer = &self->layers[i];
        if (hp->parameter_sharing)
            tp_name(layer_prefix, prefix, "transformer");
        else
            snprintf(layer_prefix, sizeof layer_prefix, "%s.transformer.%lld", prefix, (long long)i);
        tp_name(name, layer_prefix, "self_attn");
        tp_self_attention_init(&layer->self_attn, build, name);
        tp_name(name, layer_prefix, "layer_norm_1");
        tp_norm_layer_init_config(&layer->layer_norm_1, build, name, hp->hidden_size);
        tp_name(name, layer_prefix, "feed_forward");
        tp_feed_forward_init(&layer->feed_forward, build, name);
        tp_name(name, layer_prefix, "layer_norm_2");
        tp_norm_layer_init_config(&layer->layer_norm_2, build, name, hp->hidden_size);
    }
    if (self->pre_layernorm) {
        tp_name(name, prefix, "layer_norm");
        tp_norm_layer_init_config(&self->final_norm, build, name, hp->hidden_size);
    }
    self->relative = hp->relative_position_embedding;
    if (self->relative) {
        tp_name(name, prefix, "relative_pos_emb");
        tp_relative_position_init(&self->relative_pos_emb, build, name, 1);
    }
    return self;
}

static tp_tensor *self_attention(tp_ctx *ctx, const transformer_layer *layer, tp_tensor *x,
                                 const tp_model_batch *batch, tp_tensor *bias)
{
    int64_t seq = batch->seq_length;
    tp_attention_inputs in = {x, x, batch->batch_size, seq, seq, layer->self_attn.mask, batch->seg, bias};
    return tp_attention_layer_forward(ctx, &layer->self_attn, &in);
}

static tp_tensor *layer_forward(tp_ctx *ctx, const transformer_encoder *enc, const transformer_layer *layer,
                                tp_tensor *x, const tp_model_batch *batch, tp_tensor *bias)
{
    if (enc->pre_layernorm) {
        tp_tensor *normed = tp_norm_layer_forward(ctx, &layer->layer_norm_1, x);
        tp_tensor *attended = tp_dropout(ctx, self_attention(ctx, layer, normed, batch, bias), enc->dropout);
        tp_tensor *h = tp_add(ctx, attended, x);
        tp_tensor *ff_in = tp_norm_layer_forward(ctx, &layer->layer_norm_2, h);
        return tp_add(ctx, tp_dropout(ctx, tp_feed_forward_forward(ctx, &layer->feed_forward, ff_in), enc->dropout),
                      h);
    }
    tp_tensor *attended = tp_dropout(ctx, self_attention(ctx, layer, x, batch, bias), enc->dropout);
    tp_tensor *h = tp_norm_layer_forward(ctx, &layer->layer_norm_1, tp_add(ctx, attended, x));
    tp_tensor *ff = tp_dropout(ctx, tp_feed_forward_forward(ctx, &layer->feed_forward, h), enc->dropout);
    return tp_norm_layer_forward(ctx, &layer->layer_norm_2, tp_add(ctx, ff, h));
}

static tp_tensor *transformer_forward(void *self, tp_ctx *ctx, tp_tensor *x, const tp_model_batch *batch)
{
    transformer_encoder *enc = self;
    tp_tensor *bias = enc->relative ? tp_relative_position_forward(ctx, &enc->relative_pos_emb, batch->seq_length,
                                                                   batch->seq_length)
                                    : NULL;
    if (enc->factorized) x = tp_linear_layer_forward(ctx, &enc->input_linear, x);
    for (int64_t i = 0; i < enc->layers_num; i++)
        x = layer_forward(ctx, enc, &enc->layers[enc->parameter_sharing ? 0 : i], x, batch, bias);
    return enc->pre_layernorm ? tp_norm_layer_forward(ctx, &enc->final_norm, x) : x;
}

static void transformer_destroy(void *self)
{
    transformer_encoder *enc = self;
    free(enc->layers);
    free(enc);
}

const tp_encoder_type tp_encoder_transformer = {"transformer", transformer_create, transformer_forward,
                                                transformer_destroy};
