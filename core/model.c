#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "init_t5.h"
#include "modules/layers/layers.h"
#include "modules/layers/streams.h"

/* ---- registries --------------------------------------------------------------- */

/* Every registry entry is a struct whose first member is its name. */
static const char *entry_name(const void *entry) { return *(const char *const *)entry; }

static const void *registry_find(const void *const *registry, const char *name)
{
    for (; *registry; registry++)
        if (strcmp(entry_name(*registry), name) == 0) return *registry;
    return NULL;
}

static int unknown_module(tp_config *cfg, const char *key, const char *kind, const char *name,
                          const void *const *registry)
{
    char known[512] = "";
    size_t used = 0;
    for (const void *const *entry = registry; *entry; entry++)
        used += (size_t)snprintf(known + used, used < sizeof known ? sizeof known - used : 0, "%s%s",
                                 entry == registry ? "" : ", ", entry_name(*entry));
    return tp_fail("%s: key '%s': unknown %s '%s' (known: %s)", tp_config_name(cfg), key, kind, name,
                   known[0] ? known : "none yet");
}

/* A module type listed twice would declare its parameters twice. */
static int refuse_repeats(tp_config *cfg, const char *key, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return tp_fail("%s: key '%s': '%s' is listed twice", tp_config_name(cfg), key, names[i]);
    return 0;
}

/* ---- hyper-parameters --------------------------------------------------------- */

static int require_int(tp_config *cfg, const char *key, int64_t min, int64_t max, int64_t *out)
{
    if (!tp_config_has(cfg, key))
        return tp_fail("%s: key '%s': missing (the model needs it)", tp_config_name(cfg), key);
    return tp_config_int(cfg, key, 0, min, max, out);
}

/* TencentPretrain options tp does not implement yet must keep their default. */
static int refuse_enabled(tp_config *cfg, const char *key)
{
    int enabled = 0;
    if (tp_config_bool(cfg, key, 0, &enabled) < 0) return -1;
    if (enabled) return tp_fail("%s: key '%s': true is not supported yet", tp_config_name(cfg), key);
    return 0;
}

static const char *const act_names[] = {"gelu", "gelu_fast", "relu", "silu", "quick_gelu", NULL};
static const tp_activation act_values[] = {TP_ACT_GELU, TP_ACT_GELU_FAST, TP_ACT_RELU, TP_ACT_SILU,
                                           TP_ACT_QUICK_GELU};
static const char *const positioning_names[] = {"post", "pre", NULL};
static const char *const layernorm_names[] = {"normal", "normal_torch", "t5", NULL};
static const tp_norm_kind layernorm_values[] = {TP_NORM_UNBIASED_STD, TP_NORM_TORCH, TP_NORM_RMS};
static const char *const mask_names[] = {"fully_visible", "causal", "causal_with_prefix", NULL};
static const tp_mask_kind mask_values[] = {TP_MASK_FULLY_VISIBLE, TP_MASK_CAUSAL, TP_MASK_PREFIX};
static const char *const feed_forward_names[] = {"dense", "gated", NULL};
static const char *const initializer_names[] = {"normal", "t5", NULL};

int tp_model_read_hyperparameters(tp_config *cfg, tp_model_config *hp, int64_t vocab_size)
{
    const char *file = tp_config_name(cfg);
    int64_t config_vocab = 0;
    double dropout = 0, eps = 0;
    int act = 0, positioning = 0, layernorm = 0, embedding_layernorm = 0, target_layernorm = 0, mask = 0,
        feed_forward = 0, initializer = 0;
    memset(hp, 0, sizeof *hp);
    hp->vocab_size = vocab_size;
    hp->vocab_row_multiple = 64;
    if (require_int(cfg, "hidden_size", 1, 1 << 16, &hp->hidden_size) < 0 ||
        tp_config_int(cfg, "emb_size", hp->hidden_size, 1, 1 << 16, &hp->emb_size) < 0 ||
        require_int(cfg, "feedforward_size", 1, 1 << 20, &hp->feedforward_size) < 0 ||
        require_int(cfg, "heads_num", 1, 1024, &hp->heads_num) < 0 ||
        require_int(cfg, "layers_num", 1, 1024, &hp->layers_num) < 0 ||
        tp_config_int(cfg, "max_seq_length", 512, 1, 1 << 20, &hp->max_seq_length) < 0 ||
        tp_config_int(cfg, "vocab_size", vocab_size, 1, INT32_MAX, &config_vocab) < 0 ||
        tp_config_double(cfg, "dropout", 0.1, 0.0, 0.99, &dropout) < 0 ||
        tp_config_double(cfg, "layernorm_eps", 1e-6, 0.0, 1.0, &eps) < 0 ||
        tp_config_enum(cfg, "hidden_act", "gelu", act_names, &act) < 0 ||
        tp_config_enum(cfg, "layernorm_positioning", "post", positioning_names, &positioning) < 0 ||
        tp_config_enum(cfg, "layernorm", "normal", layernorm_names, &layernorm) < 0 ||
        tp_config_enum(cfg, "embedding_layernorm", "normal", layernorm_names, &embedding_layernorm) < 0 ||
        tp_config_enum(cfg, "target_layernorm", "normal", layernorm_names, &target_layernorm) < 0 ||
        tp_config_enum(cfg, "mask", "fully_visible", mask_names, &mask) < 0 ||
        tp_config_enum(cfg, "feed_forward", "dense", feed_forward_names, &feed_forward) < 0 ||
        tp_config_bool(cfg, "tie_weights", 0, &hp->tie_weights) < 0 ||
        tp_config_bool(cfg, "remove_embedding_layernorm", 0, &hp->remove_embedding_layernorm) < 0 ||
        tp_config_bool(cfg, "remove_transformer_bias", 0, &hp->remove_transformer_bias) < 0 ||
        tp_config_bool(cfg, "parameter_sharing", 0, &hp->parameter_sharing) < 0 ||
        tp_config_bool(cfg, "factorized_embedding_parameterization", 0,
                       &hp->factorized_embedding_parameterization) < 0 ||
        tp_config_int(cfg, "position_offset", 0, 0, 1 << 20, &hp->position_offset) < 0 ||
        tp_config_bool(cfg, "remove_attention_scale", 0, &hp->remove_attention_scale) < 0 ||
        tp_config_bool(cfg, "relative_position_embedding", 0, &hp->relative_position_embedding) < 0 ||
        tp_config_int(cfg, "relative_attention_buckets_num", 32, 2, 1 << 16, &hp->relative_attention_buckets_num) < 0 ||
        tp_config_int(cfg, "relative_attention_max_distance", 128, 2, 1 << 20, &hp->relative_attention_max_distance) < 0 ||
        tp_config_int(cfg, "decoder_layers_num", hp->layers_num, 1, 1024, &hp->decoder_layers_num) < 0 ||
        tp_config_bool(cfg, "share_embedding", 0, &hp->share_embedding) < 0 ||
        tp_config_int(cfg, "attention_head_size", 0, 1, 1 << 16, &hp->attention_head_size) < 0 ||
        tp_config_bool(cfg, "scale_embedding", 0, &hp->scale_embedding) < 0 ||
        tp_config_enum(cfg, "initializer", "normal", initializer_names, &initializer) < 0 ||
        refuse_enabled(cfg, "has_residual_attention") < 0)
        return -1;
    /* Read by tp-preprocess, and by tp-convert (the Hugging Face config.json a model came from). */
    tp_config_ignore(cfg, "data_processor");
    tp_config_ignore(cfg, "huggingface");
    if (config_vocab != vocab_size)
        return tp_fail("%s: key 'vocab_size': %lld does not match the vocabulary's %lld tokens", file,
                       (long long)config_vocab, (long long)vocab_size);
    if (hp->attention_head_size == 0 && hp->hidden_size % hp->heads_num)
        return tp_fail("%s: key 'heads_num': hidden_size %lld is not divisible by %lld heads", file,
                       (long long)hp->hidden_size, (long long)hp->heads_num);
    if (hp->emb_size != hp->hidden_size && !hp->factorized_embedding_parameterization)
        return tp_fail("%s: key 'emb_size': %lld differs from hidden_size %lld, which needs "
                       "factorized_embedding_parameterization: true",
                       file, (long long)hp->emb_size, (long long)hp->hidden_size);
    if (hp->attention_head_size == 0) hp->attention_head_size = hp->hidden_size / hp->heads_num;
    hp->dropout = (float)dropout;
    hp->layernorm_eps = (float)eps;
    hp->hidden_act = act_values[act];
    hp->layernorm_pre = positioning == 1;
    hp->layernorm = layernorm_values[layernorm];
    hp->embedding_layernorm = layernorm_values[embedding_layernorm];
    hp->target_layernorm = layernorm_values[target_layernorm];
    hp->mask = mask_values[mask];
    hp->feed_forward_gated = feed_forward == 1;
    hp->initializer_t5 = initializer == 1;
    return 0;
}

/* ---- building ----------------------------------------------------------------- */

/* The embedding types listed under `key` (embedding or tgt_embedding), summed, then normed unless
 * remove_embedding_layernorm: parameters under "<key>.<name>" and "<key>.layer_norm". */
typedef struct embedding_parts {
    int *count;
    const tp_embedding_type **types;
    void **selves;
    void **norm;
} embedding_parts;

static int build_embedding_parts(const tp_model *model, tp_build *build, const char *key,
                                 const tp_embedding_type *const *registry, embedding_parts parts)
{
    const char *const *names = NULL;
    int count = 0;
    if (!tp_config_has(build->config, key))
        return tp_fail("%s: key '%s': missing (the model needs it)", tp_config_name(build->config), key);
    if (tp_config_strings(build->config, key, &names, &count) < 0) return -1;
    if (count < 1 || count > TP_MAX_PARTS)
        return tp_fail("%s: key '%s': expected 1 to %d embedding names", tp_config_name(build->config), key,
                       TP_MAX_PARTS);
    if (refuse_repeats(build->config, key, names, count) < 0) return -1;
    for (int i = 0; i < count; i++) {
        const tp_embedding_type *type = registry_find((const void *const *)registry, names[i]);
        char prefix[TP_NAME_MAX];
        if (!type) return unknown_module(build->config, key, key, names[i], (const void *const *)registry);
        snprintf(prefix, sizeof prefix, "%s.%s", key, names[i]);
        parts.types[i] = type;
        if (!(parts.selves[i] = type->create(build, prefix))) return -1;
        *parts.count = i + 1;
    }
    /* A two-stream model's dual embedding norms each stream itself. */
    if (!model->hp.remove_embedding_layernorm && !model->stream_count) {
        tp_norm_layer *norm = tp_xmalloc(sizeof *norm);
        char prefix[TP_NAME_MAX];
        snprintf(prefix, sizeof prefix, "%s.layer_norm", key);
        tp_norm_layer_init_kind(norm, build, prefix, model->hp.emb_size, model->hp.embedding_layernorm);
        *parts.norm = norm;
    }
    return 0;
}

static int build_embeddings(tp_model *model, tp_build *build)
{
    embedding_parts parts = {&model->embedding_count, model->embedding_types, model->embeddings,
                             &model->embedding_norm};
    return build_embedding_parts(model, build, "embedding", tp_embedding_registry, parts);
}

static int build_encoder(tp_model *model, tp_build *build)
{
    const char *name = NULL;
    if (tp_config_string(build->config, "encoder", NULL, &name) < 0) return -1;
    if (!name) return tp_fail("%s: key 'encoder': missing (the model needs it)", tp_config_name(build->config));
    model->encoder_type = registry_find((const void *const *)tp_encoder_registry, name);
    if (!model->encoder_type)
        return unknown_module(build->config, "encoder", "encoder", name, (const void *const *)tp_encoder_registry);
    model->encoder = model->encoder_type->create(build, "encoder");
    return model->encoder ? 0 : -1;
}

/* Encoder-decoder models: the target side's embeddings (tgt_embedding) and the decoder, both or neither. */
static int build_decoder(tp_model *model, tp_build *build)
{
    const char *name = NULL;
    if (tp_config_string(build->config, "decoder", NULL, &name) < 0) return -1;
    int has_tgt_embedding = tp_config_has(build->config, "tgt_embedding");
    if (!name && !has_tgt_embedding) return 0;
    if (!name || !has_tgt_embedding)
        return tp_fail("%s: key '%s': missing (an encoder-decoder model needs 'decoder' and 'tgt_embedding')",
                       tp_config_name(build->config), name ? "tgt_embedding" : "decoder");
    model->decoder_type = registry_find((const void *const *)tp_decoder_registry, name);
    if (!model->decoder_type)
        return unknown_module(build->config, "decoder", "decoder", name, (const void *const *)tp_decoder_registry);
    embedding_parts parts = {&model->tgt_embedding_count, model->tgt_embedding_types, model->tgt_embeddings,
                             &model->tgt_embedding_norm};
    if (build_embedding_parts(model, build, "tgt_embedding", tp_tgt_embedding_registry, parts) < 0) return -1;
    model->decoder = model->decoder_type->create(build, "decoder");
    return model->decoder ? 0 : -1;
}

static int build_targets(tp_model *model, tp_build *build)
{
    const char *const *names = NULL;
    int count = 0;
    /* A model without targets is an encoder whose hidden states are the output (tp-infer). */
    if (!tp_config_has(build->config, "target")) return 0;
    if (tp_config_strings(build->config, "target", &names, &count) < 0) return -1;
    if (count < 1 || count > TP_MAX_PARTS)
        return tp_fail("%s: key 'target': expected 1 to %d target names", tp_config_name(build->config),
                       TP_MAX_PARTS);
    if (refuse_repeats(build->config, "target", names, count) < 0) return -1;
    for (int i = 0; i < count; i++) {
        const tp_target_type *type = registry_find((const void *const *)tp_target_registry, names[i]);
        char prefix[TP_NAME_MAX];
        if (!type)
            return unknown_module(build->config, "target", "target", names[i], (const void *const *)tp_target_registry);
        snprintf(prefix, sizeof prefix, "target.%s", names[i]);
        model->target_types[i] = type;
        if (!(model->targets[i] = type->create(build, prefix))) return -1;
        model->target_count = i + 1;
    }
    return 0;
}

/* Weights, gradients and the two AdamW moments: 16 bytes per parameter.  A config whose model
 * cannot fit in this machine's memory is refused before anything is allocated. */
static int check_size(const tp_model *model, tp_config *config)
{
    double bytes = 0;
    for (int64_t i = 0; i < model->params.count; i++) bytes += 16.0 * (double)tp_numel(&model->params.items[i]->tensor);
    double memory = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (memory > 0 && bytes > memory)
        return tp_fail("%s: the model has %.3g parameters: weights, gradients and AdamW moments need %.1f GiB, more "
                       "than this machine's %.1f GiB (check hidden_size, feedforward_size, layers_num, vocabulary)",
                       tp_config_name(config), bytes / 16.0, bytes / 1073741824.0, memory / 1073741824.0);
    return 0;
}

/* Two-stream models (stream_0 and stream_1 in the config): each stream's view of the config; the
 * model's own hyper-parameters (dropout, vocabulary) are stream 0's. */
static int open_streams(tp_model *model, tp_config *config, tp_build *build)
{
    if (!tp_config_has(config, "stream_0") && !tp_config_has(config, "stream_1")) return 0;
    model->stream_count = 2;
    for (int i = 0; i < 2; i++)
        if (!(build->streams[i] = model->stream_configs[i] = tp_stream_config(config, i))) return -1;
    return 0;
}

/* A key inside stream_0 / stream_1 that no module read. */
static int check_streams_unused(const tp_model *model)
{
    for (int i = 0; i < model->stream_count; i++)
        if (tp_config_check_unused(model->stream_configs[i]) < 0) return -1;
    return 0;
}

int tp_model_build(tp_model *model, tp_config *config, int64_t vocab_size)
{
    memset(model, 0, sizeof *model);
    tp_params_init(&model->params);
    tp_build build = {.config = config, .hp = &model->hp, .params = &model->params};
    if (open_streams(model, config, &build) < 0 ||
        tp_model_read_hyperparameters(model->stream_count ? build.streams[0] : config, &model->hp, vocab_size) < 0 ||
        build_embeddings(model, &build) < 0 || build_encoder(model, &build) < 0 || build_decoder(model, &build) < 0 ||
        build_targets(model, &build) < 0 || check_streams_unused(model) < 0 || check_size(model, config) < 0) {
        tp_model_free(model);
        return -1;
    }
    return 0;
}

void tp_model_allocate(tp_model *model, const tp_backend *backend, uint64_t seed)
{
    tp_params_allocate(&model->params, backend);
    tp_params_initialize(&model->params, seed);
    if (model->hp.initializer_t5) tp_model_initialize_t5(model);
}

static void destroy_part(void (*destroy)(void *), void *self)
{
    if (!self) return;
    if (destroy)
        destroy(self);
    else
        free(self);
}

void tp_model_free(tp_model *model)
{
    for (int i = 0; i < model->embedding_count; i++)
        destroy_part(model->embedding_types[i]->destroy, model->embeddings[i]);
    free(model->embedding_norm);
    if (model->encoder_type) destroy_part(model->encoder_type->destroy, model->encoder);
    for (int i = 0; i < model->tgt_embedding_count; i++)
        destroy_part(model->tgt_embedding_types[i]->destroy, model->tgt_embeddings[i]);
    free(model->tgt_embedding_norm);
    if (model->decoder_type) destroy_part(model->decoder_type->destroy, model->decoder);
    for (int i = 0; i < model->target_count; i++) destroy_part(model->target_types[i]->destroy, model->targets[i]);
    for (int i = 0; i < model->stream_count; i++) tp_config_free(model->stream_configs[i]);
    tp_params_free(&model->params);
    memset(model, 0, sizeof *model);
}

const char *tp_model_target_name(const tp_model *model, int index) { return model->target_types[index]->name; }

int tp_model_target_index(const tp_model *model, const char *name)
{
    for (int i = 0; i < model->target_count; i++)
        if (!strcmp(model->target_types[i]->name, name)) return i;
    return -1;
}

int tp_model_has_embedding(const tp_model *model, const char *name)
{
    for (int i = 0; i < model->embedding_count; i++)
        if (!strcmp(model->embedding_types[i]->name, name)) return 1;
    return 0;
}

/* ---- running ------------------------------------------------------------------ */

/* The marked rows of tp_model_batch: each sequence's first and last real row and its masked rows. */
static void plan_marked_rows(tp_ctx *ctx, const tp_batch *batch, const int32_t *first_rows, const int32_t *last_rows,
                             tp_model_batch *out)
{
    int64_t seq = batch->seq_length, tokens = batch->batch_size * seq, per_seq = 0;
    int32_t *slot = tp_arena_alloc(&ctx->host_arena, (size_t)tokens * sizeof *slot); /* -1: unmarked */
    for (int64_t i = 0; i < tokens; i++)
        slot[i] = -1;
    for (int64_t i = 0; i < batch->mlm_count; i++)
        slot[batch->mlm_positions[i]] = 0;
    for (int64_t b = 0; b < batch->batch_size; b++) {
        slot[first_rows[b]] = slot[last_rows[b]] = 0;
        int64_t marked = 0;
        for (int64_t s = 0; s < seq; s++)
            marked += slot[b * seq + s] == 0;
        if (marked > per_seq) per_seq = marked;
    }
    if (per_seq >= seq) return; /* every row is read */
    int32_t *rows = tp_arena_alloc(&ctx->host_arena, (size_t)(batch->batch_size * per_seq) * sizeof *rows);
    for (int64_t b = 0; b < batch->batch_size; b++) {
        int64_t kept = 0;
        for (int64_t s = 0; s < seq; s++)
            if (slot[b * seq + s] == 0) {
                slot[b * seq + s] = (int32_t)(b * per_seq + kept);
                rows[b * per_seq + kept++] = (int32_t)(b * seq + s);
            }
        while (kept < per_seq)
            rows[b * per_seq + kept++] = first_rows[b];
    }
    int32_t *remapped =
        tp_arena_alloc(&ctx->host_arena, (size_t)(2 * batch->batch_size + batch->mlm_count) * sizeof *remapped);
    for (int64_t b = 0; b < batch->batch_size; b++) {
        remapped[b] = slot[first_rows[b]];
        remapped[batch->batch_size + b] = slot[last_rows[b]];
    }
    for (int64_t i = 0; i < batch->mlm_count; i++)
        remapped[2 * batch->batch_size + i] = slot[batch->mlm_positions[i]];
    out->marked_per_seq = per_seq;
    out->marked_rows = tp_ids_upload(ctx, rows, batch->batch_size * per_seq);
    out->marked_first_rows = tp_ids_upload(ctx, remapped, batch->batch_size);
    out->marked_last_rows = tp_ids_upload(ctx, remapped + batch->batch_size, batch->batch_size);
    out->marked_mlm_positions = tp_ids_upload(ctx, remapped + 2 * batch->batch_size, batch->mlm_count);
}

tp_model_batch tp_model_batch_upload(tp_ctx *ctx, const tp_batch *batch)
{
    int64_t tokens = batch->batch_size * batch->seq_length;
    /* Computed on the host, then uploaded with the batch's own arrays. */
    int32_t *positions = tp_arena_alloc(&ctx->host_arena, (size_t)tokens * sizeof *positions);
    int32_t *first_rows = tp_arena_alloc(&ctx->host_arena, (size_t)batch->batch_size * sizeof *first_rows);
    int32_t *last_rows = tp_arena_alloc(&ctx->host_arena, (size_t)batch->batch_size * sizeof *last_rows);
    for (int64_t i = 0; i < tokens; i++) positions[i] = (int32_t)(i % batch->seq_length);
    for (int64_t b = 0; b < batch->batch_size; b++) {
        first_rows[b] = last_rows[b] = (int32_t)(b * batch->seq_length);
        for (int64_t s = 0; s < batch->seq_length; s++)
            if (batch->seg[b * batch->seq_length + s]) last_rows[b] = (int32_t)(b * batch->seq_length + s);
    }
    tp_model_batch out = {
        .batch_size = batch->batch_size,
        .seq_length = batch->seq_length,
        .src = batch->src ? tp_ids_upload(ctx, batch->src, tokens) : NULL,
        .seg = tp_ids_upload(ctx, batch->seg, tokens),
        .positions = tp_ids_upload(ctx, positions, tokens),
        .mlm_positions = tp_ids_upload(ctx, batch->mlm_positions, batch->mlm_count),
        .mlm_labels = tp_ids_upload(ctx, batch->mlm_labels, batch->mlm_count),
        .mlm_count = batch->mlm_count,
        .sp_labels = batch->sp_labels ? tp_ids_upload(ctx, batch->sp_labels, batch->batch_size) : NULL,
        .labels = batch->labels ? tp_ids_upload(ctx, batch->labels, batch->batch_size) : NULL,
        .targets = batch->targets ? tp_floats_upload(ctx, batch->targets, batch->batch_size * batch->target_width)
                                  : NULL,
        .target_width = batch->target_width,
        /* seq2seq batches: tags are over the decoder's B * tgt_seq_length rows */
        .tags = batch->tags ? tp_ids_upload(ctx, batch->tags,
                                            batch->tgt_src ? batch->batch_size * batch->tgt_seq_length : tokens)
                            : NULL,
        .tgt_seq_length = batch->tgt_seq_length,
        .tgt_src = batch->tgt_src ? tp_ids_upload(ctx, batch->tgt_src, batch->batch_size * batch->tgt_seq_length)
                                  : NULL,
        .first_rows = tp_ids_upload(ctx, first_rows, batch->batch_size),
        .last_rows = tp_ids_upload(ctx, last_rows, batch->batch_size),
        .pixels = batch->pixels,
        .pixel_width = batch->pixel_width,
        .audio = batch->audio,
        .audio_frames = batch->audio_frames,
        .audio_feature_size = batch->audio_feature_size,
    };
    plan_marked_rows(ctx, batch, first_rows, last_rows, &out);
    return out;
}

/* The sum of the embedding parts, normed (when there is a norm) and dropped out. */
static tp_tensor *embed(const tp_model *model, tp_ctx *ctx, const tp_model_batch *batch, int count,
                        const tp_embedding_type *const *types, void *const *selves, const tp_norm_layer *norm)
{
    tp_tensor *embedded = NULL;
    for (int i = 0; i < count; i++) {
        tp_tensor *part = types[i]->forward(selves[i], ctx, batch);
        embedded = embedded ? tp_add(ctx, embedded, part) : part;
    }
    if (norm) embedded = tp_norm_layer_forward(ctx, norm, embedded);
    return tp_dropout(ctx, embedded, model->hp.dropout);
}

tp_tensor *tp_model_embed_target(tp_model *model, tp_ctx *ctx, const tp_model_batch *batch)
{
    return embed(model, ctx, batch, model->tgt_embedding_count, model->tgt_embedding_types, model->tgt_embeddings,
                 model->tgt_embedding_norm);
}

tp_tensor *tp_model_encode(tp_model *model, tp_ctx *ctx, const tp_model_batch *batch)
{
    tp_tensor *embedded = embed(model, ctx, batch, model->embedding_count, model->embedding_types, model->embeddings,
                                model->embedding_norm);
    return model->encoder_type->forward(model->encoder, ctx, embedded, batch);
}

/* A two-stream model: each stream through the dual embedding and encoder (hidden is stream 0's
 * output); returns the batch the targets get, *view, which holds both outputs. */
static const tp_model_batch *encode_streams(tp_model *model, tp_ctx *ctx, const tp_model_batch *batch,
                                            tp_model_batch *view, tp_model_output *out)
{
    *view = *batch;
    for (int i = 0; i < model->stream_count; i++) {
        view->stream = i;
        out->stream_hidden[i] = tp_model_encode(model, ctx, view);
    }
    view->stream = 0;
    view->stream_hidden = out->stream_hidden;
    out->hidden = out->stream_hidden[0];
    return view;
}

/* Whether the encoder may skip the rows no target reads (tp_model_forward). */
static int marked_rows_suffice(const tp_model *model, const tp_model_batch *batch)
{
    if (!batch->targets_only || !batch->marked_per_seq || model->stream_count || model->decoder_type ||
        !model->target_count)
        return 0;
    for (int i = 0; i < model->target_count; i++) {
        const tp_target_type *type = model->target_types[i];
        if (!type->reads_marked_rows || !type->reads_marked_rows(model->targets[i])) return 0;
    }
    return 1;
}

/* The encoder asked for the marked rows alone; returns the batch the targets get, *view, whose rows
 * index what the encoder returned. */
static const tp_model_batch *encode_marked_rows(tp_model *model, tp_ctx *ctx, const tp_model_batch *batch,
                                                tp_model_batch *view, tp_model_output *out)
{
    *view = *batch;
    view->keep_per_seq = batch->marked_per_seq;
    view->keep_rows = batch->marked_rows;
    out->hidden = tp_model_encode(model, ctx, view);
    if (tp_rows(out->hidden) == batch->batch_size * batch->marked_per_seq) {
        view->first_rows = batch->marked_first_rows;
        view->last_rows = batch->marked_last_rows;
        view->mlm_positions = batch->marked_mlm_positions;
    }
    return view;
}

int tp_model_forward(tp_model *model, tp_ctx *ctx, const tp_model_batch *batch, tp_model_output *out)
{
    tp_model_batch view;
    memset(out, 0, sizeof *out);
    if (model->stream_count)
        batch = encode_streams(model, ctx, batch, &view, out);
    else if (marked_rows_suffice(model, batch))
        batch = encode_marked_rows(model, ctx, batch, &view, out);
    else
        out->hidden = tp_model_encode(model, ctx, batch);
    if (model->decoder_type) {
        out->hidden = model->decoder_type->forward(model->decoder, ctx, tp_model_embed_target(model, ctx, batch),
                                                   out->hidden, batch);
    }
    for (int i = 0; i < model->target_count; i++) {
        if (model->target_types[i]->forward(model->targets[i], ctx, out->hidden, batch, &out->results[i]) < 0)
            return -1;
        tp_tensor *loss = out->results[i].loss; /* NULL when the batch has no labels for it (inference) */
        if (loss) out->loss = out->loss ? tp_add(ctx, out->loss, loss) : loss;
    }
    return 0;
}
