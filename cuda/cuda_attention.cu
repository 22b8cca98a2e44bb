// Attention, plain-kernel version: every product is one batched cuBLAS call over all
// batch x heads (sequence b, head h) pairs (head h of Q is the seq x head_dim block at row
// b * seq, column h * head_dim, row stride hidden; of K and V the keys x head_dim block at row
// b * keys), and one block per score row does the bias + mask + softmax (forward) and the
// softmax/dropout backward.  Probabilities are saved before dropout, as on the CPU; the dropout
// mask is recomputed from (seed, stream, ((b*heads + h)*seq + i)*keys + j), the CPU's index.  The
// bias gradient sums dS over the batch in order, one thread per (i, j, h): deterministic.
// Scratch: 2 * batch * heads * seq * keys floats (dropped probabilities and dP) and 3 * batch *
// heads device pointers (the operand arrays of the batched products).
#include <float.h>

#include "cuda/cuda_common.cuh"

// TencentPretrain adds -10000 (not -inf) to masked scores.
#define MASKED_SCORE (-10000.0f)

enum { ROW_THREADS = 128 };

static int64_t pairs(const tp_attention_shape *s) { return s->batch * s->heads; }
static int64_t probs_count(const tp_attention_shape *s) { return pairs(s) * s->seq * tp_attention_keys(s); }

int64_t tp_cuda_attention_scratch(const tp_attention_shape *shape)
{
    int64_t floats_per_pointer = (int64_t)(sizeof(float *) / sizeof(float));
    return 2 * probs_count(shape) + 3 * pairs(shape) * floats_per_pointer;
}

static const float **pointer_scratch(const tp_attention_shape *s, float *scratch)
{
    return (const float **)(scratch + 2 * probs_count(s)); // 8-byte aligned: an even float offset
}

// Head h of sequence b of a [batch*rows, hidden] tensor (rows: seq for q, keys for k and v).
static tp_cuda_operand heads_of(const float *x, const tp_attention_shape *s, int64_t rows)
{
    int64_t hidden = s->heads * s->head_dim;
    return {x, hidden, rows * hidden, s->head_dim};
}

// Pair i's seq x keys block of a [batch*heads, seq, keys] tensor.
static tp_cuda_operand squares_of(const float *x, const tp_attention_shape *s)
{
    int64_t keys = tp_attention_keys(s), square = s->seq * keys;
    return {x, keys, s->heads * square, square};
}

// One block per score row: blockIdx.x = (b * heads + h) * seq + i.  scores hold q k^T * scale on entry.
__global__ void softmax_rows_kernel(tp_attention_shape s, float *scores, float *dropped)
{
    int64_t seq = s.seq, keys = tp_attention_keys(&s), row = blockIdx.x, i = row % seq, b = row / (s.heads * seq);
    int64_t h = (row / seq) % s.heads;
    float *p = scores + row * keys;
    float max = -FLT_MAX;
    for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) {
        int visible = tp_attention_visible(&s, b, i, j);
        if (s.bias) p[j] += s.bias[(i * keys + j) * s.heads + h];
        if (!visible) p[j] += MASKED_SCORE;
        max = p[j] > max ? p[j] : max;
    }
    max = tp_block_reduce(max, tp_max_op());
    float sum = 0.0f;
    for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) sum += (p[j] = expf(p[j] - max));
    float inv = 1.0f / tp_block_reduce(sum, tp_sum_op());
    uint64_t first = (uint64_t)(row * keys); // dropout index of p[0]
    for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) {
        p[j] *= inv;
        if (dropped) dropped[row * keys + j] = p[j] * tp_cuda_keep_scale(s.dropout, s.dropout_seed, s.dropout_stream, first + j);
    }
}

// dP (dO V^T) -> dS = P * (dP*keep - sum_j dP_j*keep_j P_j), in place.
__global__ void softmax_backward_rows_kernel(tp_attention_shape s, float *dp, const float *probs)
{
    int64_t keys = tp_attention_keys(&s), row = blockIdx.x;
    float *d = dp + row * keys;
    const float *p = probs + row * keys;
    uint64_t first = (uint64_t)(row * keys);
    float dot = 0.0f;
    for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) {
        if (s.dropout > 0) d[j] *= tp_cuda_keep_scale(s.dropout, s.dropout_seed, s.dropout_stream, first + j);
        dot += d[j] * p[j];
    }
    dot = tp_block_reduce(dot, tp_sum_op());
    for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) d[j] = p[j] * (d[j] - dot);
}

// bias_grad[ij * heads + h] += sum over b of dS(b, h)[ij], one thread per (ij, h).
__global__ void bias_backward_kernel(tp_attention_shape s, const float *ds)
{
    int64_t square = s.seq * tp_attention_keys(&s), n = square * s.heads;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t ij = t / s.heads, h = t % s.heads;
        float sum = 0.0f;
        for (int64_t b = 0; b < s.batch; b++) sum += ds[(b * s.heads + h) * square + ij];
        s.bias_grad[t] += sum;
    }
}

// Probabilities with dropout applied (backward: for dV).
__global__ void dropped_probs_kernel(tp_attention_shape s, int64_t count, float *dropped, const float *probs)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (int64_t)gridDim.x * blockDim.x)
        dropped[i] = probs[i] * tp_cuda_keep_scale(s.dropout, s.dropout_seed, s.dropout_stream, (uint64_t)i);
}

void tp_cuda_attention_forward(const tp_attention_shape *s, float *out, float *probs, const float *q, const float *k,
                               const float *v, float *scratch)
{
    int64_t seq = s->seq, keys = tp_attention_keys(s), d = s->head_dim, count = pairs(s);
    if (s->batch <= 0 || seq <= 0 || keys <= 0 || s->heads <= 0) return;
    float *dropped = s->dropout > 0 ? scratch : NULL;
    const float **pointers = pointer_scratch(s, scratch);
    tp_cuda_gemm_heads(0, 1, seq, keys, d, s->scale, heads_of(q, s, seq), heads_of(k, s, keys), 0.0f,
                       squares_of(probs, s), s->heads, count, pointers);
    softmax_rows_kernel<<<(unsigned)(count * seq), ROW_THREADS>>>(*s, probs, dropped);
    CUDA_CHECK_LAUNCH();
    tp_cuda_gemm_heads(0, 0, seq, d, keys, 1.0f, squares_of(dropped ? dropped : probs, s), heads_of(v, s, keys), 0.0f,
                       heads_of(out, s, seq), s->heads, count, pointers);
}

void tp_cuda_attention_backward(const tp_attention_shape *s, float *dq, float *dk, float *dv, const float *dout,
                                const float *probs, const float *q, const float *k, const float *v, float *scratch)
{
    int64_t seq = s->seq, keys = tp_attention_keys(s), d = s->head_dim, count = pairs(s);
    if (s->batch <= 0 || seq <= 0 || keys <= 0 || s->heads <= 0) return;
    float *dp = scratch, *dropped = scratch + probs_count(s);
    const float **pointers = pointer_scratch(s, scratch);
    if (dv) { // dV += P_dropped^T dO
        const float *pd = probs;
        if (s->dropout > 0) {
            dropped_probs_kernel<<<tp_cuda_blocks(probs_count(s)), TP_CUDA_THREADS>>>(*s, probs_count(s), dropped,
                                                                                       probs);
            CUDA_CHECK_LAUNCH();
            pd = dropped;
        }
        tp_cuda_gemm_heads(1, 0, keys, d, seq, 1.0f, squares_of(pd, s), heads_of(dout, s, seq), 1.0f,
                           heads_of(dv, s, keys), s->heads, count, pointers);
    }
    if (!dq && !dk && !s->bias_grad) return;
    // dP_dropped = dO V^T, then through dropout and softmax in place.
    tp_cuda_gemm_heads(0, 1, seq, keys, d, 1.0f, heads_of(dout, s, seq), heads_of(v, s, keys), 0.0f,
                       squares_of(dp, s), s->heads, count, pointers);
    softmax_backward_rows_kernel<<<(unsigned)(count * seq), ROW_THREADS>>>(*s, dp, probs);
    CUDA_CHECK_LAUNCH();
    if (s->bias_grad) {
        bias_backward_kernel<<<tp_cuda_blocks(seq * keys * s->heads), TP_CUDA_THREADS>>>(*s, dp);
        CUDA_CHECK_LAUNCH();
    }
    if (dq)
        tp_cuda_gemm_heads(0, 0, seq, d, keys, s->scale, squares_of(dp, s), heads_of(k, s, keys), 1.0f,
                           heads_of(dq, s, seq), s->heads, count, pointers);
    if (dk)
        tp_cuda_gemm_heads(1, 0, keys, d, seq, s->scale, squares_of(dp, s), heads_of(q, s, seq), 1.0f,
                           heads_of(dk, s, keys), s->heads, count, pointers);
}
