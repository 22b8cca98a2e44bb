// Shared by the CUDA kernel files: error checks, the cuBLAS handle, launch sizes, block reductions
// and the declarations of every table entry (cuda_backend.cu assembles the table).
// Everything runs on the default stream, so kernels are ordered without explicit syncs.
#ifndef TP_CUDA_COMMON_CUH
#define TP_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "core/backend.h"
}

#define CUDA_CHECK(call) tp_cuda_check((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) tp_cublas_check((call), #call, __FILE__, __LINE__)
// After a kernel launch: reports launch-configuration errors at the launching line.
#define CUDA_CHECK_LAUNCH() tp_cuda_check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

void tp_cuda_check(cudaError_t status, const char *what, const char *file, int line);
void tp_cublas_check(cublasStatus_t status, const char *what, const char *file, int line);
cublasHandle_t tp_cuda_blas(void);
// One device scratch buffer of at least `bytes` (256-byte aligned), shared by the kernels that need
// temporary memory within one call (bf16 operands, sorting, partial sums): valid until the next
// call of tp_cuda_workspace.
void *tp_cuda_workspace(int64_t bytes);

// cuda_matmul.cu: the products, at the precision set by tp_cuda_set_precision.
void tp_cuda_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
// A batch of row-major matrices with leading dimension ld; matrix i of the batch starts at
// base + (i / heads) * batch_stride + (i % heads) * head_stride (e.g. head h of sequence b).
struct tp_cuda_operand {
    const float *base;
    int64_t ld, batch_stride, head_stride;
};
// C_i = alpha op(A_i) op(B_i) + beta C_i for i < count in one cuBLAS call; pointers: 3 * count
// device pointers of scratch for the operand arrays.
void tp_cuda_gemm_heads(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, tp_cuda_operand a,
                        tp_cuda_operand b, float beta, tp_cuda_operand c, int64_t heads, int64_t count,
                        const float **pointers);

enum { TP_CUDA_THREADS = 256 };

static inline unsigned tp_cuda_blocks(int64_t n, int64_t threads = TP_CUDA_THREADS)
{
    return (unsigned)((n + threads - 1) / threads);
}

struct tp_sum_op {
    template <typename T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct tp_max_op {
    template <typename T> __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};
struct tp_min_op {
    template <typename T> __device__ T operator()(T a, T b) const { return a < b ? a : b; }
};

// Reduces one value per thread over the block (blockDim.x a multiple of 32, at most 1024) and
// returns the result to every thread.  Fixed shuffle tree, then the warps in order: the same bits
// on every run for a given block size.
template <typename T, typename Op> __device__ T tp_block_reduce(T value, Op op)
{
    __shared__ T partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int offset = 16; offset > 0; offset >>= 1) value = op(value, __shfl_down_sync(0xffffffffu, value, offset));
    if (lane == 0) partial[warp] = value;
    __syncthreads();
    if (threadIdx.x == 0) {
        T total = partial[0];
        for (int w = 1; w < warps; w++) total = op(total, partial[w]);
        partial[0] = total;
    }
    __syncthreads();
    T result = partial[0];
    __syncthreads(); // partial may be reused by the next call
    return result;
}

// The counter-based hash of core/rng.h (tp_hash3 -> tp_uniform), for device code: dropout masks
// must equal the CPU's bit for bit (tests/gpu/test_gpu_ops.c checks it).
__device__ inline float tp_cuda_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + stream * 0xD1B54A32D192ED03ull + index;
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ull;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

__device__ inline float tp_cuda_keep_scale(float p, uint64_t seed, uint64_t stream, uint64_t index)
{
    return tp_cuda_uniform(seed, stream, index) >= p ? 1.0f / (1.0f - p) : 0.0f;
}

// ---- table entries, by file ----
// cuda_elementwise.cu
void tp_cuda_add(float *out, const float *a, const float *b, int64_t n);
void tp_cuda_accumulate(float *dst, const float *src, int64_t n);
// cuda_multiply.cu
void tp_cuda_multiply(float *out, const float *a, const float *b, int64_t n, int accumulate);
void tp_cuda_axpy(float *dst, float scale, const float *src, int64_t n);
void tp_cuda_fill_bias(float *y, const float *bias, int64_t rows, int64_t cols);
void tp_cuda_bias_backward(float *dbias, const float *dy, int64_t rows, int64_t cols);
void tp_cuda_activation_forward(tp_activation kind, float *y, const float *x, int64_t n);
void tp_cuda_activation_backward(tp_activation kind, float *dx, const float *dy, const float *x, const float *y,
                                 int64_t n);
void tp_cuda_gather_rows(float *out, const float *table, const int32_t *ids, int64_t n, int64_t cols);
void tp_cuda_scatter_add_rows(float *dtable, const float *dout, const int32_t *ids, int64_t n, int64_t cols);
void tp_cuda_pool_forward(tp_pool_kind kind, float *out, int32_t *argmax, const float *x, const int32_t *valid,
                          int64_t batch, int64_t seq, int64_t cols);
void tp_cuda_pool_backward(tp_pool_kind kind, float *dx, const float *dout, const int32_t *argmax,
                           const int32_t *valid, int64_t batch, int64_t seq, int64_t cols);
// cuda_conv1d.cu
void tp_cuda_conv1d_unfold(const tp_conv1d_shape *shape, float *cols, const float *x);
void tp_cuda_conv1d_fold(const tp_conv1d_shape *shape, float *dx, const float *dcols);
// cuda_clip.cu
void tp_cuda_l2_normalize_forward(float *y, float *inv_norm, const float *x, int64_t rows, int64_t cols);
void tp_cuda_l2_normalize_backward(float *dx, const float *dy, const float *y, const float *inv_norm, int64_t rows,
                                   int64_t cols);
void tp_cuda_scale_exp_forward(float *y, const float *x, const float *s, int64_t n);
void tp_cuda_scale_exp_backward(float *dx, float *ds, const float *dy, const float *y, const float *s, int64_t n);
void tp_cuda_dropout_forward(float *y, const float *x, int64_t n, float p, uint64_t seed, uint64_t stream);
void tp_cuda_dropout_backward(float *dx, const float *dy, int64_t n, float p, uint64_t seed, uint64_t stream);
// cuda_norm.cu
void tp_cuda_layer_norm_forward(tp_norm_kind kind, float *y, float *mean, float *inv_scale, const float *x,
                                const float *gamma, const float *beta, int64_t rows, int64_t cols, float eps);
void tp_cuda_layer_norm_backward(tp_norm_kind kind, float *dx, float *dgamma, float *dbeta, const float *dy,
                                 const float *x, const float *mean, const float *inv_scale, const float *gamma,
                                 int64_t rows, int64_t cols, float eps);
// cuda_attention.cu
void tp_cuda_attention_forward(const tp_attention_shape *shape, float *out, float *probs, const float *q,
                               const float *k, const float *v, float *scratch);
void tp_cuda_attention_backward(const tp_attention_shape *shape, float *dq, float *dk, float *dv, const float *dout,
                                const float *probs, const float *q, const float *k, const float *v, float *scratch);
int64_t tp_cuda_attention_scratch(const tp_attention_shape *shape);
// cuda_cached_attention.cu
void tp_cuda_cached_attention_forward(const tp_cached_attention_shape *shape, float *out, const float *q,
                                      const float *k_cache, const float *v_cache, float *scratch);
// cuda_loss.cu
void tp_cuda_cross_entropy_forward(float *loss, int64_t *count, int64_t *correct, float *logsumexp,
                                   const float *logits, const int32_t *targets, int64_t rows, int64_t classes,
                                   int64_t ld);
void tp_cuda_cross_entropy_backward(float *dlogits, float beta, float dloss, int64_t count, const float *logits,
                                    const float *logsumexp, const int32_t *targets, int64_t rows, int64_t classes,
                                    int64_t ld, tp_column_block block);
void tp_cuda_pointwise_loss_forward(tp_pointwise_loss_kind kind, float *loss, int64_t *correct, const float *x,
                                    const float *targets, int64_t n);
void tp_cuda_pointwise_loss_backward(tp_pointwise_loss_kind kind, float *dx, float dloss, const float *x,
                                     const float *targets, int64_t n);
// cuda_smoothing.cu
void tp_cuda_uniform_cross_entropy_forward(float *loss, float *logsumexp, const float *logits, const int32_t *targets,
                                           int64_t rows, int64_t classes, int64_t ld);
void tp_cuda_uniform_cross_entropy_backward(float *dlogits, float dloss, const float *logits, const float *logsumexp,
                                            const int32_t *targets, int64_t rows, int64_t classes, int64_t ld);
// cuda_crf.cu
void tp_cuda_crf_forward(const tp_crf_problem *p, float *loss, int64_t *count, float *alpha, float *log_z);
void tp_cuda_crf_backward(const tp_crf_problem *p, float dloss, int64_t count, const float *alpha,
                          const float *log_z, float *demissions, float *dtransitions, float *dstart, float *dend,
                          float *scratch);
// cuda_optim.cu
void tp_cuda_adamw_step(const tp_adamw_options *opt, double lr, int64_t step, float *params, const float *grads,
                        float *exp_avg, float *exp_avg_sq, const tp_param_segment *segments, int64_t segment_count);
int tp_cuda_grads_finite(const float *grads, const tp_param_segment *segments, int64_t segment_count);
double tp_cuda_grad_norm(const float *grads, const tp_param_segment *segments, int64_t segment_count);
double tp_cuda_clip_grad_norm(float *grads, const tp_param_segment *segments, int64_t segment_count,
                              double max_norm);

#endif
