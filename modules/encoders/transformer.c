/* "transformer": a stack of layers_num transformer layers.
 *   post-LN (BERT): h = LN1(x + drop(attn(x)));  y = LN2(h + drop(ff(h)))
 *   pre-LN:         h = x + drop(attn(LN1(x)));  y = h + drop(ff(LN2(h)));  final encoder.layer_norm
 *                   (tp key final_layernorm, default true; false: none, Hugging Face BEiT with mean pooling)
 * BEiT's layer scale (tp key layer_scale_init: the start value; 0, the default, leaves it out):
 * drop(attn(...)) and drop(ff(...)) are multiplied per channel by encoder.transformer.{i}.gamma_1
 * and gamma_2 [1, hidden_size] (Hugging Face's lambda_1, lambda_2) before the residual sum.
 * ALBERT (TencentPretrain's names): factorized_embedding_parameterization maps the emb_size
 * input to hidden_size first (encoder.linear); parameter_sharing declares one layer,
 * encoder.transformer.* without an index, and runs it layers_num times (its gradients
 * accumulate over the uses, as every backward kernel adds into its buffers).
 * T5 (relative_position_embedding): one bidirectional bias table, encoder.relative_pos_emb, whose
 * bias every layer's self-attention adds to its scores.
 * BEiT (tp key relative_position_bias: none, the default; shared: one table,
 * encoder.relative_position_bias_table, for every layer; layer: one per layer,
 * encoder.transformer.{i}.self_attn.relative_position_bias_table): the 2-D offset bias of the class
 * token + the patch grid (image_height, image_width, patch_size; modules/layers/relative_position.h).
 * When the targets read only some rows (batch->keep_rows, set by tp_model_forward), the last layer computes
 * those alone: their queries attend to every row's keys and values, and the layer returns
 * [B * keep_per_seq, hidden].  Only under the fully visible mask without a position bias, where a
 * query's own position plays no part; otherwise every row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/layers/layers.h"
#include "modules/layers/patches.h"
#include "modules/layers/relative_position.h"

typedef struct transformer_layer {
    tp_self_attention self_attn;
    tp_norm_layer layer_norm_1, layer_norm_2;
    tp_feed_forward feed_forward;
    tp_tensor *gamma_1, *gamma_2; /* layer scale, or NULL */
    tp_relative_position relative_bias; /* relative_position_bias layer: its table */
} transformer_layer;

typedef enum { GRID_BIAS_NONE, GRID_BIAS_SHARED, GRID_BIAS_LAYER } grid_bias_kind;

typedef struct transformer_encoder {
    int64_t layers_num;
    int pre_layernorm, parameter_sharing;
    int factorized; /* input_linear maps emb_size -> hidden_size */
    tp_linear_layer input_linear;
    float dropout;
    transformer_layer *layers;
    tp_norm_layer final_norm; /* pre-LN with final_layernorm only */
    int final_layernorm;
    int relative;
    tp_relative_position relative_pos_emb; /* T5's, or BEiT's shared table */
    grid_bias_kind grid_bias;
    int64_t grid_rows, grid_cols, grid_seq; /* BEiT: the patch grid; the class token + the patches */
} transformer_encoder;

/* BEiT's keys: layer_scale_init, relative_position_bias (with the image geometry it needs) and
 * final_layernorm. */
static int read_beit_keys(tp_build *build, const char *prefix, transformer_encoder *self, double *layer_scale)
{
    static const char *const kinds[] = {"none", "shared", "layer", NULL};
    int kind = 0;
    if (tp_config_double(build->config, "layer_scale_init", 0.0, 0.0, 1e6, layer_scale) < 0 ||
        tp_config_bool(build->config, "final_layernorm", 1, &self->final_layernorm) < 0 ||
        tp_config_enum(build->config, "relative_position_bias", "none", kinds, &kind) < 0)
        return -1;
    self->grid_bias = (grid_bias_kind)kind;
    if (self->grid_bias == GRID_BIAS_NONE) return 0;
    if (build->hp->relative_position_embedding)
        return tp_fail("%s: key 'relative_position_bias': BEiT's bias and T5's relative_position_embedding exclude "
                       "each other", tp_config_name(build->config));
    tp_patch_projection grid;
    if (tp_patch_geometry_read(build->config, &grid) < 0) return -1;
    self->grid_rows = grid.grid_rows;
    self->grid_cols = grid.grid_cols;
    self->grid_seq = tp_patch_image_rows(&grid);
    if (self->grid_bias == GRID_BIAS_SHARED)
        tp_relative_position_init_grid(&self->relative_pos_emb, build, prefix, grid.grid_rows, grid.grid_cols);
    return 0;
}

static void layer_scale_init(transformer_layer *layer, tp_build *build, const char *layer_prefix, double value)
{
    char name[TP_NAME_MAX];
    int64_t shape[2] = {1, build->hp->hidden_size};
    tp_name(name, layer_prefix, "gamma_1");
    layer->gamma_1 = tp_param_new_constant(build->params, name, 2, shape, (float)value);
    tp_name(name, layer_prefix, "gamma_2");
    layer->gamma_2 = tp_param_new_constant(build->params, name, 2, shape, (float)value);
}

static void *transformer_create(tp_build *build, const char *prefix)
{
    const tp_model_config *hp = build->hp;
    transformer_encoder *self = tp_xcalloc(1, sizeof *self);
    char name[TP_NAME_MAX];
    int64_t declared = hp->parameter_sharing ? 1 : hp->layers_num;
    double layer_scale = 0.0;
    if (read_beit_keys(build, prefix, self, &layer_scale) < 0) {
        free(self);
        return NULL;
    }
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
        if (self->grid_bias == GRID_BIAS_LAYER)
            tp_relative_position_init_grid(&layer->relative_bias, build, name, self->grid_rows, self->grid_cols);
        tp_name(name, layer_prefix, "layer_norm_1");
        tp_norm_layer_init_config(&layer->layer_norm_1, build, name, hp->hidden_size);
        tp_name(name, layer_prefix, "feed_forward");
        tp_feed_forward_init(&layer->feed_forward, build, name);
        tp_name(name, layer_prefix, "layer_norm_2");
        tp_norm_layer_init_config(&layer->layer_norm_2, build, name, hp->hidden_size);
        if (layer_scale > 0) layer_scale_init(layer, build, layer_prefix, layer_scale);
    }
    self->final_layernorm &= self->pre_layernorm;
    if (self->final_layernorm) {
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

/* x's rows the layer computes: every row, or the batch's keep_rows (the last layer, when the targets read
 * no others). */
typedef struct row_selection {
    const int32_t *rows; /* NULL: every row */
    int64_t per_seq;
} row_selection;

static tp_tensor *selected(tp_ctx *ctx, tp_tensor *x, row_selection sel, int64_t batch_size)
{
    return sel.rows ? tp_gather_rows(ctx, x, sel.rows, batch_size * sel.per_seq) : x;
}

/* The selected rows' queries attend to every row's keys and values: under the fully visible mask a
 * query's position plays no part. */
static tp_tensor *self_attention(tp_ctx *ctx, const transformer_layer *layer, tp_tensor *x, const tp_model_batch *batch,
                                 tp_tensor *bias, row_selection sel)
{
    int64_t seq = batch->seq_length;
    tp_attention_inputs in = {selected(ctx, x, sel, batch->batch_size),
                              x,
                              batch->batch_size,
                              sel.rows ? sel.per_seq : seq,
                              seq,
                              layer->self_attn.mask,
                              batch->seg,
                              bias};
    return tp_attention_layer_forward(ctx, &layer->self_attn, &in);
}

/* gamma [1, cols] * x [rows, cols] per channel (x itself without a layer scale): gamma gathered into
 * every row, then an element-wise product, so that the gather's scatter-add sums gamma's gradient
 * over the rows -- existing ops, at the cost of one [rows, cols] buffer. */
static tp_tensor *layer_scaled(tp_ctx *ctx, tp_tensor *gamma, tp_tensor *x)
{
    if (!gamma) return x;
    int64_t rows = tp_rows(x);
    int32_t *zeros = tp_arena_alloc(&ctx->host_arena, (size_t)rows * sizeof *zeros);
    memset(zeros, 0, (size_t)rows * sizeof *zeros);
    return tp_mul(ctx, tp_embedding(ctx, gamma, tp_ids_upload(ctx, zeros, rows), rows), x);
}

/* residual + gamma * dropout(branch): with LayerScale's gamma three ops, without it one
 * (tp_dropout_add, which keeps no separate dropped copy). */
static tp_tensor *add_branch(tp_ctx *ctx, const transformer_encoder *enc, tp_tensor *gamma, tp_tensor *branch,
                             tp_tensor *residual)
{
    if (!gamma) return tp_dropout_add(ctx, branch, enc->dropout, residual);
    return tp_add(ctx, layer_scaled(ctx, gamma, tp_dropout(ctx, branch, enc->dropout)), residual);
}

static tp_tensor *layer_forward(tp_ctx *ctx, const transformer_encoder *enc, const transformer_layer *layer,
                                tp_tensor *x, const tp_model_batch *batch, tp_tensor *bias, row_selection sel)
{
    if (enc->grid_bias == GRID_BIAS_LAYER)
        bias = tp_relative_position_forward(ctx, &layer->relative_bias, enc->grid_seq, enc->grid_seq);
    tp_tensor *residual = selected(ctx, x, sel, batch->batch_size);
    if (enc->pre_layernorm) {
        tp_tensor *normed = tp_norm_layer_forward(ctx, &layer->layer_norm_1, x);
        tp_tensor *attended = self_attention(ctx, layer, normed, batch, bias, sel);
        tp_tensor *h = add_branch(ctx, enc, layer->gamma_1, attended, residual);
        tp_tensor *ff_in = tp_norm_layer_forward(ctx, &layer->layer_norm_2, h);
        return add_branch(ctx, enc, layer->gamma_2, tp_feed_forward_forward(ctx, &layer->feed_forward, ff_in), h);
    }
    tp_tensor *attended = self_attention(ctx, layer, x, batch, bias, sel);
    tp_tensor *h =
        tp_norm_layer_forward(ctx, &layer->layer_norm_1, add_branch(ctx, enc, layer->gamma_1, attended, residual));
    tp_tensor *ff = tp_feed_forward_forward(ctx, &layer->feed_forward, h);
    return tp_norm_layer_forward(ctx, &layer->layer_norm_2, add_branch(ctx, enc, layer->gamma_2, ff, h));
}

static tp_tensor *transformer_forward(void *self, tp_ctx *ctx, tp_tensor *x, const tp_model_batch *batch)
{
    transformer_encoder *enc = self;
    tp_tensor *bias = NULL;
    if (enc->relative)
        bias = tp_relative_position_forward(ctx, &enc->relative_pos_emb, batch->seq_length, batch->seq_length);
    else if (enc->grid_bias == GRID_BIAS_SHARED) /* a batch of another length fails attention's shape check */
        bias = tp_relative_position_forward(ctx, &enc->relative_pos_emb, enc->grid_seq, enc->grid_seq);
    if (enc->factorized) x = tp_linear_layer_forward(ctx, &enc->input_linear, x);
    row_selection every_row = {NULL, 0}, last = every_row;
    if (batch->keep_rows && !bias && enc->grid_bias == GRID_BIAS_NONE &&
        enc->layers[0].self_attn.mask == TP_MASK_FULLY_VISIBLE)
        last = (row_selection){batch->keep_rows, batch->keep_per_seq};
    for (int64_t i = 0; i < enc->layers_num; i++)
        x = layer_forward(ctx, enc, &enc->layers[enc->parameter_sharing ? 0 : i], x, batch, bias,
                          i == enc->layers_num - 1 ? last : every_row);
    return enc->final_layernorm ? tp_norm_layer_forward(ctx, &enc->final_norm, x) : x;
}

static void transformer_destroy(void *self)
{
    transformer_encoder *enc = self;
    free(enc->layers);
    free(enc);
}

const tp_encoder_type tp_encoder_transformer = {"transformer", transformer_create, transformer_forward,
                                                transformer_destroy};
