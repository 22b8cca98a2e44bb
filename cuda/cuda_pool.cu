// Pooling over each sequence's real tokens (the CPU twin: cpu_pool_forward/backward in
// core/cpu_kernels.c).  One thread per (sequence, column); rows summed in order, so results are
// deterministic; max keeps the first winning row, as the CPU does.
#include <cfloat>

#include "cuda/cuda_common.cuh"

__global__ void pool_forward_kernel(tp_pool_kind kind, float *out, int32_t *argmax, const float *x,
                                    const int32_t *valid, int64_t batch, int64_t seq, int64_t cols)
{
    int64_t index = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= batch * cols) return;
    int64_t b = index / cols, c = index % cols, count = 0, best_row = -1;
    float value = kind == TP_POOL_MAX ? -FLT_MAX : 0.0f;
    for (int64_t s = 0; s < seq; s++) {
        if (!valid[b * seq + s]) continue;
        float element = x[(b * seq + s) * cols + c];
        count++;
        if (kind == TP_POOL_MEAN) {
            value += element;
        } else if (element > value) {
            value = element;
            best_row = b * seq + s;
        }
    }
    if (count == 0) value = 0.0f;
    else if (kind == TP_POOL_MEAN) value /= (float)count;
    out[index] = value;
    if (kind == TP_POOL_MAX) argmax[index] = (int32_t)best_row;
}

__global__ void pool_backward_kernel(tp_pool_kind kind, float *dx, const float *dout, const int32_t *argmax,
                                     const int32_t *valid, int64_t batch, int64_t seq, int64_t cols)
{
    int64_t index = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= batch * cols) return;
    int64_t b = index / cols, c = index % cols;
    if (kind == TP_POOL_MAX) {
        if (argmax[index] >= 0) dx[(int64_t)argmax[index] * cols + c] += dout[index];
        return;
    }
    int64_t count = 0;
    for (int64_t s = 0; s < seq; s++) count += valid[b * seq + s] != 0;
    if (count == 0) return;
    float share = dout[index] * (1.0f / (float)count);
    for (int64_t s = 0; s < seq; s++)
        if (valid[b * seq + s]) dx[(b * seq + s) * cols + c] += share;
}

void tp_cuda_pool_forward(tp_pool_kind kind, float *out, int32_t *argmax, const float *x, const int32_t *valid,
                          int64_t batch, int64_t seq, int64_t cols)
{
    if (batch * cols == 0) return;
    pool_forward_kernel<<<tp_cuda_blocks(batch * cols), TP_CUDA_THREADS>>>(kind, out, argmax, x, valid, batch, seq,
                                                                          cols);
    CUDA_CHECK_LAUNCH();
}

void tp_cuda_pool_backward(tp_pool_kind kind, float *dx, const float *dout, const int32_t *argmax,
                           const int32_t *valid, int64_t batch, int64_t seq, int64_t cols)
{
    if (batch * cols == 0) return;
    pool_backward_kernel<<<tp_cuda_blocks(batch * cols), TP_CUDA_THREADS>>>(kind, dx, dout, argmax, valid, batch,
                                                                           seq, cols);
    CUDA_CHECK_LAUNCH();
}
