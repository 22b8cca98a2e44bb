/* Building blocks shared by the modules: linear, layer norm, multi-head
 * self-attention, position-wise feed-forward.  Each declares its parameters
 * under a prefix with TencentPretrain's names and runs through the op API. */
#ifndef TP_LAYERS_H
#define TP_LAYERS_H

#include <stdlib.h>

#include "core/error.h"
#include "core/model.h"

typedef struct tp_linear_layer {
    tp_tensor *weight, *bias; /* bias NULL when disabled */
} tp_linear_layer;

/* "<prefix>.weight" [out, in] and "<prefix>.bias" [out]. */
void tp_linear_layer_init(tp_linear_layer *layer, tp_build *build, const char *prefix, int64_t in, int64_t out,
                          int with_bias);
static inline tp_tensor *tp_linear_layer_forward(tp_ctx *ctx, const tp_linear_layer *layer, tp_tensor *x)
{
    return tp_linear(ctx, x, layer->weight, layer->bias);
}

typedef struct tp_norm_layer {
    tp_tensor *gamma, *beta;
    tp_norm_kind kind;
    float eps;
} tp_norm_layer;

/* TencentPretrain "normal": "<prefix>.gamma" / "<prefix>.beta"; "normal_torch": ".weight" / ".bias";
 * "t5" (RMS): ".weight" alone (beta NULL). */
void tp_norm_layer_init(tp_norm_layer *layer, tp_build *build, const char *prefix, int64_t size, tp_norm_kind kind,
                        float eps);
/* The encoder's norms: the config's `layernorm` kind and `layernorm_eps`. */
static inline void tp_norm_layer_init_config(tp_norm_layer *layer, tp_build *build, const char *prefix, int64_t size)
{
    tp_norm_layer_init(layer, build, prefix, size, build->hp->layernorm, build->hp->layernorm_eps);
}
/* The embedding's and the targets' norms: TencentPretrain's own LayerNorm has a fixed eps of
 * 1e-6; torch norms (Hugging Face models) take layernorm_eps. */
static inline void tp_norm_layer_init_kind(tp_norm_layer *layer, tp_build *build, const char *prefix, int64_t size,
                                           tp_norm_kind kind)
{
    tp_norm_layer_init(layer, build, prefix, size, kind, kind == TP_NORM_TORCH ? build->hp->layernorm_eps : 1e-6f);
}
static inline tp_tensor *tp_norm_layer_forward(tp_ctx *ctx, const tp_norm_layer *layer, tp_tensor *x)
{
    return tp_layer_norm(ctx, x, layer->gamma, layer->beta, layer->kind, layer->eps);
}

/* query, key, value: hidden_size -> heads_num * attention_head_size; final_linear back. */
typedef struct tp_self_attention {
    tp_linear_layer query, key, value, output; /* linear_layers.0/1/2, final_linear */
    int64_t heads;
    float dropout;
    float scale;  /* 1/sqrt(attention_head_size); 1 with remove_attention_scale (T5) */
    tp_mask_kind mask;
} tp_self_attention;

void tp_self_attention_init(tp_self_attention *attn, tp_build *build, const char *prefix);
/* The layer with queries from x [batch*seq, hidden] and keys and values from memory
 * [batch*kv_seq, hidden] (x itself for self-attention; the encoder's output for a decoder's
 * context attention), under `mask`, key_valid [batch*kv_seq] (or NULL) and an optional position
 * bias [seq*kv_seq, heads] (T5). */
typedef struct tp_attention_inputs {
    tp_tensor *x, *memory;
    int64_t batch, seq, kv_seq;
    tp_mask_kind mask;
    const int32_t *key_valid;
    tp_tensor *bias;
} tp_attention_inputs;
tp_tensor *tp_attention_layer_forward(tp_ctx *ctx, const tp_self_attention *attn, const tp_attention_inputs *in);

/* "dense": linear_2(act(linear_1(x)));  "gated" (T5 v1.1): linear_2(act(linear_gate(x)) * linear_1(x)). */
typedef struct tp_feed_forward {
    tp_linear_layer linear_gate, linear_1, linear_2;
    tp_activation act;
    int gated;
} tp_feed_forward;

void tp_feed_forward_init(tp_feed_forward *ff, tp_build *build, const char *prefix);
tp_tensor *tp_feed_forward_forward(tp_ctx *ctx, const tp_feed_forward *ff, tp_tensor *x);

/* TencentPretrain's sequence-level fine-tuning head (cls target, run_classifier*.py,
 * run_regression.py): pool the encoder output (`pooling`: first, mean, max or last real token)
 * -> linear_1 -> tanh -> linear_2 with `outputs` columns.  Mean, max and last use the real tokens
 * only; TencentPretrain weights segment-B tokens twice in "mean" and indexes "last" by the
 * sequence's segment sum, which is wrong for sentence pairs -- tp does not copy that. */
/* patch_mean (tp extension; BEiT's use_mean_pooling): the mean of every row but each sequence's first --
 * an image's patches without its class token; image batches only (it counts every other row as real). */
typedef enum tp_pooling {
    TP_POOLING_FIRST,
    TP_POOLING_MEAN,
    TP_POOLING_MAX,
    TP_POOLING_LAST,
    TP_POOLING_PATCH_MEAN,
} tp_pooling;
/* The config's `pooling` (first, mean, max, last or patch_mean; default first); -1 + tp_fail naming the key. */
int tp_pooling_read(tp_config *config, tp_pooling *out);
/* hidden [batch*seq, cols] pooled per sequence -> [batch, cols]. */
tp_tensor *tp_pooling_forward(tp_ctx *ctx, tp_pooling pooling, tp_tensor *hidden, const tp_model_batch *batch);

typedef struct tp_pooled_head {
    tp_linear_layer linear_1, linear_2;
    tp_norm_layer layer_norm; /* with pooled_layernorm */
    tp_pooling pooling;
    int pooler; /* linear_1 -> tanh before linear_2 (tp key `pooler`, default true) */
    int pooled_layernorm; /* a torch layer norm right after the pooling (tp key, default false) */
    int64_t outputs;
} tp_pooled_head;

/* Reads the config's `pooling` (default first), `pooler` (default true; false: pooling ->
 * linear_2 alone, Hugging Face's ViTForImageClassification head) and `pooled_layernorm` (default
 * false; true: a torch layer norm "<prefix>.layer_norm" (layernorm_eps) on the pooled rows,
 * Hugging Face BEiT's mean-pooling head); declares "<prefix>.linear_1" [hidden, hidden] (with the
 * pooler) and "<prefix>.linear_2" [outputs, hidden].  -1 + tp_fail on a bad config. */
int tp_pooled_head_init(tp_pooled_head *head, tp_build *build, const char *prefix, int64_t outputs);
/* tp_target_type.reads_marked_rows of a target whose struct starts with its tp_pooled_head: first and last
 * pooling read one marked row per sequence, the others every row. */
int tp_pooled_target_reads_marked_rows(const void *target);
/* tp_target_type.reads_marked_rows of a target that reads only marked rows whatever its config (mlm, sp). */
int tp_target_reads_marked_rows(const void *target);
/* [batch, outputs] */
tp_tensor *tp_pooled_head_forward(tp_ctx *ctx, const tp_pooled_head *head, tp_tensor *hidden,
                                  const tp_model_batch *batch);

/* An embedding table "<prefix>.embedding.weight" [rows (padded to row_multiple), emb_size]
 * looked up by one of the batch's id arrays: the shape of word, pos and seg embeddings. */
typedef const int32_t *(*tp_batch_ids_fn)(const tp_model_batch *batch);
typedef struct tp_lookup_embedding {
    tp_tensor *table;
    tp_batch_ids_fn ids;
    float scale; /* rows times scale: sqrt(emb_size) for word tables with scale_embedding, else 1 */
} tp_lookup_embedding;

void *tp_lookup_embedding_create(tp_build *build, const char *prefix, int64_t rows, int64_t row_multiple,
                                 tp_batch_ids_fn ids);
tp_tensor *tp_lookup_embedding_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch);
/* The table's rows for n ids, times the scale. */
tp_tensor *tp_lookup_embedding_rows(tp_ctx *ctx, const tp_lookup_embedding *lookup, const int32_t *ids, int64_t n);

/* Fixed sinusoidal positions (no parameters), computed in double and rounded to float, the rows up
 * to max_seq_length once (modules/layers/sinusoid.c has the formulas):
 *  - "sinusoidalpos": w_k = 10000^(-2k/E) (E = emb_size), sin and cos interleaved in columns 2k and
 *    2k+1 (TencentPretrain's layout, the default) or, with `sinusoidalpos_layout: split` (Hugging
 *    Face Pegasus's and Marian's), the sines in columns k < ceil(E/2) and the cosines after them;
 *  - "fairseq_sinusoidalpos" (fairseq's, which Hugging Face Speech2Text copies): h = E/2
 *    frequencies 10000^(-i/(h-1)), sines then cosines, token s at position s + position_offset
 *    (Speech2Text: padding_idx + 1 = 2). */
typedef enum { TP_SINUSOID_INTERLEAVED, TP_SINUSOID_SPLIT, TP_SINUSOID_FAIRSEQ } tp_sinusoid_layout;

typedef struct tp_sinusoid_embedding {
    float *table; /* [rows, width] */
    int64_t rows, width, offset;
    tp_sinusoid_layout layout;
} tp_sinusoid_embedding;

/* layout TP_SINUSOID_FAIRSEQ, or any other for "sinusoidalpos" (then the config's
 * sinusoidalpos_layout decides); NULL + tp_fail naming the config on a bad key. */
void *tp_sinusoid_embedding_create(tp_build *build, tp_sinusoid_layout layout);
/* [batch * seq, width]: positions 0..seq-1 of every sequence. */
tp_tensor *tp_sinusoid_embedding_forward(const tp_sinusoid_embedding *self, tp_ctx *ctx, int64_t batch, int64_t seq);
void tp_sinusoid_embedding_destroy(void *self);

/* snprintf into a fixed buffer for parameter names. */
#define TP_NAME_MAX 256
void tp_name(char *out, const char *prefix, const char *suffix);

#endif
