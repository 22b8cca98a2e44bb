// The CUDA kernel table (core/backend.h): device memory and the assembly of the table from the
// kernel files (cuda_matmul.cu, cuda_elementwise.cu, cuda_norm.cu, cuda_attention.cu, cuda_loss.cu,
// cuda_pool.cu, cuda_optim.cu).  See docs/gpu.md.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda/cuda_common.cuh"

extern "C" {
#include "cuda/cuda_backend.h"
}

void tp_cuda_check(cudaError_t status, const char *what, const char *file, int line)
{
    if (status == cudaSuccess) return;
    fprintf(stderr, "tp: CUDA error at %s:%d: %s: %s\n", file, line, what, cudaGetErrorString(status));
    exit(1);
}

void tp_cublas_check(cublasStatus_t status, const char *what, const char *file, int line)
{
    if (status == CUBLAS_STATUS_SUCCESS) return;
    fprintf(stderr, "tp: cuBLAS error at %s:%d: %s: status %d\n", file, line, what, (int)status);
    exit(1);
}

cublasHandle_t tp_cuda_blas(void)
{
    static cublasHandle_t handle;
    if (!handle) {
        CUBLAS_CHECK(cublasCreate(&handle));
        // The compute type of each call decides tensor-core use (cuda_matmul.cu); the default
        // math mode adds no TF32 rounding of its own.
        CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
    }
    return handle;
}

static void *cuda_alloc(size_t bytes)
{
    void *ptr = NULL;
    cudaError_t status = cudaMalloc(&ptr, bytes ? bytes : 256);
    if (status != cudaSuccess) {
        fprintf(stderr, "tp: error: out of GPU memory: could not allocate %zu bytes (%.1f MiB): %s\n", bytes,
                bytes / 1048576.0, cudaGetErrorString(status));
        exit(1);
    }
    return ptr;
}

static void cuda_release(void *ptr) { CUDA_CHECK(cudaFree(ptr)); }

// Grow-only: sized by the largest request of the first step, so the step loop allocates nothing
// after it.  cudaFree synchronises the device, so no kernel still reads the old buffer.
void *tp_cuda_workspace(int64_t bytes)
{
    static void *buffer;
    static int64_t capacity;
    if (bytes > capacity) {
        if (buffer) CUDA_CHECK(cudaFree(buffer));
        cudaError_t status = cudaMalloc(&buffer, (size_t)bytes);
        if (status != cudaSuccess) {
            fprintf(stderr, "tp: error: out of GPU memory: the kernels' workspace needs %.1f MiB: %s\n",
                    bytes / 1048576.0, cudaGetErrorString(status));
            exit(1);
        }
        capacity = bytes;
    }
    return buffer;
}
static void cuda_zero(float *x, int64_t n) { CUDA_CHECK(cudaMemsetAsync(x, 0, (size_t)n * sizeof *x)); }
static void cuda_copy(float *dst, const float *src, int64_t n)
{
    CUDA_CHECK(cudaMemcpyAsync(dst, src, (size_t)n * sizeof *dst, cudaMemcpyDeviceToDevice));
}
static void cuda_upload(void *dst, const void *src, size_t bytes)
{
    CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
static void cuda_download(void *dst, const void *src, size_t bytes)
{
    CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

static tp_backend make_table(void)
{
    tp_backend table = {};
    table.name = "cuda";
    table.alloc = cuda_alloc;
    table.release = cuda_release;
    table.zero = cuda_zero;
    table.copy = cuda_copy;
    table.upload = cuda_upload;
    table.download = cuda_download;
    table.gemm = tp_cuda_gemm;
    table.fill_bias = tp_cuda_fill_bias;
    table.bias_backward = tp_cuda_bias_backward;
    table.add = tp_cuda_add;
    table.accumulate = tp_cuda_accumulate;
    table.multiply = tp_cuda_multiply;
    table.axpy = tp_cuda_axpy;
    table.activation_forward = tp_cuda_activation_forward;
    table.activation_backward = tp_cuda_activation_backward;
    table.layer_norm_forward = tp_cuda_layer_norm_forward;
    table.layer_norm_backward = tp_cuda_layer_norm_backward;
    table.gather_rows = tp_cuda_gather_rows;
    table.scatter_add_rows = tp_cuda_scatter_add_rows;
    table.dropout_forward = tp_cuda_dropout_forward;
    table.dropout_backward = tp_cuda_dropout_backward;
    table.attention_forward = tp_cuda_attention_forward;
    table.attention_backward = tp_cuda_attention_backward;
    table.attention_scratch = tp_cuda_attention_scratch;
    table.cached_attention_forward = tp_cuda_cached_attention_forward;
    table.cross_entropy_forward = tp_cuda_cross_entropy_forward;
    table.cross_entropy_backward = tp_cuda_cross_entropy_backward;
    table.uniform_cross_entropy_forward = tp_cuda_uniform_cross_entropy_forward;
    table.uniform_cross_entropy_backward = tp_cuda_uniform_cross_entropy_backward;
    table.pointwise_loss_forward = tp_cuda_pointwise_loss_forward;
    table.pointwise_loss_backward = tp_cuda_pointwise_loss_backward;
    table.pool_forward = tp_cuda_pool_forward;
    table.pool_backward = tp_cuda_pool_backward;
    table.conv1d_unfold = tp_cuda_conv1d_unfold;
    table.conv1d_fold = tp_cuda_conv1d_fold;
    table.l2_normalize_forward = tp_cuda_l2_normalize_forward;
    table.l2_normalize_backward = tp_cuda_l2_normalize_backward;
    table.scale_exp_forward = tp_cuda_scale_exp_forward;
    table.scale_exp_backward = tp_cuda_scale_exp_backward;
    table.crf_forward = tp_cuda_crf_forward;
    table.crf_backward = tp_cuda_crf_backward;
    table.adamw_step = tp_cuda_adamw_step;
    table.grads_finite = tp_cuda_grads_finite;
    table.grad_norm = tp_cuda_grad_norm;
    table.clip_grad_norm = tp_cuda_clip_grad_norm;
    return table;
}

static const tp_backend cuda_table = make_table();

extern "C" int tp_cuda_device_count(void)
{
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
    return count;
}

// Ranks of a data-parallel job on one node take one GPU each: the launcher's node-local rank
// (Open MPI, MPICH/Hydra, Slurm) modulo the visible devices.  Done before the first allocation.
static void select_device(int device_count)
{
    static const char *const local_rank_variables[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                                                       "SLURM_LOCALID"};
    for (const char *name : local_rank_variables) {
        const char *value = getenv(name);
        if (value && *value) {
            CUDA_CHECK(cudaSetDevice(atoi(value) % device_count));
            return;
        }
    }
}

extern "C" const tp_backend *tp_cuda_backend_get(void)
{
    // Every entry must be present before a model may run on this backend.
    const void *const *entries = (const void *const *)&cuda_table.alloc;
    size_t entry_count = (sizeof cuda_table - offsetof(tp_backend, alloc)) / sizeof(void *); // all function pointers
    for (size_t i = 0; i < entry_count; i++)
        if (!entries[i]) return NULL;
    static int device_count = -1;
    if (device_count < 0) {
        device_count = tp_cuda_device_count();
        if (device_count > 0) select_device(device_count);
    }
    return device_count > 0 ? &cuda_table : NULL;
}
