/* "transformer" decoder (TencentPretrain's TransformerDecoder): decoder_layers_num layers of
 * causal self-attention over the target side, context attention over the encoder's output (its
 * padding keys masked) and the feed-forward, each a residual branch:
 *   post-LN (BART): h = LN1(x + attn(x));  m = LN2(h + ctx(h, enc));  y = LN3(m + ff(m))
 *   pre-LN (T5):    h = x + attn(LN1(x));  m = h + ctx(LN2(h), enc);  y = m + ff(LN3(m)); final decoder.layer_norm
 * Names: decoder.transformer_decoder.<i>.{self_attn,context_attn,layer_norm_1..3,feed_forward}.
 * T5 (relative_position_embedding): one causal bias table, decoder.self_pos_emb, for every layer's
 * self-attention (context attention has none).  tp extension `tied_output_scale` (Hugging Face T5
 * with tied embeddings): the output is multiplied by hidden_size^-0.5 before the lm head. */
#include "transformer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef tp_transformer_decoder_layer decoder_layer;
typedef tp_transformer_decoder transformer_decoder;

static void layer_init(decoder_layer *layer, tp_build *build, const char *prefix)
{
    char name[TP_NAME_MAX];
    int64_t hidden = build->hp->hidden_size;
    tp_name(name, prefix, "self_attn");
    tp_self_attention_init(&layer->self_attn, build, name);
    layer->self_attn.mask = TP_MASK_CAUSAL;
    tp_name(name, prefix, "context_attn");
    tp_self_attention_init(&layer->context_attn, build, name);
    layer->context_attn.mask = TP_MASK_FULLY_VISIBLE;
    tp_name(name, prefix, "feed_forward");
    tp_feed_forward_init(&layer->feed_forward, build, name);
    tp_norm_layer *norms[3] = {&layer->layer_norm_1, &layer->layer_norm_2, &layer->layer_norm_3};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s.layer_norm_%d", prefix, i + 1);
        tp_norm_layer_init_config(norms[i], build, name, hidden);
    }
}

static void *decoder_create(tp_build *build, const char *prefix)
{
    const tp_model_config *hp = build->hp;
    int tied_output_scale = 0;
    if (tp_config_bool(build->config, "tied_output_scale", 0, &tied_output_scale) < 0) return NULL;
    transformer_decoder *self = tp_xcalloc(1, sizeof *self);
    char name[TP_NAME_MAX];
    self->layers_num = hp->decoder_layers_num;
    self->pre_layernorm = hp->layernorm_pre;
    self->dropout = hp->dropout;
    self->tied_output_scale = tied_output_scale;
    self->output_scale = 1.0f / sqrtf((float)hp->hidden_size);
    self->layers = tp_xcalloc((size_t)self->layers_num, sizeof *self->layers);
    for (int64_t i = 0; i < self->layers_num; i++) {
        snprintf(name, sizeof name, "%s.transformer_decoder.%lld", prefix, (long long)i);
        layer_init(&self->layers[i], build, name);
    }
    if (self->pre_layernorm) {
        tp_name(name, prefix, "layer_norm");
        tp_norm_layer_init_config(&self->final_norm, build, name, hp->hidden_size);
    }
    self->relative = hp->relative_position_embedding;
    if (self->relative) {
        tp_name(name, prefix, "self_pos_emb");
        tp_relative_position_init(&self->self_pos_emb, build, name, 0);
    }
    return self;
}

/* What one layer needs besides its input: the encoder's output and the self-attention bias. */
typedef struct decoder_step {
    tp_tensor *memory, *bias;
    const tp_model_batch *batch;
} decoder_step;

static tp_tensor *self_attention(void *state, tp_ctx *ctx, const decoder_layer *layer, tp_tensor *x)
{
    const decoder_step *step = state;
    int64_t tgt = step->batch->tgt_seq_length;
    tp_attention_inputs in = {x, x, step->batch->batch_size, tgt, tgt, TP_MASK_CAUSAL, NULL, step->bias};
    return tp_attention_layer_forward(ctx, &layer->self_attn, &in);
}

static tp_tensor *context_attention(void *state, tp_ctx *ctx, const decoder_layer *layer, tp_tensor *x)
{
    const decoder_step *step = state;
    const tp_model_batch *batch = step->batch;
    tp_attention_inputs in = {x,      step->memory, batch->batch_size, batch->tgt_seq_length, batch->seq_length,
                              TP_MASK_FULLY_VISIBLE, batch->seg, NULL};
    return tp_attention_layer_forward(ctx, &layer->context_attn, &in);
}

tp_tensor *tp_transformer_decoder_layer_forward(tp_ctx *ctx, const transformer_decoder *dec, const decoder_layer *layer,
                                                tp_tensor *x, const tp_decoder_attention *attend)
{
    float p = dec->dropout;
    void *state = attend->state;
    if (dec->pre_layernorm) {
        tp_tensor *normed = tp_norm_layer_forward(ctx, &layer->layer_norm_1, x);
        tp_tensor *h = tp_dropout_add(ctx, attend->self(state, ctx, layer, normed), p, x);
        normed = tp_norm_layer_forward(ctx, &layer->layer_norm_2, h);
        tp_tensor *m = tp_dropout_add(ctx, attend->context(state, ctx, layer, normed), p, h);
        normed = tp_norm_layer_forward(ctx, &layer->layer_norm_3, m);
        return tp_dropout_add(ctx, tp_feed_forward_forward(ctx, &layer->feed_forward, normed), p, m);
    }
    tp_tensor *h =
        tp_norm_layer_forward(ctx, &layer->layer_norm_1, tp_dropout_add(ctx, attend->self(state, ctx, layer, x), p, x));
    tp_tensor *context = attend->context(state, ctx, layer, h);
    tp_tensor *m = tp_norm_layer_forward(ctx, &layer->layer_norm_2, tp_dropout_add(ctx, context, p, h));
    tp_tensor *ff = tp_feed_forward_forward(ctx, &layer->feed_forward, m);
    return tp_norm_layer_forward(ctx, &layer->layer_norm_3, tp_dropout_add(ctx, ff, p, m));
}

tp_tensor *tp_transformer_decoder_output(tp_ctx *ctx, const transformer_decoder *dec, tp_tensor *x)
{
    if (dec->pre_layernorm) x = tp_norm_layer_forward(ctx, &dec->final_norm, x);
    return dec->tied_output_scale ? tp_scale(ctx, x, dec->output_scale) : x;
}

static tp_tensor *decoder_forward(void *self, tp_ctx *ctx, tp_tensor *x, tp_tensor *memory,
                                  const tp_model_batch *batch)
{
    transformer_decoder *dec = self;
    int64_t tgt = batch->tgt_seq_length;
    decoder_step step = {memory, dec->relative ? tp_relative_position_forward(ctx, &dec->self_pos_emb, tgt, tgt) : NULL,
                         batch};
    tp_decoder_attention attend = {self_attention, context_attention, &step};
    for (int64_t i = 0; i < dec->layers_num; i++)
        x = tp_transformer_decoder_layer_forward(ctx, dec, &dec->layers[i], x, &attend);
    return tp_transformer_decoder_output(ctx, dec, x);
}

static void decoder_destroy(void *self)
{
    transformer_decoder *dec = self;
    free(dec->layers);
    free(dec);
}

const tp_decoder_type tp_decoder_transformer = {"transformer", decoder_create, decoder_forward, decoder_destroy};
