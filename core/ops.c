#include "ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distributed.h"
#include "error.h"
#include "rng.h"

/* ---- context, allocation, tape ------------------------------------------------ */

void tp_ctx_init(tp_ctx *ctx, const tp_backend *backend, size_t arena_bytes)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->backend = backend;
    tp_arena_init(&ctx->arena, arena_bytes, backend->alloc, backend->release);
    if (strcmp(backend->name, "cpu") == 0) ctx->arena.limit = tp_memory_limit(); /* the CPU's memory is the host's */
    tp_arena_init(&ctx->host_arena, 1 << 16, tp_xmalloc_aligned, free);
    ctx->tape_capacity = 256;
    ctx->tape = tp_xmalloc((size_t)ctx->tape_capacity * sizeof *ctx->tape);
}

void tp_ctx_free(tp_ctx *ctx)
{
    tp_arena_free(&ctx->arena);
    tp_arena_free(&ctx->host_arena);
    free(ctx->tape);
    ctx->tape = NULL;
    free(ctx->free_buffers);
    ctx->free_buffers = NULL;
}

void tp_ctx_reset(tp_ctx *ctx)
{
    tp_arena_reset(&ctx->arena);
    tp_arena_reset(&ctx->host_arena);
    ctx->tape_count = 0;
    ctx->free_buffer_count = 0;
    ctx->random_calls = 0;
}

static void shape_fail(const char *op, const tp_tensor *a, const tp_tensor *b)
{
    char text[2][128];
    const tp_tensor *tensors[2] = {a, b};
    for (int t = 0; t < 2; t++) {
        int len = 0;
        text[t][0] = 0;
        if (!tensors[t]) continue;
        len += snprintf(text[t] + len, sizeof text[t] - len, "[");
        for (int i = 0; i < tensors[t]->ndim; i++)
            len += snprintf(text[t] + len, sizeof text[t] - len, "%s%lld", i ? ", " : "",
                            (long long)tensors[t]->shape[i]);
        snprintf(text[t] + len, sizeof text[t] - len, "]");
    }
    fprintf(stderr, "tp: internal error: %s: incompatible shapes %s and %s\n", op, text[0], text[1]);
    abort();
}

tp_tensor *tp_empty(tp_ctx *ctx, int ndim, const int64_t *shape)
{
    tp_tensor *t = tp_arena_alloc(&ctx->host_arena, sizeof *t);
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->data = tp_arena_alloc(&ctx->arena, (size_t)tp_numel(t) * sizeof(float));
    return t;
}

tp_tensor *tp_zeros(tp_ctx *ctx, int ndim, const int64_t *shape)
{
    tp_tensor *t = tp_empty(ctx, ndim, shape);
    ctx->backend->zero(t->data, tp_numel(t));
    return t;
}

tp_tensor *tp_empty_2d(tp_ctx *ctx, int64_t rows, int64_t cols)
{
    int64_t shape[2] = {rows, cols};
    return tp_empty(ctx, 2, shape);
}

int32_t *tp_ids_upload(tp_ctx *ctx, const int32_t *host, int64_t n)
{
    int32_t *ids = tp_arena_alloc(&ctx->arena, (size_t)(n ? n : 1) * sizeof *ids);
    if (n > 0) ctx->backend->upload(ids, host, (size_t)n * sizeof *ids); /* host may be NULL when n == 0 */
    return ids;
}

float *tp_floats_upload(tp_ctx *ctx, const float *host, int64_t n)
{
    float *values = tp_arena_alloc(&ctx->arena, (size_t)(n ? n : 1) * sizeof *values);
    if (n > 0) ctx->backend->upload(values, host, (size_t)n * sizeof *values);
    return values;
}

static size_t float_bytes(int64_t count) { return ((size_t)count * sizeof(float) + 63) & ~(size_t)63; }

/* A released arena buffer of exactly `bytes` (the newest such), else a new one.  A transformer
 * repeats a handful of shapes, so exact sizes find a buffer almost every time. */
static float *reuse_or_allocate(tp_ctx *ctx, size_t bytes)
{
    for (int64_t i = ctx->free_buffer_count - 1; i >= 0; i--) {
        if (ctx->free_buffers[i].bytes != bytes) continue;
        float *data = ctx->free_buffers[i].data;
        ctx->free_buffers[i] = ctx->free_buffers[--ctx->free_buffer_count];
        return data;
    }
    return tp_arena_alloc(&ctx->arena, bytes);
}

/* Hands an arena buffer that nothing reads any more to reuse_or_allocate.  (On a GPU every kernel
 * runs on one stream, so a kernel that writes the reused buffer runs after the last reader.) */
static void release_buffer(tp_ctx *ctx, float *data, size_t bytes)
{
    if (ctx->free_buffer_count == ctx->free_buffer_capacity) {
        ctx->free_buffer_capacity = ctx->free_buffer_capacity ? 2 * ctx->free_buffer_capacity : 64;
        ctx->free_buffers =
            tp_xrealloc(ctx->free_buffers, (size_t)ctx->free_buffer_capacity * sizeof *ctx->free_buffers);
    }
    ctx->free_buffers[ctx->free_buffer_count++] = (tp_free_buffer){data, bytes};
}

float *tp_grad_of(tp_ctx *ctx, tp_tensor *t)
{
    if (!t->grad) {
        t->grad = reuse_or_allocate(ctx, float_bytes(tp_numel(t)));
        ctx->backend->zero(t->grad, tp_numel(t));
    }
    return t->grad;
}

/* The gradient buffer of t for a product that writes all of it: when t has none yet, a new one
 * left unzeroed and *beta = 0 (the product overwrites it); else t's, and *beta = 1 (it adds). */
static float *grad_for_product(tp_ctx *ctx, tp_tensor *t, float *beta)
{
    *beta = t->grad ? 1.0f : 0.0f;
    if (!t->grad) t->grad = reuse_or_allocate(ctx, float_bytes(tp_numel(t)));
    return t->grad;
}

static void release_grad(tp_ctx *ctx, tp_tensor *t)
{
    release_buffer(ctx, t->grad, float_bytes(tp_numel(t)));
    t->grad = NULL;
}

static int needs_grad(const tp_ctx *ctx, const tp_tensor *a, const tp_tensor *b, const tp_tensor *c)
{
    return ctx->record && ((a && a->requires_grad) || (b && b->requires_grad) || (c && c->requires_grad));
}

/* Appends a node when any input requires a gradient, with a copy of the op's saved state
 * (saved_bytes of it at state). */
static void record(tp_ctx *ctx, tp_backward_fn backward, tp_tensor *out, tp_tensor *a, tp_tensor *b, tp_tensor *c,
                   const void *state, size_t saved_bytes)
{
    if (!needs_grad(ctx, a, b, c)) return;
    if (ctx->tape_count == ctx->tape_capacity) {
        ctx->tape_capacity *= 2;
        ctx->tape = tp_xrealloc(ctx->tape, (size_t)ctx->tape_capacity * sizeof *ctx->tape);
    }
    tp_node *node = &ctx->tape[ctx->tape_count++];
    node->backward = backward;
    node->out = out;
    node->in[0] = a;
    node->in[1] = b;
    node->in[2] = c;
    node->saved = saved_bytes ? memcpy(tp_arena_alloc(&ctx->host_arena, saved_bytes), state, saved_bytes) : NULL;
    out->requires_grad = 1;
}

/* record() with the saved state given as the fields of a `type` (designated initialisers). */
#define RECORD_STATE(ctx, backward, out, a, b, c, type, ...) \
    record(ctx, backward, out, a, b, c, &(type){__VA_ARGS__}, sizeof(type))

/* Gradient buffer of an input that wants one, else NULL. */
static float *input_grad(tp_ctx *ctx, tp_tensor *t) { return t && t->requires_grad ? tp_grad_of(ctx, t) : NULL; }

void tp_backward_seed(tp_ctx *ctx, tp_tensor *loss)
{
    if (tp_numel(loss) != 1) shape_fail("backward (loss must be a scalar)", loss, NULL);
    float one = 1.0f;
    ctx->backend->upload(tp_grad_of(ctx, loss), &one, sizeof one);
}

/* Every op that reads a tensor was recorded after the op that made it, so when the maker's
 * backward runs, its output's gradient is complete and nothing reads it again. */
void tp_backward_node(tp_ctx *ctx, int64_t index)
{
    tp_node *node = &ctx->tape[index];
    if (!node->out->grad) return;
    node->backward(ctx, node);
    release_grad(ctx, node->out);
}

void tp_backward(tp_ctx *ctx, tp_tensor *loss)
{
    tp_backward_seed(ctx, loss);
    for (int64_t i = ctx->tape_count - 1; i >= 0; i--) tp_backward_node(ctx, i);
}

/* ---- linear ------------------------------------------------------------------- */

/* Where a linear layer's gradients go: NULL for an input that wants none; beta 0 overwrites, 1 adds. */
typedef struct linear_grads {
    float *dx, *dweight, *dbias;
    float beta_x, beta_weight;
} linear_grads;

static linear_grads linear_grads_of(tp_ctx *ctx, tp_tensor *x, tp_tensor *weight, tp_tensor *bias)
{
    linear_grads grads = {NULL, NULL, input_grad(ctx, bias), 0.0f, 0.0f};
    if (x->requires_grad) grads.dx = grad_for_product(ctx, x, &grads.beta_x);
    if (weight->requires_grad) grads.dweight = grad_for_product(ctx, weight, &grads.beta_weight);
    return grads;
}

/* The gradients from dy, the output gradient of the weight's rows [block.first, +block.count) (its
 * own rows of block.count floats): dx (+)= dy W[block], dW[block] (+)= dy^T x, dbias[block] += sum dy. */
static void linear_backward_block(const tp_backend *be, const tp_tensor *x, const tp_tensor *weight, const float *dy,
                                  tp_column_block block, const linear_grads *grads, float beta_x)
{
    int64_t rows = tp_rows(x), in = tp_cols(x), out = block.count;
    if (grads->dx)
        be->gemm(0, 0, rows, in, out, 1.0f, dy, out, weight->data + block.first * in, in, beta_x, grads->dx, in);
    if (grads->dweight)
        be->gemm(1, 0, out, in, rows, 1.0f, dy, out, x->data, in, grads->beta_weight,
                 grads->dweight + block.first * in, in);
    if (grads->dbias) be->bias_backward(grads->dbias + block.first, dy, rows, out);
}

static void linear_backward(tp_ctx *ctx, tp_node *node)
{
    tp_tensor *x = node->in[0], *weight = node->in[1], *bias = node->in[2];
    linear_grads grads = linear_grads_of(ctx, x, weight, bias);
    tp_column_block all = {0, weight->shape[0]};
    linear_backward_block(ctx->backend, x, weight, node->out->grad, all, &grads, grads.beta_x);
}

/* y = x W^T + bias, recorded by the callers. */
static tp_tensor *linear_values(tp_ctx *ctx, tp_tensor *x, tp_tensor *weight, tp_tensor *bias)
{
    if (weight->ndim != 2 || tp_cols(x) != weight->shape[1]) shape_fail("linear", x, weight);
    if (bias && (bias->ndim != 1 || bias->shape[0] != weight->shape[0])) shape_fail("linear bias", weight, bias);
    int64_t rows = tp_rows(x), in = tp_cols(x), out = weight->shape[0];
    int64_t shape[TP_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = out;
    tp_tensor *y = tp_empty(ctx, x->ndim, shape);
    if (bias) ctx->backend->fill_bias(y->data, bias->data, rows, out);
    ctx->backend->gemm(0, 1, rows, out, in, 1.0f, x->data, in, weight->data, in, bias ? 1.0f : 0.0f, y->data, out);
    return y;
}

tp_tensor *tp_linear(tp_ctx *ctx, tp_tensor *x, tp_tensor *weight, tp_tensor *bias)
{
    tp_tensor *y = linear_values(ctx, x, weight, bias);
    record(ctx, linear_backward, y, x, weight, bias, NULL, 0);
    return y;
}

/* ---- element-wise ------------------------------------------------------------- */

static void add_backward(tp_ctx *ctx, tp_node *node)
{
    int64_t n = tp_numel(node->out);
    for (int i = 0; i < 2; i++)
        if (node->in[i]->requires_grad) ctx->backend->accumulate(tp_grad_of(ctx, node->in[i]), node->out->grad, n);
}

tp_tensor *tp_add(tp_ctx *ctx, tp_tensor *a, tp_tensor *b)
{
    if (tp_numel(a) != tp_numel(b)) shape_fail("add", a, b);
    tp_tensor *y = tp_empty(ctx, a->ndim, a->shape);
    ctx->backend->add(y->data, a->data, b->data, tp_numel(a));
    record(ctx, add_backward, y, a, b, NULL, NULL, 0);
    return y;
}

static void mul_backward(tp_ctx *ctx, tp_node *node)
{
    tp_tensor *a = node->in[0], *b = node->in[1];
    int64_t n = tp_numel(node->out);
    if (a->requires_grad) ctx->backend->multiply(tp_grad_of(ctx, a), node->out->grad, b->data, n, 1);
    if (b->requires_grad) ctx->backend->multiply(tp_grad_of(ctx, b), node->out->grad, a->data, n, 1);
}

tp_tensor *tp_mul(tp_ctx *ctx, tp_tensor *a, tp_tensor *b)
{
    if (tp_numel(a) != tp_numel(b)) shape_fail("mul", a, b);
    tp_tensor *y = tp_empty(ctx, a->ndim, a->shape);
    ctx->backend->multiply(y->data, a->data, b->data, tp_numel(a), 0);
    record(ctx, mul_backward, y, a, b, NULL, NULL, 0);
    return y;
}

typedef struct { float scale; } scale_saved;

static void scale_backward(tp_ctx *ctx, tp_node *node)
{
    scale_saved *saved = node->saved;
    ctx->backend->axpy(tp_grad_of(ctx, node->in[0]), saved->scale, node->out->grad, tp_numel(node->out));
}

tp_tensor *tp_scale(tp_ctx *ctx, tp_tensor *x, float scale)
{
    tp_tensor *y = tp_zeros(ctx, x->ndim, x->shape);
    ctx->backend->axpy(y->data, scale, x->data, tp_numel(x));
    RECORD_STATE(ctx, scale_backward, y, x, NULL, NULL, scale_saved, .scale = scale);
    return y;
}

typedef struct { tp_activation kind; } act_saved;

static void act_backward(tp_ctx *ctx, tp_node *node)
{
    act_saved *saved = node->saved;
    tp_tensor *x = node->in[0], *y = node->out;
    ctx->backend->activation_backward(saved->kind, tp_grad_of(ctx, x), y->grad, x->data, y->data, tp_numel(x));
}

tp_tensor *tp_act(tp_ctx *ctx, tp_tensor *x, tp_activation kind)
{
    tp_tensor *y = tp_empty(ctx, x->ndim, x->shape);
    ctx->backend->activation_forward(kind, y->data, x->data, tp_numel(x));
    RECORD_STATE(ctx, act_backward, y, x, NULL, NULL, act_saved, .kind = kind);
    return y;
}

/* ---- layer norm --------------------------------------------------------------- */

typedef struct {
    tp_norm_kind kind;
    float eps;
    float *mean, *inv_scale;
} norm_saved;

static void layer_norm_backward(tp_ctx *ctx, tp_node *node)
{
    norm_saved *saved = node->saved;
    tp_tensor *x = node->in[0], *gamma = node->in[1], *beta = node->in[2];
    ctx->backend->layer_norm_backward(saved->kind, input_grad(ctx, x), input_grad(ctx, gamma), input_grad(ctx, beta),
                                      node->out->grad, x->data, saved->mean, saved->inv_scale, gamma->data,
                                      tp_rows(x), tp_cols(x), saved->eps);
}

tp_tensor *tp_layer_norm(tp_ctx *ctx, tp_tensor *x, tp_tensor *gamma, tp_tensor *beta, tp_norm_kind kind, float eps)
{
    int64_t rows = tp_rows(x), cols = tp_cols(x);
    if (tp_numel(gamma) != cols) shape_fail("layer_norm gamma", x, gamma);
    if (beta && tp_numel(beta) != cols) shape_fail("layer_norm beta", x, beta);
    tp_tensor *y = tp_empty(ctx, x->ndim, x->shape);
    float *stats = reuse_or_allocate(ctx, float_bytes(2 * rows));
    ctx->backend->layer_norm_forward(kind, y->data, stats, stats + rows, x->data, gamma->data,
                                     beta ? beta->data : NULL, rows, cols, eps);
    if (needs_grad(ctx, x, gamma, beta))
        RECORD_STATE(ctx, layer_norm_backward, y, x, gamma, beta, norm_saved,
                     .kind = kind, .eps = eps, .mean = stats, .inv_scale = stats + rows);
    else
        release_buffer(ctx, stats, float_bytes(2 * rows)); /* only the backward reads the statistics */
    return y;
}

/* ---- dropout ------------------------------------------------------------------ */

typedef struct {
    float p;
    uint64_t stream;
} dropout_saved;

/* Each dropout call in a step draws from its own stream, a function of (step, rank, call index). */
static uint64_t next_random_stream(tp_ctx *ctx)
{
    uint64_t call = ctx->random_calls++;
    return TP_STREAM_DROPOUT + tp_mix64((ctx->step << 24) ^ (ctx->rank << 52) ^ call) * 16;
}

static void dropout_backward(tp_ctx *ctx, tp_node *node)
{
    dropout_saved *saved = node->saved;
    ctx->backend->dropout_backward(tp_grad_of(ctx, node->in[0]), node->out->grad, tp_numel(node->out), saved->p,
                                   ctx->seed, saved->stream);
}

tp_tensor *tp_dropout(tp_ctx *ctx, tp_tensor *x, float p)
{
    if (p <= 0.0f || !ctx->training) return x;
    uint64_t stream = next_random_stream(ctx);
    tp_tensor *y = tp_empty(ctx, x->ndim, x->shape);
    ctx->backend->dropout_forward(y->data, x->data, tp_numel(x), p, ctx->seed, stream);
    RECORD_STATE(ctx, dropout_backward, y, x, NULL, NULL, dropout_saved, .p = p, .stream = stream);
    return y;
}

static void dropout_add_backward(tp_ctx *ctx, tp_node *node)
{
    dropout_saved *saved = node->saved;
    tp_tensor *x = node->in[0], *residual = node->in[1];
    int64_t n = tp_numel(node->out);
    if (residual->requires_grad) ctx->backend->accumulate(tp_grad_of(ctx, residual), node->out->grad, n);
    if (x->requires_grad)
        ctx->backend->dropout_backward(tp_grad_of(ctx, x), node->out->grad, n, saved->p, ctx->seed, saved->stream);
}

tp_tensor *tp_dropout_add(tp_ctx *ctx, tp_tensor *x, float p, tp_tensor *residual)
{
    if (p <= 0.0f || !ctx->training) return tp_add(ctx, x, residual);
    if (tp_numel(x) != tp_numel(residual)) shape_fail("dropout_add", x, residual);
    uint64_t stream = next_random_stream(ctx);
    tp_tensor *y = tp_empty(ctx, x->ndim, x->shape);
    ctx->backend->dropout_forward(y->data, x->data, tp_numel(x), p, ctx->seed, stream);
    ctx->backend->add(y->data, y->data, residual->data, tp_numel(x));
    RECORD_STATE(ctx, dropout_add_backward, y, x, residual, NULL, dropout_saved, .p = p, .stream = stream);
    return y;
}

/* ---- gathers ------------------------------------------------------------------ */

typedef struct {
    const int32_t *ids;
    int64_t n;
} gather_saved;

static void gather_backward(tp_ctx *ctx, tp_node *node)
{
    gather_saved *saved = node->saved;
    tp_tensor *table = node->in[0];
    ctx->backend->scatter_add_rows(tp_grad_of(ctx, table), node->out->grad, saved->ids, saved->n, tp_cols(table));
}

static tp_tensor *gather(tp_ctx *ctx, tp_tensor *table, const int32_t *ids, int64_t n)
{
    int64_t cols = tp_cols(table);
    tp_tensor *y = tp_empty_2d(ctx, n, cols);
    ctx->backend->gather_rows(y->data, table->data, ids, n, cols);
    RECORD_STATE(ctx, gather_backward, y, table, NULL, NULL, gather_saved, .ids = ids, .n = n);
    return y;
}

tp_tensor *tp_embedding(tp_ctx *ctx, tp_tensor *table, const int32_t *ids, int64_t n)
{
    if (table->ndim != 2) shape_fail("embedding table", table, NULL);
    return gather(ctx, table, ids, n);
}

tp_tensor *tp_gather_rows(tp_ctx *ctx, tp_tensor *x, const int32_t *rows, int64_t n) { return gather(ctx, x, rows, n); }

/* ---- attention ---------------------------------------------------------------- */

typedef struct {
    tp_attention_shape shape;
    float *probs;
    tp_tensor *bias; /* the fourth input, or NULL */
} attention_saved;

static void attention_backward(tp_ctx *ctx, tp_node *node)
{
    attention_saved *saved = node->saved;
    tp_tensor *q = node->in[0], *k = node->in[1], *v = node->in[2];
    tp_attention_shape shape = saved->shape;
    shape.bias_grad = input_grad(ctx, saved->bias);
    size_t scratch_bytes = float_bytes(ctx->backend->attention_scratch(&shape));
    float *scratch = reuse_or_allocate(ctx, scratch_bytes);
    ctx->backend->attention_backward(&shape, input_grad(ctx, q), input_grad(ctx, k), input_grad(ctx, v),
                                     node->out->grad, saved->probs, q->data, k->data, v->data, scratch);
    release_buffer(ctx, scratch, scratch_bytes);
}

tp_tensor *tp_attention_general(tp_ctx *ctx, tp_tensor *q, tp_tensor *k, tp_tensor *v, const tp_attention_options *o)
{
    int64_t hidden = tp_cols(q);
    if (tp_cols(k) != hidden || tp_numel(k) != tp_numel(v)) shape_fail("attention q/k/v", q, k);
    if (tp_rows(q) != o->batch * o->seq || tp_rows(k) != o->batch * o->kv_seq || hidden % o->heads)
        shape_fail("attention heads", q, k);
    if (o->bias && tp_numel(o->bias) != o->seq * o->kv_seq * o->heads) shape_fail("attention bias", q, o->bias);
    if (o->bias && o->bias->requires_grad && ctx->record && !needs_grad(ctx, q, k, v))
        shape_fail("attention (a bias that needs a gradient needs q, k or v to need one too)", q, o->bias);
    tp_attention_shape shape = {
        .batch = o->batch, .seq = o->seq, .heads = o->heads, .head_dim = hidden / o->heads,
        .scale = o->scale, .mask = o->mask, .key_valid = o->key_valid,
        .dropout = ctx->training ? o->dropout : 0.0f, .dropout_seed = ctx->seed,
        .kv_seq = o->kv_seq, .bias = o->bias ? o->bias->data : NULL,
    };
    if (shape.dropout > 0) shape.dropout_stream = next_random_stream(ctx);
    tp_tensor *out = tp_empty(ctx, q->ndim, q->shape);
    size_t probs_bytes = float_bytes(o->batch * o->heads * o->seq * o->kv_seq);
    size_t scratch_bytes = float_bytes(ctx->backend->attention_scratch(&shape));
    float *probs = reuse_or_allocate(ctx, probs_bytes), *scratch = reuse_or_allocate(ctx, scratch_bytes);
    ctx->backend->attention_forward(&shape, out->data, probs, q->data, k->data, v->data, scratch);
    release_buffer(ctx, scratch, scratch_bytes);
    if (needs_grad(ctx, q, k, v))
        RECORD_STATE(ctx, attention_backward, out, q, k, v, attention_saved,
                     .shape = shape, .probs = probs, .bias = o->bias);
    else
        release_buffer(ctx, probs, probs_bytes); /* only the backward reads the probabilities */
    return out;
}

tp_tensor *tp_attention(tp_ctx *ctx, tp_tensor *q, tp_tensor *k, tp_tensor *v, int64_t batch, int64_t seq,
                        int64_t heads, tp_mask_kind mask, const int32_t *key_valid, float dropout)
{
    if (tp_numel(q) != tp_numel(k)) shape_fail("attention q/k/v", q, k);
    tp_attention_options options = {
        .batch = batch, .seq = seq, .kv_seq = seq, .heads = heads, .mask = mask, .key_valid = key_valid,
        .scale = 1.0f / sqrtf((float)(tp_cols(q) / heads)), .dropout = dropout,
    };
    return tp_attention_general(ctx, q, k, v, &options);
}

tp_tensor *tp_attention_cached(tp_ctx *ctx, tp_tensor *q, const float *k_cache, const float *v_cache, int64_t batch,
                               int64_t past, int64_t capacity, int64_t heads)
{
    int64_t hidden = tp_cols(q);
    if (tp_rows(q) % batch || hidden % heads || past + tp_rows(q) / batch > capacity)
        shape_fail("attention_cached q", q, NULL);
    if (needs_grad(ctx, q, NULL, NULL)) {
        fprintf(stderr, "tp: internal error: attention_cached has no backward (inference only)\n");
        abort();
    }
    tp_cached_attention_shape shape = {
        .batch = batch, .queries = tp_rows(q) / batch, .past = past, .capacity = capacity, .heads = heads,
        .head_dim = hidden / heads,
    };
    shape.scale = 1.0f / sqrtf((float)shape.head_dim);
    tp_tensor *out = tp_empty(ctx, q->ndim, q->shape);
    float *scratch = tp_arena_alloc(&ctx->arena, (size_t)tp_cached_attention_scratch(&shape) * sizeof(float));
    ctx->backend->cached_attention_forward(&shape, out->data, q->data, k_cache, v_cache, scratch);
    return out;
}

/* ---- cross-entropy ------------------------------------------------------------ */

typedef struct {
    const int32_t *targets;
    float *logsumexp;
    const float *logits; /* tp_linear_cross_entropy's, which no tensor of the tape holds */
    int64_t classes, count;
} ce_saved;

static void cross_entropy_backward(tp_ctx *ctx, tp_node *node)
{
    ce_saved *saved = node->saved;
    tp_tensor *logits = node->in[0];
    float dloss;
    ctx->backend->download(&dloss, node->out->grad, sizeof dloss);
    float beta;
    float *dlogits = grad_for_product(ctx, logits, &beta); /* the kernel writes all of it */
    tp_column_block all = {0, tp_cols(logits)};
    ctx->backend->cross_entropy_backward(dlogits, beta, dloss, saved->count, logits->data, saved->logsumexp,
                                         saved->targets, tp_rows(logits), saved->classes, tp_cols(logits), all);
}

/* The loss of logits (its mean over the counted rows) into a new [1] tensor; *saved gets what the
 * backward needs. */
static tp_tensor *cross_entropy_values(tp_ctx *ctx, tp_tensor *logits, const int32_t *targets, int64_t classes,
                                       int64_t *correct, ce_saved *saved)
{
    if (classes > tp_cols(logits)) shape_fail("cross_entropy classes", logits, NULL);
    int64_t rows = tp_rows(logits), shape[1] = {1};
    tp_tensor *loss = tp_empty(ctx, 1, shape);
    *saved = (ce_saved){.targets = targets, .classes = classes, .logits = logits->data};
    saved->logsumexp = tp_arena_alloc(&ctx->arena, (size_t)(rows ? rows : 1) * sizeof(float));
    ctx->backend->cross_entropy_forward(loss->data, &saved->count, correct, saved->logsumexp, logits->data, targets,
                                        rows, classes, tp_cols(logits));
    return loss;
}

tp_tensor *tp_cross_entropy(tp_ctx *ctx, tp_tensor *logits, const int32_t *targets, int64_t classes,
                            int64_t *count, int64_t *correct)
{
    ce_saved saved;
    tp_tensor *loss = cross_entropy_values(ctx, logits, targets, classes, correct, &saved);
    if (count) *count = saved.count;
    record(ctx, cross_entropy_backward, loss, logits, NULL, NULL, &saved, sizeof saved);
    return loss;
}

/* The logits' gradient a block of columns at a time (the backend's linear_ce_block_bytes), each block
 * used by the linear layer's backward at once: the gradient is never whole. */
static void linear_cross_entropy_backward(tp_ctx *ctx, tp_node *node)
{
    const tp_backend *be = ctx->backend;
    ce_saved *saved = node->saved;
    tp_tensor *x = node->in[0], *weight = node->in[1], *bias = node->in[2];
    int64_t rows = tp_rows(x), ld = weight->shape[0], width = ld;
    if (be->linear_ce_block_bytes > 0 && rows > 0) {
        int64_t fit = be->linear_ce_block_bytes / (rows * (int64_t)sizeof(float)) / 64 * 64;
        width = fit < 64 ? 64 : fit;
        if (width > ld) width = ld;
    }
    float dloss;
    be->download(&dloss, node->out->grad, sizeof dloss);
    linear_grads grads = linear_grads_of(ctx, x, weight, bias);
    size_t block_bytes = float_bytes(rows * width);
    float *dlogits = reuse_or_allocate(ctx, block_bytes);
    for (int64_t first = 0; first < ld; first += width) {
        tp_column_block block = {first, first + width < ld ? width : ld - first};
        be->cross_entropy_backward(dlogits, 0.0f, dloss, saved->count, saved->logits, saved->logsumexp,
                                   saved->targets, rows, saved->classes, ld, block);
        linear_backward_block(be, x, weight, dlogits, block, &grads, first == 0 ? grads.beta_x : 1.0f);
    }
    release_buffer(ctx, dlogits, block_bytes);
}

tp_tensor *tp_linear_cross_entropy(tp_ctx *ctx, tp_tensor *x, tp_tensor *weight, tp_tensor *bias,
                                   const int32_t *targets, int64_t classes, int64_t *count, int64_t *correct,
                                   tp_tensor **logits)
{
    tp_tensor *values = linear_values(ctx, x, weight, bias);
    ce_saved saved;
    tp_tensor *loss = cross_entropy_values(ctx, values, targets, classes, correct, &saved);
    if (count) *count = saved.count;
    if (logits) *logits = values;
    record(ctx, linear_cross_entropy_backward, loss, x, weight, bias, &saved, sizeof saved);
    return loss;
}

typedef struct {
    const int32_t *targets;
    float *logsumexp;
    int64_t classes;
} uniform_ce_saved;

static void uniform_cross_entropy_backward(tp_ctx *ctx, tp_node *node)
{
    uniform_ce_saved *saved = node->saved;
    tp_tensor *logits = node->in[0];
    float dloss;
    ctx->backend->download(&dloss, node->out->grad, sizeof dloss);
    ctx->backend->uniform_cross_entropy_backward(tp_grad_of(ctx, logits), dloss, logits->data, saved->logsumexp,
                                                 saved->targets, tp_rows(logits), saved->classes, tp_cols(logits));
}

tp_tensor *tp_uniform_cross_entropy(tp_ctx *ctx, tp_tensor *logits, const int32_t *targets, int64_t classes)
{
    if (classes > tp_cols(logits)) shape_fail("uniform_cross_entropy classes", logits, NULL);
    int64_t rows = tp_rows(logits), shape[1] = {1};
    tp_tensor *loss = tp_empty(ctx, 1, shape);
    float *logsumexp = tp_arena_alloc(&ctx->arena, (size_t)(rows ? 2 * rows : 1) * sizeof(float));
    ctx->backend->uniform_cross_entropy_forward(loss->data, logsumexp, logits->data, targets, rows, classes,
                                                tp_cols(logits));
    RECORD_STATE(ctx, uniform_cross_entropy_backward, loss, logits, NULL, NULL, uniform_ce_saved,
                 .targets = targets, .logsumexp = logsumexp, .classes = classes);
    return loss;
}

/* ---- element-wise losses ------------------------------------------------------- */

typedef struct {
    tp_pointwise_loss_kind kind;
    const float *targets;
} pointwise_loss_saved;

static void pointwise_loss_backward(tp_ctx *ctx, tp_node *node)
{
    pointwise_loss_saved *saved = node->saved;
    tp_tensor *x = node->in[0];
    float dloss;
    ctx->backend->download(&dloss, node->out->grad, sizeof dloss);
    ctx->backend->pointwise_loss_backward(saved->kind, tp_grad_of(ctx, x), dloss, x->data, saved->targets,
                                          tp_numel(x));
}

tp_tensor *tp_pointwise_loss(tp_ctx *ctx, tp_tensor *x, const float *targets, tp_pointwise_loss_kind kind,
                             int64_t *correct)
{
    int64_t shape[1] = {1};
    tp_tensor *loss = tp_empty(ctx, 1, shape);
    ctx->backend->pointwise_loss_forward(kind, loss->data, correct, x->data, targets, tp_numel(x));
    RECORD_STATE(ctx, pointwise_loss_backward, loss, x, NULL, NULL, pointwise_loss_saved,
                 .kind = kind, .targets = targets);
    return loss;
}

/* ---- 1-D convolution ----------------------------------------------------------- */

typedef struct {
    tp_conv1d_shape shape;
    float *cols;
} conv1d_saved;

static void conv1d_backward(tp_ctx *ctx, tp_node *node)
{
    const tp_backend *be = ctx->backend;
    conv1d_saved *saved = node->saved;
    tp_tensor *x = node->in[0], *weight = node->in[1], *bias = node->in[2], *y = node->out;
    int64_t rows = tp_rows(y), out = weight->shape[0], width = saved->shape.channels * saved->shape.kernel;
    if (weight->requires_grad) /* dW += dy^T cols */
        be->gemm(1, 0, out, width, rows, 1.0f, y->grad, out, saved->cols, width, 1.0f, tp_grad_of(ctx, weight), width);
    if (bias && bias->requires_grad) be->bias_backward(tp_grad_of(ctx, bias), y->grad, rows, out);
    if (x->requires_grad) { /* dx += fold(dy W) */
        float *dcols = tp_arena_alloc(&ctx->arena, (size_t)(rows * width) * sizeof *dcols);
        be->gemm(0, 0, rows, width, out, 1.0f, y->grad, out, weight->data, width, 0.0f, dcols, width);
        be->conv1d_fold(&saved->shape, tp_grad_of(ctx, x), dcols);
    }
}

tp_tensor *tp_conv1d(tp_ctx *ctx, tp_tensor *x, tp_tensor *weight, tp_tensor *bias, int64_t batch, int64_t stride,
                     int64_t padding)
{
    if (weight->ndim != 3 || tp_cols(x) != weight->shape[1] || batch < 1 || tp_rows(x) % batch)
        shape_fail("conv1d", x, weight);
    if (bias && (bias->ndim != 1 || bias->shape[0] != weight->shape[0])) shape_fail("conv1d bias", weight, bias);
    tp_conv1d_shape shape = {batch, tp_rows(x) / batch, tp_cols(x), weight->shape[2], stride, padding};
    if (stride < 1 || padding < 0 || shape.length + 2 * padding < shape.kernel) shape_fail("conv1d length", x, weight);
    int64_t rows = batch * tp_conv1d_out_length(&shape), width = shape.channels * shape.kernel, out = weight->shape[0];
    float *cols = tp_arena_alloc(&ctx->arena, (size_t)(rows * width) * sizeof *cols);
    ctx->backend->conv1d_unfold(&shape, cols, x->data);
    tp_tensor *y = tp_empty_2d(ctx, rows, out);
    if (bias) ctx->backend->fill_bias(y->data, bias->data, rows, out);
    ctx->backend->gemm(0, 1, rows, out, width, 1.0f, cols, width, weight->data, width, bias ? 1.0f : 0.0f, y->data,
                       out);
    RECORD_STATE(ctx, conv1d_backward, y, x, weight, bias, conv1d_saved, .shape = shape, .cols = cols);
    return y;
}

/* ---- pooling ------------------------------------------------------------------ */

typedef struct {
    tp_pool_kind kind;
    int32_t *argmax;
    const int32_t *valid;
    int64_t batch, seq;
} pool_saved;

static void pool_backward(tp_ctx *ctx, tp_node *node)
{
    pool_saved *saved = node->saved;
    tp_tensor *x = node->in[0];
    ctx->backend->pool_backward(saved->kind, tp_grad_of(ctx, x), node->out->grad, saved->argmax, saved->valid,
                                saved->batch, saved->seq, tp_cols(x));
}

tp_tensor *tp_pool(tp_ctx *ctx, tp_tensor *x, tp_pool_kind kind, const int32_t *valid, int64_t batch, int64_t seq)
{
    if (tp_rows(x) != batch * seq) shape_fail("pool", x, NULL);
    int64_t cols = tp_cols(x);
    tp_tensor *out = tp_empty_2d(ctx, batch, cols);
    int32_t *argmax = kind == TP_POOL_MAX ? tp_arena_alloc(&ctx->arena, (size_t)(batch * cols) * sizeof *argmax) : NULL;
    ctx->backend->pool_forward(kind, out->data, argmax, x->data, valid, batch, seq, cols);
    RECORD_STATE(ctx, pool_backward, out, x, NULL, NULL, pool_saved,
                 .kind = kind, .argmax = argmax, .valid = valid, .batch = batch, .seq = seq);
    return out;
}

/* ---- linear-chain CRF ------------------------------------------------------------ */

typedef struct {
    tp_crf_problem problem;
    tp_tensor *end; /* the fourth input */
    float *alpha, *log_z;
    int64_t count;
} crf_saved;

static void crf_loss_backward(tp_ctx *ctx, tp_node *node)
{
    crf_saved *saved = node->saved;
    float dloss;
    ctx->backend->download(&dloss, node->out->grad, sizeof dloss);
    float *scratch = tp_arena_alloc(&ctx->arena, (size_t)tp_crf_scratch_floats(&saved->problem) * sizeof(float));
    ctx->backend->crf_backward(&saved->problem, dloss, saved->count, saved->alpha, saved->log_z,
                               input_grad(ctx, node->in[0]), input_grad(ctx, node->in[1]),
                               input_grad(ctx, node->in[2]), input_grad(ctx, saved->end), scratch);
}

tp_tensor *tp_crf_loss(tp_ctx *ctx, tp_tensor *emissions, tp_tensor *transitions, tp_tensor *start, tp_tensor *end,
                       const int32_t *tags, int64_t batch, int64_t seq, int64_t classes, int64_t *count)
{
    if (tp_rows(emissions) != batch * seq || tp_cols(emissions) < classes)
        shape_fail("crf_loss emissions (rows batch*seq, columns >= classes)", emissions, NULL);
    if (tp_numel(transitions) != classes * classes) shape_fail("crf_loss transitions", emissions, transitions);
    if (tp_numel(start) != classes || tp_numel(end) != classes) shape_fail("crf_loss start/end", start, end);
    if (start->requires_grad != end->requires_grad)
        shape_fail("crf_loss (start and end must both require a gradient or neither)", start, end);
    tp_crf_problem problem = {batch, seq, classes, tp_cols(emissions), tags, emissions->data, transitions->data,
                              start->data, end->data};
    int64_t shape[1] = {1}, counted = 0;
    tp_tensor *loss = tp_empty(ctx, 1, shape);
    int64_t alpha_floats = batch * seq * classes;
    float *alpha = tp_arena_alloc(&ctx->arena, (size_t)(alpha_floats ? alpha_floats : 1) * sizeof(float));
    float *log_z = tp_arena_alloc(&ctx->arena, (size_t)(batch ? batch : 1) * sizeof(float));
    ctx->backend->crf_forward(&problem, loss->data, &counted, alpha, log_z);
    if (count) *count = counted;
    RECORD_STATE(ctx, crf_loss_backward, loss, emissions, transitions, start, crf_saved,
                 .problem = problem, .end = end, .alpha = alpha, .log_z = log_z, .count = counted);
    return loss;
}

void tp_crf_viterbi(const float *emissions, int64_t ld, const int64_t *rows, int64_t n, const float *transitions,
                    const float *start, const float *end, int64_t classes, int32_t *tags)
{
    if (n == 0) return;
    double *score = tp_xmalloc((size_t)(2 * classes) * sizeof *score), *next = score + classes;
    int32_t *from = tp_xmalloc((size_t)(n * classes) * sizeof *from); /* the best previous tag of each (t, j) */
    for (int64_t j = 0; j < classes; j++) score[j] = (double)start[j] + emissions[rows[0] * ld + j];
    for (int64_t t = 1; t < n; t++) {
        for (int64_t j = 0; j < classes; j++) {
            int64_t best = 0;
            for (int64_t i = 1; i < classes; i++)
                if (score[i] + transitions[i * classes + j] > score[best] + transitions[best * classes + j]) best = i;
            from[t * classes + j] = (int32_t)best;
            next[j] = score[best] + transitions[best * classes + j] + emissions[rows[t] * ld + j];
        }
        memcpy(score, next, (size_t)classes * sizeof *score);
    }
    int64_t best = 0;
    for (int64_t j = 1; j < classes; j++)
        if (score[j] + end[j] > score[best] + end[best]) best = j;
    for (int64_t t = n - 1; t >= 0; t--) {
        tags[t] = (int32_t)best;
        if (t > 0) best = from[t * classes + best];
    }
    free(score);
    free(from);
}

/* ---- CLIP's contrastive head ------------------------------------------------------ */

typedef struct {
    float *inv_norm;
} l2_normalize_saved;

static void l2_normalize_backward(tp_ctx *ctx, tp_node *node)
{
    tp_tensor *x = node->in[0], *y = node->out;
    ctx->backend->l2_normalize_backward(tp_grad_of(ctx, x), y->grad, y->data,
                                        ((l2_normalize_saved *)node->saved)->inv_norm, tp_rows(x), tp_cols(x));
}

tp_tensor *tp_l2_normalize(tp_ctx *ctx, tp_tensor *x)
{
    int64_t rows = tp_rows(x);
    tp_tensor *y = tp_empty(ctx, x->ndim, x->shape);
    float *inv_norm = tp_arena_alloc(&ctx->arena, (size_t)rows * sizeof *inv_norm);
    ctx->backend->l2_normalize_forward(y->data, inv_norm, x->data, rows, tp_cols(x));
    RECORD_STATE(ctx, l2_normalize_backward, y, x, NULL, NULL, l2_normalize_saved, .inv_norm = inv_norm);
    return y;
}

static void scale_exp_backward(tp_ctx *ctx, tp_node *node)
{
    tp_tensor *x = node->in[0], *s = node->in[1], *y = node->out;
    ctx->backend->scale_exp_backward(input_grad(ctx, x), input_grad(ctx, s), y->grad, y->data, s->data, tp_numel(x));
}

tp_tensor *tp_scale_exp(tp_ctx *ctx, tp_tensor *x, tp_tensor *s)
{
    if (tp_numel(s) != 1) shape_fail("scale_exp (s must have one element)", x, s);
    tp_tensor *y = tp_empty(ctx, x->ndim, x->shape);
    ctx->backend->scale_exp_forward(y->data, x->data, s->data, tp_numel(x));
    record(ctx, scale_exp_backward, y, x, s, NULL, NULL, 0);
    return y;
}

typedef struct {
    int64_t offset; /* this rank's first float in the output */
    float grad_scale;
} all_gather_rows_saved;

static void all_gather_rows_backward(tp_ctx *ctx, tp_node *node)
{
    all_gather_rows_saved *saved = node->saved;
    tp_tensor *x = node->in[0];
    ctx->backend->axpy(tp_grad_of(ctx, x), saved->grad_scale, node->out->grad + saved->offset, tp_numel(x));
}

tp_tensor *tp_all_gather_rows(tp_ctx *ctx, tp_tensor *x, tp_comm *comm, float grad_scale, const char *what)
{
    int64_t ranks = tp_comm_size(comm), offset = tp_comm_rank(comm) * tp_numel(x);
    tp_tensor *y = tp_empty_2d(ctx, ranks * tp_rows(x), tp_cols(x));
    ctx->backend->copy(y->data + offset, x->data, tp_numel(x));
    /* tp_comm_all_gather's shards are ceil(count / ranks) floats: exactly each rank's rows here */
    if (tp_comm_all_gather(comm, y->data, tp_numel(y), what) < 0) return NULL;
    RECORD_STATE(ctx, all_gather_rows_backward, y, x, NULL, NULL, all_gather_rows_saved, .offset = offset,
                 .grad_scale = grad_scale);
    return y;
}
