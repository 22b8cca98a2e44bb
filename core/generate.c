/* Incremental decoding with a key/value cache, and transformers' token choice (core/generate.h). */
#include "generate.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rng.h"

typedef struct norm_weights {
    tp_tensor *gain, *bias;
    tp_norm_kind kind;
    float eps;
} norm_weights;

typedef struct decoder_layer {
    norm_weights norm_1, norm_2;
    tp_tensor *weight[6], *bias[6]; /* query, key, value, attention output, feed-forward 1 and 2 */
    float *keys, *values;           /* [batch, capacity, hidden] */
} decoder_layer;

enum { QUERY, KEY, VALUE, OUTPUT, FF_1, FF_2 };

struct tp_lm_decoder {
    const tp_model *model;
    const tp_backend *backend;
    int64_t batch, capacity, length;
    tp_tensor *word, *pos, *output;
    norm_weights embedding_norm, final_norm; /* gain NULL: none */
    decoder_layer *layers;
    tp_ctx ctx;
};

static tp_tensor *param(const tp_model *model, const char *name)
{
    tp_param *found = tp_params_find(&model->params, name);
    return found ? &found->tensor : NULL;
}

static int find_norm(const tp_model *model, const char *prefix, tp_norm_kind kind, float eps, norm_weights *out)
{
    char gain[256], bias[256];
    int torch = kind == TP_NORM_TORCH;
    snprintf(gain, sizeof gain, "%s.%s", prefix, torch ? "weight" : "gamma");
    snprintf(bias, sizeof bias, "%s.%s", prefix, torch ? "bias" : "beta");
    *out = (norm_weights){param(model, gain), param(model, bias), kind, eps};
    return out->gain && out->bias ? 0 : tp_fail("the model has no layer norm '%s'", prefix);
}

static int find_layer(const tp_model *model, int64_t index, decoder_layer *layer)
{
    static const char *const linears[6] = {"self_attn.linear_layers.0", "self_attn.linear_layers.1",
                                           "self_attn.linear_layers.2", "self_attn.final_linear",
                                           "feed_forward.linear_1",     "feed_forward.linear_2"};
    const tp_model_config *hp = &model->hp;
    char prefix[128], name[256];
    snprintf(prefix, sizeof prefix, "encoder.transformer.%lld", (long long)index);
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "%s.%s.weight", prefix, linears[i]);
        if (!(layer->weight[i] = param(model, name))) return tp_fail("the model has no '%s'", name);
        snprintf(name, sizeof name, "%s.%s.bias", prefix, linears[i]);
        layer->bias[i] = param(model, name); /* NULL with remove_transformer_bias */
    }
    snprintf(name, sizeof name, "%s.layer_norm_1", prefix);
    if (find_norm(model, name, hp->layernorm, hp->layernorm_eps, &layer->norm_1) < 0) return -1;
    snprintf(name, sizeof name, "%s.layer_norm_2", prefix);
    return find_norm(model, name, hp->layernorm, hp->layernorm_eps, &layer->norm_2);
}

/* What the decoder runs: word (+ pos) embeddings, a causal transformer, the lm target. */
static int check_model(const tp_model *model)
{
    const tp_model_config *hp = &model->hp;
    if (hp->mask != TP_MASK_CAUSAL) return tp_fail("generation needs a causal model (mask: causal)");
    if (hp->parameter_sharing || hp->factorized_embedding_parameterization)
        return tp_fail("generation does not support parameter_sharing or factorized embeddings");
    if (param(model, "embedding.seg.embedding.weight")) return tp_fail("generation does not support a 'seg' embedding");
    /* the caches and the attention below are hidden_size wide, and the logits have no bias */
    if (hp->heads_num * hp->attention_head_size != hp->hidden_size)
        return tp_fail("causal generation needs heads_num x attention_head_size = hidden_size (%lld x %lld != %lld)",
                       (long long)hp->heads_num, (long long)hp->attention_head_size, (long long)hp->hidden_size);
    if (param(model, "target.lm.output_layer.bias"))
        return tp_fail("causal generation does not support an lm output bias (has_lmtarget_bias)");
    for (int i = 0; i < model->target_count; i++)
        if (!strcmp(tp_model_target_name(model, i), "lm")) return 0;
    return tp_fail("generation needs the lm target (target: [\"lm\"])");
}

static int find_weights(tp_lm_decoder *d)
{
    const tp_model *model = d->model;
    const tp_model_config *hp = &model->hp;
    d->word = param(model, "embedding.word.embedding.weight");
    d->pos = param(model, "embedding.pos.embedding.weight");
    d->output = param(model, "target.lm.output_layer.weight");
    if (!d->output) d->output = d->word; /* tie_weights */
    if (!d->word) return tp_fail("the model has no 'word' embedding");
    if (!hp->remove_embedding_layernorm &&
        find_norm(model, "embedding.layer_norm", hp->embedding_layernorm,
                  hp->embedding_layernorm == TP_NORM_TORCH ? hp->layernorm_eps : 1e-6f, &d->embedding_norm) < 0)
        return -1;
    if (hp->layernorm_pre && find_norm(model, "encoder.layer_norm", hp->layernorm, hp->layernorm_eps, &d->final_norm) < 0)
        return -1;
    for (int64_t i = 0; i < hp->layers_num; i++)
        if (find_layer(model, i, &d->layers[i]) < 0) return -1;
    return 0;
}

tp_lm_decoder *tp_lm_decoder_create(const tp_model *model, int64_t batch)
{
    if (check_model(model) < 0) return NULL;
    const tp_model_config *hp = &model->hp;
    tp_lm_decoder *d = tp_xcalloc(1, sizeof *d);
    d->model = model;
    d->backend = model->params.backend;
    d->batch = batch;
    d->capacity = hp->max_seq_length;
    d->layers = tp_xcalloc((size_t)hp->layers_num, sizeof *d->layers);
    if (find_weights(d) < 0) {
        free(d->layers);
        free(d);
        return NULL;
    }
    size_t cache_bytes = (size_t)(batch * d->capacity * hp->hidden_size) * sizeof(float);
    for (int64_t i = 0; i < hp->layers_num; i++) {
        d->layers[i].keys = d->backend->alloc(cache_bytes);
        d->layers[i].values = d->backend->alloc(cache_bytes);
    }
    tp_ctx_init(&d->ctx, d->backend, (size_t)1 << 20);
    return d;
}

void tp_lm_decoder_free(tp_lm_decoder *d)
{
    if (!d) return;
    for (int64_t i = 0; i < d->model->hp.layers_num; i++) {
        d->backend->release(d->layers[i].keys);
        d->backend->release(d->layers[i].values);
    }
    tp_ctx_free(&d->ctx);
    free(d->layers);
    free(d);
}

void tp_lm_decoder_reset(tp_lm_decoder *d) { d->length = 0; }

int64_t tp_lm_decoder_length(const tp_lm_decoder *d) { return d->length; }

static tp_tensor *norm(tp_ctx *ctx, const norm_weights *w, tp_tensor *x)
{
    return tp_layer_norm(ctx, x, w->gain, w->bias, w->kind, w->eps);
}

/* Appends the n new rows of each sequence in x [batch*n, hidden] at position past of a cache. */
static void append(const tp_lm_decoder *d, float *cache, const tp_tensor *x, int64_t n)
{
    int64_t hidden = tp_cols(x);
    for (int64_t b = 0; b < d->batch; b++)
        d->backend->copy(cache + (b * d->capacity + d->length) * hidden, x->data + b * n * hidden, n * hidden);
}

static tp_tensor *attention(tp_lm_decoder *d, const decoder_layer *layer, tp_tensor *x, int64_t n)
{
    tp_ctx *ctx = &d->ctx;
    tp_tensor *q = tp_linear(ctx, x, layer->weight[QUERY], layer->bias[QUERY]);
    append(d, layer->keys, tp_linear(ctx, x, layer->weight[KEY], layer->bias[KEY]), n);
    append(d, layer->values, tp_linear(ctx, x, layer->weight[VALUE], layer->bias[VALUE]), n);
    tp_tensor *context = tp_attention_cached(ctx, q, layer->keys, layer->values, d->batch, d->length, d->capacity,
                                             d->model->hp.heads_num);
    return tp_linear(ctx, context, layer->weight[OUTPUT], layer->bias[OUTPUT]);
}

static tp_tensor *feed_forward(tp_lm_decoder *d, const decoder_layer *layer, tp_tensor *x)
{
    tp_tensor *inner = tp_act(&d->ctx, tp_linear(&d->ctx, x, layer->weight[FF_1], layer->bias[FF_1]),
                              d->model->hp.hidden_act);
    return tp_linear(&d->ctx, inner, layer->weight[FF_2], layer->bias[FF_2]);
}

/* One transformer layer as modules/encoders/transformer.c runs it (pre- or post-LN), on new rows. */
static tp_tensor *layer_step(tp_lm_decoder *d, const decoder_layer *layer, tp_tensor *x, int64_t n)
{
    tp_ctx *ctx = &d->ctx;
    if (d->model->hp.layernorm_pre) {
        tp_tensor *h = tp_add(ctx, attention(d, layer, norm(ctx, &layer->norm_1, x), n), x);
        return tp_add(ctx, feed_forward(d, layer, norm(ctx, &layer->norm_2, h)), h);
    }
    tp_tensor *h = norm(ctx, &layer->norm_1, tp_add(ctx, attention(d, layer, x, n), x));
    return norm(ctx, &layer->norm_2, tp_add(ctx, feed_forward(d, layer, h), h));
}

static tp_tensor *embed(tp_lm_decoder *d, const int32_t *ids, int64_t n)
{
    tp_ctx *ctx = &d->ctx;
    int64_t tokens = d->batch * n;
    tp_tensor *x = tp_embedding(ctx, d->word, tp_ids_upload(ctx, ids, tokens), tokens);
    if (d->pos) {
        int32_t *positions = tp_arena_alloc(&ctx->host_arena, (size_t)tokens * sizeof *positions);
        for (int64_t i = 0; i < tokens; i++) positions[i] = (int32_t)(d->length + i % n + d->model->hp.position_offset);
        x = tp_add(ctx, x, tp_embedding(ctx, d->pos, tp_ids_upload(ctx, positions, tokens), tokens));
    }
    return d->embedding_norm.gain ? norm(ctx, &d->embedding_norm, x) : x;
}

/* The vocabulary columns of each row of logits [rows, padded vocabulary], to the host. */
static void download_logits(const tp_backend *backend, const tp_tensor *logits, int64_t vocab_size, float *out)
{
    for (int64_t r = 0; r < tp_rows(logits); r++)
        backend->download(out + r * vocab_size, logits->data + r * tp_cols(logits), (size_t)vocab_size * sizeof *out);
}

int tp_lm_decoder_step(tp_lm_decoder *d, const int32_t *ids, int64_t n, float *logits)
{
    const tp_model_config *hp = &d->model->hp;
    if (n < 1 || d->length + n > d->capacity)
        return tp_fail("generation: %lld + %lld positions exceed max_seq_length %lld", (long long)d->length,
                       (long long)n, (long long)d->capacity);
    tp_ctx *ctx = &d->ctx;
    tp_ctx_reset(ctx);
    tp_tensor *x = embed(d, ids, n);
    for (int64_t i = 0; i < hp->layers_num; i++) x = layer_step(d, &d->layers[i], x, n);
    if (d->final_norm.gain) x = norm(ctx, &d->final_norm, x);
    int32_t *last = tp_arena_alloc(&ctx->host_arena, (size_t)d->batch * sizeof *last);
    for (int64_t b = 0; b < d->batch; b++) last[b] = (int32_t)(b * n + n - 1);
    x = tp_gather_rows(ctx, x, tp_ids_upload(ctx, last, d->batch), d->batch);
    download_logits(d->backend, tp_linear(ctx, x, d->output, NULL), hp->vocab_size, logits);
    d->length += n;
    return 0;
}

int tp_lm_full_logits(tp_model *model, tp_ctx *ctx, const int32_t *ids, int64_t length, float *logits)
{
    if (length < 1 || length > model->hp.max_seq_length)
        return tp_fail("generation: %lld positions exceed max_seq_length %lld", (long long)length,
                       (long long)model->hp.max_seq_length);
    tp_ctx_reset(ctx);
    int32_t *seg = tp_arena_alloc(&ctx->host_arena, (size_t)length * sizeof *seg);
    for (int64_t i = 0; i < length; i++) seg[i] = 1;
    tp_batch batch = {.batch_size = 1, .seq_length = length, .src = (int32_t *)ids, .seg = seg};
    tp_model_batch uploaded = tp_model_batch_upload(ctx, &batch);
    tp_model_output out;
    if (tp_model_forward(model, ctx, &uploaded, &out) < 0) return -1;
    for (int i = 0; i < model->target_count; i++) {
        if (strcmp(tp_model_target_name(model, i), "lm")) continue;
        const tp_tensor *all = out.results[i].logits;
        model->params.backend->download(logits, all->data + (length - 1) * tp_cols(all),
                                        (size_t)model->hp.vocab_size * sizeof *logits);
        return 0;
    }
    return tp_fail("generation needs the lm target (target: [\"lm\"])");
}

/* ---- choosing the next token ------------------------------------------------------ */

static void repetition_penalty(float *logits, const int32_t *seen, int64_t count, double penalty)
{
    /* Each id once, however often it was seen: transformers gathers, scales and scatters back. */
    for (int64_t i = 0; i < count; i++) {
        int repeated = 0;
        for (int64_t j = 0; j < i && !repeated; j++) repeated = seen[j] == seen[i];
        if (repeated) continue;
        float *l = &logits[seen[i]];
        *l = *l < 0 ? (float)(*l * penalty) : (float)(*l / penalty);
    }
}

static int descending(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static void top_k(float *logits, int64_t vocab_size, int64_t k, float *scratch)
{
    if (k <= 0 || k >= vocab_size) return;
    memcpy(scratch, logits, (size_t)vocab_size * sizeof *scratch);
    qsort(scratch, (size_t)vocab_size, sizeof *scratch, descending);
    float kth = scratch[k - 1];
    for (int64_t v = 0; v < vocab_size; v++)
        if (logits[v] < kth) logits[v] = -INFINITY;
}

typedef struct ranked {
    float logit;
    int32_t id;
} ranked;

static int ascending_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    return x->logit < y->logit ? -1 : x->logit > y->logit ? 1 : (x->id > y->id) - (x->id < y->id);
}

/* transformers' TopPLogitsWarper: ascending order, remove while the cumulative probability <= 1 - p. */
static void top_p(float *logits, int64_t vocab_size, double p)
{
    if (p >= 1.0) return;
    ranked *order = tp_xmalloc((size_t)vocab_size * sizeof *order);
    float max = -INFINITY;
    for (int64_t v = 0; v < vocab_size; v++) {
        order[v] = (ranked){logits[v], (int32_t)v};
        max = logits[v] > max ? logits[v] : max;
    }
    qsort(order, (size_t)vocab_size, sizeof *order, ascending_ranked);
    double total = 0, cumulative = 0;
    for (int64_t v = 0; v < vocab_size; v++) total += exp((double)order[v].logit - max);
    for (int64_t v = 0; v < vocab_size - 1; v++) { /* the largest is always kept */
        cumulative += exp((double)order[v].logit - max) / total;
        if (cumulative > 1.0 - p) break;
        logits[order[v].id] = -INFINITY;
    }
    free(order);
}

void tp_process_logits(float *logits, int64_t vocab_size, const int32_t *seen, int64_t seen_count,
                       const tp_sampling *s)
{
    if (s->repetition_penalty != 1.0) repetition_penalty(logits, seen, seen_count, s->repetition_penalty);
    if (!s->do_sample) return;
    if (s->temperature != 1.0)
        for (int64_t v = 0; v < vocab_size; v++) logits[v] = (float)(logits[v] / s->temperature);
    float *scratch = tp_xmalloc((size_t)vocab_size * sizeof *scratch);
    top_k(logits, vocab_size, s->top_k, scratch);
    free(scratch);
    top_p(logits, vocab_size, s->top_p);
}

int32_t tp_choose_token(const float *logits, int64_t vocab_size, const tp_sampling *s, int64_t step)
{
    int32_t best = 0;
    for (int64_t v = 1; v < vocab_size; v++)
        if (logits[v] > logits[best]) best = (int32_t)v;
    if (!s->do_sample) return best;
    double total = 0;
    for (int64_t v = 0; v < vocab_size; v++) total += exp((double)logits[v] - logits[best]);
    double target = tp_uniform(s->seed, TP_STREAM_SAMPLING, (uint64_t)step) * total, cumulative = 0;
    for (int64_t v = 0; v < vocab_size; v++) {
        cumulative += exp((double)logits[v] - logits[best]);
        if (cumulative > target) return (int32_t)v;
    }
    return best; /* rounding left the target beyond the sum */
}

int tp_generate(tp_model *model, tp_ctx *ctx, tp_lm_decoder *decoder, const int32_t *prompt, int64_t prompt_length,
                int64_t max_new, int32_t stop_id, const tp_sampling *sampling, int32_t *out, int64_t *count)
{
    int64_t vocab_size = model->hp.vocab_size;
    if (prompt_length < 1) return tp_fail("generation: the prompt is empty");
    int32_t *sequence = tp_xmalloc((size_t)(prompt_length + max_new) * sizeof *sequence);
    float *logits = tp_xmalloc((size_t)vocab_size * sizeof *logits);
    memcpy(sequence, prompt, (size_t)prompt_length * sizeof *sequence);
    int64_t length = prompt_length, status = 0;
    *count = 0;
    if (decoder) tp_lm_decoder_reset(decoder);
    for (int64_t step = 0; step < max_new && status == 0; step++) {
        if (decoder) {
            int64_t cached = tp_lm_decoder_length(decoder);
            status = tp_lm_decoder_step(decoder, sequence + cached, length - cached, logits);
        } else {
            status = tp_lm_full_logits(model, ctx, sequence, length, logits);
        }
        if (status < 0) break;
        tp_process_logits(logits, vocab_size, sequence, length, sampling);
        int32_t next = tp_choose_token(logits, vocab_size, sampling, step);
        sequence[length++] = out[(*count)++] = next;
        if (next == stop_id) break;
    }
    free(sequence);
    free(logits);
    return (int)status;
}
