// Attention, plain-kernel version: per batch element, cuBLAS strided-batched GEMMs over the heads
// (head h of Q is the seq x head_dim block at column h * head_dim, row stride hidden) and one
// block per score row for the mask + softmax (forward) and the softmax/dropout backward.
// Probabilities are saved before dropout, as on the CPU; the dropout mask is recomputed from
// (seed, stream, (b*heads + h) * seq*seq + i*seq + j), the CPU's index.
// Scratch: 2 * heads * seq * seq floats (one batch element's dropped probabilities and dP).
#include <float.h>

#include "cuda/cuda_common.cuh"

// TencentPretrain adds -10000 (not -inf) to masked scores.
#define MASKED_SCORE (-10000.0f)

enum { ROW_THREADS = 128 };

int64_t tp_cuda_attention_scratch(const tp_attention_shape *shape) { return 2 * shape->heads * shape->seq * shape->seq; }

// Row-major strided-batched GEMM (C_i = alpha op(A_i) op(B_i) + beta C_i), operands swapped as in
// cuda_gemm (cuda_backend.cu).
static void gemm_batched(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                         int64_t lda, int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b, float beta,
                         float *c, int64_t ldc, int64_t stride_c, int64_t count)
{
    CUBLAS_CHECK(cublasSgemmStridedBatched(tp_cuda_blas(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                           trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k, &alpha, b,
                                           (int)ldb, stride_b, a, (int)lda, stride_a, &beta, c, (int)ldc, stride_c,
                                           (int)count));
}

// Rows of one batch element: blockIdx.x = h * seq + i.  scores hold q k^T * scale on entry.
__global__ void softmax_rows_kernel(tp_attention_shape s, int64_t b, float *scores, float *dropped)
{
    int64_t seq = s.seq, row = blockIdx.x, i = row % seq;
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
    uint64_t first = (uint64_t)((b * s.heads * seq + row) * seq); // dropout index of p[0]
    for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) {
        p[j] *= inv;
        if (dropped) dropped[row * seq + j] = p[j] * tp_cuda_keep_scale(s.dropout, s.dropout_seed, s.dropout_stream, first + j);
    }
}

// dP (dO V^T) -> dS = P * (dP*keep - sum_j dP_j*keep_j P_j), in place.
__global__ void softmax_backward_rows_kernel(tp_attention_shape s, int64_t b, float *dp, const float *probs)
{
    int64_t seq = s.seq, row = blockIdx.x;
    float *d = dp + row * seq;
    const float *p = probs + row * seq;
    uint64_t first = (uint64_t)((b * s.heads * seq + row) * seq);
    float dot = 0.0f;
    for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) {
        if (s.dropout > 0) d[j] *= tp_cuda_keep_scale(s.dropout, s.dropout_seed, s.dropout_stream, first + j);
        dot += d[j] * p[j];
    }
    dot = tp_block_reduce(dot, tp_sum_op());
    for (int64_t j = threadIdx.x; j < seq; j += blockDim.x) d[j] = p[j] * (d[j] - dot);
}

// Probabilities with dropout applied (backward: for dV).
__global__ void dropped_probs_kernel(tp_attention_shape s, int64_t b, float *dropped, const float *probs)
{
    int64_t count = s.heads * s.seq * s.seq;
    uint64_t first = (uint64_t)(b * count);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (int64_t)gridDim.x * blockDim.x)
        dropped[i] = probs[i] * tp_cuda_keep_scale(s.dropout, s.dropout_seed, s.dropout_stream, first + i);
}

void tp_cuda_attention_forward(const tp_attention_shape *s, float *out, float *probs, const float *q, const float *k,
                               const float *v, float *scratch)
{
    int64_t seq = s->seq, d = s->head_dim, hidden = s->heads * d, square = seq * seq;
    if (s->batch <= 0 || seq <= 0 || s->heads <= 0) return;
    float *dropped = s->dropout > 0 ? scratch : NULL;
    for (int64_t b = 0; b < s->batch; b++) {
        int64_t offset = b * seq * hidden;
        float *p = probs + b * s->heads * square;
        gemm_batched(0, 1, seq, seq, d, s->scale, q + offset, hidden, d, k + offset, hidden, d, 0.0f, p, seq, square,
                     s->heads);
        softmax_rows_kernel<<<(unsigned)(s->heads * seq), ROW_THREADS>>>(*s, b, p, dropped);
        CUDA_CHECK_LAUNCH();
        gemm_batched(0, 0, seq, d, seq, 1.0f, dropped ? dropped : p, seq, square, v + offset, hidden, d, 0.0f,
                     out + offset, hidden, d, s->heads);
    }
}

void tp_cuda_attention_backward(const tp_attention_shape *s, float *dq, float *dk, float *dv, const float *dout,
                                const float *probs, const float *q, const float *k, const float *v, float *scratch)
{
    int64_t seq = s->seq, d = s->head_dim, hidden = s->heads * d, square = seq * seq;
    if (s->batch <= 0 || seq <= 0 || s->heads <= 0) return;
    float *dp = scratch, *dropped = scratch + s->heads * square;
    for (int64_t b = 0; b < s->batch; b++) {
        int64_t offset = b * seq * hidden;
        const float *p = probs + b * s->heads * square;
        if (dv) { // dV += P_dropped^T dO
            const float *pd = p;
            if (s->dropout > 0) {
                dropped_probs_kernel<<<tp_cuda_blocks(s->heads * square), TP_CUDA_THREADS>>>(*s, b, dropped, p);
                CUDA_CHECK_LAUNCH();
                pd = dropped;
            }
            gemm_batched(1, 0, seq, d, seq, 1.0f, pd, seq, square, dout + offset, hidden, d, 1.0f, dv + offset,
                         hidden, d, s->heads);
        }
        if (!dq && !dk) continue;
        // dP_dropped = dO V^T, then through dropout and softmax in place.
        gemm_batched(0, 1, seq, seq, d, 1.0f, dout + offset, hidden, d, v + offset, hidden, d, 0.0f, dp, seq, square,
                     s->heads);
        softmax_backward_rows_kernel<<<(unsigned)(s->heads * seq), ROW_THREADS>>>(*s, b, dp, p);
        CUDA_CHECK_LAUNCH();
        if (dq)
            gemm_batched(0, 0, seq, d, seq, s->scale, dp, seq, square, k + offset, hidden, d, 1.0f, dq + offset,
                         hidden, d, s->heads);
        if (dk)
            gemm_batched(1, 0, seq, d, seq, s->scale, dp, seq, square, q + offset, hidden, d, 1.0f, dk + offset,
                         hidden, d, s->heads);
    }
}
