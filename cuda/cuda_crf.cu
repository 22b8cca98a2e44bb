// The linear-chain CRF (core/backend.h's tp_crf_problem; core/crf_math.h holds the recursions the
// CPU kernels use too).  One block per sequence walks its chain of scored positions in order, one
// thread per tag at each step (tags are few); a single block then sums the per-sequence results
// in sequence order, so the loss and the parameter gradients are deterministic.  The number of
// sequences averaged over goes through a device symbol: the forward pass's one host sync.
#include "cuda/cuda_common.cuh"
// after cuda_common.cuh, which includes core/backend.h with C linkage
#include "core/crf_math.h"

enum { CRF_THREADS = 64, CRF_SUM_THREADS = 1024 };

__device__ unsigned long long crf_sequences;

__global__ void crf_alpha_kernel(tp_crf_problem p, float *alpha, float *log_z)
{
    int64_t b = blockIdx.x, classes = p.classes, previous = -1;
    for (int64_t s = tp_crf_next(&p, b, -1); s < p.seq; previous = s, s = tp_crf_next(&p, b, s)) {
        const float *emissions = p.emissions + (b * p.seq + s) * p.ld;
        float *row = alpha + (b * p.seq + s) * classes;
        for (int64_t j = threadIdx.x; j < classes; j += blockDim.x)
            row[j] = previous < 0 ? p.start[j] + emissions[j]
                                  : (float)(emissions[j] + tp_crf_into(row - (s - previous) * classes,
                                                                       p.transitions, classes, j));
        __syncthreads();
    }
    if (threadIdx.x == 0)
        log_z[b] = previous < 0 ? 0.0f : (float)tp_crf_log_z(alpha + (b * p.seq + previous) * classes, p.end, classes);
}

__global__ void crf_mean_kernel(tp_crf_problem p, float *loss, const float *log_z)
{
    double total = 0.0;
    unsigned long long counted = 0;
    for (int64_t b = threadIdx.x; b < p.batch; b += blockDim.x) {
        if (tp_crf_next(&p, b, -1) == p.seq) continue;
        total += log_z[b] - tp_crf_gold_score(&p, b);
        counted++;
    }
    total = tp_block_reduce(total, tp_sum_op());
    counted = tp_block_reduce(counted, tp_sum_op());
    if (threadIdx.x == 0) {
        *loss = counted ? (float)(total / (double)counted) : 0.0f;
        crf_sequences = counted;
    }
}

void tp_cuda_crf_forward(const tp_crf_problem *p, float *loss, int64_t *count, float *alpha, float *log_z)
{
    if (p->batch > 0) {
        crf_alpha_kernel<<<(unsigned)p->batch, CRF_THREADS>>>(*p, alpha, log_z);
        CUDA_CHECK_LAUNCH();
    }
    crf_mean_kernel<<<1, CRF_SUM_THREADS>>>(*p, loss, log_z);
    CUDA_CHECK_LAUNCH();
    unsigned long long counted = 0;
    CUDA_CHECK(cudaMemcpyFromSymbol(&counted, crf_sequences, sizeof counted, 0, cudaMemcpyDeviceToHost));
    *count = (int64_t)counted;
}

// Sequence b: log beta from the last scored position back, then every tag's gradient terms
// (thread j owns tag j's entries: no two threads write the same float).
__global__ void crf_gradients_kernel(tp_crf_problem p, float scale, const float *alpha, const float *log_z,
                                     float *demissions, float *beta, float *own_all)
{
    int64_t b = blockIdx.x, classes = p.classes, own_size = classes * classes + 2 * classes;
    float *own = own_all + b * own_size;
    for (int64_t k = threadIdx.x; k < own_size; k += blockDim.x) own[k] = 0.0f;
    __syncthreads();
    int64_t last = tp_crf_prev(&p, b, p.seq);
    for (int64_t s = last, next = -1; s >= 0; next = s, s = tp_crf_prev(&p, b, s)) {
        float *row = beta + (b * p.seq + s) * classes;
        for (int64_t i = threadIdx.x; i < classes; i += blockDim.x)
            row[i] = s == last ? p.end[i]
                               : (float)tp_crf_out_of(p.transitions, p.emissions + (b * p.seq + next) * p.ld,
                                                      beta + (b * p.seq + next) * classes, classes, i);
        __syncthreads();
    }
    for (int64_t s = tp_crf_next(&p, b, -1), previous = -1; s < p.seq; previous = s, s = tp_crf_next(&p, b, s))
        for (int64_t j = threadIdx.x; j < classes; j += blockDim.x)
            tp_crf_tag_gradients(&p, b, s, previous, last, j, alpha, beta, log_z[b], scale, demissions, own);
}

// Parameter gradient k += scale * the sequences' own terms, summed in sequence order.
__global__ void crf_parameter_sum_kernel(float *dtransitions, float *dstart, float *dend, float scale,
                                         const float *own_all, int64_t batch, int64_t classes)
{
    int64_t squares = classes * classes, own_size = squares + 2 * classes;
    int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= own_size) return;
    float *target = k < squares ? (dtransitions ? dtransitions + k : NULL)
                    : k < squares + classes ? (dstart ? dstart + k - squares : NULL)
                                            : (dend ? dend + k - squares - classes : NULL);
    if (!target) return;
    float sum = 0.0f;
    for (int64_t b = 0; b < batch; b++) sum += own_all[b * own_size + k];
    *target += scale * sum;
}

void tp_cuda_crf_backward(const tp_crf_problem *p, float dloss, int64_t count, const float *alpha,
                          const float *log_z, float *demissions, float *dtransitions, float *dstart, float *dend,
                          float *scratch)
{
    if (count == 0 || p->batch <= 0) return;
    float scale = dloss / (float)count, *beta = scratch, *own = scratch + p->batch * p->seq * p->classes;
    crf_gradients_kernel<<<(unsigned)p->batch, CRF_THREADS>>>(*p, scale, alpha, log_z, demissions, beta, own);
    CUDA_CHECK_LAUNCH();
    int64_t own_size = p->classes * p->classes + 2 * p->classes;
    crf_parameter_sum_kernel<<<tp_cuda_blocks(own_size), TP_CUDA_THREADS>>>(dtransitions, dstart, dend, scale, own,
                                                                             p->batch, p->classes);
    CUDA_CHECK_LAUNCH();
}
