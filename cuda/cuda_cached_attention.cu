// Incremental causal attention against a key/value cache (tp-generate's decoding, inference
// only): one block per query row (sequence b, head h, query i), which computes its scores against
// the past + queries cached keys into scratch, masks the keys after its own position with -10000
// as the CPU does, normalises, and sums the values.  Decoding runs one query per sequence, so a
// plain kernel does the work of the two small products the CPU hands to BLAS.
#include <float.h>

#include "cuda/cuda_common.cuh"

#define MASKED_SCORE (-10000.0f)

enum { ROW_THREADS = 128 };

__global__ void cached_attention_kernel(tp_cached_attention_shape s, float *out, const float *q, const float *k_cache,
                                        const float *v_cache, float *scores)
{
    int64_t row = blockIdx.x, i = row % s.queries, bh = row / s.queries, b = bh / s.heads, h = bh % s.heads;
    int64_t d = s.head_dim, hidden = s.heads * d, keys = s.past + s.queries;
    const float *query = q + (b * s.queries + i) * hidden + h * d;
    const float *k = k_cache + b * s.capacity * hidden + h * d, *v = v_cache + b * s.capacity * hidden + h * d;
    float *p = scores + row * keys;
    float max = -FLT_MAX;
    for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) {
        float dot = 0.0f;
        for (int64_t c = 0; c < d; c++) dot += query[c] * k[j * hidden + c];
        p[j] = s.scale * dot + (j > s.past + i ? MASKED_SCORE : 0.0f);
        max = p[j] > max ? p[j] : max;
    }
    max = tp_block_reduce(max, tp_max_op());
    float sum = 0.0f;
    for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) sum += (p[j] = expf(p[j] - max));
    float inv = 1.0f / tp_block_reduce(sum, tp_sum_op());
    for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) p[j] *= inv;
    __syncthreads(); // every thread reads every probability below
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
        float acc = 0.0f;
        for (int64_t j = 0; j < keys; j++) acc += p[j] * v[j * hidden + c];
        out[(b * s.queries + i) * hidden + h * d + c] = acc;
    }
}

void tp_cuda_cached_attention_forward(const tp_cached_attention_shape *s, float *out, const float *q,
                                      const float *k_cache, const float *v_cache, float *scratch)
{
    int64_t rows = s->batch * s->heads * s->queries;
    if (rows <= 0) return;
    cached_attention_kernel<<<(unsigned)rows, ROW_THREADS>>>(*s, out, q, k_cache, v_cache, scratch);
    CUDA_CHECK_LAUNCH();
}
