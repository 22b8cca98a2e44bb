// The 1-D convolution's unfold and fold (the CPU twins: cpu_conv1d_unfold / cpu_conv1d_fold in
// core/cpu_kernels.c).  One thread per output element; fold gathers the taps that read each input
// element in tap order, as the CPU does, so it needs no atomics and is deterministic.
#include "cuda/cuda_common.cuh"

__global__ void conv1d_unfold_kernel(tp_conv1d_shape s, float *cols, const float *x)
{
    int64_t out_length = tp_conv1d_out_length(&s), width = s.channels * s.kernel;
    int64_t index = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= s.batch * out_length * width) return;
    int64_t row = index / width, c = index % width / s.kernel, j = index % s.kernel;
    int64_t b = row / out_length, i = (row % out_length) * s.stride - s.padding + j;
    cols[index] = i >= 0 && i < s.length ? x[(b * s.length + i) * s.channels + c] : 0.0f;
}

__global__ void conv1d_fold_kernel(tp_conv1d_shape s, float *dx, const float *dcols)
{
    int64_t out_length = tp_conv1d_out_length(&s), width = s.channels * s.kernel;
    int64_t index = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= s.batch * s.length * s.channels) return;
    int64_t row = index / s.channels, c = index % s.channels, b = row / s.length, i = row % s.length;
    float sum = 0.0f;
    for (int64_t j = 0; j < s.kernel; j++) {
        int64_t shifted = i + s.padding - j, t = shifted / s.stride;
        if (shifted < 0 || shifted % s.stride || t >= out_length) continue;
        sum += dcols[(b * out_length + t) * width + c * s.kernel + j];
    }
    dx[index] += sum;
}

void tp_cuda_conv1d_unfold(const tp_conv1d_shape *shape, float *cols, const float *x)
{
    int64_t n = shape->batch * tp_conv1d_out_length(shape) * shape->channels * shape->kernel;
    if (n == 0) return;
    conv1d_unfold_kernel<<<tp_cuda_blocks(n), TP_CUDA_THREADS>>>(*shape, cols, x);
    CUDA_CHECK_LAUNCH();
}

void tp_cuda_conv1d_fold(const tp_conv1d_shape *shape, float *dx, const float *dcols)
{
    int64_t n = shape->batch * shape->length * shape->channels;
    if (n == 0) return;
    conv1d_fold_kernel<<<tp_cuda_blocks(n), TP_CUDA_THREADS>>>(*shape, dx, dcols);
    CUDA_CHECK_LAUNCH();
}
