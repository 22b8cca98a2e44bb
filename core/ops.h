/* The op API and the tape autograd.
 *
 * Modules build models only from these ops; they never loop over tensor data
 * and never call a backend directly.  Each op checks its shapes, takes its
 * output from the step arena, runs the backend kernel and -- when the context
 * records gradients and an input requires them -- appends a node with its
 * backward to the tape.  tp_backward(ctx, loss) walks the tape in reverse.
 * Shape errors are programming errors inside tp (modules validate configs
 * first), so they abort with a message naming the op and both shapes. */
#ifndef TP_OPS_H
#define TP_OPS_H

#include <stdint.h>

#include "arena.h"
#include "backend.h"
#include "tensor.h"

typedef struct tp_ctx tp_ctx;
typedef struct tp_node tp_node;
typedef void (*tp_backward_fn)(tp_ctx *ctx, tp_node *node);

struct tp_node {
    tp_backward_fn backward;
    tp_tensor *out;
    tp_tensor *in[3];
    void *saved; /* op-specific, arena-allocated */
};

/* A buffer in the step arena that nothing reads any more (a gradient whose op's backward has run,
 * an op's scratch): free for reuse. */
typedef struct tp_free_buffer {
    float *data;
    size_t bytes;
} tp_free_buffer;

struct tp_ctx {
    const tp_backend *backend;
    tp_arena arena;      /* activations, gradients, index arrays: backend memory */
    tp_free_buffer *free_buffers; /* reused by gradients and scratch of the same size */
    int64_t free_buffer_count, free_buffer_capacity;
    tp_arena host_arena; /* tensor structs and the tape's saved state: host memory */
    tp_node *tape;
    int64_t tape_count, tape_capacity;
    int record;       /* 1: build the tape (training or gradient checks) */
    int training;     /* 1: dropout active */
    uint64_t seed;    /* the run's seed */
    uint64_t step;    /* optimizer step: part of every dropout stream */
    uint64_t rank;    /* data-parallel rank: ranks draw different dropout masks */
    uint64_t random_calls; /* dropout calls so far in this step */
};

void tp_ctx_init(tp_ctx *ctx, const tp_backend *backend, size_t arena_bytes);
void tp_ctx_free(tp_ctx *ctx);
/* Drops the tape and every activation: call after the optimizer step. */
void tp_ctx_reset(tp_ctx *ctx);

/* A new arena tensor (data uninitialised; zeroed for tp_zeros). */
tp_tensor *tp_empty(tp_ctx *ctx, int ndim, const int64_t *shape);
tp_tensor *tp_zeros(tp_ctx *ctx, int ndim, const int64_t *shape);
tp_tensor *tp_empty_2d(tp_ctx *ctx, int64_t rows, int64_t cols);
/* Integer buffer in the arena (index arrays for ops), copied from host memory. */
int32_t *tp_ids_upload(tp_ctx *ctx, const int32_t *host, int64_t n);
/* Float buffer in the arena (targets of the element-wise losses), copied from host memory. */
float *tp_floats_upload(tp_ctx *ctx, const float *host, int64_t n);
/* The gradient buffer of t, allocated zeroed on first use. */
float *tp_grad_of(tp_ctx *ctx, tp_tensor *t);

/* Runs the tape backwards from a scalar (numel 1) loss; loss->grad is seeded with 1.  The
 * gradient of an op's output is released once that op's backward has run (its grad is NULL
 * afterwards): only the gradients of inputs that no op made (parameters, leaves) remain. */
void tp_backward(tp_ctx *ctx, tp_tensor *loss);
/* tp_backward in pieces, for a caller that acts between nodes (the trainer's overlapped
 * gradient all-reduce): seed the loss, then run nodes tape_count - 1 down to 0. */
void tp_backward_seed(tp_ctx *ctx, tp_tensor *loss);
void tp_backward_node(tp_ctx *ctx, int64_t index);

/* y = x W^T + b.  x [..., in], W [out_rows, in] with out_rows >= out (padded
 * vocabularies keep extra zero rows; y gets all out_rows columns), b [out_rows] or NULL. */
tp_tensor *tp_linear(tp_ctx *ctx, tp_tensor *x, tp_tensor *weight, tp_tensor *bias);
/* a * b element-wise, same number of elements (gated feed-forward). */
tp_tensor *tp_mul(tp_ctx *ctx, tp_tensor *a, tp_tensor *b);
/* a + b, same shape. */
tp_tensor *tp_add(tp_ctx *ctx, tp_tensor *a, tp_tensor *b);
tp_tensor *tp_act(tp_ctx *ctx, tp_tensor *x, tp_activation kind);
/* beta may be NULL (T5's norms have no bias). */
tp_tensor *tp_layer_norm(tp_ctx *ctx, tp_tensor *x, tp_tensor *gamma, tp_tensor *beta, tp_norm_kind kind, float eps);
/* Inverted dropout; identity (no copy) when p == 0 or not training. */
tp_tensor *tp_dropout(tp_ctx *ctx, tp_tensor *x, float p);
/* tp_add(tp_dropout(x, p), residual) -- the same values and gradients, bit for bit, and the same
 * random stream -- as one op that adds the residual into the dropped copy, so that a step keeps
 * one [rows, cols] buffer per residual branch, not two (neither backward reads those values). */
tp_tensor *tp_dropout_add(tp_ctx *ctx, tp_tensor *x, float p, tp_tensor *residual);
/* Rows of table [rows, cols] at ids (n of them, in backend memory) -> [n, cols]. */
tp_tensor *tp_embedding(tp_ctx *ctx, tp_tensor *table, const int32_t *ids, int64_t n);
/* Rows of x (viewed as [rows, cols]) at row indices -> [n, cols]. */
tp_tensor *tp_gather_rows(tp_ctx *ctx, tp_tensor *x, const int32_t *rows, int64_t n);
/* Multi-head attention core on [batch*seq, heads*head_dim] q, k, v (see tp_attention_shape). */
tp_tensor *tp_attention(tp_ctx *ctx, tp_tensor *q, tp_tensor *k, tp_tensor *v, int64_t batch, int64_t seq,
                        int64_t heads, tp_mask_kind mask, const int32_t *key_valid, float dropout);
/* The general attention core (tp_attention_shape): queries [batch*seq, heads*head_dim] over keys and
 * values [batch*kv_seq, heads*head_dim] (cross-attention when kv_seq differs), scores times `scale`
 * (1/sqrt(head_dim) normally; T5: 1) plus an optional bias [seq*kv_seq, heads] (T5's relative
 * positions, differentiated when it requires a gradient), then the mask and softmax. */
typedef struct tp_attention_options {
    int64_t batch, seq, kv_seq, heads;
    tp_mask_kind mask;
    const int32_t *key_valid; /* [batch*kv_seq] (fully visible: padding keys masked), or NULL */
    tp_tensor *bias;          /* or NULL */
    float scale, dropout;
} tp_attention_options;
tp_tensor *tp_attention_general(tp_ctx *ctx, tp_tensor *q, tp_tensor *k, tp_tensor *v, const tp_attention_options *o);
/* Incremental causal attention (inference only: no tape, aborts when q needs a gradient): the
 * [batch*n, heads*head_dim] queries of n new tokens per sequence, at positions past .. past+n-1,
 * against key and value caches [batch, capacity, heads*head_dim] (backend memory) that already
 * hold positions 0 .. past+n-1 -> [batch*n, heads*head_dim]; equals tp_attention's causal rows. */
tp_tensor *tp_attention_cached(tp_ctx *ctx, tp_tensor *q, const float *k_cache, const float *v_cache, int64_t batch,
                               int64_t past, int64_t capacity, int64_t heads);
/* Mean cross-entropy over rows whose target >= 0, on the first `classes` columns -> [1].
 * count / correct (may be NULL) receive the counted rows and argmax hits. */
tp_tensor *tp_cross_entropy(tp_ctx *ctx, tp_tensor *logits, const int32_t *targets, int64_t classes,
                            int64_t *count, int64_t *correct);
/* tp_cross_entropy(tp_linear(x, weight, bias), ...) as one op, for a vocabulary projection: the same
 * loss, and in backward the logits' gradient is made and used a block of columns at a time
 * (tp_backend.linear_ce_block_bytes) instead of whole.  *logits (may be NULL) receives the logits,
 * which are not on the tape: nothing else may take a gradient through them. */
tp_tensor *tp_linear_cross_entropy(tp_ctx *ctx, tp_tensor *x, tp_tensor *weight, tp_tensor *bias,
                                   const int32_t *targets, int64_t classes, int64_t *count, int64_t *correct,
                                   tp_tensor **logits);
/* Sum over rows whose target >= 0 of logsumexp(logits[r, :classes]) - mean(logits[r, :classes]) -> [1]:
 * the cross-entropy against the uniform distribution, label smoothing's second term (modules/targets/lm.c). */
tp_tensor *tp_uniform_cross_entropy(tp_ctx *ctx, tp_tensor *logits, const int32_t *targets, int64_t classes);
/* Mean over every element of x of an element-wise loss against targets (numel(x) floats in
 * backend memory) -> [1]: BCE with logits (multi-label, targets 0/1) or squared error
 * (regression).  correct (may be NULL) receives the elements predicted right (BCE: x > 0
 * exactly where the target is 1). */
tp_tensor *tp_pointwise_loss(tp_ctx *ctx, tp_tensor *x, const float *targets, tp_pointwise_loss_kind kind,
                             int64_t *correct);
/* Mean or max of x [batch*seq, cols] over each sequence's real tokens (valid != 0, backend
 * memory) -> [batch, cols]. */
tp_tensor *tp_pool(tp_ctx *ctx, tp_tensor *x, tp_pool_kind kind, const int32_t *valid, int64_t batch, int64_t seq);
/* torch.nn.Conv1d over time: x [batch*length, channels] (each sequence's rows in time order),
 * weight [out_channels, channels, kernel] (torch's layout), bias [out_channels] or NULL, stride and
 * zero padding on both sides -> [batch*out_length, out_channels] (tp_conv1d_out_length).  Runs as
 * unfold (backend) + one product; the unfolded input is saved for the weight's gradient. */
tp_tensor *tp_conv1d(tp_ctx *ctx, tp_tensor *x, tp_tensor *weight, tp_tensor *bias, int64_t batch, int64_t stride,
                     int64_t padding);
/* scale * x */
tp_tensor *tp_scale(tp_ctx *ctx, tp_tensor *x, float scale);
/* CLIP: each row of x [rows, cols] divided by its L2 norm (x / x.norm(dim=-1, keepdim=True)). */
tp_tensor *tp_l2_normalize(tp_ctx *ctx, tp_tensor *x);
/* CLIP: exp(s) * x for a one-element s (the learned logit_scale), differentiable in both. */
tp_tensor *tp_scale_exp(tp_ctx *ctx, tp_tensor *x, tp_tensor *s);
/* Data-parallel all-gather of rows (core/distributed.h): every rank's x [rows, cols] (the same shape
 * on every rank) -> [ranks * rows, cols], rank r's x at rows [r * rows, (r + 1) * rows), in the
 * backend's memory (host memory moves over MPI, device memory over NCCL).  The other ranks' rows are
 * constants here; backward adds grad_scale times this rank's rows of the output's gradient to x's
 * (OpenCLIP's gather_with_grad with the sum over the ranks of that gradient left to the caller: see
 * modules/targets/clr.c).  A world of one copies x.  NULL + tp_fail when the collective fails. */
struct tp_comm;
tp_tensor *tp_all_gather_rows(tp_ctx *ctx, tp_tensor *x, struct tp_comm *comm, float grad_scale, const char *what);

/* Linear-chain CRF negative log-likelihood log Z - score(gold path), averaged over the sequences
 * with at least one scored position -> [1] (pytorch-crf's -CRF(emissions, tags, reduction="mean")
 * on each sequence's chain).  emissions [batch*seq, >= classes] (the first `classes` columns),
 * transitions [classes, classes] (from row to column), start and end [classes]; tags [batch*seq]
 * in backend memory: a tag id at the scored positions, -1 elsewhere (tp_crf_problem says how the
 * chain skips the rest).  start and end must both require a gradient or neither: the tape node
 * holds three inputs and end rides in its saved state.  count (may be NULL) receives the sequences
 * averaged over. */
tp_tensor *tp_crf_loss(tp_ctx *ctx, tp_tensor *emissions, tp_tensor *transitions, tp_tensor *start, tp_tensor *end,
                       const int32_t *tags, int64_t batch, int64_t seq, int64_t classes, int64_t *count);
/* Viterbi decoding on the host: the highest-scoring tag path of one chain of n positions, whose
 * emission scores are rows[0..n) of emissions (row stride ld, the first `classes` columns), under
 * transitions [classes * classes], start and end [classes] (all host memory) -> tags[n].  Ties go
 * to the lowest tag id. */
void tp_crf_viterbi(const float *emissions, int64_t ld, const int64_t *rows, int64_t n, const float *transitions,
                    const float *start, const float *end, int64_t classes, int32_t *tags);

#endif
