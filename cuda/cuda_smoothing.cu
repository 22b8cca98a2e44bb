// Label smoothing's uniform cross-entropy (core/backend.h): one block per row for the
// log-sum-exp and the row's mean, then one block sums the counted rows in a fixed order
// (deterministic), as cuda_loss.cu's cross-entropy.
#include <float.h>

#include "cuda/cuda_common.cuh"

enum { ROW_THREADS = 256, SUM_THREADS = 1024 };

// row_loss[r] = logsumexp - mean over the first `classes` columns (rows with target < 0: 0).
__global__ void uniform_rows_kernel(float *row_loss, float *logsumexp, const float *logits, const int32_t *targets,
                                    int64_t classes, int64_t ld)
{
    int64_t r = blockIdx.x;
    if (targets[r] < 0) {
        if (threadIdx.x == 0) row_loss[r] = logsumexp[r] = 0.0f;
        return;
    }
    const float *row = logits + r * ld;
    float max = -FLT_MAX;
    for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) max = row[c] > max ? row[c] : max;
    max = tp_block_reduce(max, tp_max_op());
    double sum = 0.0, total = 0.0;
    for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) {
        sum += exp((double)row[c] - max);
        total += row[c];
    }
    sum = tp_block_reduce(sum, tp_sum_op());
    total = tp_block_reduce(total, tp_sum_op());
    if (threadIdx.x == 0) {
        logsumexp[r] = max + (float)log(sum);
        row_loss[r] = (float)((double)logsumexp[r] - total / (double)classes);
    }
}

__global__ void sum_rows_kernel(float *loss, const float *row_loss, int64_t rows)
{
    double total = 0.0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) total += row_loss[r];
    total = tp_block_reduce(total, tp_sum_op());
    if (threadIdx.x == 0) *loss = (float)total;
}

void tp_cuda_uniform_cross_entropy_forward(float *loss, float *logsumexp, const float *logits, const int32_t *targets,
                                           int64_t rows, int64_t classes, int64_t ld)
{
    float *row_loss = logsumexp + rows; // the scratch half
    if (rows > 0) {
        uniform_rows_kernel<<<(unsigned)rows, ROW_THREADS>>>(row_loss, logsumexp, logits, targets, classes, ld);
        CUDA_CHECK_LAUNCH();
    }
    sum_rows_kernel<<<1, SUM_THREADS>>>(loss, row_loss, rows);
    CUDA_CHECK_LAUNCH();
}

__global__ void uniform_backward_kernel(float *dlogits, float dloss, const float *logits, const float *logsumexp,
                                        const int32_t *targets, int64_t rows, int64_t classes, int64_t ld)
{
    float uniform = dloss / (float)classes;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < rows * classes;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / classes, c = i % classes;
        if (targets[r] < 0) continue;
        dlogits[r * ld + c] += dloss * expf(logits[r * ld + c] - logsumexp[r]) - uniform;
    }
}

void tp_cuda_uniform_cross_entropy_backward(float *dlogits, float dloss, const float *logits, const float *logsumexp,
                                            const int32_t *targets, int64_t rows, int64_t classes, int64_t ld)
{
    if (rows <= 0 || classes <= 0) return;
    unsigned blocks = tp_cuda_blocks(rows * classes);
    if (blocks > 65535u * 16u) blocks = 65535u * 16u;
    uniform_backward_kernel<<<blocks, TP_CUDA_THREADS>>>(dlogits, dloss, logits, logsumexp, targets, rows, classes,
                                                         ld);
    CUDA_CHECK_LAUNCH();
}
