// Element-wise kernels, bias reduction, activations, gathers and dropout.  Same formulas as the
// CPU twins in core/cpu_kernels.c.  Every kernel here is deterministic (no atomics).
#include <stdio.h>
#include <stdlib.h>

#include "cuda/cuda_common.cuh"

// Grid-stride index loop, so a launch never needs more than 2^31 blocks.
#define FOR_EACH_INDEX(i, n)                                                                                       \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

static unsigned grid_for(int64_t n)
{
    unsigned blocks = tp_cuda_blocks(n);
    return blocks < 65535u * 16u ? blocks : 65535u * 16u;
}

__global__ void add_kernel(float *out, const float *a, const float *b, int64_t n)
{
    FOR_EACH_INDEX(i, n) out[i] = a[i] + b[i];
}

__global__ void axpy_kernel(float *dst, float scale, const float *src, int64_t n)
{
    FOR_EACH_INDEX(i, n) dst[i] += scale * src[i];
}

__global__ void accumulate_kernel(float *dst, const float *src, int64_t n)
{
    FOR_EACH_INDEX(i, n) dst[i] += src[i];
}

__global__ void add_bias_kernel(float *y, const float *bias, int64_t rows, int64_t cols)
{
    FOR_EACH_INDEX(i, rows * cols) y[i] += bias[i % cols];
}

void tp_cuda_add(float *out, const float *a, const float *b, int64_t n)
{
    if (n <= 0) return;
    add_kernel<<<grid_for(n), TP_CUDA_THREADS>>>(out, a, b, n);
    CUDA_CHECK_LAUNCH();
}

void tp_cuda_axpy(float *dst, float scale, const float *src, int64_t n)
{
    if (n <= 0) return;
    axpy_kernel<<<grid_for(n), TP_CUDA_THREADS>>>(dst, scale, src, n);
    CUDA_CHECK_LAUNCH();
}

void tp_cuda_accumulate(float *dst, const float *src, int64_t n)
{
    if (n <= 0) return;
    accumulate_kernel<<<grid_for(n), TP_CUDA_THREADS>>>(dst, src, n);
    CUDA_CHECK_LAUNCH();
}

void tp_cuda_add_bias(float *y, const float *bias, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0) return;
    add_bias_kernel<<<grid_for(rows * cols), TP_CUDA_THREADS>>>(y, bias, rows, cols);
    CUDA_CHECK_LAUNCH();
}

// ---- column sums -------------------------------------------------------------------
// A block owns COLUMN_TILE columns; its ROW_LANES thread rows stride over the rows, then lane 0 adds
// the lanes in order.  One pass, no atomics: deterministic.  Parallelism is cols / 32 blocks.
enum { COLUMN_TILE = 32, ROW_LANES = 16 };

__global__ void bias_backward_kernel(float *dbias, const float *dy, int64_t rows, int64_t cols)
{
    __shared__ float lane_sums[ROW_LANES][COLUMN_TILE + 1];
    int64_t c = (int64_t)blockIdx.x * COLUMN_TILE + threadIdx.x;
    float sum = 0.0f;
    if (c < cols)
        for (int64_t r = threadIdx.y; r < rows; r += ROW_LANES) sum += dy[r * cols + c];
    lane_sums[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        float total = 0.0f;
        for (int lane = 0; lane < ROW_LANES; lane++) total += lane_sums[lane][threadIdx.x];
        dbias[c] += total;
    }
}

void tp_cuda_bias_backward(float *dbias, const float *dy, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0) return;
    bias_backward_kernel<<<tp_cuda_blocks(cols, COLUMN_TILE), dim3(COLUMN_TILE, ROW_LANES)>>>(dbias, dy, rows, cols);
    CUDA_CHECK_LAUNCH();
}

// ---- activations -------------------------------------------------------------------

#include "core/activation_math.h"

__global__ void activation_forward_kernel(tp_activation kind, float *y, const float *x, int64_t n)
{
    FOR_EACH_INDEX(i, n) y[i] = tp_activate(kind, x[i]);
}

__global__ void activation_backward_kernel(tp_activation kind, float *dx, const float *dy, const float *x,
                                           const float *y, int64_t n)
{
    FOR_EACH_INDEX(i, n) dx[i] += dy[i] * tp_activation_slope(kind, x[i], y[i]);
}

static void check_activation(tp_activation kind)
{
    if ((int)kind < 0 || kind >= TP_ACT_COUNT) {
        fprintf(stderr, "tp: internal error: unknown activation kind %d\n", (int)kind);
        abort();
    }
}

void tp_cuda_activation_forward(tp_activation kind, float *y, const float *x, int64_t n)
{
    check_activation(kind);
    if (n <= 0) return;
    activation_forward_kernel<<<grid_for(n), TP_CUDA_THREADS>>>(kind, y, x, n);
    CUDA_CHECK_LAUNCH();
}

void tp_cuda_activation_backward(tp_activation kind, float *dx, const float *dy, const float *x, const float *y,
                                 int64_t n)
{
    check_activation(kind);
    if (n <= 0) return;
    activation_backward_kernel<<<grid_for(n), TP_CUDA_THREADS>>>(kind, dx, dy, x, y, n);
    CUDA_CHECK_LAUNCH();
}

// ---- gathers -----------------------------------------------------------------------

__global__ void gather_rows_kernel(float *out, const float *table, const int32_t *ids, int64_t n, int64_t cols)
{
    FOR_EACH_INDEX(i, n * cols) out[i] = table[(int64_t)ids[i / cols] * cols + i % cols];
}

// One thread per column walks the ids in order, as the CPU does: repeated ids need no atomics and
// the sums have the CPU's bits.  Parallelism is only `cols` threads (see docs/gpu.md).
__global__ void scatter_add_rows_kernel(float *dtable, const float *dout, const int32_t *ids, int64_t n,
                                        int64_t cols)
{
    int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    for (int64_t i = 0; i < n; i++) dtable[(int64_t)ids[i] * cols + c] += dout[i * cols + c];
}

void tp_cuda_gather_rows(float *out, const float *table, const int32_t *ids, int64_t n, int64_t cols)
{
    if (n <= 0 || cols <= 0) return;
    gather_rows_kernel<<<grid_for(n * cols), TP_CUDA_THREADS>>>(out, table, ids, n, cols);
    CUDA_CHECK_LAUNCH();
}

void tp_cuda_scatter_add_rows(float *dtable, const float *dout, const int32_t *ids, int64_t n, int64_t cols)
{
    if (n <= 0 || cols <= 0) return;
    scatter_add_rows_kernel<<<tp_cuda_blocks(cols, 64), 64>>>(dtable, dout, ids, n, cols);
    CUDA_CHECK_LAUNCH();
}

// ---- dropout -----------------------------------------------------------------------

__global__ void dropout_forward_kernel(float *y, const float *x, int64_t n, float p, uint64_t seed, uint64_t stream)
{
    FOR_EACH_INDEX(i, n) y[i] = x[i] * tp_cuda_keep_scale(p, seed, stream, (uint64_t)i);
}

__global__ void dropout_backward_kernel(float *dx, const float *dy, int64_t n, float p, uint64_t seed,
                                        uint64_t stream)
{
    FOR_EACH_INDEX(i, n) dx[i] += dy[i] * tp_cuda_keep_scale(p, seed, stream, (uint64_t)i);
}

void tp_cuda_dropout_forward(float *y, const float *x, int64_t n, float p, uint64_t seed, uint64_t stream)
{
    if (n <= 0) return;
    dropout_forward_kernel<<<grid_for(n), TP_CUDA_THREADS>>>(y, x, n, p, seed, stream);
    CUDA_CHECK_LAUNCH();
}

void tp_cuda_dropout_backward(float *dx, const float *dy, int64_t n, float p, uint64_t seed, uint64_t stream)
{
    if (n <= 0) return;
    dropout_backward_kernel<<<grid_for(n), TP_CUDA_THREADS>>>(dx, dy, n, p, seed, stream);
    CUDA_CHECK_LAUNCH();
}
