/* The "transformer" decoder's state (modules/decoders/transformer.c), shared with incremental
 * decoding (core/generate_seq2seq.c), which runs the same layers one position at a time with
 * caches: a tp_model whose decoder_type is &tp_decoder_transformer holds a tp_transformer_decoder. */
#ifndef TP_DECODERS_TRANSFORMER_H
#define TP_DECODERS_TRANSFORMER_H

#include "modules/layers/layers.h"
#include "modules/layers/relative_position.h"

typedef struct tp_transformer_decoder_layer {
    tp_self_attention self_attn, context_attn;
    tp_norm_layer layer_norm_1, layer_norm_2, layer_norm_3;
    tp_feed_forward feed_forward;
} tp_transformer_decoder_layer;

typedef struct tp_transformer_decoder {
    int64_t layers_num;
    int pre_layernorm, relative, tied_output_scale;
    float dropout, output_scale;
    tp_transformer_decoder_layer *layers;
    tp_norm_layer final_norm; /* pre-LN only */
    tp_relative_position self_pos_emb;
} tp_transformer_decoder;

/* How a layer attends: the full decoder runs both attentions over whole sequences; incremental
 * decoding over its caches.  Each returns the attention layer's output for x. */
typedef struct tp_decoder_attention {
    tp_tensor *(*self)(void *state, tp_ctx *ctx, const tp_transformer_decoder_layer *layer, tp_tensor *x);
    tp_tensor *(*context)(void *state, tp_ctx *ctx, const tp_transformer_decoder_layer *layer, tp_tensor *x);
    void *state;
} tp_decoder_attention;

/* One layer (pre- or post-LN, dropout when ctx->training) with the given attentions. */
tp_tensor *tp_transformer_decoder_layer_forward(tp_ctx *ctx, const tp_transformer_decoder *dec,
                                                const tp_transformer_decoder_layer *layer, tp_tensor *x,
                                                const tp_decoder_attention *attend);
/* After the last layer: the final norm (pre-LN) and tied_output_scale. */
tp_tensor *tp_transformer_decoder_output(tp_ctx *ctx, const tp_transformer_decoder *dec, tp_tensor *x);

extern const tp_decoder_type tp_decoder_transformer;

#endif
