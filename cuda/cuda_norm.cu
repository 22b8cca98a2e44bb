// Layer norm, every kind (core/backend.h tp_norm_kind; RMS: mean 0, no centring), as core/cpu_kernels.c computes it: row
// statistics in double, one block per row.  dgamma/dbeta: one pass over column tiles, the rows of
// a tile summed by fixed lanes in a fixed order: deterministic, no atomics.
#include "cuda/cuda_column_sums.cuh"
#include "cuda/cuda_common.cuh"

enum { NORM_THREADS = 256 };

__global__ void layer_norm_forward_kernel(tp_norm_kind kind, float *y, float *mean, float *inv_scale, const float *x,
                                          const float *gamma, const float *beta, int64_t cols, float eps)
{
    int64_t r = blockIdx.x;
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    double sum = 0.0;
    if (kind != TP_NORM_RMS)
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += xr[c];
    double mu = tp_block_reduce(sum, tp_sum_op()) / (double)cols;
    double squares = 0.0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) squares += (xr[c] - mu) * (xr[c] - mu);
    squares = tp_block_reduce(squares, tp_sum_op());
    double inv = kind == TP_NORM_UNBIASED_STD ? 1.0 / (sqrt(squares / (double)(cols > 1 ? cols - 1 : 1)) + eps)
                                              : 1.0 / sqrt(squares / (double)cols + eps);
    float mu_f = (float)mu, inv_f = (float)inv;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = gamma[c] * ((xr[c] - mu_f) * inv_f) + (beta ? beta[c] : 0.0f);
    if (threadIdx.x == 0) {
        mean[r] = mu_f;
        inv_scale[r] = inv_f;
    }
}

void tp_cuda_layer_norm_forward(tp_norm_kind kind, float *y, float *mean, float *inv_scale, const float *x,
                                const float *gamma, const float *beta, int64_t rows, int64_t cols, float eps)
{
    if (rows <= 0 || cols <= 0) return;
    layer_norm_forward_kernel<<<(unsigned)rows, NORM_THREADS>>>(kind, y, mean, inv_scale, x, gamma, beta, cols, eps);
    CUDA_CHECK_LAUNCH();
}

__global__ void layer_norm_dx_kernel(tp_norm_kind kind, float *dx, const float *dy, const float *x, const float *mean,
                                     const float *inv_scale, const float *gamma, int64_t cols, float eps)
{
    int64_t r = blockIdx.x;
    const float *xr = x + r * cols, *dyr = dy + r * cols;
    float *dxr = dx + r * cols;
    float mu = mean[r], inv = inv_scale[r];
    double g_sum = 0.0, gx_sum = 0.0; // sum g and sum g * (x - mean), g = dy * gamma
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        double g = (double)dyr[c] * gamma[c];
        g_sum += g;
        gx_sum += g * (xr[c] - mu);
    }
    g_sum = tp_block_reduce(g_sum, tp_sum_op());
    gx_sum = tp_block_reduce(gx_sum, tp_sum_op());
    float g_mean = kind == TP_NORM_RMS ? 0.0f : (float)(g_sum / (double)cols);
    float coef; // dx = inv * (g - mean(g)) - coef * (x - mean)
    if (kind == TP_NORM_UNBIASED_STD) {
        double std = 1.0 / inv - eps;
        coef = std > 0 ? (float)(gx_sum * inv * inv / ((double)(cols - 1) * std)) : 0.0f;
    } else {
        coef = (float)(gx_sum * inv * inv * inv / (double)cols);
    }
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        dxr[c] += inv * (dyr[c] * gamma[c] - g_mean) - coef * (xr[c] - mu);
}

namespace {
// Row r's terms for gamma and beta: dy * x_hat and dy.
struct layer_norm_param_terms {
    static const int outputs = 2;
    const float *dy, *x, *mean, *inv_scale;
    int64_t cols;
    __device__ void operator()(int64_t row, int64_t col, float *sums) const
    {
        float g = dy[row * cols + col];
        sums[0] += g * ((x[row * cols + col] - mean[row]) * inv_scale[row]);
        sums[1] += g;
    }
};
} // namespace

void tp_cuda_layer_norm_backward(tp_norm_kind kind, float *dx, float *dgamma, float *dbeta, const float *dy,
                                 const float *x, const float *mean, const float *inv_scale, const float *gamma,
                                 int64_t rows, int64_t cols, float eps)
{
    if (rows <= 0 || cols <= 0) return;
    if (dx) {
        layer_norm_dx_kernel<<<(unsigned)rows, NORM_THREADS>>>(kind, dx, dy, x, mean, inv_scale, gamma, cols, eps);
        CUDA_CHECK_LAUNCH();
    }
    if (dgamma || dbeta) {
        tp_cuda_column_sums(layer_norm_param_terms{dy, x, mean, inv_scale, cols}, column_outputs{{dgamma, dbeta}},
                            rows, cols);
    }
}
