// Cross-entropy (and, at the end, the element-wise losses): one block per row for the
// log-sum-exp and the argmax, then one block sums the per-row losses in a fixed order
// (deterministic).  The counted rows and the correct rows are integers counted with atomics
// (exact) and downloaded to the host pointers at the end: the one host sync of the forward pass.
#include <float.h>

#include "cuda/cuda_common.cuh"
// after cuda_common.cuh, which includes core/backend.h with C linkage
#include "core/loss_math.h"

enum { ROW_THREADS = 256, SUM_THREADS = 1024 };

__device__ unsigned long long ce_counts[2]; // counted rows, correct rows

__global__ void logsumexp_kernel(float *logsumexp, const float *logits, const int32_t *targets, int64_t classes,
                                 int64_t ld)
{
    int64_t r = blockIdx.x;
    const float *row = logits + r * ld;
    float max = -FLT_MAX;
    for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) max = row[c] > max ? row[c] : max;
    max = tp_block_reduce(max, tp_max_op());
    int64_t best = classes; // the first index holding the maximum, as the CPU's scan finds it
    double sum = 0.0;
    for (int64_t c = threadIdx.x; c < classes; c += blockDim.x) {
        if (row[c] == max && c < best) best = c;
        sum += expf(row[c] - max);
    }
    best = tp_block_reduce(best, tp_min_op());
    sum = tp_block_reduce(sum, tp_sum_op());
    if (threadIdx.x == 0) {
        logsumexp[r] = max + (float)log(sum);
        if (targets[r] >= 0) {
            atomicAdd(&ce_counts[0], 1ull);
            if (best == targets[r]) atomicAdd(&ce_counts[1], 1ull);
        }
    }
}

__global__ void mean_loss_kernel(float *loss, const float *logsumexp, const float *logits, const int32_t *targets,
                                 int64_t rows, int64_t ld)
{
    double total = 0.0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x)
        if (targets[r] >= 0) total += logsumexp[r] - logits[r * ld + targets[r]];
    total = tp_block_reduce(total, tp_sum_op());
    if (threadIdx.x == 0) {
        unsigned long long counted = ce_counts[0];
        *loss = counted ? (float)(total / (double)counted) : 0.0f;
    }
}

void tp_cuda_cross_entropy_forward(float *loss, int64_t *count, int64_t *correct, float *logsumexp,
                                   const float *logits, const int32_t *targets, int64_t rows, int64_t classes,
                                   int64_t ld)
{
    unsigned long long counts[2] = {0, 0};
    CUDA_CHECK(cudaMemcpyToSymbolAsync(ce_counts, counts, sizeof counts, 0, cudaMemcpyHostToDevice));
    if (rows > 0) {
        logsumexp_kernel<<<(unsigned)rows, ROW_THREADS>>>(logsumexp, logits, targets, classes, ld);
        CUDA_CHECK_LAUNCH();
    }
    mean_loss_kernel<<<1, SUM_THREADS>>>(loss, logsumexp, logits, targets, rows, ld);
    CUDA_CHECK_LAUNCH();
    CUDA_CHECK(cudaMemcpyFromSymbol(counts, ce_counts, sizeof counts, 0, cudaMemcpyDeviceToHost));
    *count = (int64_t)counts[0];
    if (correct) *correct = (int64_t)counts[1];
}

// Over every element of the block's [rows, block.count]: beta 0 writes each one (zero outside the scored
// rows' classes), beta 1 adds to the scored ones only.  logits rows hold ld floats, dlogits rows block.count.
__global__ void cross_entropy_backward_kernel(float *dlogits, float beta, float scale, const float *logits,
                                              const float *logsumexp, const int32_t *targets, int64_t rows,
                                              int64_t classes, int64_t ld, tp_column_block block)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < rows * block.count;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / block.count, c = block.first + i % block.count;
        float gradient = 0.0f;
        if (targets[r] >= 0 && c < classes) {
            gradient = scale * expf(logits[r * ld + c] - logsumexp[r]);
            if (c == targets[r]) gradient -= scale;
        } else if (beta != 0.0f) {
            continue;
        }
        dlogits[i] = beta != 0.0f ? dlogits[i] + gradient : gradient;
    }
}

void tp_cuda_cross_entropy_backward(float *dlogits, float beta, float dloss, int64_t count, const float *logits,
                                    const float *logsumexp, const int32_t *targets, int64_t rows, int64_t classes,
                                    int64_t ld, tp_column_block block)
{
    if (rows <= 0 || block.count <= 0) return;
    if (count == 0 || classes <= 0) { // no scored row: nothing to add, zeros to write
        if (beta == 0.0f) CUDA_CHECK(cudaMemset(dlogits, 0, (size_t)(rows * block.count) * sizeof *dlogits));
        return;
    }
    unsigned blocks = tp_cuda_blocks(rows * block.count);
    if (blocks > 65535u * 16u) blocks = 65535u * 16u;
    cross_entropy_backward_kernel<<<blocks, TP_CUDA_THREADS>>>(dlogits, beta, dloss / (float)count, logits, logsumexp,
                                                               targets, rows, classes, ld, block);
    CUDA_CHECK_LAUNCH();
}

// ---- element-wise losses (BCE with logits, squared error) ----
// One block sums every element's loss in a fixed order (deterministic) and counts the right
// predictions; the sizes are small (batch x labels).  correct goes through a device symbol and is
// downloaded only when asked for.

__device__ unsigned long long pointwise_correct;

__global__ void pointwise_loss_kernel(tp_pointwise_loss_kind kind, float *loss, const float *x, const float *targets,
                                      int64_t n)
{
    double total = 0.0;
    unsigned long long hits = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        total += tp_pointwise_loss_value(kind, x[i], targets[i]);
        hits += (unsigned long long)tp_pointwise_loss_correct(kind, x[i], targets[i]);
    }
    total = tp_block_reduce(total, tp_sum_op());
    hits = tp_block_reduce(hits, tp_sum_op());
    if (threadIdx.x == 0) {
        *loss = n ? (float)(total / (double)n) : 0.0f;
        pointwise_correct = hits;
    }
}

void tp_cuda_pointwise_loss_forward(tp_pointwise_loss_kind kind, float *loss, int64_t *correct, const float *x,
                                    const float *targets, int64_t n)
{
    pointwise_loss_kernel<<<1, SUM_THREADS>>>(kind, loss, x, targets, n);
    CUDA_CHECK_LAUNCH();
    if (correct) {
        unsigned long long hits = 0;
        CUDA_CHECK(cudaMemcpyFromSymbol(&hits, pointwise_correct, sizeof hits, 0, cudaMemcpyDeviceToHost));
        *correct = (int64_t)hits;
    }
}

__global__ void pointwise_loss_backward_kernel(tp_pointwise_loss_kind kind, float *dx, float scale, const float *x,
                                               const float *targets, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dx[i] += scale * tp_pointwise_loss_slope(kind, x[i], targets[i]);
}

void tp_cuda_pointwise_loss_backward(tp_pointwise_loss_kind kind, float *dx, float dloss, const float *x,
                                     const float *targets, int64_t n)
{
    if (n <= 0) return;
    unsigned blocks = tp_cuda_blocks(n);
    if (blocks > 65535u * 16u) blocks = 65535u * 16u;
    pointwise_loss_backward_kernel<<<blocks, TP_CUDA_THREADS>>>(kind, dx, dloss / (float)n, x, targets, n);
    CUDA_CHECK_LAUNCH();
}
