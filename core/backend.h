/* The kernel table: one struct of function pointers per backend.
 *
 * The CPU table (core/cpu_kernels.c: C + OpenMP + OpenBLAS) is the reference
 * every other backend is tested against; the CUDA table lives in cuda/.
 * Kernels work on raw row-major buffers in the backend's memory and never
 * allocate.  Backward kernels ACCUMULATE into gradient buffers (+=), so a
 * tensor used twice collects both contributions.  The op layer (core/ops.c)
 * checks shapes, allocates outputs, records the tape and calls these. */
#ifndef TP_BACKEND_H
#define TP_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "host_device.h"
#include "optim.h"

typedef enum tp_activation {
    TP_ACT_GELU,      /* x * Phi(x), exact erf form */
    TP_ACT_GELU_FAST, /* tanh approximation */
    TP_ACT_RELU,
    TP_ACT_SILU,
    TP_ACT_TANH,
    TP_ACT_QUICK_GELU, /* x * sigmoid(1.702 x) (OpenAI CLIP) */
    TP_ACT_COUNT
} tp_activation;

typedef enum tp_norm_kind {
    TP_NORM_UNBIASED_STD, /* TencentPretrain "normal": gamma * (x - mean) / (std_unbiased + eps) + beta */
    TP_NORM_TORCH,        /* torch.nn.LayerNorm: (x - mean) / sqrt(var_biased + eps) * weight + bias */
    TP_NORM_RMS,          /* T5LayerNorm: x / sqrt(mean(x^2) + eps) * weight (no centring; mean saved as 0) */
} tp_norm_kind;

typedef enum tp_pool_kind {
    TP_POOL_MEAN, /* mean over a sequence's real tokens */
    TP_POOL_MAX,  /* element-wise max over a sequence's real tokens */
} tp_pool_kind;

/* Element-wise losses of a prediction x against a float target t (multi-label, regression). */
typedef enum tp_pointwise_loss_kind {
    TP_LOSS_BCE_WITH_LOGITS, /* -t log sigmoid(x) - (1 - t) log(1 - sigmoid(x)), torch's BCEWithLogitsLoss */
    TP_LOSS_SQUARED_ERROR,   /* (x - t)^2, torch's MSELoss */
} tp_pointwise_loss_kind;

/* A linear-chain CRF problem (pytorch-crf's semantics) over a batch of sequences.  Sequence b's
 * chain is its SCORED positions: the s in 0..seq-1 with tags[b*seq + s] >= 0, in order (the
 * positions in between -- [CLS], [SEP], padding, non-first word pieces -- are skipped, as if the
 * scored ones were gathered into a dense sequence).  Emission scores of position s are the first
 * `classes` columns of row b*seq + s (row stride ld).  transitions[i*classes + j] scores tag i
 * followed by tag j; start[j] / end[j] score a chain beginning / ending with tag j.  All pointers
 * are backend memory. */
typedef struct tp_crf_problem {
    int64_t batch, seq, classes, ld;
    const int32_t *tags;
    const float *emissions, *transitions, *start, *end;
} tp_crf_problem;

/* Scratch floats crf_backward needs: log beta at every position, then each sequence's own
 * transition, start and end gradients (summed over sequences in order: deterministic). */
static inline int64_t tp_crf_scratch_floats(const tp_crf_problem *p)
{
    return p->batch * p->seq * p->classes + p->batch * (p->classes * p->classes + 2 * p->classes);
}

typedef enum tp_mask_kind {
    TP_MASK_FULLY_VISIBLE, /* every query sees every non-padding key */
    TP_MASK_CAUSAL,        /* query i sees keys j <= i */
    /* TencentPretrain's causal_with_prefix (prefix LMs): key_valid holds each key's segment (seg);
     * every query sees the keys of segment 1 (the prefix), and keys of other non-zero segments
     * j <= i (the target, causally); padding keys (0) are masked. */
    TP_MASK_PREFIX,
} tp_mask_kind;

/* Attention problem description: q and out are [batch*seq, heads*head_dim] rows, k and v
 * [batch*kv_seq, heads*head_dim] (cross-attention: the decoder's queries over the encoder's keys). */
typedef struct tp_attention_shape {
    int64_t batch, seq, heads, head_dim;
    float scale;                 /* 1/sqrt(head_dim) normally; 1 for T5 */
    tp_mask_kind mask;
    const int32_t *key_valid;    /* [batch*kv_seq] nonzero = real token (fully visible: padding keys get -10000), or NULL */
    float dropout;               /* on the attention probabilities */
    uint64_t dropout_seed, dropout_stream;
    int64_t kv_seq;              /* keys per sequence; 0: seq (self-attention) */
    /* T5's relative position bias [seq*kv_seq, heads] (row i*kv_seq + j, column h: the layout of an
     * embedding lookup), added to the scaled scores before the mask, or NULL.  Backward accumulates
     * the scores' gradient summed over the batch into bias_grad (same layout) when it is not NULL. */
    const float *bias;
    float *bias_grad;
} tp_attention_shape;

static inline TP_HOST_DEVICE int64_t tp_attention_keys(const tp_attention_shape *s) { return s->kv_seq ? s->kv_seq : s->seq; }

/* Whether query i of sequence b sees key j under the shape's mask (the CPU and CUDA kernels' rule). */
static inline TP_HOST_DEVICE int tp_attention_visible(const tp_attention_shape *s, int64_t b, int64_t i, int64_t j)
{
    int32_t key = s->key_valid ? s->key_valid[b * tp_attention_keys(s) + j] : 1;
    if (s->mask == TP_MASK_CAUSAL) return j <= i;
    if (s->mask == TP_MASK_PREFIX) return key == 1 || (key != 0 && j <= i);
    return key != 0;
}

/* Incremental causal decoding (inference only): `queries` new tokens of each sequence attend to a
 * key/value cache.  Query i of sequence b sits at position past + i and sees the cached keys
 * 0 .. past + i (the causal mask, -10000 on the later ones as tp_attention does; no padding).  q and
 * out are [batch*queries, heads*head_dim]; the caches [batch, capacity, heads*head_dim] hold the
 * keys and values of positions 0 .. past + queries - 1 already. */
typedef struct tp_cached_attention_shape {
    int64_t batch, queries, past, capacity, heads, head_dim;
    float scale;
} tp_cached_attention_shape;

/* Scratch floats cached_attention_forward needs: every (sequence, head)'s score rows. */
static inline int64_t tp_cached_attention_scratch(const tp_cached_attention_shape *s)
{
    return s->batch * s->heads * s->queries * (s->past + s->queries);
}

/* A 1-D convolution over time (torch.nn.Conv1d on [batch, channels, length], here rows of
 * [batch*length, channels]) becomes a matrix product through its unfolded input:
 *   cols[b*out_length + t, c*kernel + j] = x[b*length + t*stride - padding + j, c]  (0 outside)
 * so that out = cols W^T with W [out_channels, channels * kernel] (torch's weight layout). */
typedef struct tp_conv1d_shape {
    int64_t batch, length, channels, kernel, stride, padding;
} tp_conv1d_shape;

static inline TP_HOST_DEVICE int64_t tp_conv1d_out_length(const tp_conv1d_shape *s)
{
    return (s->length + 2 * s->padding - s->kernel) / s->stride + 1;
}

/* Columns [first, first + count) of rows: a block of a vocabulary-wide row. */
typedef struct tp_column_block {
    int64_t first, count;
} tp_column_block;

typedef struct tp_backend {
    const char *name;
    /* tp_linear_cross_entropy's backward makes the logits' gradient a block of columns of about this
     * many bytes at a time and uses each block at once, so that on a CPU the block stays in cache
     * where the whole gradient would go through memory four times; 0: whole rows at once. */
    int64_t linear_ce_block_bytes;
    void *(*alloc)(size_t bytes); /* 64-byte aligned; exits on failure with the size needed */
    void (*release)(void *ptr);
    void (*zero)(float *x, int64_t n);
    void (*copy)(float *dst, const float *src, int64_t n);
    /* Host <-> backend memory (plain memcpy on the CPU). */
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);

    /* C[m,n] = alpha * op(A) op(B) + beta * C, row-major, op = transpose when trans_*; with beta == 0
     * C is not read (it may hold anything, NaN included: fresh gradient buffers do). */
    void (*gemm)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
    /* y[r, c] = bias[c]: a product then adds onto it (gemm with beta 1), which costs one pass over y
     * where a zeroed product plus a bias pass cost two (BLAS zeroes C for beta 0 in a pass of its own). */
    void (*fill_bias)(float *y, const float *bias, int64_t rows, int64_t cols);
    /* dbias[c] += sum_r dy[r, c] */
    void (*bias_backward)(float *dbias, const float *dy, int64_t rows, int64_t cols);
    /* out = a * b element-wise (accumulate: out += a * b, the product's backward) */
    void (*multiply)(float *out, const float *a, const float *b, int64_t n, int accumulate);
    /* out = a + b; out may alias a or b */
    void (*add)(float *out, const float *a, const float *b, int64_t n);
    /* dst += src */
    void (*accumulate)(float *dst, const float *src, int64_t n);
    /* dst += scale * src */
    void (*axpy)(float *dst, float scale, const float *src, int64_t n);

    void (*activation_forward)(tp_activation kind, float *y, const float *x, int64_t n);
    /* dx += dy * f'(x)  (y = f(x) is given for kernels that prefer it) */
    void (*activation_backward)(tp_activation kind, float *dx, const float *dy, const float *x, const float *y,
                                int64_t n);

    /* Per row: y = norm(x) * gamma + beta (beta NULL: none); saves mean and inverse scale per row for backward. */
    void (*layer_norm_forward)(tp_norm_kind kind, float *y, float *mean, float *inv_scale, const float *x,
                               const float *gamma, const float *beta, int64_t rows, int64_t cols, float eps);
    /* dx, dgamma, dbeta += ... (any may be NULL) */
    void (*layer_norm_backward)(tp_norm_kind kind, float *dx, float *dgamma, float *dbeta, const float *dy,
                                const float *x, const float *mean, const float *inv_scale, const float *gamma,
                                int64_t rows, int64_t cols, float eps);

    /* out[i, :] = table[ids[i], :] */
    void (*gather_rows)(float *out, const float *table, const int32_t *ids, int64_t n, int64_t cols);
    /* dtable[ids[i], :] += dout[i, :]  (ids may repeat) */
    void (*scatter_add_rows)(float *dtable, const float *dout, const int32_t *ids, int64_t n, int64_t cols);

    /* y = x * keep / (1 - p) with keep drawn from (seed, stream, element index); backward recomputes the mask. */
    void (*dropout_forward)(float *y, const float *x, int64_t n, float p, uint64_t seed, uint64_t stream);
    void (*dropout_backward)(float *dx, const float *dy, int64_t n, float p, uint64_t seed, uint64_t stream);

    /* out = softmax(q k^T * scale + mask) v per (batch, head); probs [batch, heads, seq, seq] saved
     * (before dropout: backward recomputes the dropout mask). */
    void (*attention_forward)(const tp_attention_shape *shape, float *out, float *probs, const float *q,
                              const float *k, const float *v, float *scratch);
    /* dq, dk, dv may each be NULL (that input needs no gradient). */
    void (*attention_backward)(const tp_attention_shape *shape, float *dq, float *dk, float *dv, const float *dout,
                               const float *probs, const float *q, const float *k, const float *v, float *scratch);
    /* Scratch floats attention_forward / attention_backward need. */
    int64_t (*attention_scratch)(const tp_attention_shape *shape);

    /* out = softmax(q k^T * scale + causal mask) v against the caches (tp_cached_attention_shape). */
    void (*cached_attention_forward)(const tp_cached_attention_shape *shape, float *out, const float *q,
                                     const float *k_cache, const float *v_cache, float *scratch);

    /* Mean over rows with target >= 0 of -log softmax(logits[r, :classes])[target[r]];
     * logits rows have stride ld (>= classes: padded vocabularies).  Saves logsumexp per row.
     * Writes the loss to *loss and the number of counted rows to *count; correct (may be NULL)
     * gets the number of rows whose argmax equals the target. */
    void (*cross_entropy_forward)(float *loss, int64_t *count, int64_t *correct, float *logsumexp,
                                  const float *logits, const int32_t *targets, int64_t rows, int64_t classes,
                                  int64_t ld);
    /* dlogits = beta * dlogits + dloss / count * (softmax - onehot) on the rows with a target, columns below
     * classes, for the columns of block only: dlogits is [rows, block.count] (the whole gradient when block is
     * {0, ld}), logits [rows, ld].  beta is 1 (adds; every other element untouched) or 0 (overwrites: every
     * element written, zero outside those rows and columns, so it need not be zeroed first). */
    void (*cross_entropy_backward)(float *dlogits, float beta, float dloss, int64_t count, const float *logits,
                                   const float *logsumexp, const int32_t *targets, int64_t rows, int64_t classes,
                                   int64_t ld, tp_column_block block);
    /* Label smoothing's second term: the SUM over rows with target >= 0 of the cross-entropy
     * against the uniform distribution, logsumexp(row[:classes]) - mean(row[:classes]), into *loss
     * (rows summed in order: deterministic); saves logsumexp per row in logsumexp[0, rows) (it holds
     * 2 * rows floats: the rest is scratch).  Backward: dlogits +=
     * dloss * (softmax - 1 / classes) on those rows.  (core/cpu_smoothing.c, cuda/cuda_smoothing.cu) */
    void (*uniform_cross_entropy_forward)(float *loss, float *logsumexp, const float *logits, const int32_t *targets,
                                          int64_t rows, int64_t classes, int64_t ld);
    void (*uniform_cross_entropy_backward)(float *dlogits, float dloss, const float *logits, const float *logsumexp,
                                           const int32_t *targets, int64_t rows, int64_t classes, int64_t ld);

    /* Mean over the n elements of loss(x[i], targets[i]) (core/loss_math.h) into *loss; correct
     * (may be NULL) gets the number of elements whose prediction is right: (x > 0) == (t > 0.5)
     * for BCE, 0 for squared error.  The mean is summed in a fixed order (deterministic). */
    void (*pointwise_loss_forward)(tp_pointwise_loss_kind kind, float *loss, int64_t *correct, const float *x,
                                   const float *targets, int64_t n);
    /* dx[i] += dloss / n * dloss(x[i], targets[i]) / dx */
    void (*pointwise_loss_backward)(tp_pointwise_loss_kind kind, float *dx, float dloss, const float *x,
                                    const float *targets, int64_t n);

    /* CRF negative log-likelihood log Z_b - score_b(gold path) of every sequence with at least
     * one scored position; their mean into *loss (summed in sequence order) and their number into
     * *count.  Saves log alpha (the forward algorithm's log-sum-exp recursion, emission included)
     * at every scored position in alpha [batch*seq, classes] and log Z per sequence in log_z [batch]. */
    void (*crf_forward)(const tp_crf_problem *p, float *loss, int64_t *count, float *alpha, float *log_z);
    /* The forward-backward gradients, each += dloss / count * (marginal - gold indicator): of the
     * emissions (tag marginals at every scored position; other rows and columns >= classes
     * untouched), transitions (pair marginals of consecutive scored positions), start and end
     * (marginals of the first and last).  Any gradient may be NULL.  scratch: tp_crf_scratch_floats. */
    void (*crf_backward)(const tp_crf_problem *p, float dloss, int64_t count, const float *alpha,
                         const float *log_z, float *demissions, float *dtransitions, float *dstart, float *dend,
                         float *scratch);

    /* Pooling of x [batch*seq, cols] over each sequence's real tokens (valid[b*seq + s] != 0)
     * into out [batch, cols]; max records the winning row of every (b, c) in argmax (a sequence
     * without real tokens pools to 0).  Backward accumulates into dx. */
    void (*pool_forward)(tp_pool_kind kind, float *out, int32_t *argmax, const float *x, const int32_t *valid,
                         int64_t batch, int64_t seq, int64_t cols);
    void (*pool_backward)(tp_pool_kind kind, float *dx, const float *dout, const int32_t *argmax,
                          const int32_t *valid, int64_t batch, int64_t seq, int64_t cols);

    /* cols = unfold(x) (tp_conv1d_shape); fold is its transpose: dx += the entries of dcols that
     * unfold read from each element (summed in a fixed order: deterministic). */
    void (*conv1d_unfold)(const tp_conv1d_shape *shape, float *cols, const float *x);
    void (*conv1d_fold)(const tp_conv1d_shape *shape, float *dx, const float *dcols);

    /* CLIP's contrastive head.  l2_normalize: y = x / ||x|| per row of x [rows, cols], inv_norm[row]
     * = 1 / ||x|| (norms summed in double, in column order); backward dx += inv_norm * (dy - y (dy . y)).
     * scale_exp: y = exp(s[0]) x (s: the learned logit_scale, backend memory); backward
     * dx += exp(s) dy and, with ds, ds[0] += sum(dy * y) (in double, in a fixed order). */
    void (*l2_normalize_forward)(float *y, float *inv_norm, const float *x, int64_t rows, int64_t cols);
    void (*l2_normalize_backward)(float *dx, const float *dy, const float *y, const float *inv_norm, int64_t rows,
                                  int64_t cols);
    void (*scale_exp_forward)(float *y, const float *x, const float *s, int64_t n);
    void (*scale_exp_backward)(float *dx, float *ds, const float *dy, const float *y, const float *s, int64_t n);

    /* The optimizer over the flat buffers, with core/optim.h's semantics (the CPU entries are those
     * functions).  params, grads and the moments are backend memory; segments is a HOST array (read
     * on the host; a GPU backend passes the pieces to its kernels by value).  Only grads_finite,
     * grad_norm and clip_grad_norm wait for the device, to return their host result. */
    void (*adamw_step)(const tp_adamw_options *opt, double lr, int64_t step, float *params, const float *grads,
                       float *exp_avg, float *exp_avg_sq, const tp_param_segment *segments, int64_t segment_count);
    int (*grads_finite)(const float *grads, const tp_param_segment *segments, int64_t segment_count);
    double (*grad_norm)(const float *grads, const tp_param_segment *segments, int64_t segment_count);
    double (*clip_grad_norm)(float *grads, const tp_param_segment *segments, int64_t segment_count,
                             double max_norm);
} tp_backend;

extern const tp_backend tp_cpu_backend;

/* The two ways tp_cpu_backend.gemm threads a product (core/cpu_kernels.c chooses by its shape):
 * one cblas_sgemm call that OpenBLAS threads itself (split 0), or one single-threaded call per
 * thread on its own block of C (split 1).  bench-bert --mode gemm --compare_split times both. */
void tp_cpu_gemm_threads(int split, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                         const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

#endif
