// Matrix products on cuBLAS for the kernel table and the attention: row-major wrappers with 64-bit
// sizes, and the precision of their inputs (core/device.h).  fp32 runs CUBLAS_COMPUTE_32F (no
// tensor cores: comparable with the CPU); tf32 and bf16 let cuBLAS round the fp32 inputs on the
// tensor cores and accumulate in fp32.  Every operand stays fp32 in memory.
#include "cuda/cuda_common.cuh"

extern "C" {
#include "cuda/cuda_backend.h"
}

static cublasComputeType_t compute_type = CUBLAS_COMPUTE_32F;

extern "C" void tp_cuda_set_precision(tp_precision precision)
{
    switch (precision) {
    case TP_PRECISION_TF32: compute_type = CUBLAS_COMPUTE_32F_FAST_TF32; break;
    case TP_PRECISION_BF16: compute_type = CUBLAS_COMPUTE_32F_FAST_16BF; break;
    default: compute_type = CUBLAS_COMPUTE_32F; break;
    }
}

static cublasOperation_t op(int transpose) { return transpose ? CUBLAS_OP_T : CUBLAS_OP_N; }

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
void tp_cuda_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0) return;
    CUBLAS_CHECK(cublasGemmEx_64(tp_cuda_blas(), op(trans_b), op(trans_a), n, m, k, &alpha, b, CUDA_R_32F, ldb, a,
                                 CUDA_R_32F, lda, &beta, c, CUDA_R_32F, ldc, compute_type, CUBLAS_GEMM_DEFAULT));
}

// Operand i of a batch lives at base + (i / heads) * batch_stride + (i % heads) * head_stride.
__global__ void operand_pointers_kernel(const float **out, tp_cuda_operand operand, int64_t heads, int64_t count)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) out[i] = operand.base + (i / heads) * operand.batch_stride + (i % heads) * operand.head_stride;
}

static const void *const *fill_pointers(const float **slot, tp_cuda_operand operand, int64_t heads, int64_t count)
{
    operand_pointers_kernel<<<tp_cuda_blocks(count), TP_CUDA_THREADS>>>(slot, operand, heads, count);
    CUDA_CHECK_LAUNCH();
    return (const void *const *)slot;
}

void tp_cuda_gemm_heads(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, tp_cuda_operand a,
                        tp_cuda_operand b, float beta, tp_cuda_operand c, int64_t heads, int64_t count,
                        const float **pointers)
{
    if (m == 0 || n == 0 || count == 0) return;
    const void *const *a_array = fill_pointers(pointers, a, heads, count);
    const void *const *b_array = fill_pointers(pointers + count, b, heads, count);
    void *const *c_array = (void *const *)fill_pointers(pointers + 2 * count, c, heads, count);
    CUBLAS_CHECK(cublasGemmBatchedEx_64(tp_cuda_blas(), op(trans_b), op(trans_a), n, m, k, &alpha, b_array, CUDA_R_32F,
                                        b.ld, a_array, CUDA_R_32F, a.ld, &beta, c_array, CUDA_R_32F, c.ld, count,
                                        compute_type, CUBLAS_GEMM_DEFAULT));
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
