// Attention, plain-kernel version: every product is one batched cuBLAS call over all
// batch x heads (sequence b, head h) pairs (head h of Q is the seq x head_dim block at row
// b * seq, column h * head_dim, row stride hidden), and one block per score row does the mask +
// softmax (forward) and the softmax/dropout backward.  Probabilities are saved before dropout, as
// on the CPU; the dropout mask is recomputed from (seed, stream, ((b*heads + h)*seq + i)*seq + j),
// the CPU's index.
// Scratch: 2 * batch * heads * seq * seq floats (dropped probabilities and dP) and 3 * batch *
// heads device pointers (the operand arrays of the batched products).
#include <float.h>

#include "cuda/cuda_common.cuh"

// TencentPretrain adds -10000 (not -inf) to masked scores.
#define MASKED_SCORE (-10000.0f)

enum { ROW_THREADS = 128 };

static int64_t pairs(const tp_attention_shape *s) { return s->batch * s->heads; }
static int64_t probs_count(const tp_attention_shape *s) { return pairs(s) * s->seq * s->seq; }

int64_t tp_cuda_attention_scratch(const tp_attention_shape *shape)
{
    int64_t floats_per_pointer = (int64_t)(sizeof(float *) / sizeof(float));
    return 2 * probs_count(shape) + 3 * pairs(shape) * floats_per_pointer;
}

static const float **pointer_scratch(const tp_attention_shape *s, float *scratch)
{
    return (const float **)(scratch + 2 * probs_count(s)); // 8-byte aligned: an even float offset
}

// Head h of sequence b of a [batch*seq, hidden] tensor.
static tp_cuda_operand heads_of(const float *x, const tp_attention_shape *s)
{
    int64_t hidden = s->heads * s->head_dim;
    return {x, hidden, s->seq * hidden, s->head_dim};
}

// Pair i's seq x seq block of a [batch*heads, seq, seq] tensor.
static tp_cuda_operand squares_of(const float *x, const tp_attention_shape *s)
{
    int64_t square = s->seq * s->seq;
    return {x, s->seq, s->heads * square, square};
}

// One block per score row: blockIdx.x = (b * heads + h) * seq + i.  scores hold q k^T * scale on entry.
__global__ void softmax_rows_kernel(tp_attention_shape s, float *scores, float *dropped)
{
    int64_t seq = s.seq, row = blockIdx.x, i = row % seq, b = row / (s.heads * seq);
    float *p = scores + row * seq;
    float max = -FLT_MAX;
    for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) {
        int visible = s.mask == TP_MASK_CAUSAL ? j <= i : (!s.key_valid || s.key_valid[b * seq + j]);
        if (!visible) p[j] += MASKED_SCORE;
        max = p[j] > max ? p[j] : max;
    }
    max = tp_block_reduce(max, tp_max_op());
    float sum = 0.0f;
    for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) sum += (p[j] = expf(p[j] - max));
    float inv = 1.0f / tp_block_reduce(sum, tp_sum_op());
    uint64_t first = (uint64_t)(row * seq); // dropout index of p[0]
    for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) {
        p[j] *= inv;
        if (dropped) dropped[row * seq + j] = p[j] * tp_cuda_keep_scale(s.dropout, s.dropout_seed, s.dropout_stream, first + j);
    }
}

// dP (dO V^T) -> dS = P * (dP*keep - sum_j dP_j*keep_j P_j), in place.
__global__ void softmax_backward_rows_kernel(tp_attention_shape s, float *dp, const float *probs)
{
    int64_t seq = s.seq, row = blockIdx.x;
    float *d = dp + row * seq;
    const float *p = probs + row * seq;
    uint64_t first = (uint64_t)(row * seq);
    float dot = 0.0f;
    for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) {
        if (s.dropout > 0) d[j] *= tp_cuda_keep_scale(s.dropout, s.dropout_seed, s.dropout_stream, first + j);
        dot += d[j] * p[j];
    }
    dot = tp_block_reduce(dot, tp_sum_op());
    for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) d[j] = p[j] * (d[j] - dot);
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
    int64_t seq = s->seq, d = s->head_dim, count = pairs(s);
    if (s->batch <= 0 || seq <= 0 || s->heads <= 0) return;
    float *dropped = s->dropout > 0 ? scratch : NULL;
    const float **pointers = pointer_scratch(s, scratch);
    tp_cuda_gemm_heads(0, 1, seq, seq, d, s->scale, heads_of(q, s), heads_of(k, s), 0.0f, squares_of(probs, s),
                       s->heads, count, pointers);
    softmax_rows_kernel<<<(unsigned)(count * seq), ROW_THREADS>>>(*s, probs, dropped);
    CUDA_CHECK_LAUNCH();
    tp_cuda_gemm_heads(0, 0, seq, d, seq, 1.0f, squares_of(dropped ? dropped : probs, s), heads_of(v, s), 0.0f,
                       heads_of(out, s), s->heads, count, pointers);
}

void tp_cuda_attention_backward(const tp_attention_shape *s, float *dq, float *dk, float *dv, const float *dout,
                                const float *probs, const float *q, const float *k, const float *v, float *scratch)
{
    int64_t seq = s->seq, d = s->head_dim, count = pairs(s);
    if (s->batch <= 0 || seq <= 0 || s->heads <= 0) return;
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
        tp_cuda_gemm_heads(1, 0, seq, d, seq, 1.0f, squares_of(pd, s), heads_of(dout, s), 1.0f, heads_of(dv, s),
                           s->heads, count, pointers);
    }
    if (!dq && !dk) return;
    // dP_dropped = dO V^T, then through dropout and softmax in place.
    tp_cuda_gemm_heads(0, 1, seq, seq, d, 1.0f, heads_of(dout, s), heads_of(v, s), 0.0f, squares_of(dp, s), s->heads,
                       count, pointers);
    softmax_backward_rows_kernel<<<(unsigned)(count * seq), ROW_THREADS>>>(*s, dp, probs);
    CUDA_CHECK_LAUNCH();
    if (dq)
        tp_cuda_gemm_heads(0, 0, seq, d, seq, s->scale, squares_of(dp, s), heads_of(k, s), 1.0f, heads_of(dq, s),
                           s->heads, count, pointers);
    if (dk)
        tp_cuda_gemm_heads(1, 0, seq, d, seq, s->scale, squares_of(dp, s), heads_of(q, s), 1.0f, heads_of(dk, s),
                           s->heads, count, pointers);
}
