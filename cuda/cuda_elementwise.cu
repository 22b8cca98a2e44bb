// Element-wise kernels, bias reduction, activations, gathers and dropout.  Same formulas as the
// CPU twins in core/cpu_kernels.c.  Every kernel here is deterministic (no atomics).
#include <stdio.h>
#include <stdlib.h>

#include <cub/device/device_radix_sort.cuh>

#include "cuda/cuda_column_sums.cuh"
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

__global__ void fill_bias_kernel(float *y, const float *bias, int64_t rows, int64_t cols)
{
    FOR_EACH_INDEX(i, rows * cols) y[i] = bias[i % cols];
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

void tp_cuda_fill_bias(float *y, const float *bias, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0) return;
    fill_bias_kernel<<<grid_for(rows * cols), TP_CUDA_THREADS>>>(y, bias, rows, cols);
    CUDA_CHECK_LAUNCH();
}

// ---- bias gradient -----------------------------------------------------------------

namespace {
struct bias_terms {
    static const int outputs = 1;
    const float *dy;
    int64_t cols;
    __device__ void operator()(int64_t row, int64_t col, float *sums) const { sums[0] += dy[row * cols + col]; }
};
} // namespace

void tp_cuda_bias_backward(float *dbias, const float *dy, int64_t rows, int64_t cols)
{
    tp_cuda_column_sums(bias_terms{dy, cols}, column_outputs{{dbias, NULL}}, rows, cols);
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

// The scatter sorts the row positions by id (a stable radix sort, so each id's positions stay in
// order), then the first position of each id's run adds the run's rows into the table row in that
// order, one thread per column: no atomics, and the CPU's sums bit for bit.  (One thread per
// column walking all the ids in order, as the CPU does, was 16% of a BERT-base step.)
__global__ void iota_kernel(int32_t *out, int64_t n) { FOR_EACH_INDEX(i, n) out[i] = (int32_t)i; }

enum { SCATTER_LOADS = 8 }; // rows loaded before they are added, to overlap the loads of long runs

// Block x of the grid takes the runs starting at positions x, x + gridDim.x, ...
__global__ void scatter_runs_kernel(float *dtable, const float *dout, const int32_t *sorted_ids,
                                    const int32_t *positions, int64_t n, int64_t cols)
{
    int64_t col = (int64_t)blockIdx.y * blockDim.x + threadIdx.x;
    if (col >= cols) return;
    for (int64_t run = blockIdx.x; run < n; run += gridDim.x) {
        int32_t id = sorted_ids[run];
        if (run > 0 && sorted_ids[run - 1] == id) continue;
        float sum = dtable[(int64_t)id * cols + col];
        for (int64_t at = run; at < n && sorted_ids[at] == id;) {
            float rows[SCATTER_LOADS];
            int loaded = 0;
            for (; loaded < SCATTER_LOADS && at + loaded < n && sorted_ids[at + loaded] == id; loaded++)
                rows[loaded] = dout[(int64_t)positions[at + loaded] * cols + col];
            for (int i = 0; i < loaded; i++) sum += rows[i];
            at += loaded;
        }
        dtable[(int64_t)id * cols + col] = sum;
    }
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
    size_t sort_bytes = 0;
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(NULL, sort_bytes, ids, (int32_t *)NULL, (const int32_t *)NULL,
                                               (int32_t *)NULL, n));
    int64_t index_bytes = (n * (int64_t)sizeof(int32_t) + 255) / 256 * 256;
    char *workspace = (char *)tp_cuda_workspace(3 * index_bytes + (int64_t)sort_bytes);
    int32_t *sorted_ids = (int32_t *)workspace, *order = (int32_t *)(workspace + index_bytes),
            *positions = (int32_t *)(workspace + 2 * index_bytes);
    iota_kernel<<<grid_for(n), TP_CUDA_THREADS>>>(order, n);
    CUDA_CHECK_LAUNCH();
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(workspace + 3 * index_bytes, sort_bytes, ids, sorted_ids, order,
                                               positions, n));
    dim3 grid((unsigned)(n < 65535 * 8 ? n : 65535 * 8), tp_cuda_blocks(cols));
    scatter_runs_kernel<<<grid, TP_CUDA_THREADS>>>(dtable, dout, sorted_ids, positions, n, cols);
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
