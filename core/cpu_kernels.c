/* The CPU backend: plain C loops (vectorised by the compiler), OpenMP over
 * rows, OpenBLAS for GEMMs.  OpenBLAS is its OpenMP build, so its threads
 * and ours are the same libgomp pool; inside our parallel regions it runs
 * single-threaded instead of oversubscribing. */
#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation_math.h"
#include "backend.h"
#include "cpu_smoothing.h"
#include "crf_math.h"
#include "error.h"
#include "loss_math.h"
#include "rng.h"
#include "vector_math.h"

/* Below this many elements an element-wise loop is not worth waking the pool. */
#define PARALLEL_MIN 32768

static void *cpu_alloc(size_t bytes) { return tp_xmalloc_aligned(bytes); }
static void cpu_release(void *ptr) { free(ptr); }
static void cpu_zero(float *x, int64_t n)
{
    /* Large buffers (the vocabulary logits' gradient) in chunks over the pool: one core's memset
     * does not reach the memory bandwidth of two. */
    const int64_t chunk = 1 << 16;
#pragma omp parallel for if (n >= 16 * chunk)
    for (int64_t begin = 0; begin < n; begin += chunk)
        memset(x + begin, 0, (size_t)(begin + chunk < n ? chunk : n - begin) * sizeof *x);
}
static void cpu_copy(float *dst, const float *src, int64_t n) { memmove(dst, src, (size_t)n * sizeof *dst); }
static void cpu_memcpy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }

static int blas_dim(int64_t value)
{
    if (value < 0 || value > INT_MAX) {
        fprintf(stderr, "tp: internal error: GEMM dimension %lld exceeds the BLAS int range\n", (long long)value);
        abort();
    }
    return (int)value;
}

static void blas_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                      int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, blas_dim(m),
                blas_dim(n), blas_dim(k), alpha, a, blas_dim(lda), b, blas_dim(ldb), beta, c, blas_dim(ldc));
}

/* OpenBLAS threads a product by itself, but where one of its dimensions is 256 or less (tiny BERT's
 * layers, the vocabulary projection of the masked rows) its threads ran 1.0-1.6x slower on this
 * machine than one single-threaded call per thread on its own block of C (docs/benchmarks.md,
 * "Products split over the threads"); at 512 the two were even, from 768 on OpenBLAS's as fast or
 * faster. */
enum { SPLIT_DIMENSION_MAX = 256, SPLIT_SIDE_MIN = 64 };

static int split_pays(int64_t m, int64_t n, int64_t k, int threads)
{
    int64_t smallest = m < n ? (m < k ? m : k) : (n < k ? n : k);
    return smallest <= SPLIT_DIMENSION_MAX && (m > n ? m : n) >= SPLIT_SIDE_MIN * threads;
}

/* C's rows (m >= n) or columns in one block per thread, in multiples of 16 (the kernel's panels). */
static void split_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, int threads)
{
    int by_rows = m >= n;
#pragma omp parallel num_threads(threads)
    {
        int64_t thread = omp_get_thread_num(), side = by_rows ? m : n, unit = 16;
        int64_t begin = side * thread / threads / unit * unit;
        int64_t end = thread == threads - 1 ? side : side * (thread + 1) / threads / unit * unit;
        if (end > begin && by_rows)
            blas_gemm(trans_a, trans_b, end - begin, n, k, alpha, trans_a ? a + begin : a + begin * lda, lda, b, ldb,
                      beta, c + begin * ldc, ldc);
        else if (end > begin)
            blas_gemm(trans_a, trans_b, m, end - begin, k, alpha, a, lda, trans_b ? b + begin * ldb : b + begin, ldb,
                      beta, c + begin, ldc);
    }
}

void tp_cpu_gemm_threads(int split, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                         const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (split)
        split_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, omp_get_max_threads());
    else
        blas_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void cpu_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                     int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0) return;
    if (m == 1) { /* one row (decoding a token): sgemm would pack all of B for it; sgemv streams it once */
        if (beta == 0.0f) memset(c, 0, sizeof(float) * (size_t)n); /* OpenBLAS 0.3.27+ scales y by 0: NaN stays */
        cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, blas_dim(trans_b ? n : k),
                    blas_dim(trans_b ? k : n), alpha, b, blas_dim(ldb), a, trans_a ? blas_dim(lda) : 1, beta, c, 1);
        return;
    }
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    tp_cpu_gemm_threads(threads > 1 && split_pays(m, n, k, threads), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                        beta, c, ldc);
}

static void cpu_fill_bias(float *y, const float *bias, int64_t rows, int64_t cols)
{
#pragma omp parallel for if (rows * cols >= PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) memcpy(y + r * cols, bias, sizeof(float) * (size_t)cols);
}

static void cpu_bias_backward(float *dbias, const float *dy, int64_t rows, int64_t cols)
{
    /* Columns in parallel blocks, rows summed in order: deterministic for any thread count. */
    const int64_t block = 64;
#pragma omp parallel for if (rows * cols >= PARALLEL_MIN)
    for (int64_t c0 = 0; c0 < cols; c0 += block) {
        int64_t c1 = c0 + block < cols ? c0 + block : cols;
        float sum[64] = {0};
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = c0; c < c1; c++) sum[c - c0] += dy[r * cols + c];
        for (int64_t c = c0; c < c1; c++) dbias[c] += sum[c - c0];
    }
}

static void cpu_add(float *out, const float *a, const float *b, int64_t n)
{
#pragma omp parallel for if (n >= PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void cpu_multiply(float *out, const float *a, const float *b, int64_t n, int accumulate)
{
#pragma omp parallel for if (n >= PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = (accumulate ? out[i] : 0.0f) + a[i] * b[i];
}

static void cpu_accumulate(float *dst, const float *src, int64_t n)
{
#pragma omp parallel for if (n >= PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

static void cpu_axpy(float *dst, float scale, const float *src, int64_t n)
{
#pragma omp parallel for if (n >= PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) dst[i] += scale * src[i];
}

/* ---- activations -------------------------------------------------------------- */

/* Runs STATEMENT (in terms of i and the constant KIND) over i in [0, n) with one loop per
 * activation kind: with the kind a constant, tp_activate inlines to branch-free code that GCC
 * vectorises (GCC -O2 does not unswitch a loop on a switch by itself). */
#define ELEMENTS_OF_KIND(K, STATEMENT)                  \
    case K: {                                           \
        const tp_activation KIND = K;                   \
        for (int64_t i = begin; i < end; i++) STATEMENT; \
    } break;
#define FOR_EACH_ELEMENT_OF_KIND(kind, n, STATEMENT)                                 \
    _Pragma("omp parallel for if (n >= PARALLEL_MIN / 8)")                          \
    for (int64_t chunk = 0; chunk < (n + 4095) / 4096; chunk++) {                  \
        int64_t begin = chunk * 4096, end = begin + 4096 < n ? begin + 4096 : n;    \
        switch (kind) {                                                            \
            ELEMENTS_OF_KIND(TP_ACT_GELU, STATEMENT)                                \
            ELEMENTS_OF_KIND(TP_ACT_GELU_FAST, STATEMENT)                           \
            ELEMENTS_OF_KIND(TP_ACT_RELU, STATEMENT)                                \
            ELEMENTS_OF_KIND(TP_ACT_SILU, STATEMENT)                                \
            ELEMENTS_OF_KIND(TP_ACT_TANH, STATEMENT)                                \
            ELEMENTS_OF_KIND(TP_ACT_QUICK_GELU, STATEMENT)                          \
            case TP_ACT_COUNT: break;                                               \
        }                                                                          \
    }

static void cpu_activation_forward(tp_activation kind, float *y, const float *x, int64_t n)
{
    FOR_EACH_ELEMENT_OF_KIND(kind, n, y[i] = tp_activate(KIND, x[i]))
}

static void cpu_activation_backward(tp_activation kind, float *dx, const float *dy, const float *x, const float *y,
                                    int64_t n)
{
    FOR_EACH_ELEMENT_OF_KIND(kind, n, dx[i] += dy[i] * tp_activation_slope(KIND, x[i], y[i]))
}

/* ---- layer norm --------------------------------------------------------------- */

/* inv_scale is 1 / (std_unbiased + eps) or 1 / sqrt(var + eps) depending on the kind; the RMS kind
 * takes the mean as 0 (var is then the mean square). */
static void cpu_layer_norm_forward(tp_norm_kind kind, float *y, float *mean, float *inv_scale, const float *x,
                                   const float *gamma, const float *beta, int64_t rows, int64_t cols, float eps)
{
#pragma omp parallel for if (rows * cols >= PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        double sum = 0, squares = 0;
        if (kind != TP_NORM_RMS)
            for (int64_t c = 0; c < cols; c++) sum += xr[c];
        double mu = sum / cols;
        for (int64_t c = 0; c < cols; c++) squares += (xr[c] - mu) * (xr[c] - mu);
        double inv = kind == TP_NORM_UNBIASED_STD ? 1.0 / (sqrt(squares / (cols > 1 ? cols - 1 : 1)) + eps)
                                                  : 1.0 / sqrt(squares / cols + eps);
        float mu_f = (float)mu, inv_f = (float)inv;
        for (int64_t c = 0; c < cols; c++) yr[c] = gamma[c] * ((xr[c] - mu_f) * inv_f) + (beta ? beta[c] : 0.0f);
        mean[r] = mu_f;
        inv_scale[r] = inv_f;
    }
}

static void cpu_layer_norm_backward(tp_norm_kind kind, float *dx, float *dgamma, float *dbeta, const float *dy,
                                    const float *x, const float *mean, const float *inv_scale, const float *gamma,
                                    int64_t rows, int64_t cols, float eps)
{
    if (dx) {
#pragma omp parallel for if (rows * cols >= PARALLEL_MIN)
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * cols, *dyr = dy + r * cols;
            float *dxr = dx + r * cols;
            float mu = mean[r], inv = inv_scale[r];
            double g_sum = 0, gx_sum = 0; /* sum g and sum g * (x - mean), g = dy * gamma */
            for (int64_t c = 0; c < cols; c++) {
                double g = (double)dyr[c] * gamma[c];
                g_sum += g;
                gx_sum += g * (xr[c] - mu);
            }
            float g_mean = kind == TP_NORM_RMS ? 0.0f : (float)(g_sum / cols);
            float coef; /* dx = inv * (g - mean(g)) - coef * (x - mean) */
            if (kind == TP_NORM_UNBIASED_STD) {
                double std = 1.0 / inv - eps;
                coef = std > 0 ? (float)(gx_sum * inv * inv / ((cols - 1) * std)) : 0.0f;
            } else {
                coef = (float)(gx_sum * inv * inv * inv / cols);
            }
            for (int64_t c = 0; c < cols; c++)
                dxr[c] += inv * (dyr[c] * gamma[c] - g_mean) - coef * (xr[c] - mu);
        }
    }
    if (dgamma || dbeta) {
        const int64_t block = 64;
#pragma omp parallel for if (rows * cols >= PARALLEL_MIN)
        for (int64_t c0 = 0; c0 < cols; c0 += block) {
            int64_t c1 = c0 + block < cols ? c0 + block : cols;
            float gamma_sum[64] = {0}, beta_sum[64] = {0};
            for (int64_t r = 0; r < rows; r++) {
                const float *xr = x + r * cols, *dyr = dy + r * cols;
                for (int64_t c = c0; c < c1; c++) {
                    gamma_sum[c - c0] += dyr[c] * ((xr[c] - mean[r]) * inv_scale[r]);
                    beta_sum[c - c0] += dyr[c];
                }
            }
            for (int64_t c = c0; c < c1; c++) {
                if (dgamma) dgamma[c] += gamma_sum[c - c0];
                if (dbeta) dbeta[c] += beta_sum[c - c0];
            }
        }
    }
}

/* ---- gathers ------------------------------------------------------------------ */

static void cpu_gather_rows(float *out, const float *table, const int32_t *ids, int64_t n, int64_t cols)
{
#pragma omp parallel for if (n * cols >= PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) memcpy(out + i * cols, table + (int64_t)ids[i] * cols, (size_t)cols * sizeof *out);
}

static void cpu_scatter_add_rows(float *dtable, const float *dout, const int32_t *ids, int64_t n, int64_t cols)
{
    /* Ids may repeat: split the columns, not the rows, between threads. */
    const int64_t block = 256;
#pragma omp parallel for if (n * cols >= PARALLEL_MIN)
    for (int64_t c0 = 0; c0 < cols; c0 += block) {
        int64_t c1 = c0 + block < cols ? c0 + block : cols;
        for (int64_t i = 0; i < n; i++) {
            float *dst = dtable + (int64_t)ids[i] * cols;
            const float *src = dout + i * cols;
            for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}

/* ---- dropout ------------------------------------------------------------------ */

static inline float keep_scale(float p, uint64_t seed, uint64_t stream, int64_t i)
{
    return tp_uniform(seed, stream, (uint64_t)i) >= p ? 1.0f / (1.0f - p) : 0.0f;
}

static void cpu_dropout_forward(float *y, const float *x, int64_t n, float p, uint64_t seed, uint64_t stream)
{
#pragma omp parallel for if (n >= PARALLEL_MIN / 4)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * keep_scale(p, seed, stream, i);
}

static void cpu_dropout_backward(float *dx, const float *dy, int64_t n, float p, uint64_t seed, uint64_t stream)
{
#pragma omp parallel for if (n >= PARALLEL_MIN / 4)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * keep_scale(p, seed, stream, i);
}

/* ---- attention ---------------------------------------------------------------- */

/* TencentPretrain adds -10000 (not -inf) to masked scores. */
#define MASKED_SCORE (-10000.0f)

/* Per thread: the scores of one (sequence, head) pair and their dropped copy; with bias_grad, the
 * score gradients of every pair, summed over the batch after the parallel loop (deterministic). */
static int64_t cpu_attention_scratch(const tp_attention_shape *shape)
{
    int64_t square = shape->seq * tp_attention_keys(shape);
    return (int64_t)omp_get_max_threads() * 2 * square + (shape->bias_grad ? shape->batch * shape->heads * square : 0);
}

/* Probabilities of (batch b, head h) with dropout applied, for the AV product. */
static const float *dropped_probs(const tp_attention_shape *s, const float *probs, int64_t bh, float *buffer)
{
    if (s->dropout <= 0) return probs;
    /* the fields in locals: through s, GCC must assume the stores to buffer change them */
    int64_t count = s->seq * tp_attention_keys(s), first = bh * count;
    float p = s->dropout;
    uint64_t seed = s->dropout_seed, stream = s->dropout_stream;
    for (int64_t i = 0; i < count; i++) buffer[i] = probs[i] * keep_scale(p, seed, stream, first + i);
    return buffer;
}

static void softmax_scores(const tp_attention_shape *s, float *scores, int64_t b, int64_t h)
{
    int64_t seq = s->seq, keys = tp_attention_keys(s);
    for (int64_t i = 0; i < seq; i++) {
        float *row = scores + i * keys;
        for (int64_t j = 0; j < keys; j++) {
            int visible = tp_attention_visible(s, b, i, j);
            if (s->bias) row[j] += s->bias[(i * keys + j) * s->heads + h];
            if (!visible) row[j] += MASKED_SCORE;
        }
        float inv = 1.0f / tp_exp_in_place(row, keys, tp_row_max(row, keys));
        for (int64_t j = 0; j < keys; j++) row[j] *= inv;
    }
}

static void cpu_attention_forward(const tp_attention_shape *s, float *out, float *probs, const float *q,
                                  const float *k, const float *v, float *scratch)
{
    int64_t seq = s->seq, keys = tp_attention_keys(s), d = s->head_dim, hidden = s->heads * d;
    int64_t pairs = s->batch * s->heads, square = seq * keys;
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < pairs; bh++) {
        int64_t b = bh / s->heads, h = bh % s->heads, q_offset = b * seq * hidden + h * d;
        int64_t k_offset = b * keys * hidden + h * d;
        float *p = probs + bh * square;
        cpu_gemm(0, 1, seq, keys, d, s->scale, q + q_offset, hidden, k + k_offset, hidden, 0.0f, p, keys);
        softmax_scores(s, p, b, h);
        const float *pd = dropped_probs(s, p, bh, scratch + (int64_t)omp_get_thread_num() * 2 * square);
        cpu_gemm(0, 0, seq, d, keys, 1.0f, pd, keys, v + k_offset, hidden, 0.0f, out + q_offset, hidden);
    }
}

/* bias_grad[(i*keys + j)*heads + h] += sum over b of dS(b, h)[i, j], b in order. */
static void attention_bias_backward(const tp_attention_shape *s, const float *score_grads)
{
    int64_t square = s->seq * tp_attention_keys(s);
#pragma omp parallel for schedule(static)
    for (int64_t ij = 0; ij < square; ij++)
        for (int64_t h = 0; h < s->heads; h++) {
            float sum = 0;
            for (int64_t b = 0; b < s->batch; b++) sum += score_grads[(b * s->heads + h) * square + ij];
            s->bias_grad[ij * s->heads + h] += sum;
        }
}

static void cpu_attention_backward(const tp_attention_shape *s, float *dq, float *dk, float *dv, const float *dout,
                                   const float *probs, const float *q, const float *k, const float *v, float *scratch)
{
    int64_t seq = s->seq, keys = tp_attention_keys(s), d = s->head_dim, hidden = s->heads * d;
    int64_t pairs = s->batch * s->heads, square = seq * keys;
    float *score_grads = scratch + (int64_t)omp_get_max_threads() * 2 * square; /* with bias_grad only */
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < pairs; bh++) {
        int64_t b = bh / s->heads, h = bh % s->heads, q_offset = b * seq * hidden + h * d;
        int64_t k_offset = b * keys * hidden + h * d;
        const float *p = probs + bh * square;
        float *dp = scratch + (int64_t)omp_get_thread_num() * 2 * square;
        const float *pd = dropped_probs(s, p, bh, dp + square);
        /* dV += P_dropped^T dO;  dP_dropped = dO V^T */
        if (dv) cpu_gemm(1, 0, keys, d, seq, 1.0f, pd, keys, dout + q_offset, hidden, 1.0f, dv + k_offset, hidden);
        cpu_gemm(0, 1, seq, keys, d, 1.0f, dout + q_offset, hidden, v + k_offset, hidden, 0.0f, dp, keys);
        /* Softmax backward: dS = P * (dP - sum_j dP_j P_j), with dP = dP_dropped * K for the keep
         * scales K, i.e. dS = P_dropped * dP_dropped - P * sum_j dP_dropped_j P_dropped_j: the
         * dropped probabilities stand in for the mask (without dropout they are P). */
        for (int64_t i = 0; i < seq; i++) {
            float *dp_row = dp + i * keys;
            const float *p_row = p + i * keys, *pd_row = pd + i * keys;
            float dot = tp_dot(dp_row, pd_row, keys);
            for (int64_t j = 0; j < keys; j++) dp_row[j] = pd_row[j] * dp_row[j] - p_row[j] * dot;
        }
        if (s->bias_grad) memcpy(score_grads + bh * square, dp, (size_t)square * sizeof *dp);
        if (dq) cpu_gemm(0, 0, seq, d, keys, s->scale, dp, keys, k + k_offset, hidden, 1.0f, dq + q_offset, hidden);
        if (dk) cpu_gemm(1, 0, keys, d, seq, s->scale, dp, keys, q + q_offset, hidden, 1.0f, dk + k_offset, hidden);
    }
    if (s->bias_grad) attention_bias_backward(s, score_grads);
}

static void cpu_cached_attention_forward(const tp_cached_attention_shape *s, float *out, const float *q,
                                         const float *k_cache, const float *v_cache, float *scratch)
{
    int64_t d = s->head_dim, hidden = s->heads * d, keys = s->past + s->queries, pairs = s->batch * s->heads;
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < pairs; bh++) {
        int64_t b = bh / s->heads, h = bh % s->heads;
        const float *qh = q + b * s->queries * hidden + h * d;
        const float *kh = k_cache + b * s->capacity * hidden + h * d, *vh = v_cache + b * s->capacity * hidden + h * d;
        float *p = scratch + bh * s->queries * keys;
        cpu_gemm(0, 1, s->queries, keys, d, s->scale, qh, hidden, kh, hidden, 0.0f, p, keys);
        for (int64_t i = 0; i < s->queries; i++) {
            float *row = p + i * keys;
            for (int64_t j = s->past + i + 1; j < keys; j++) row[j] += MASKED_SCORE;
            float inv = 1.0f / tp_exp_in_place(row, keys, tp_row_max(row, keys));
            for (int64_t j = 0; j < keys; j++) row[j] *= inv;
        }
        cpu_gemm(0, 0, s->queries, d, keys, 1.0f, p, keys, vh, hidden, 0.0f, out + b * s->queries * hidden + h * d,
                 hidden);
    }
}

/* ---- cross-entropy ------------------------------------------------------------ */

static void cpu_cross_entropy_forward(float *loss, int64_t *count, int64_t *correct, float *logsumexp,
                                      const float *logits, const int32_t *targets, int64_t rows, int64_t classes,
                                      int64_t ld)
{
    int64_t hits = 0;
#pragma omp parallel for reduction(+ : hits) if (rows * classes >= PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *row = logits + r * ld;
        float max;
        int64_t best = tp_row_argmax(row, classes, &max); /* the prediction */
        logsumexp[r] = max + (float)log(tp_sum_exp(row, classes, max));
        hits += targets[r] >= 0 && best == targets[r];
    }
    /* The mean in row order, so the loss does not depend on the thread count. */
    double total = 0;
    int64_t counted = 0;
    for (int64_t r = 0; r < rows; r++)
        if (targets[r] >= 0) {
            total += logsumexp[r] - logits[r * ld + targets[r]];
            counted++;
        }
    *loss = counted ? (float)(total / counted) : 0.0f;
    *count = counted;
    if (correct) *correct = hits;
}

static void cpu_cross_entropy_backward(float *dlogits, float beta, float dloss, int64_t count, const float *logits,
                                       const float *logsumexp, const int32_t *targets, int64_t rows, int64_t classes,
                                       int64_t ld, tp_column_block block)
{
    float scale = count ? dloss / (float)count : 0.0f;
    int64_t width = block.count, scored = classes - block.first;
    if (scored < 0) scored = 0;
    if (scored > width) scored = width;
#pragma omp parallel for if (rows * width >= PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        float *drow = dlogits + r * width;
        if (targets[r] < 0 || count == 0) {
            if (beta == 0.0f) memset(drow, 0, (size_t)width * sizeof *drow);
            continue;
        }
        const float *row = logits + r * ld + block.first;
        float shift = logsumexp[r];
        /* Overwriting reads no gradient: the logits' gradient is the largest buffer of an MLM step. */
        if (beta == 0.0f) {
            for (int64_t c = 0; c < scored; c++)
                drow[c] = scale * tp_vexpf_nonpositive(row[c] - shift);
            for (int64_t c = scored; c < width; c++)
                drow[c] = 0.0f;
        } else {
            for (int64_t c = 0; c < scored; c++)
                drow[c] += scale * tp_vexpf_nonpositive(row[c] - shift);
        }
        int64_t target = targets[r] - block.first;
        if (target >= 0 && target < width) drow[target] -= scale;
    }
}

/* ---- element-wise losses ------------------------------------------------------- */

static void cpu_pointwise_loss_forward(tp_pointwise_loss_kind kind, float *loss, int64_t *correct, const float *x,
                                       const float *targets, int64_t n)
{
    /* In index order: the loss does not depend on the thread count (the sizes are small: B x labels). */
    double total = 0;
    int64_t hits = 0;
    for (int64_t i = 0; i < n; i++) {
        total += tp_pointwise_loss_value(kind, x[i], targets[i]);
        hits += tp_pointwise_loss_correct(kind, x[i], targets[i]);
    }
    *loss = n ? (float)(total / (double)n) : 0.0f;
    if (correct) *correct = hits;
}

static void cpu_pointwise_loss_backward(tp_pointwise_loss_kind kind, float *dx, float dloss, const float *x,
                                        const float *targets, int64_t n)
{
    if (n == 0) return;
    float scale = dloss / (float)n;
#pragma omp parallel for if (n >= PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] += scale * tp_pointwise_loss_slope(kind, x[i], targets[i]);
}

/* ---- pooling ------------------------------------------------------------------ */

static void cpu_pool_forward(tp_pool_kind kind, float *out, int32_t *argmax, const float *x, const int32_t *valid,
                             int64_t batch, int64_t seq, int64_t cols)
{
#pragma omp parallel for if (batch * seq * cols >= PARALLEL_MIN)
    for (int64_t b = 0; b < batch; b++) {
        float *row = out + b * cols;
        int64_t count = 0;
        for (int64_t c = 0; c < cols; c++) row[c] = kind == TP_POOL_MAX ? -FLT_MAX : 0.0f;
        for (int64_t s = 0; s < seq; s++) {
            if (!valid[b * seq + s]) continue;
            const float *xr = x + (b * seq + s) * cols;
            count++;
            for (int64_t c = 0; c < cols; c++) {
                if (kind == TP_POOL_MEAN) {
                    row[c] += xr[c];
                } else if (xr[c] > row[c]) {
                    row[c] = xr[c];
                    argmax[b * cols + c] = (int32_t)(b * seq + s);
                }
            }
        }
        for (int64_t c = 0; c < cols; c++) {
            if (count == 0) {
                row[c] = 0.0f;
                if (kind == TP_POOL_MAX) argmax[b * cols + c] = -1;
            } else if (kind == TP_POOL_MEAN) {
                row[c] /= (float)count;
            }
        }
    }
}

static void cpu_pool_backward(tp_pool_kind kind, float *dx, const float *dout, const int32_t *argmax,
                              const int32_t *valid, int64_t batch, int64_t seq, int64_t cols)
{
#pragma omp parallel for if (batch * seq * cols >= PARALLEL_MIN)
    for (int64_t b = 0; b < batch; b++) {
        const float *drow = dout + b * cols;
        if (kind == TP_POOL_MAX) {
            for (int64_t c = 0; c < cols; c++)
                if (argmax[b * cols + c] >= 0) dx[(int64_t)argmax[b * cols + c] * cols + c] += drow[c];
            continue;
        }
        int64_t count = 0;
        for (int64_t s = 0; s < seq; s++) count += valid[b * seq + s] != 0;
        if (count == 0) continue;
        float scale = 1.0f / (float)count;
        for (int64_t s = 0; s < seq; s++) {
            if (!valid[b * seq + s]) continue;
            float *dxr = dx + (b * seq + s) * cols;
            for (int64_t c = 0; c < cols; c++) dxr[c] += drow[c] * scale;
        }
    }
}

/* ---- CLIP's contrastive head: row-wise L2 normalisation, exp(logit_scale) scaling ---- */

static void cpu_l2_normalize_forward(float *y, float *inv_norm, const float *x, int64_t rows, int64_t cols)
{
#pragma omp parallel for if (rows * cols >= PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        double squares = 0;
        for (int64_t c = 0; c < cols; c++) squares += (double)x[r * cols + c] * x[r * cols + c];
        float inv = (float)(1.0 / sqrt(squares)); /* a zero row gives inf / NaN, as torch's x / x.norm() */
        inv_norm[r] = inv;
        for (int64_t c = 0; c < cols; c++) y[r * cols + c] = x[r * cols + c] * inv;
    }
}

static void cpu_l2_normalize_backward(float *dx, const float *dy, const float *y, const float *inv_norm, int64_t rows,
                                      int64_t cols)
{
#pragma omp parallel for if (rows * cols >= PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        double dot = 0;
        for (int64_t c = 0; c < cols; c++) dot += (double)dy[r * cols + c] * y[r * cols + c];
        for (int64_t c = 0; c < cols; c++)
            dx[r * cols + c] += inv_norm[r] * (dy[r * cols + c] - (float)dot * y[r * cols + c]);
    }
}

static void cpu_scale_exp_forward(float *y, const float *x, const float *s, int64_t n)
{
    float scale = expf(s[0]);
    for (int64_t i = 0; i < n; i++) y[i] = scale * x[i];
}

static void cpu_scale_exp_backward(float *dx, float *ds, const float *dy, const float *y, const float *s, int64_t n)
{
    float scale = expf(s[0]);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        if (dx) dx[i] += scale * dy[i];
        sum += (double)dy[i] * y[i];
    }
    if (ds) ds[0] += (float)sum;
}

/* ---- 1-D convolution (unfold / fold) ---------------------------------------------- */

static void cpu_conv1d_unfold(const tp_conv1d_shape *s, float *cols, const float *x)
{
    int64_t out_length = tp_conv1d_out_length(s), width = s->channels * s->kernel;
#pragma omp parallel for if (s->batch * out_length * width >= PARALLEL_MIN)
    for (int64_t row = 0; row < s->batch * out_length; row++) {
        int64_t b = row / out_length, start = (row % out_length) * s->stride - s->padding;
        for (int64_t c = 0; c < s->channels; c++)
            for (int64_t j = 0; j < s->kernel; j++) {
                int64_t i = start + j;
                cols[row * width + c * s->kernel + j] =
                    i >= 0 && i < s->length ? x[(b * s->length + i) * s->channels + c] : 0.0f;
            }
    }
}

/* Per element of x, the taps j that read it from output step t = (i + padding - j) / stride. */
static void cpu_conv1d_fold(const tp_conv1d_shape *s, float *dx, const float *dcols)
{
    int64_t out_length = tp_conv1d_out_length(s), width = s->channels * s->kernel;
#pragma omp parallel for if (s->batch * s->length * width >= PARALLEL_MIN)
    for (int64_t row = 0; row < s->batch * s->length; row++) {
        int64_t b = row / s->length, i = row % s->length;
        for (int64_t c = 0; c < s->channels; c++) {
            float sum = 0.0f;
            for (int64_t j = 0; j < s->kernel; j++) {
                int64_t shifted = i + s->padding - j, t = shifted / s->stride;
                if (shifted < 0 || shifted % s->stride || t >= out_length) continue;
                sum += dcols[(b * out_length + t) * width + c * s->kernel + j];
            }
            dx[row * s->channels + c] += sum;
        }
    }
}

/* ---- linear-chain CRF ----------------------------------------------------------- */

/* Sequence b's forward recursion: log alpha at each scored position, and log Z into log_z[b]
 * (0 without a scored position). */
static void cpu_crf_sequence_forward(const tp_crf_problem *p, int64_t b, float *alpha, float *log_z)
{
    int64_t classes = p->classes, previous = -1;
    for (int64_t s = tp_crf_next(p, b, -1); s < p->seq; previous = s, s = tp_crf_next(p, b, s)) {
        const float *emissions = p->emissions + (b * p->seq + s) * p->ld;
        float *row = alpha + (b * p->seq + s) * classes;
        for (int64_t j = 0; j < classes; j++)
            row[j] = previous < 0 ? p->start[j] + emissions[j]
                                  : (float)(emissions[j] + tp_crf_into(row - (s - previous) * classes,
                                                                       p->transitions, classes, j));
    }
    log_z[b] = previous < 0 ? 0.0f : (float)tp_crf_log_z(alpha + (b * p->seq + previous) * classes, p->end, classes);
}

static void cpu_crf_forward(const tp_crf_problem *p, float *loss, int64_t *count, float *alpha, float *log_z)
{
#pragma omp parallel for if (p->batch * p->seq * p->classes * p->classes >= PARALLEL_MIN)
    for (int64_t b = 0; b < p->batch; b++) cpu_crf_sequence_forward(p, b, alpha, log_z);
    /* The mean in sequence order, so the loss does not depend on the thread count. */
    double total = 0;
    int64_t counted = 0;
    for (int64_t b = 0; b < p->batch; b++) {
        if (tp_crf_next(p, b, -1) == p->seq) continue;
        total += log_z[b] - tp_crf_gold_score(p, b);
        counted++;
    }
    *loss = counted ? (float)(total / (double)counted) : 0.0f;
    *count = counted;
}

/* Sequence b's log beta (every path from a scored position's tag to the end, the position's own
 * emission excluded), from its last scored position back. */
static void cpu_crf_sequence_beta(const tp_crf_problem *p, int64_t b, float *beta)
{
    int64_t classes = p->classes, last = tp_crf_prev(p, b, p->seq);
    for (int64_t s = last, next = -1; s >= 0; next = s, s = tp_crf_prev(p, b, s)) {
        float *row = beta + (b * p->seq + s) * classes;
        if (s == last) {
            memcpy(row, p->end, (size_t)classes * sizeof *row);
            continue;
        }
        const float *beta_next = beta + (b * p->seq + next) * classes;
        const float *emissions_next = p->emissions + (b * p->seq + next) * p->ld;
        for (int64_t i = 0; i < classes; i++)
            row[i] = (float)tp_crf_out_of(p->transitions, emissions_next, beta_next, classes, i);
    }
}

/* Sequence b's gradient terms (tp_crf_tag_gradients) at every scored position and tag. */
static void cpu_crf_sequence_gradients(const tp_crf_problem *p, int64_t b, const float *alpha, const float *beta,
                                       double log_z, float scale, float *demissions, float *own)
{
    int64_t last = tp_crf_prev(p, b, p->seq);
    for (int64_t s = tp_crf_next(p, b, -1), previous = -1; s < p->seq; previous = s, s = tp_crf_next(p, b, s))
        for (int64_t j = 0; j < p->classes; j++)
            tp_crf_tag_gradients(p, b, s, previous, last, j, alpha, beta, log_z, scale, demissions, own);
}

static void cpu_crf_backward(const tp_crf_problem *p, float dloss, int64_t count, const float *alpha,
                             const float *log_z, float *demissions, float *dtransitions, float *dstart, float *dend,
                             float *scratch)
{
    if (count == 0) return;
    int64_t classes = p->classes, own_size = classes * classes + 2 * classes;
    float scale = dloss / (float)count, *beta = scratch, *own = scratch + p->batch * p->seq * classes;
#pragma omp parallel for if (p->batch * p->seq * p->classes * p->classes >= PARALLEL_MIN)
    for (int64_t b = 0; b < p->batch; b++) {
        memset(own + b * own_size, 0, (size_t)own_size * sizeof *own);
        if (tp_crf_next(p, b, -1) == p->seq) continue;
        cpu_crf_sequence_beta(p, b, beta);
        cpu_crf_sequence_gradients(p, b, alpha, beta, log_z[b], scale, demissions, own + b * own_size);
    }
    /* The parameters' gradients summed in sequence order (deterministic). */
    float *targets[3] = {dtransitions, dstart, dend};
    int64_t offsets[3] = {0, classes * classes, classes * classes + classes};
    int64_t sizes[3] = {classes * classes, classes, classes};
    for (int t = 0; t < 3; t++)
        for (int64_t b = 0; targets[t] && b < p->batch; b++)
            for (int64_t k = 0; k < sizes[t]; k++) targets[t][k] += scale * own[b * own_size + offsets[t] + k];
}

const tp_backend tp_cpu_backend = {
    .name = "cpu",
    .linear_ce_block_bytes = 1 << 20, /* half a core's L2 here: the products' packing needs the rest */
    .alloc = cpu_alloc,
    .release = cpu_release,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .gemm = cpu_gemm,
    .fill_bias = cpu_fill_bias,
    .bias_backward = cpu_bias_backward,
    .add = cpu_add,
    .multiply = cpu_multiply,
    .accumulate = cpu_accumulate,
    .axpy = cpu_axpy,
    .activation_forward = cpu_activation_forward,
    .activation_backward = cpu_activation_backward,
    .layer_norm_forward = cpu_layer_norm_forward,
    .layer_norm_backward = cpu_layer_norm_backward,
    .gather_rows = cpu_gather_rows,
    .scatter_add_rows = cpu_scatter_add_rows,
    .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .attention_scratch = cpu_attention_scratch,
    .cached_attention_forward = cpu_cached_attention_forward,
    .cross_entropy_forward = cpu_cross_entropy_forward,
    .cross_entropy_backward = cpu_cross_entropy_backward,
    .uniform_cross_entropy_forward = tp_cpu_uniform_cross_entropy_forward,
    .uniform_cross_entropy_backward = tp_cpu_uniform_cross_entropy_backward,
    .pointwise_loss_forward = cpu_pointwise_loss_forward,
    .pointwise_loss_backward = cpu_pointwise_loss_backward,
    .pool_forward = cpu_pool_forward,
    .pool_backward = cpu_pool_backward,
    .l2_normalize_forward = cpu_l2_normalize_forward,
    .l2_normalize_backward = cpu_l2_normalize_backward,
    .scale_exp_forward = cpu_scale_exp_forward,
    .scale_exp_backward = cpu_scale_exp_backward,
    .conv1d_unfold = cpu_conv1d_unfold,
    .conv1d_fold = cpu_conv1d_fold,
    .crf_forward = cpu_crf_forward,
    .crf_backward = cpu_crf_backward,
    .adamw_step = tp_adamw_step,
    .grads_finite = tp_grads_finite,
    .grad_norm = tp_grad_global_norm,
    .clip_grad_norm = tp_clip_grad_norm,
};
