/* Encoder-decoder generation: cached incremental decoding, greedy and beam search as transformers
 * (core/generate_seq2seq.h). */
#include "generate_seq2seq.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "hf_seq2seq.h"
#include "modules/decoders/transformer.h"

/* ---- the cached decoder ------------------------------------------------------------ */

typedef struct layer_cache {
    float *keys, *values;             /* self-attention [rows, capacity, inner] */
    float *cross_keys, *cross_values; /* context attention [capacity, inner] */
} layer_cache;

struct tp_seq2seq_decoder {
    tp_model *model;
    const tp_transformer_decoder *dec;
    const tp_backend *backend;
    int64_t rows, capacity, length, source_length, hidden;
    int64_t source_capacity; /* positions the context-attention caches hold (grown by start) */
    int64_t inner; /* the attention's width: heads_num * attention_head_size */
    tp_tensor *output, *output_bias; /* output_bias NULL: none */
    layer_cache *caches;
    float *scratch;     /* one cache's size: reordering swaps it in */
    int32_t *key_valid; /* backend [source_capacity]: the source's key validity when masked */
    int masked;
    tp_tensor *self_bias; /* this step's relative position bias (T5), or NULL */
    tp_ctx ctx;
};

static tp_tensor *param(const tp_model *model, const char *name)
{
    tp_param *found = tp_params_find(&model->params, name);
    return found ? &found->tensor : NULL;
}

/* The parts the decoder runs besides the target embeddings: the transformer decoder, the lm target. */
static int find_parts(tp_seq2seq_decoder *d)
{
    const tp_model *model = d->model;
    if (model->decoder_type != &tp_decoder_transformer)
        return tp_fail("encoder-decoder generation needs a model with the 'transformer' decoder");
    d->dec = model->decoder;
    for (int i = 0; i < model->target_count; i++)
        if (!strcmp(tp_model_target_name(model, i), "lm")) {
            d->output = param(model, "target.lm.output_layer.weight");
            d->output_bias = param(model, "target.lm.output_layer.bias"); /* has_lmtarget_bias (BART) */
            /* tie_weights, as modules/targets/lm.c: the source side's word table, else the target side's */
            if (!d->output) d->output = param(model, "embedding.word.embedding.weight");
            if (!d->output) d->output = param(model, "tgt_embedding.word.embedding.weight");
        }
    return d->output ? 0 : tp_fail("encoder-decoder generation needs the lm target (target: [\"lm\"])");
}

tp_seq2seq_decoder *tp_seq2seq_decoder_create(tp_model *model, int64_t rows)
{
    if (!model->decoder_type || rows < 1) {
        if (rows < 1) tp_fail("encoder-decoder generation: %lld rows", (long long)rows);
        else tp_fail("encoder-decoder generation needs a model with a decoder (T5, BART)");
        return NULL;
    }
    tp_seq2seq_decoder *d = tp_xcalloc(1, sizeof *d);
    d->model = model;
    if (find_parts(d) < 0) {
        free(d);
        return NULL;
    }
    d->backend = model->params.backend;
    d->rows = rows;
    d->capacity = model->hp.max_seq_length;
    d->hidden = model->hp.hidden_size;
    d->inner = model->hp.heads_num * model->hp.attention_head_size;
    size_t cache_bytes = (size_t)(rows * d->capacity * d->inner) * sizeof(float);
    d->caches = tp_xcalloc((size_t)d->dec->layers_num, sizeof *d->caches);
    for (int64_t i = 0; i < d->dec->layers_num; i++) {
        layer_cache *c = &d->caches[i];
        c->keys = d->backend->alloc(cache_bytes);
        c->values = d->backend->alloc(cache_bytes);
    }
    d->scratch = d->backend->alloc(cache_bytes);
    tp_ctx_init(&d->ctx, d->backend, (size_t)1 << 20);
    return d;
}

/* The context-attention caches and key mask (none before the first start). */
static void release_source_caches(tp_seq2seq_decoder *d)
{
    for (int64_t i = 0; d->source_capacity && i < d->dec->layers_num; i++) {
        d->backend->release(d->caches[i].cross_keys);
        d->backend->release(d->caches[i].cross_values);
    }
    if (d->source_capacity) d->backend->release(d->key_valid);
    d->source_capacity = 0;
}

/* Room for a source of `positions` (a speech encoder's output may exceed max_seq_length). */
static void reserve_source(tp_seq2seq_decoder *d, int64_t positions)
{
    if (positions <= d->source_capacity) return;
    release_source_caches(d);
    size_t bytes = (size_t)(positions * d->inner) * sizeof(float);
    for (int64_t i = 0; i < d->dec->layers_num; i++) {
        d->caches[i].cross_keys = d->backend->alloc(bytes);
        d->caches[i].cross_values = d->backend->alloc(bytes);
    }
    d->key_valid = d->backend->alloc((size_t)positions * sizeof *d->key_valid);
    d->source_capacity = positions;
}

void tp_seq2seq_decoder_free(tp_seq2seq_decoder *d)
{
    if (!d) return;
    for (int64_t i = 0; i < d->dec->layers_num; i++) {
        layer_cache *c = &d->caches[i];
        d->backend->release(c->keys);
        d->backend->release(c->values);
    }
    release_source_caches(d);
    d->backend->release(d->scratch);
    tp_ctx_free(&d->ctx);
    free(d->caches);
    free(d);
}

int tp_seq2seq_decoder_start(tp_seq2seq_decoder *d, const tp_tensor *memory, const int32_t *key_valid)
{
    int64_t source_length = tp_rows(memory);
    if (tp_cols(memory) != d->hidden)
        return tp_fail("encoder-decoder generation: the encoder output has %lld columns, the decoder %lld",
                       (long long)tp_cols(memory), (long long)d->hidden);
    if (source_length < 1) return tp_fail("encoder-decoder generation: an empty source");
    reserve_source(d, source_length);
    tp_ctx *ctx = &d->ctx;
    tp_ctx_reset(ctx);
    tp_tensor source = *memory;
    for (int64_t i = 0; i < d->dec->layers_num; i++) {
        const tp_self_attention *attn = &d->dec->layers[i].context_attn;
        int64_t n = source_length * d->inner;
        d->backend->copy(d->caches[i].cross_keys, tp_linear_layer_forward(ctx, &attn->key, &source)->data, n);
        d->backend->copy(d->caches[i].cross_values, tp_linear_layer_forward(ctx, &attn->value, &source)->data, n);
    }
    d->masked = key_valid != NULL;
    if (key_valid) d->backend->upload(d->key_valid, key_valid, (size_t)source_length * sizeof *key_valid);
    d->source_length = source_length;
    d->length = 0;
    return 0;
}

/* A [rows, cols] view of persistent backend memory (the ops only read it). */
static tp_tensor *cache_view(tp_ctx *ctx, float *data, int64_t rows, int64_t cols)
{
    tp_tensor *view = tp_arena_alloc(&ctx->host_arena, sizeof *view);
    *view = (tp_tensor){.data = data, .shape = {rows, cols}, .ndim = 2};
    return view;
}

/* Self-attention of the new position of every row over its cached positions 0..length. */
static tp_tensor *cached_self_attention(void *state, tp_ctx *ctx, const tp_transformer_decoder_layer *layer,
                                        tp_tensor *x)
{
    tp_seq2seq_decoder *d = state;
    const tp_self_attention *attn = &layer->self_attn;
    layer_cache *cache = &d->caches[layer - d->dec->layers];
    int64_t width = d->inner, kv_seq = d->length + 1;
    tp_tensor *q = tp_linear_layer_forward(ctx, &attn->query, x);
    tp_tensor *k = tp_linear_layer_forward(ctx, &attn->key, x), *v = tp_linear_layer_forward(ctx, &attn->value, x);
    tp_tensor *keys = tp_empty_2d(ctx, d->rows * kv_seq, width), *values = tp_empty_2d(ctx, d->rows * kv_seq, width);
    for (int64_t r = 0; r < d->rows; r++) {
        int64_t at = (r * d->capacity + d->length) * width;
        d->backend->copy(cache->keys + at, k->data + r * width, width);
        d->backend->copy(cache->values + at, v->data + r * width, width);
        /* The attention op takes each row's keys contiguously. */
        d->backend->copy(keys->data + r * kv_seq * width, cache->keys + r * d->capacity * width, kv_seq * width);
        d->backend->copy(values->data + r * kv_seq * width, cache->values + r * d->capacity * width, kv_seq * width);
    }
    tp_attention_options options = {d->rows, 1, kv_seq, attn->heads, TP_MASK_FULLY_VISIBLE, NULL, d->self_bias,
                                    attn->scale, 0.0f};
    return tp_linear_layer_forward(ctx, &attn->output, tp_attention_general(ctx, q, keys, values, &options));
}

/* Context attention over the cached source keys and values: every row attends to the same source,
 * so the rows are the queries of one sequence. */
static tp_tensor *cached_context_attention(void *state, tp_ctx *ctx, const tp_transformer_decoder_layer *layer,
                                           tp_tensor *x)
{
    tp_seq2seq_decoder *d = state;
    const tp_self_attention *attn = &layer->context_attn;
    layer_cache *cache = &d->caches[layer - d->dec->layers];
    tp_tensor *q = tp_linear_layer_forward(ctx, &attn->query, x);
    tp_tensor *keys = cache_view(ctx, cache->cross_keys, d->source_length, d->inner);
    tp_tensor *values = cache_view(ctx, cache->cross_values, d->source_length, d->inner);
    tp_attention_options options = {1,           d->rows,     d->source_length, attn->heads, TP_MASK_FULLY_VISIBLE,
                                    d->masked ? d->key_valid : NULL, NULL, attn->scale, 0.0f};
    return tp_linear_layer_forward(ctx, &attn->output, tp_attention_general(ctx, q, keys, values, &options));
}

/* The new position's target embeddings, by the model's own target-embedding modules (word, learned
 * or sinusoidal positions, scale, norm): they embed sequences of length+1 whose every id is the new
 * one -- the other positions' rows are dropped, and positions depend on the position alone -- and
 * the last row of each is kept.  O(length) lookups per step, next to the layers' O(length) attention. */
static tp_tensor *embed_step(tp_seq2seq_decoder *d, const int32_t *ids)
{
    tp_ctx *ctx = &d->ctx;
    int64_t positions = d->length + 1, tokens = d->rows * positions;
    int32_t *tgt = tp_arena_alloc(&ctx->host_arena, (size_t)tokens * sizeof *tgt);
    int32_t *last = tp_arena_alloc(&ctx->host_arena, (size_t)d->rows * sizeof *last);
    for (int64_t r = 0; r < d->rows; r++) {
        for (int64_t t = 0; t < positions; t++) tgt[r * positions + t] = ids[r];
        last[r] = (int32_t)(r * positions + positions - 1);
    }
    tp_model_batch batch = {.batch_size = d->rows, .tgt_seq_length = positions, .tgt_src = tp_ids_upload(ctx, tgt, tokens)};
    tp_tensor *all = tp_model_embed_target(d->model, ctx, &batch);
    return tp_gather_rows(ctx, all, tp_ids_upload(ctx, last, d->rows), d->rows);
}

int tp_seq2seq_decoder_step(tp_seq2seq_decoder *d, const int32_t *ids, float *logits)
{
    if (d->source_length < 1) return tp_fail("encoder-decoder generation: step before start");
    if (d->length >= d->capacity)
        return tp_fail("encoder-decoder generation: %lld target positions exceed max_seq_length %lld",
                       (long long)d->length + 1, (long long)d->capacity);
    tp_ctx *ctx = &d->ctx;
    tp_ctx_reset(ctx);
    const tp_transformer_decoder *dec = d->dec;
    d->self_bias = dec->relative ? tp_relative_position_forward_from(ctx, &dec->self_pos_emb, d->length, 1, d->length + 1)
                                 : NULL;
    tp_decoder_attention attend = {cached_self_attention, cached_context_attention, d};
    tp_tensor *x = embed_step(d, ids);
    for (int64_t i = 0; i < dec->layers_num; i++) x = tp_transformer_decoder_layer_forward(ctx, dec, &dec->layers[i], x, &attend);
    tp_tensor *all = tp_linear(ctx, tp_transformer_decoder_output(ctx, dec, x), d->output, d->output_bias);
    int64_t vocab_size = d->model->hp.vocab_size;
    for (int64_t r = 0; r < d->rows; r++)
        d->backend->download(logits + r * vocab_size, all->data + r * tp_cols(all), (size_t)vocab_size * sizeof *logits);
    d->length++;
    return 0;
}

void tp_seq2seq_decoder_reorder(tp_seq2seq_decoder *d, const int32_t *source_rows)
{
    int64_t row_size = d->capacity * d->inner, used = d->length * d->inner;
    for (int64_t i = 0; i < d->dec->layers_num; i++) {
        float **buffers[2] = {&d->caches[i].keys, &d->caches[i].values};
        for (int b = 0; b < 2; b++) {
            for (int64_t r = 0; r < d->rows; r++)
                d->backend->copy(d->scratch + r * row_size, *buffers[b] + source_rows[r] * row_size, used);
            float *previous = *buffers[b];
            *buffers[b] = d->scratch;
            d->scratch = previous;
        }
    }
}

tp_tensor *tp_seq2seq_encode(tp_model *model, tp_ctx *ctx, const int32_t *src, int64_t length)
{
    tp_ctx_reset(ctx);
    int32_t *seg = tp_arena_alloc(&ctx->host_arena, (size_t)length * sizeof *seg);
    for (int64_t i = 0; i < length; i++) seg[i] = 1;
    tp_batch batch = {.batch_size = 1, .seq_length = length, .src = (int32_t *)src, .seg = seg};
    tp_model_batch uploaded = tp_model_batch_upload(ctx, &batch);
    return tp_model_encode(model, ctx, &uploaded);
}

/* ---- where the logits come from ------------------------------------------------------ */

/* The search asks for the next logits of every row given the rows' sequences so far, and tells
 * when rows were reordered. */
typedef struct scorer {
    int (*next)(struct scorer *self, const int32_t *sequences, int64_t stride, int64_t length, float *logits);
    void (*reorder)(struct scorer *self, const int32_t *source_rows);
    int64_t rows;
    tp_seq2seq_decoder *decoder; /* cached */
    tp_model *model;             /* full recomputation */
    tp_ctx *ctx;
    const int32_t *src;
    int64_t src_length;
} scorer;

static int cached_next(scorer *s, const int32_t *sequences, int64_t stride, int64_t length, float *logits)
{
    int32_t *last = tp_xmalloc((size_t)s->rows * sizeof *last);
    for (int64_t r = 0; r < s->rows; r++) last[r] = sequences[r * stride + length - 1];
    int status = tp_seq2seq_decoder_step(s->decoder, last, logits);
    free(last);
    return status;
}

static void cached_reorder(scorer *s, const int32_t *source_rows) { tp_seq2seq_decoder_reorder(s->decoder, source_rows); }

static int full_next(scorer *s, const int32_t *sequences, int64_t stride, int64_t length, float *logits)
{
    tp_ctx *ctx = s->ctx;
    tp_model *model = s->model;
    int64_t rows = s->rows, tokens = rows * s->src_length;
    if (length > model->hp.max_seq_length)
        return tp_fail("encoder-decoder generation: %lld target positions exceed max_seq_length %lld", (long long)length,
                       (long long)model->hp.max_seq_length);
    tp_ctx_reset(ctx);
    int32_t *src = tp_arena_alloc(&ctx->host_arena, (size_t)tokens * sizeof *src);
    int32_t *seg = tp_arena_alloc(&ctx->host_arena, (size_t)tokens * sizeof *seg);
    int32_t *tgt = tp_arena_alloc(&ctx->host_arena, (size_t)(rows * length) * sizeof *tgt);
    for (int64_t r = 0; r < rows; r++) {
        memcpy(src + r * s->src_length, s->src, (size_t)s->src_length * sizeof *src);
        memcpy(tgt + r * length, sequences + r * stride, (size_t)length * sizeof *tgt);
    }
    for (int64_t i = 0; i < tokens; i++) seg[i] = 1;
    tp_batch batch = {.batch_size = rows, .seq_length = s->src_length, .src = src, .seg = seg};
    tp_model_batch uploaded = tp_model_batch_upload(ctx, &batch);
    uploaded.tgt_seq_length = length;
    uploaded.tgt_src = tp_ids_upload(ctx, tgt, rows * length);
    tp_model_output out;
    if (tp_model_forward(model, ctx, &uploaded, &out) < 0) return -1;
    for (int i = 0; i < model->target_count; i++) {
        if (strcmp(tp_model_target_name(model, i), "lm")) continue;
        const tp_tensor *all = out.results[i].logits;
        int64_t vocab_size = model->hp.vocab_size;
        for (int64_t r = 0; r < rows; r++)
            model->params.backend->download(logits + r * vocab_size, all->data + (r * length + length - 1) * tp_cols(all),
                                            (size_t)vocab_size * sizeof *logits);
        return 0;
    }
    return tp_fail("encoder-decoder generation needs the lm target (target: [\"lm\"])");
}

static void full_reorder(scorer *s, const int32_t *source_rows)
{
    (void)s;
    (void)source_rows; /* nothing cached */
}

/* ---- logits processors ---------------------------------------------------------------- */

/* transformers' NoRepeatNGramLogitsProcessor: ids that would complete an n-gram already in seq. */
static void no_repeat_ngram(float *logits, const int32_t *seq, int64_t length, int64_t n)
{
    if (n < 1 || length + 1 < n) return;
    const int32_t *prefix = seq + length - (n - 1);
    for (int64_t i = 0; i + n <= length; i++)
        if (!memcmp(seq + i, prefix, (size_t)(n - 1) * sizeof *seq)) logits[seq[i + n - 1]] = -INFINITY;
}

static void force_token(float *logits, int64_t vocab_size, int32_t id)
{
    for (int64_t v = 0; v < vocab_size; v++) logits[v] = v == id ? 0.0f : -INFINITY;
}

/* One row's processors at cur_len = length (the start id included).  The bans and forcing come
 * before tp_process_logits here; transformers runs the repetition penalty first, which gives the
 * same numbers (it maps -inf to -inf and 0 to 0). */
static void process(float *logits, int64_t vocab_size, const int32_t *seq, int64_t length, int64_t max_length,
                    const tp_seq2seq_options *o, const tp_sampling *sampling)
{
    no_repeat_ngram(logits, seq, length, o->no_repeat_ngram_size);
    if (length < o->min_length && o->eos_id >= 0) logits[o->eos_id] = -INFINITY;
    if (length == 1 && o->forced_bos_id >= 0) force_token(logits, vocab_size, o->forced_bos_id);
    if (length == max_length - 1 && o->forced_eos_id >= 0) force_token(logits, vocab_size, o->forced_eos_id);
    tp_process_logits(logits, vocab_size, seq, length, sampling);
}

/* ---- greedy / sampling ---------------------------------------------------------------- */

static int search_greedy(scorer *s, const tp_seq2seq_options *o, int64_t vocab_size, int32_t *out, int64_t *count)
{
    int64_t max_length = 1 + o->max_new_tokens;
    int32_t *seq = tp_xmalloc((size_t)max_length * sizeof *seq);
    float *logits = tp_xmalloc((size_t)vocab_size * sizeof *logits);
    int64_t length = 1;
    int status = 0;
    seq[0] = o->decoder_start_id;
    *count = 0;
    while (length < max_length) {
        if ((status = s->next(s, seq, max_length, length, logits)) < 0) break;
        process(logits, vocab_size, seq, length, max_length, o, &o->sampling);
        int32_t next = tp_choose_token(logits, vocab_size, &o->sampling, length - 1);
        seq[length++] = out[(*count)++] = next;
        if (next == o->eos_id) break;
    }
    free(seq);
    free(logits);
    return status;
}

/* ---- beam search ---------------------------------------------------------------------- */

typedef struct hypothesis {
    double score;
    int32_t *ids; /* the start id included, the eos not */
    int64_t length;
} hypothesis;

/* transformers' BeamHypotheses: at most num_beams finished hypotheses, in insertion order. */
typedef struct hypotheses {
    hypothesis *items;
    int64_t count, capacity;
    double worst_score, length_penalty;
    int early_stopping;
} hypotheses;

static void hypotheses_add(hypotheses *h, const int32_t *ids, int64_t length, double sum_logprobs,
                           int64_t generated_length)
{
    double score = sum_logprobs / pow((double)generated_length, h->length_penalty);
    if (h->count >= h->capacity && !(score > h->worst_score)) return;
    h->items[h->count].score = score;
    h->items[h->count].ids = tp_xmalloc((size_t)length * sizeof *ids);
    memcpy(h->items[h->count].ids, ids, (size_t)length * sizeof *ids);
    h->items[h->count++].length = length;
    if (h->count <= h->capacity) {
        h->worst_score = score < h->worst_score ? score : h->worst_score;
        return;
    }
    /* sorted((score, index)) drops the first of the lowest scores; the next lowest is the worst. */
    int64_t lowest = 0;
    for (int64_t i = 1; i < h->count; i++)
        if (h->items[i].score < h->items[lowest].score) lowest = i;
    free(h->items[lowest].ids);
    memmove(&h->items[lowest], &h->items[lowest + 1], (size_t)(h->count - lowest - 1) * sizeof *h->items);
    h->count--;
    h->worst_score = h->items[0].score;
    for (int64_t i = 1; i < h->count; i++)
        if (h->items[i].score < h->worst_score) h->worst_score = h->items[i].score;
}

static int hypotheses_done(const hypotheses *h, double best_sum_logprobs, int64_t cur_len, int64_t max_length)
{
    if (h->count < h->capacity) return 0;
    if (h->early_stopping == 1) return 1;
    int64_t denominator = h->early_stopping < 0 && h->length_penalty > 0 ? max_length - 1 : cur_len - 1;
    return h->worst_score >= best_sum_logprobs / pow((double)denominator, h->length_penalty);
}

static void log_softmax(float *logits, int64_t n)
{
    float max = -INFINITY;
    for (int64_t v = 0; v < n; v++) max = logits[v] > max ? logits[v] : max;
    double total = 0;
    for (int64_t v = 0; v < n; v++) total += exp((double)logits[v] - max);
    float log_total = (float)log(total);
    for (int64_t v = 0; v < n; v++) logits[v] = logits[v] - max - log_total;
}

/* The indices of the k largest of scores[0..n), largest first (ties: the lower index first). */
static void top_k_indices(const float *scores, int64_t n, int64_t k, int64_t *best)
{
    for (int64_t j = 0; j < k; j++) best[j] = -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = k;
        while (j > 0 && (best[j - 1] < 0 || scores[i] > scores[best[j - 1]])) j--;
        if (j == k) continue;
        memmove(&best[j + 1], &best[j], (size_t)(k - j - 1) * sizeof *best);
        best[j] = i;
    }
}

typedef struct beams {
    int64_t rows, vocab_size, max_length, length;
    int32_t *seq, *next_seq; /* [rows, max_length] */
    float *scores, *next_scores, *logits;
    int32_t *next_tokens, *source_rows;
    int64_t *candidates;
    hypotheses finished;
} beams;

static void beams_init(beams *b, const tp_seq2seq_options *o, int64_t vocab_size)
{
    int64_t rows = o->num_beams;
    b->rows = rows;
    b->vocab_size = vocab_size;
    b->max_length = 1 + o->max_new_tokens;
    b->length = 1;
    b->seq = tp_xmalloc((size_t)(rows * b->max_length) * sizeof *b->seq);
    b->next_seq = tp_xmalloc((size_t)(rows * b->max_length) * sizeof *b->next_seq);
    b->scores = tp_xmalloc((size_t)rows * sizeof *b->scores);
    b->next_scores = tp_xmalloc((size_t)rows * sizeof *b->next_scores);
    b->logits = tp_xmalloc((size_t)(rows * vocab_size) * sizeof *b->logits);
    b->next_tokens = tp_xmalloc((size_t)rows * sizeof *b->next_tokens);
    b->source_rows = tp_xmalloc((size_t)rows * sizeof *b->source_rows);
    b->candidates = tp_xmalloc((size_t)(2 * rows) * sizeof *b->candidates);
    b->finished = (hypotheses){tp_xcalloc((size_t)rows + 1, sizeof(hypothesis)), 0, rows, 1e9, o->length_penalty,
                               o->early_stopping};
    for (int64_t r = 0; r < rows; r++) {
        b->seq[r * b->max_length] = o->decoder_start_id;
        b->scores[r] = r == 0 ? 0.0f : -1e9f;
    }
}

static void beams_free(beams *b)
{
    for (int64_t i = 0; i < b->finished.count; i++) free(b->finished.items[i].ids);
    free(b->finished.items);
    free(b->seq);
    free(b->next_seq);
    free(b->scores);
    free(b->next_scores);
    free(b->logits);
    free(b->next_tokens);
    free(b->source_rows);
    free(b->candidates);
}

/* BeamSearchScorer.process on this step's candidates; returns whether the search is done. */
static int beams_choose(beams *b, int32_t eos_id)
{
    int64_t rows = b->rows, vocab_size = b->vocab_size, cur_len = b->length + 1;
    top_k_indices(b->logits, rows * vocab_size, 2 * rows, b->candidates);
    int64_t chosen = 0;
    for (int64_t rank = 0; rank < 2 * rows && chosen < rows; rank++) {
        int64_t flat = b->candidates[rank];
        int32_t token = (int32_t)(flat % vocab_size), row = (int32_t)(flat / vocab_size);
        float score = b->logits[flat];
        if (token == eos_id) {
            if (rank < rows) hypotheses_add(&b->finished, b->seq + row * b->max_length, b->length, score, cur_len - 1);
            continue;
        }
        b->next_scores[chosen] = score;
        b->next_tokens[chosen] = token;
        b->source_rows[chosen++] = row;
    }
    return hypotheses_done(&b->finished, b->logits[b->candidates[0]], cur_len, b->max_length);
}

/* input_ids = cat(input_ids[beam_idx], tokens); the running scores. */
static void beams_advance(beams *b)
{
    for (int64_t r = 0; r < b->rows; r++) {
        int32_t *row = b->next_seq + r * b->max_length;
        memcpy(row, b->seq + b->source_rows[r] * b->max_length, (size_t)b->length * sizeof *row);
        row[b->length] = b->next_tokens[r];
        b->scores[r] = b->next_scores[r];
    }
    int32_t *previous = b->seq;
    b->seq = b->next_seq;
    b->next_seq = previous;
    b->length++;
}

/* finalize: the running beams join (unless done), the best hypothesis plus eos when it fits. */
static void beams_finalize(beams *b, int done, int32_t eos_id, int32_t *out, int64_t *count)
{
    if (!done)
        for (int64_t r = 0; r < b->rows; r++)
            hypotheses_add(&b->finished, b->seq + r * b->max_length, b->length, b->scores[r], b->length - 1);
    const hypothesis *best = &b->finished.items[0];
    for (int64_t i = 1; i < b->finished.count; i++) /* sorted(...).pop(): the last of the highest */
        if (b->finished.items[i].score >= best->score) best = &b->finished.items[i];
    *count = best->length - 1;
    memcpy(out, best->ids + 1, (size_t)*count * sizeof *out);
    if (best->length < b->max_length) out[(*count)++] = eos_id;
}

static int search_beams(scorer *s, const tp_seq2seq_options *o, int64_t vocab_size, int32_t *out, int64_t *count)
{
    beams b;
    beams_init(&b, o, vocab_size);
    tp_sampling penalty_only = o->sampling;
    penalty_only.do_sample = 0;
    int status = 0, done = 0;
    while (!done && b.length < b.max_length) {
        if ((status = s->next(s, b.seq, b.max_length, b.length, b.logits)) < 0) break;
        for (int64_t r = 0; r < b.rows; r++) {
            float *row = b.logits + r * vocab_size;
            log_softmax(row, vocab_size);
            process(row, vocab_size, b.seq + r * b.max_length, b.length, b.max_length, o, &penalty_only);
            for (int64_t v = 0; v < vocab_size; v++) row[v] += b.scores[r];
        }
        done = beams_choose(&b, o->eos_id);
        beams_advance(&b);
        s->reorder(s, b.source_rows);
    }
    if (status == 0) beams_finalize(&b, done, o->eos_id, out, count);
    beams_free(&b);
    return status;
}

static int check_options(const tp_seq2seq_options *o, int64_t vocab_size)
{
    if (o->num_beams < 1 || o->max_new_tokens < 1)
        return tp_fail("encoder-decoder generation: num_beams %lld and max_new_tokens %lld must be >= 1",
                       (long long)o->num_beams, (long long)o->max_new_tokens);
    if (o->decoder_start_id < 0 || o->decoder_start_id >= vocab_size)
        return tp_fail("encoder-decoder generation: decoder_start_id %d is not in the vocabulary of %lld",
                       (int)o->decoder_start_id, (long long)vocab_size);
    if (o->num_beams > 1 && (o->eos_id < 0 || o->sampling.do_sample))
        return tp_fail("encoder-decoder generation: beam search needs an eos id and no sampling");
    if (o->forced_bos_id >= vocab_size || o->forced_eos_id >= vocab_size)
        return tp_fail("encoder-decoder generation: a forced id is not in the vocabulary of %lld", (long long)vocab_size);
    return 0;
}

static int search(scorer *s, const tp_seq2seq_options *o, int64_t vocab_size, int32_t *out, int64_t *count)
{
    *count = 0;
    if (check_options(o, vocab_size) < 0) return -1;
    return o->num_beams == 1 ? search_greedy(s, o, vocab_size, out, count) : search_beams(s, o, vocab_size, out, count);
}

int tp_seq2seq_generate(tp_seq2seq_decoder *decoder, const tp_tensor *memory, const int32_t *key_valid,
                        const tp_seq2seq_options *options, int32_t *out, int64_t *count)
{
    *count = 0;
    if (decoder->rows != options->num_beams)
        return tp_fail("encoder-decoder generation: a decoder of %lld rows for num_beams %lld", (long long)decoder->rows,
                       (long long)options->num_beams);
    if (tp_seq2seq_decoder_start(decoder, memory, key_valid) < 0) return -1;
    scorer s = {cached_next, cached_reorder, decoder->rows, decoder, NULL, NULL, NULL, 0};
    return search(&s, options, decoder->model->hp.vocab_size, out, count);
}

int tp_seq2seq_generate_full(tp_model *model, tp_ctx *ctx, const int32_t *src, int64_t length,
                             const tp_seq2seq_options *options, int32_t *out, int64_t *count)
{
    scorer s = {full_next, full_reorder, options->num_beams, NULL, model, ctx, src, length};
    return search(&s, options, model->hp.vocab_size, out, count);
}

/* ---- options ----------------------------------------------------------------------------- */

tp_seq2seq_options tp_seq2seq_default_options(void)
{
    return (tp_seq2seq_options){.num_beams = 1,
                                .max_new_tokens = 20,
                                .length_penalty = 1.0,
                                .decoder_start_id = -1,
                                .eos_id = -1,
                                .pad_id = -1,
                                .forced_bos_id = -1,
                                .forced_eos_id = -1,
                                .sampling = {.temperature = 1.0, .top_p = 1.0, .repetition_penalty = 1.0}};
}

/* An id key: absent or null -> -1; a list (several eos ids) -> its first entry. */
static int json_id(const char *path, const cJSON *root, const char *key, int32_t *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsArray(item)) item = cJSON_GetArrayItem(item, 0);
    if (!item || cJSON_IsNull(item)) return 0; /* keeps *out */
    if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > INT32_MAX ||
        item->valuedouble != (double)(int32_t)item->valuedouble)
        return tp_fail("%s: key '%s': expected a token id", path, key);
    *out = (int32_t)item->valuedouble;
    return 0;
}

static int read_options(const char *path, const cJSON *root, tp_seq2seq_options *o)
{
    int64_t max_length = 0;
    const cJSON *early = cJSON_GetObjectItemCaseSensitive(root, "early_stopping");
    if (early && !cJSON_IsNull(early)) {
        if (cJSON_IsString(early) && !strcmp(early->valuestring, "never")) o->early_stopping = -1;
        else if (cJSON_IsBool(early)) o->early_stopping = cJSON_IsTrue(early);
        else return tp_fail("%s: key 'early_stopping': expected true, false or \"never\"", path);
    }
    if (json_id(path, root, "decoder_start_token_id", &o->decoder_start_id) < 0 ||
        json_id(path, root, "eos_token_id", &o->eos_id) < 0 || json_id(path, root, "pad_token_id", &o->pad_id) < 0 ||
        json_id(path, root, "forced_bos_token_id", &o->forced_bos_id) < 0 ||
        json_id(path, root, "forced_eos_token_id", &o->forced_eos_id) < 0 ||
        tp_hf_json_int(path, root, "num_beams", o->num_beams, &o->num_beams) < 0 ||
        tp_hf_json_number(path, root, "length_penalty", o->length_penalty, &o->length_penalty) < 0 ||
        tp_hf_json_int(path, root, "no_repeat_ngram_size", o->no_repeat_ngram_size, &o->no_repeat_ngram_size) < 0 ||
        tp_hf_json_int(path, root, "min_length", o->min_length, &o->min_length) < 0 ||
        tp_hf_json_number(path, root, "repetition_penalty", o->sampling.repetition_penalty,
                          &o->sampling.repetition_penalty) < 0 ||
        tp_hf_json_int(path, root, "max_length", 0, &max_length) < 0)
        return -1;
    if (max_length > 1) o->max_new_tokens = max_length - 1;
    return 0;
}

int tp_seq2seq_options_from_hf(const char *dir, tp_seq2seq_options *o)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (access(path, R_OK) != 0) snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = tp_read_file(path, NULL);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return tp_fail("%s: not a JSON object", path);
    }
    int status = read_options(path, root, o);
    cJSON_Delete(root);
    return status;
}
