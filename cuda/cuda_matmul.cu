// Matrix products on cuBLAS for the kernel table and the attention: row-major wrappers with 64-bit
// sizes, and the precision of their inputs (core/device.h).  Every operand is fp32 in tp's memory.
//   fp32  CUBLAS_COMPUTE_32F on the fp32 operands: no tensor cores, comparable with the CPU.
//   tf32  CUBLAS_COMPUTE_32F_FAST_TF32: cuBLAS rounds the operands to tf32 on the tensor cores.
//   bf16  the A and B operands are converted to bf16 (round to nearest even) into a workspace and
//         multiplied with fp32 accumulation into the fp32 C.  CUBLAS_COMPUTE_32F_FAST_16BF on fp32
//         operands is not used: on the H100, cuBLAS 13.1 ran it as tf32 (docs/gpu-results.md).
#include <cuda_bf16.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda/cuda_common.cuh"

extern "C" {
#include "cuda/cuda_backend.h"
}

static tp_precision precision = TP_PRECISION_FP32;

extern "C" void tp_cuda_set_precision(tp_precision value) { precision = value; }

static cublasComputeType_t compute_type(void)
{
    return precision == TP_PRECISION_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

static cudaDataType operand_type(void) { return precision == TP_PRECISION_BF16 ? CUDA_R_16BF : CUDA_R_32F; }

static cublasOperation_t op(int transpose) { return transpose ? CUBLAS_OP_T : CUBLAS_OP_N; }

// ---- bf16 operands -----------------------------------------------------------------------

// a_count + b_count elements of the workspace, b's part starting 16-byte aligned for to_bf16.
static __nv_bfloat16 *bf16_workspace(int64_t a_count, int64_t b_count)
{
    return (__nv_bfloat16 *)tp_cuda_workspace((a_count + 8 + b_count) * (int64_t)sizeof(__nv_bfloat16));
}

static int64_t aligned_count(int64_t count) { return (count + 7) / 8 * 8; }

// Four elements per thread from 16-byte aligned input (most operands: arena blocks and whole heads),
// else one.  With one element per thread the conversions took 18% of a bf16 BERT-base step on the
// H200, about three times what their bytes cost at its memory bandwidth.
template <bool FOUR> __global__ void to_bf16_kernel(__nv_bfloat16 *out, const float *in, int64_t n)
{
    int64_t stride = (int64_t)gridDim.x * blockDim.x, first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t vector_end = FOUR ? n / 4 * 4 : 0;
    for (int64_t quad = first; FOUR && quad < n / 4; quad += stride) {
        float4 v = ((const float4 *)in)[quad];
        ((__nv_bfloat162 *)out)[2 * quad] = __floats2bfloat162_rn(v.x, v.y);
        ((__nv_bfloat162 *)out)[2 * quad + 1] = __floats2bfloat162_rn(v.z, v.w);
    }
    for (int64_t i = vector_end + first; i < n; i += stride) out[i] = __float2bfloat16_rn(in[i]);
}

// out must be 8-byte aligned (bf16_workspace's a and b parts are).
static void to_bf16(__nv_bfloat16 *out, const float *in, int64_t n)
{
    bool four = ((uintptr_t)in & 15) == 0;
    int64_t blocks = tp_cuda_blocks(four ? n / 4 + 1 : n);
    unsigned grid = (unsigned)(blocks < 65535 * 8 ? blocks : 65535 * 8);
    if (four) to_bf16_kernel<true><<<grid, TP_CUDA_THREADS>>>(out, in, n);
    else to_bf16_kernel<false><<<grid, TP_CUDA_THREADS>>>(out, in, n);
    CUDA_CHECK_LAUNCH();
}

// Elements from the first to the last one a rows x cols operand with leading dimension ld touches.
static int64_t extent(int64_t rows, int64_t cols, int64_t ld) { return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols; }

// ---- products ------------------------------------------------------------------------------

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
void tp_cuda_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0) return;
    const void *a_operand = a, *b_operand = b;
    if (precision == TP_PRECISION_BF16) {
        int64_t a_count = trans_a ? extent(k, m, lda) : extent(m, k, lda);
        int64_t b_count = trans_b ? extent(n, k, ldb) : extent(k, n, ldb);
        __nv_bfloat16 *a16 = bf16_workspace(a_count, b_count), *b16 = a16 + aligned_count(a_count);
        to_bf16(a16, a, a_count);
        to_bf16(b16, b, b_count);
        a_operand = a16, b_operand = b16;
    }
    CUBLAS_CHECK(cublasGemmEx_64(tp_cuda_blas(), op(trans_b), op(trans_a), n, m, k, &alpha, b_operand, operand_type(),
                                 ldb, a_operand, operand_type(), lda, &beta, c, CUDA_R_32F, ldc, compute_type(),
                                 CUBLAS_GEMM_DEFAULT));
}

// Operand i of a batch starts at element (i / heads) * batch_stride + (i % heads) * head_stride of base.
template <typename T>
__global__ void operand_pointers_kernel(const void **out, const T *base, tp_cuda_operand operand, int64_t heads,
                                        int64_t count)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) out[i] = base + (i / heads) * operand.batch_stride + (i % heads) * operand.head_stride;
}

// Elements of base that a batch of rows x cols operands touches.
static int64_t batch_extent(tp_cuda_operand operand, int64_t rows, int64_t cols, int64_t heads, int64_t count)
{
    int64_t last = count - 1;
    return (last / heads) * operand.batch_stride + (last < heads ? last : heads - 1) * operand.head_stride +
           extent(rows, cols, operand.ld);
}

// Fills slot with the operand's pointers (into its bf16 copy at bf16 precision); returns slot.
static const void **batch_pointers(const void **slot, tp_cuda_operand operand, int64_t rows, int64_t cols,
                                   int64_t heads, int64_t count, __nv_bfloat16 *bf16_copy)
{
    if (bf16_copy) {
        to_bf16(bf16_copy, operand.base, batch_extent(operand, rows, cols, heads, count));
        operand_pointers_kernel<<<tp_cuda_blocks(count), TP_CUDA_THREADS>>>(slot, (const __nv_bfloat16 *)bf16_copy,
                                                                            operand, heads, count);
    } else {
        operand_pointers_kernel<<<tp_cuda_blocks(count), TP_CUDA_THREADS>>>(slot, operand.base, operand, heads, count);
    }
    CUDA_CHECK_LAUNCH();
    return slot;
}

void tp_cuda_gemm_heads(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, tp_cuda_operand a,
                        tp_cuda_operand b, float beta, tp_cuda_operand c, int64_t heads, int64_t count,
                        const float **pointers)
{
    if (m == 0 || n == 0 || count == 0) return;
    int64_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k, b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
    __nv_bfloat16 *a16 = NULL, *b16 = NULL;
    if (precision == TP_PRECISION_BF16) {
        int64_t a_count = batch_extent(a, a_rows, a_cols, heads, count);
        a16 = bf16_workspace(a_count, batch_extent(b, b_rows, b_cols, heads, count));
        b16 = a16 + aligned_count(a_count);
    }
    const void **slots = (const void **)pointers;
    const void **a_array = batch_pointers(slots, a, a_rows, a_cols, heads, count, a16);
    const void **b_array = batch_pointers(slots + count, b, b_rows, b_cols, heads, count, b16);
    void **c_array = (void **)batch_pointers(slots + 2 * count, c, m, n, heads, count, NULL);
    CUBLAS_CHECK(cublasGemmBatchedEx_64(tp_cuda_blas(), op(trans_b), op(trans_a), n, m, k, &alpha, b_array,
                                        operand_type(), b.ld, a_array, operand_type(), a.ld, &beta, c_array,
                                        CUDA_R_32F, c.ld, count, compute_type(), CUBLAS_GEMM_DEFAULT));
}
// Dense FLOP per clock per SM of the matrix products, by architecture (NVIDIA's data sheets:
// A100 19.5 / 156 / 312 TFLOP/s, H100 SXM 67 / 495 / 989 at their clocks and SM counts).
static double flops_per_clock_per_sm(int major, int minor, tp_precision precision)
{
    static const struct {
        int major, minor;
        double fp32, tf32, bf16;
    } rates[] = {{8, 0, 128, 1024, 2048}, {9, 0, 256, 2048, 4096}};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++)
        if (rates[i].major == major && rates[i].minor == minor)
            return precision == TP_PRECISION_BF16 ? rates[i].bf16
                   : precision == TP_PRECISION_TF32 ? rates[i].tf32
                                                    : rates[i].fp32;
    return 0;
}

extern "C" double tp_cuda_peak_flops(tp_precision precision)
{
    int sms = 0, clock_khz = 0, major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0) != cudaSuccess ||
        cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0) != cudaSuccess)
        return 0;
    return (double)sms * clock_khz * 1e3 * flops_per_clock_per_sm(major, minor, precision);
}
