// Column sums of a rows x cols matrix of per-element terms, added (+=) into up to two outputs
// (bias gradients; layer norm's gamma and beta gradients).  Deterministic: blocks of COLUMN_TILE
// columns x ROW_LANES lanes each reduce one chunk of rows to a partial row in the workspace, then
// one thread per column adds the partials in chunk order.  Chunking the rows gives the GPU
// hundreds of blocks where one block per 32 columns gave a BERT-base layer 24.
#ifndef TP_CUDA_COLUMN_SUMS_CUH
#define TP_CUDA_COLUMN_SUMS_CUH

#include "cuda/cuda_common.cuh"

enum { COLUMN_TILE = 32, ROW_LANES = 16, COLUMN_SUM_BLOCKS = 512 };

// Terms: a functor with `static const int outputs` (1 or 2) and
// `__device__ void operator()(int64_t row, int64_t col, float *sums) const` adding its terms.
template <typename Terms>
__global__ void column_partials_kernel(Terms terms, float *partials, int64_t rows, int64_t cols, int64_t chunk_rows)
{
    __shared__ float lanes[Terms::outputs][ROW_LANES][COLUMN_TILE + 1];
    int64_t col = (int64_t)blockIdx.x * COLUMN_TILE + threadIdx.x;
    int64_t first = (int64_t)blockIdx.y * chunk_rows, end = first + chunk_rows < rows ? first + chunk_rows : rows;
    float sums[Terms::outputs] = {};
    if (col < cols)
        for (int64_t row = first + threadIdx.y; row < end; row += ROW_LANES) terms(row, col, sums);
    for (int o = 0; o < Terms::outputs; o++) lanes[o][threadIdx.y][threadIdx.x] = sums[o];
    __syncthreads();
    if (threadIdx.y != 0 || col >= cols) return;
    for (int o = 0; o < Terms::outputs; o++) {
        float total = 0.0f;
        for (int lane = 0; lane < ROW_LANES; lane++) total += lanes[o][lane][threadIdx.x];
        partials[((int64_t)o * gridDim.y + blockIdx.y) * cols + col] = total;
    }
}

struct column_outputs {
    float *out[2];
};

static __global__ void column_finish_kernel(column_outputs outputs, int output_count, const float *partials, int64_t chunks,
                                     int64_t cols)
{
    int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= cols) return;
    for (int o = 0; o < output_count; o++) {
        if (!outputs.out[o]) continue;
        float total = 0.0f;
        for (int64_t chunk = 0; chunk < chunks; chunk++) total += partials[(o * chunks + chunk) * cols + col];
        outputs.out[o][col] += total;
    }
}

// outputs.out[o] += column sums of output o's terms (a NULL output is skipped).
template <typename Terms> void tp_cuda_column_sums(Terms terms, column_outputs outputs, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0) return;
    int64_t tiles = (cols + COLUMN_TILE - 1) / COLUMN_TILE;
    int64_t chunks = COLUMN_SUM_BLOCKS / tiles, most_chunks = (rows + ROW_LANES - 1) / ROW_LANES;
    chunks = chunks < 1 ? 1 : chunks > most_chunks ? most_chunks : chunks;
    int64_t chunk_rows = (rows + chunks - 1) / chunks;
    chunks = (rows + chunk_rows - 1) / chunk_rows;
    float *partials = (float *)tp_cuda_workspace(Terms::outputs * chunks * cols * (int64_t)sizeof(float));
    column_partials_kernel<<<dim3((unsigned)tiles, (unsigned)chunks), dim3(COLUMN_TILE, ROW_LANES)>>>(
        terms, partials, rows, cols, chunk_rows);
    CUDA_CHECK_LAUNCH();
    column_finish_kernel<<<tp_cuda_blocks(cols), TP_CUDA_THREADS>>>(outputs, Terms::outputs, partials, chunks, cols);
    CUDA_CHECK_LAUNCH();
}

#endif
