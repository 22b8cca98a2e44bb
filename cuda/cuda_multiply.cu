// The element-wise product (gated feed-forward) and its backward: out = a * b, or out += a * b.
#include "cuda/cuda_common.cuh"

__global__ void multiply_kernel(float *out, const float *a, const float *b, int64_t n, int accumulate)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = (accumulate ? out[i] : 0.0f) + a[i] * b[i];
}

void tp_cuda_multiply(float *out, const float *a, const float *b, int64_t n, int accumulate)
{
    if (n <= 0) return;
    multiply_kernel<<<tp_cuda_blocks(n), TP_CUDA_THREADS>>>(out, a, b, n, accumulate);
    CUDA_CHECK_LAUNCH();
}
