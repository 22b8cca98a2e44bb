// The CUDA kernel table (core/backend.h).  This file holds the device memory
// functions, the cuBLAS GEMM and the element-wise kernels; the remaining
// entries (layer norm, attention, cross-entropy, dropout, gathers,
// activations) are filled by the CUDA issue and are NULL until then, so
// tp_cuda_backend_get() refuses to hand out an incomplete table.
// None of this has run on a GPU yet.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "core/backend.h"
#include "cuda/cuda_backend.h"
}

#define CUDA_CHECK(call) cuda_check((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) cublas_check((call), #call, __FILE__, __LINE__)

static void cuda_check(cudaError_t status, const char *what, const char *file, int line)
{
    if (status == cudaSuccess) return;
    fprintf(stderr, "tp: CUDA error at %s:%d: %s: %s\n", file, line, what, cudaGetErrorString(status));
    exit(1);
}

static void cublas_check(cublasStatus_t status, const char *what, const char *file, int line)
{
    if (status == CUBLAS_STATUS_SUCCESS) return;
    fprintf(stderr, "tp: cuBLAS error at %s:%d: %s: status %d\n", file, line, what, (int)status);
    exit(1);
}

static cublasHandle_t blas_handle(void)
{
    static cublasHandle_t handle;
    if (!handle) CUBLAS_CHECK(cublasCreate(&handle));
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

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
static void cuda_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                      int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0) return;
    CUBLAS_CHECK(cublasSgemm(blas_handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                             (int)n, (int)m, (int)k, &alpha, b, (int)ldb, a, (int)lda, &beta, c, (int)ldc));
}

static unsigned blocks_for(int64_t n) { return (unsigned)((n + 255) / 256); }

__global__ void add_kernel(float *out, const float *a, const float *b, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] + b[i];
}

__global__ void axpy_kernel(float *dst, float scale, const float *src, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] += scale * src[i];
}

__global__ void add_bias_kernel(float *y, const float *bias, int64_t rows, int64_t cols)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < rows * cols) y[i] += bias[i % cols];
}

static void cuda_add(float *out, const float *a, const float *b, int64_t n)
{
    if (n) add_kernel<<<blocks_for(n), 256>>>(out, a, b, n);
}
static void cuda_axpy(float *dst, float scale, const float *src, int64_t n)
{
    if (n) axpy_kernel<<<blocks_for(n), 256>>>(dst, scale, src, n);
}
static void cuda_accumulate(float *dst, const float *src, int64_t n) { cuda_axpy(dst, 1.0f, src, n); }
static void cuda_add_bias(float *y, const float *bias, int64_t rows, int64_t cols)
{
    if (rows > 0 && cols > 0) add_bias_kernel<<<blocks_for(rows * cols), 256>>>(y, bias, rows, cols);
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
    table.gemm = cuda_gemm;
    table.add_bias = cuda_add_bias;
    table.add = cuda_add;
    table.accumulate = cuda_accumulate;
    table.axpy = cuda_axpy;
    return table;
}

static const tp_backend cuda_table = make_table();

extern "C" int tp_cuda_device_count(void)
{
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
    return count;
}

extern "C" const tp_backend *tp_cuda_backend_get(void)
{
    // Every entry must be present before a model may run on this backend.
    const void *const *entries = (const void *const *)&cuda_table.alloc;
    size_t entry_count = (sizeof cuda_table - offsetof(tp_backend, alloc)) / sizeof(void *); // all function pointers
    for (size_t i = 0; i < entry_count; i++)
        if (!entries[i]) return NULL;
    return tp_cuda_device_count() > 0 ? &cuda_table : NULL;
}
