// CLIP's contrastive head (the CPU twins: cpu_l2_normalize_* and cpu_scale_exp_* in
// core/cpu_kernels.c): row-wise L2 normalisation, one block per row, and the exp(logit_scale)
// scaling, whose parameter gradient is one block's sum.  Sums in double with tp_block_reduce's fixed
// tree: the same bits on every run.
#include "cuda/cuda_common.cuh"

__global__ void l2_normalize_forward_kernel(float *y, float *inv_norm, const float *x, int64_t cols)
{
    const float *row = x + (int64_t)blockIdx.x * cols;
    double squares = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) squares += (double)row[c] * row[c];
    squares = tp_block_reduce(squares, tp_sum_op());
    float inv = (float)(1.0 / sqrt(squares));
    if (threadIdx.x == 0) inv_norm[blockIdx.x] = inv;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) y[(int64_t)blockIdx.x * cols + c] = row[c] * inv;
}

__global__ void l2_normalize_backward_kernel(float *dx, const float *dy, const float *y, const float *inv_norm,
                                             int64_t cols)
{
    int64_t base = (int64_t)blockIdx.x * cols;
    double dot = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dot += (double)dy[base + c] * y[base + c];
    float d = (float)tp_block_reduce(dot, tp_sum_op());
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        dx[base + c] += inv_norm[blockIdx.x] * (dy[base + c] - d * y[base + c]);
}

__global__ void scale_exp_forward_kernel(float *y, const float *x, const float *s, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = expf(s[0]) * x[i];
}

__global__ void scale_exp_dx_kernel(float *dx, const float *dy, const float *s, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dx[i] += expf(s[0]) * dy[i];
}

// One block: ds[0] += sum(dy * y).
__global__ void scale_exp_ds_kernel(float *ds, const float *dy, const float *y, int64_t n)
{
    double sum = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += (double)dy[i] * y[i];
    sum = tp_block_reduce(sum, tp_sum_op());
    if (threadIdx.x == 0) ds[0] += (float)sum;
}

void tp_cuda_l2_normalize_forward(float *y, float *inv_norm, const float *x, int64_t rows, int64_t cols)
{
    if (rows == 0) return;
    l2_normalize_forward_kernel<<<(unsigned)rows, TP_CUDA_THREADS>>>(y, inv_norm, x, cols);
    CUDA_CHECK_LAUNCH();
}

void tp_cuda_l2_normalize_backward(float *dx, const float *dy, const float *y, const float *inv_norm, int64_t rows,
                                   int64_t cols)
{
    if (rows == 0) return;
    l2_normalize_backward_kernel<<<(unsigned)rows, TP_CUDA_THREADS>>>(dx, dy, y, inv_norm, cols);
    CUDA_CHECK_LAUNCH();
}

void tp_cuda_scale_exp_forward(float *y, const float *x, const float *s, int64_t n)
{
    if (n == 0) return;
    scale_exp_forward_kernel<<<tp_cuda_blocks(n), TP_CUDA_THREADS>>>(y, x, s, n);
    CUDA_CHECK_LAUNCH();
}

void tp_cuda_scale_exp_backward(float *dx, float *ds, const float *dy, const float *y, const float *s, int64_t n)
{
    if (n == 0) return;
    if (dx) scale_exp_dx_kernel<<<tp_cuda_blocks(n), TP_CUDA_THREADS>>>(dx, dy, s, n);
    if (ds) scale_exp_ds_kernel<<<1, TP_CUDA_THREADS>>>(ds, dy, y, n);
    CUDA_CHECK_LAUNCH();
}
