/* Every entry of the CUDA kernel table against its CPU twin (core/cpu_kernels.c), on the same
 * random inputs.  GPU outputs are poisoned with NaN first so unwritten elements show; backward
 * kernels start from a non-zero gradient (they accumulate).  Error = max |gpu - cpu| / max |cpu|
 * (non-finite counts as infinite); fp32 tolerance 1e-5, and exact equality where both sides do the
 * same float operations in the same order: memory, gathers, scatter-add (the GPU adds each
 * column's rows in the CPU's order), dropout forward (same counter-based hash, so the same mask)
 * and the integer outputs.  Without CUDA or a device: skipped. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/error.h"
#include "core/rng.h"
#include "support/check.h"
#ifdef TP_HAVE_CUDA
#include "cuda/cuda_backend.h"

#define TOLERANCE 1e-5

static const tp_backend *const cpu = &tp_cpu_backend;
static const tp_backend *gpu;
static uint64_t next_stream = 100;

/* ---- buffers: host values plus a device copy ---------------------------------------- */

static float *random_floats(int64_t n, float scale)
{
    float *values = tp_xmalloc((size_t)(n ? n : 1) * sizeof *values);
    uint64_t stream = next_stream++;
    for (int64_t i = 0; i < n; i++) values[i] = scale * tp_normal(2024, stream, (uint64_t)i);
    return values;
}

static float *host_copy(const float *values, int64_t n)
{
    float *copy = tp_xmalloc((size_t)(n ? n : 1) * sizeof *copy);
    memcpy(copy, values, (size_t)n * sizeof *copy);
    return copy;
}

static void *device_copy(const void *host, size_t bytes)
{
    void *device = gpu->alloc(bytes);
    gpu->upload(device, host, bytes);
    return device;
}

static float *device_floats(const float *host, int64_t n) { return device_copy(host, (size_t)n * sizeof(float)); }

static float *device_poisoned(int64_t n)
{
    float *nan = tp_xmalloc((size_t)(n ? n : 1) * sizeof *nan);
    for (int64_t i = 0; i < n; i++) nan[i] = NAN;
    float *device = device_floats(nan, n);
    free(nan);
    return device;
}

/* ---- comparison ------------------------------------------------------------------- */

static double error_of(const float *actual, const float *expected, int64_t n)
{
    double scale = 1e-30, worst = 0.0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(expected[i]));
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)actual[i] - expected[i]) / scale;
        if (!isfinite(actual[i]) || !(e == e)) e = INFINITY;
        worst = fmax(worst, e);
    }
    return worst;
}

/* Downloads n floats from device and compares them with the CPU's. */
static void compare(const char *kernel, const char *shape, const float *device, const float *expected, int64_t n,
                    double tolerance)
{
    float *actual = tp_xmalloc((size_t)(n ? n : 1) * sizeof *actual);
    gpu->download(actual, device, (size_t)n * sizeof *actual);
    double error = error_of(actual, expected, n);
    printf("%-34s %-28s %10.3g %s\n", kernel, shape, error, error <= tolerance ? "ok" : "FAIL");
    CHECK_MSG(error <= tolerance, "%s %s: error %g > %g", kernel, shape, error, tolerance);
    free(actual);
}

/* ---- element-wise, GEMM, bias --------------------------------------------------------- */

static void test_memory(void)
{
    enum { N = 1000 };
    float *x = random_floats(N, 1), *zeros = calloc(N, sizeof(float));
    float *dx = device_floats(x, N), *dy = device_poisoned(N);
    gpu->copy(dy, dx, N);
    compare("upload/copy/download", "1000", dy, x, N, 0.0);
    gpu->zero(dy, N);
    compare("zero", "1000", dy, zeros, N, 0.0);
    gpu->release(dx);
    gpu->release(dy);
    free(x);
    free(zeros);
}

static void test_gemm(void)
{
    const int64_t m = 67, n = 45, k = 33;
    for (int trans = 0; trans < 4; trans++) {
        int ta = trans & 1, tb = trans >> 1;
        int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
        int64_t a_count = (ta ? k : m) * lda, b_count = (tb ? n : k) * ldb, c_count = m * ldc;
        float *a = random_floats(a_count, 1), *b = random_floats(b_count, 1), *c = random_floats(c_count, 1);
        float *da = device_floats(a, a_count), *db = device_floats(b, b_count), *dc = device_floats(c, c_count);
        cpu->gemm(ta, tb, m, n, k, 0.7f, a, lda, b, ldb, 0.3f, c, ldc);
        gpu->gemm(ta, tb, m, n, k, 0.7f, da, lda, db, ldb, 0.3f, dc, ldc);
        char shape[64];
        snprintf(shape, sizeof shape, "%s%s 67x45x33", ta ? "T" : "N", tb ? "T" : "N");
        compare("gemm", shape, dc, c, c_count, TOLERANCE);
        gpu->release(da), gpu->release(db), gpu->release(dc);
        free(a), free(b), free(c);
    }
}

static void test_elementwise(void)
{
    enum { ROWS = 300, COLS = 77, N = ROWS * COLS };
    float *a = random_floats(N, 1), *b = random_floats(N, 1), *bias = random_floats(COLS, 1);
    float *da = device_floats(a, N), *db = device_floats(b, N), *dbias = device_floats(bias, COLS);
    float *out = host_copy(a, N), *dout = device_poisoned(N), *filled = host_copy(a, N), *dfilled = device_poisoned(N);

    cpu->add(out, a, b, N);
    gpu->add(dout, da, db, N);
    compare("add", "23100", dout, out, N, TOLERANCE);
    cpu->accumulate(out, b, N);
    gpu->accumulate(dout, db, N);
    compare("accumulate", "23100", dout, out, N, TOLERANCE);
    cpu->axpy(out, -0.37f, a, N);
    gpu->axpy(dout, -0.37f, da, N);
    compare("axpy", "23100", dout, out, N, TOLERANCE);
    cpu->fill_bias(filled, bias, ROWS, COLS);
    gpu->fill_bias(dfilled, dbias, ROWS, COLS);
    compare("fill_bias", "300x77", dfilled, filled, N, TOLERANCE);
    cpu->bias_backward(bias, a, ROWS, COLS);
    gpu->bias_backward(dbias, da, ROWS, COLS);
    compare("bias_backward (+=)", "300x77", dbias, bias, COLS, TOLERANCE);

    gpu->release(da), gpu->release(db), gpu->release(dbias), gpu->release(dout), gpu->release(dfilled);
    free(a), free(b), free(bias), free(out), free(filled);
}

static void test_activations(void)
{
    enum { N = 10007 };
    static const char *const names[TP_ACT_COUNT] = {"gelu", "gelu_fast", "relu", "silu", "tanh", "quick_gelu"};
    float *x = random_floats(N, 3), *dy = random_floats(N, 1), *dx = random_floats(N, 1);
    float *d_x = device_floats(x, N), *d_dy = device_floats(dy, N);
    for (int kind = 0; kind < TP_ACT_COUNT; kind++) {
        float *y = tp_xmalloc(N * sizeof *y), *d_y = device_poisoned(N);
        float *grad = host_copy(dx, N), *d_grad = device_floats(dx, N);
        cpu->activation_forward((tp_activation)kind, y, x, N);
        gpu->activation_forward((tp_activation)kind, d_y, d_x, N);
        char name[64];
        snprintf(name, sizeof name, "activation_forward %s", names[kind]);
        compare(name, "10007", d_y, y, N, TOLERANCE);
        /* Both backward kernels get the CPU's y, so only the slope is compared. */
        gpu->upload(d_y, y, N * sizeof *y);
        cpu->activation_backward((tp_activation)kind, grad, dy, x, y, N);
        gpu->activation_backward((tp_activation)kind, d_grad, d_dy, d_x, d_y, N);
        snprintf(name, sizeof name, "activation_backward %s (+=)", names[kind]);
        compare(name, "10007", d_grad, grad, N, TOLERANCE);
        gpu->release(d_y), gpu->release(d_grad);
        free(y), free(grad);
    }
    gpu->release(d_x), gpu->release(d_dy);
    free(x), free(dy), free(dx);
}

/* ---- layer norm --------------------------------------------------------------------- */

static void test_layer_norm(void)
{
    enum { ROWS = 37, COLS = 300, N = ROWS * COLS };
    static const char *const names[2] = {"unbiased_std", "torch"};
    float *x = random_floats(N, 2), *gamma = random_floats(COLS, 1), *beta = random_floats(COLS, 1);
    float *dy = random_floats(N, 1), *dx0 = random_floats(N, 1), *dg0 = random_floats(COLS, 1);
    float *db0 = random_floats(COLS, 1);
    for (int i = 0; i < N; i++) x[i] += 0.5f; /* a non-zero mean */
    float *d_x = device_floats(x, N), *d_gamma = device_floats(gamma, COLS), *d_beta = device_floats(beta, COLS);
    float *d_dy = device_floats(dy, N);
    for (int kind = 0; kind < 2; kind++) {
        float eps = kind == TP_NORM_TORCH ? 1e-5f : 1e-6f;
        float *y = tp_xmalloc(N * sizeof *y), *stats = tp_xmalloc(2 * ROWS * sizeof *stats);
        float *d_y = device_poisoned(N), *d_stats = device_poisoned(2 * ROWS);
        cpu->layer_norm_forward((tp_norm_kind)kind, y, stats, stats + ROWS, x, gamma, beta, ROWS, COLS, eps);
        gpu->layer_norm_forward((tp_norm_kind)kind, d_y, d_stats, d_stats + ROWS, d_x, d_gamma, d_beta, ROWS, COLS,
                                eps);
        char name[64];
        snprintf(name, sizeof name, "layer_norm_forward %s", names[kind]);
        compare(name, "37x300", d_y, y, N, TOLERANCE);
        snprintf(name, sizeof name, "layer_norm_forward %s stats", names[kind]);
        compare(name, "37x2", d_stats, stats, 2 * ROWS, TOLERANCE);

        gpu->upload(d_stats, stats, 2 * ROWS * sizeof *stats); /* backward from the same statistics */
        float *dx = host_copy(dx0, N), *dg = host_copy(dg0, COLS), *db = host_copy(db0, COLS);
        float *d_dx = device_floats(dx0, N), *d_dg = device_floats(dg0, COLS), *d_db = device_floats(db0, COLS);
        cpu->layer_norm_backward((tp_norm_kind)kind, dx, dg, db, dy, x, stats, stats + ROWS, gamma, ROWS, COLS, eps);
        gpu->layer_norm_backward((tp_norm_kind)kind, d_dx, d_dg, d_db, d_dy, d_x, d_stats, d_stats + ROWS, d_gamma,
                                 ROWS, COLS, eps);
        snprintf(name, sizeof name, "layer_norm_backward %s dx (+=)", names[kind]);
        compare(name, "37x300", d_dx, dx, N, TOLERANCE);
        snprintf(name, sizeof name, "layer_norm_backward %s dgamma", names[kind]);
        compare(name, "300", d_dg, dg, COLS, TOLERANCE);
        snprintf(name, sizeof name, "layer_norm_backward %s dbeta", names[kind]);
        compare(name, "300", d_db, db, COLS, TOLERANCE);
        /* NULL gradients: only dbeta wanted. */
        cpu->layer_norm_backward((tp_norm_kind)kind, NULL, NULL, db, dy, x, stats, stats + ROWS, gamma, ROWS, COLS,
                                 eps);
        gpu->layer_norm_backward((tp_norm_kind)kind, NULL, NULL, d_db, d_dy, d_x, d_stats, d_stats + ROWS, d_gamma,
                                 ROWS, COLS, eps);
        snprintf(name, sizeof name, "layer_norm_backward %s dbeta only", names[kind]);
        compare(name, "300", d_db, db, COLS, TOLERANCE);
        gpu->release(d_y), gpu->release(d_stats), gpu->release(d_dx), gpu->release(d_dg), gpu->release(d_db);
        free(y), free(stats), free(dx), free(dg), free(db);
    }
    gpu->release(d_x), gpu->release(d_gamma), gpu->release(d_beta), gpu->release(d_dy);
    free(x), free(gamma), free(beta), free(dy), free(dx0), free(dg0), free(db0);
}

/* ---- gathers and dropout -------------------------------------------------------------- */

/* n rows of ids drawn from distinct_ids values, gathered from and scattered into a table_rows x cols
 * table.  Few distinct ids make long runs of one id (a segment embedding's shape). */
static void gather_case(int64_t table_rows, int64_t cols, int64_t n, int64_t distinct_ids)
{
    int32_t *ids = tp_xmalloc((size_t)n * sizeof *ids);
    for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)(tp_hash3(7, 9, (uint64_t)i) % distinct_ids); /* repeats */
    float *table = random_floats(table_rows * cols, 1), *dout = random_floats(n * cols, 1);
    float *out = tp_xmalloc((size_t)(n * cols) * sizeof *out);
    float *d_table = device_floats(table, table_rows * cols), *d_dout = device_floats(dout, n * cols);
    float *d_out = device_poisoned(n * cols);
    int32_t *d_ids = device_copy(ids, (size_t)n * sizeof *ids);
    char shape[64];
    snprintf(shape, sizeof shape, "%lld (%lld ids) of %lldx%lld", (long long)n, (long long)distinct_ids,
             (long long)table_rows, (long long)cols);
    cpu->gather_rows(out, table, ids, n, cols);
    gpu->gather_rows(d_out, d_table, d_ids, n, cols);
    compare("gather_rows", shape, d_out, out, n * cols, 0.0);
    cpu->scatter_add_rows(table, dout, ids, n, cols);
    gpu->scatter_add_rows(d_table, d_dout, d_ids, n, cols);
    compare("scatter_add_rows (+=, repeated ids)", shape, d_table, table, table_rows * cols, 0.0);
    gpu->release(d_table), gpu->release(d_dout), gpu->release(d_out), gpu->release(d_ids);
    free(ids), free(table), free(dout), free(out);
}

static void test_gathers(void)
{
    gather_case(50, 33, 200, 50);
    gather_case(3, 300, 2000, 3);
}

static void test_pool(void)
{
    enum { BATCH = 5, SEQ = 37, COLS = 67 };
    int32_t valid[BATCH * SEQ];
    for (int i = 0; i < BATCH * SEQ; i++) valid[i] = (i / SEQ == 4) ? 0 : (i % SEQ) < 11 + 5 * (i / SEQ); /* row 4: empty */
    float *x = random_floats(BATCH * SEQ * COLS, 1), *dout = random_floats(BATCH * COLS, 1);
    float *dx = random_floats(BATCH * SEQ * COLS, 1), *out = tp_xmalloc(BATCH * COLS * sizeof *out);
    int32_t argmax[BATCH * COLS];
    float *d_x = device_floats(x, BATCH * SEQ * COLS), *d_dout = device_floats(dout, BATCH * COLS);
    int32_t *d_valid = device_copy(valid, sizeof valid), *d_argmax = gpu->alloc(sizeof argmax);
    static const char *const names[] = {"pool_forward mean", "pool_forward max"};
    static const char *const backward_names[] = {"pool_backward mean (+=)", "pool_backward max (+=)"};
    for (int kind = TP_POOL_MEAN; kind <= TP_POOL_MAX; kind++) {
        float *d_out = device_poisoned(BATCH * COLS), *d_dx = device_floats(dx, BATCH * SEQ * COLS);
        float *cpu_dx = tp_xmalloc(BATCH * SEQ * COLS * sizeof *cpu_dx);
        memcpy(cpu_dx, dx, BATCH * SEQ * COLS * sizeof *cpu_dx);
        cpu->pool_forward((tp_pool_kind)kind, out, argmax, x, valid, BATCH, SEQ, COLS);
        gpu->pool_forward((tp_pool_kind)kind, d_out, d_argmax, d_x, d_valid, BATCH, SEQ, COLS);
        compare(names[kind], "5x37x67, an empty row", d_out, out, BATCH * COLS, TOLERANCE);
        cpu->pool_backward((tp_pool_kind)kind, cpu_dx, dout, argmax, valid, BATCH, SEQ, COLS);
        gpu->pool_backward((tp_pool_kind)kind, d_dx, d_dout, d_argmax, d_valid, BATCH, SEQ, COLS);
        compare(backward_names[kind], "5x37x67, an empty row", d_dx, cpu_dx, BATCH * SEQ * COLS, TOLERANCE);
        gpu->release(d_out), gpu->release(d_dx);
        free(cpu_dx);
    }
    gpu->release(d_x), gpu->release(d_dout), gpu->release(d_valid), gpu->release(d_argmax);
    free(x), free(dout), free(dx), free(out);
}

/* Two strides and paddings, a kernel wider than the padding and odd lengths (unfold's zero edges). */
static void conv1d_case(tp_conv1d_shape shape, const char *what)
{
    int64_t out_length = tp_conv1d_out_length(&shape), width = shape.channels * shape.kernel;
    int64_t x_size = shape.batch * shape.length * shape.channels, cols_size = shape.batch * out_length * width;
    float *x = random_floats(x_size, 1), *dcols = random_floats(cols_size, 1), *dx = random_floats(x_size, 1);
    float *cols = tp_xmalloc((size_t)cols_size * sizeof *cols);
    float *d_x = device_floats(x, x_size), *d_dcols = device_floats(dcols, cols_size), *d_dx = device_floats(dx, x_size);
    float *d_cols = device_poisoned(cols_size);
    cpu->conv1d_unfold(&shape, cols, x);
    gpu->conv1d_unfold(&shape, d_cols, d_x);
    compare("conv1d_unfold", what, d_cols, cols, cols_size, 0.0);
    cpu->conv1d_fold(&shape, dx, dcols);
    gpu->conv1d_fold(&shape, d_dx, d_dcols);
    compare("conv1d_fold (+=)", what, d_dx, dx, x_size, TOLERANCE);
    gpu->release(d_x), gpu->release(d_dcols), gpu->release(d_dx), gpu->release(d_cols);
    free(x), free(dcols), free(dx), free(cols);
}

static void test_conv1d(void)
{
    conv1d_case((tp_conv1d_shape){3, 101, 80, 5, 2, 2}, "3x101x80 k5 s2 p2");
    conv1d_case((tp_conv1d_shape){2, 17, 7, 3, 1, 0}, "2x17x7 k3 s1 p0");
}

/* CLIP's head: rows longer than a block (300 > 256 threads) and short ones; exp(s) with s = log(1 / 0.07). */
static void test_clip_head(void)
{
    enum { ROWS = 7, COLS = 300, N = ROWS * COLS };
    float *x = random_floats(N, 1), *dy = random_floats(N, 1), *dx = random_floats(N, 1), s = 2.6592600f, ds = 0.25f;
    float *y = tp_xmalloc(N * sizeof *y), inv_norm[ROWS];
    float *d_x = device_floats(x, N), *d_dy = device_floats(dy, N), *d_dx = device_floats(dx, N);
    float *d_y = device_poisoned(N), *d_inv = device_poisoned(ROWS), *d_s = device_floats(&s, 1);
    float *d_ds = device_floats(&ds, 1);
    cpu->l2_normalize_forward(y, inv_norm, x, ROWS, COLS);
    gpu->l2_normalize_forward(d_y, d_inv, d_x, ROWS, COLS);
    compare("l2_normalize_forward", "7x300", d_y, y, N, TOLERANCE);
    compare("l2_normalize_forward inv_norm", "7x300", d_inv, inv_norm, ROWS, TOLERANCE);
    cpu->l2_normalize_backward(dx, dy, y, inv_norm, ROWS, COLS);
    gpu->l2_normalize_backward(d_dx, d_dy, d_y, d_inv, ROWS, COLS);
    compare("l2_normalize_backward (+=)", "7x300", d_dx, dx, N, TOLERANCE);
    cpu->scale_exp_forward(y, x, &s, N);
    gpu->scale_exp_forward(d_y, d_x, d_s, N);
    compare("scale_exp_forward", "2100", d_y, y, N, TOLERANCE);
    cpu->scale_exp_backward(dx, &ds, dy, y, &s, N);
    gpu->scale_exp_backward(d_dx, d_ds, d_dy, d_y, d_s, N);
    compare("scale_exp_backward dx (+=)", "2100", d_dx, dx, N, TOLERANCE);
    compare("scale_exp_backward ds (+=)", "2100", d_ds, &ds, 1, TOLERANCE);
    gpu->release(d_x), gpu->release(d_dy), gpu->release(d_dx), gpu->release(d_y), gpu->release(d_inv);
    gpu->release(d_s), gpu->release(d_ds);
    free(x), free(dy), free(dx), free(y);
}

static void test_dropout(void)
{
    enum { N = 100003 };
    const float p = 0.1f;
    const uint64_t seed = 77, stream = 1234567;
    float *x = random_floats(N, 1), *dx = random_floats(N, 1), *y = tp_xmalloc(N * sizeof *y);
    float *d_x = device_floats(x, N), *d_dx = device_floats(dx, N), *d_y = device_poisoned(N);
    cpu->dropout_forward(y, x, N, p, seed, stream);
    gpu->dropout_forward(d_y, d_x, N, p, seed, stream);
    compare("dropout_forward (mask exact)", "100003 p=0.1", d_y, y, N, 0.0);
    cpu->dropout_backward(dx, x, N, p, seed, stream);
    gpu->dropout_backward(d_dx, d_x, N, p, seed, stream);
    /* dx += dy * scale may be one fused multiply-add on one side only: compared to TOLERANCE. */
    compare("dropout_backward (+=)", "100003 p=0.1", d_dx, dx, N, TOLERANCE);
    gpu->release(d_x), gpu->release(d_dx), gpu->release(d_y);
    free(x), free(dx), free(y);
}

/* ---- attention ---------------------------------------------------------------------- */

static double precision_tolerance(tp_precision precision);

/* precision: that of the GPU's products (set by the caller); the tolerance follows it. */
static void attention_case_at(tp_precision precision, tp_mask_kind mask, int with_key_valid, float dropout,
                              int with_dq)
{
    double tolerance = precision == TP_PRECISION_FP32 ? TOLERANCE : precision_tolerance(precision);
    enum { BATCH = 2, SEQ = 19, HEADS = 3, DIM = 8, HIDDEN = HEADS * DIM, N = BATCH * SEQ * HIDDEN };
    enum { PROBS = BATCH * HEADS * SEQ * SEQ };
    int32_t key_valid[BATCH * SEQ];
    for (int i = 0; i < BATCH * SEQ; i++) key_valid[i] = i % SEQ < (i < SEQ ? SEQ : SEQ - 5); /* 5 padding keys */
    for (int i = 0; mask == TP_MASK_PREFIX && i < BATCH * SEQ; i++) key_valid[i] *= 1 + (i % SEQ >= 7); /* segments */
    int32_t *d_key_valid = device_copy(key_valid, sizeof key_valid);
    tp_attention_shape shape = {.batch = BATCH, .seq = SEQ, .heads = HEADS, .head_dim = DIM,
                                .scale = 1.0f / sqrtf((float)DIM), .mask = mask,
                                .key_valid = with_key_valid ? key_valid : NULL, .dropout = dropout,
                                .dropout_seed = 5, .dropout_stream = 99};
    tp_attention_shape d_shape = shape;
    d_shape.key_valid = with_key_valid ? d_key_valid : NULL;

    float *q = random_floats(N, 1), *k = random_floats(N, 1), *v = random_floats(N, 1), *dout = random_floats(N, 1);
    float *dq0 = random_floats(N, 1), *dk0 = random_floats(N, 1), *dv0 = random_floats(N, 1);
    float *d_q = device_floats(q, N), *d_k = device_floats(k, N), *d_v = device_floats(v, N);
    float *d_dout = device_floats(dout, N);
    float *out = tp_xmalloc(N * sizeof *out), *probs = tp_xmalloc(PROBS * sizeof *probs);
    float *d_out = device_poisoned(N), *d_probs = device_poisoned(PROBS);
    float *scratch = tp_xmalloc((size_t)cpu->attention_scratch(&shape) * sizeof *scratch);
    float *d_scratch = device_poisoned(gpu->attention_scratch(&d_shape));

    char shape_name[64];
    snprintf(shape_name, sizeof shape_name, "2x19 h3 d8 %s%s p=%.1f%s%s", mask == TP_MASK_CAUSAL ? "causal" : mask == TP_MASK_PREFIX ? "prefix" : "full",
             with_key_valid ? "+pad" : "", dropout, precision == TP_PRECISION_FP32 ? "" : " ",
             precision == TP_PRECISION_FP32 ? "" : tp_precision_name(precision));
    cpu->attention_forward(&shape, out, probs, q, k, v, scratch);
    gpu->attention_forward(&d_shape, d_out, d_probs, d_q, d_k, d_v, d_scratch);
    compare("attention_forward out", shape_name, d_out, out, N, tolerance);
    compare("attention_forward probs", shape_name, d_probs, probs, PROBS, tolerance);

    gpu->upload(d_probs, probs, PROBS * sizeof *probs); /* backward from the same probabilities */
    float *dq = host_copy(dq0, N), *dk = host_copy(dk0, N), *dv = host_copy(dv0, N);
    float *d_dq = device_floats(dq0, N), *d_dk = device_floats(dk0, N), *d_dv = device_floats(dv0, N);
    cpu->attention_backward(&shape, with_dq ? dq : NULL, dk, dv, dout, probs, q, k, v, scratch);
    gpu->attention_backward(&d_shape, with_dq ? d_dq : NULL, d_dk, d_dv, d_dout, d_probs, d_q, d_k, d_v, d_scratch);
    compare(with_dq ? "attention_backward dq (+=)" : "attention_backward dq=NULL", shape_name, d_dq, dq, N,
            tolerance);
    compare("attention_backward dk (+=)", shape_name, d_dk, dk, N, tolerance);
    compare("attention_backward dv (+=)", shape_name, d_dv, dv, N, tolerance);

    float *device_buffers[] = {d_q, d_k, d_v, d_dout, d_out, d_probs, d_scratch, d_dq, d_dk, d_dv};
    for (size_t i = 0; i < sizeof device_buffers / sizeof *device_buffers; i++) gpu->release(device_buffers[i]);
    gpu->release(d_key_valid);
    float *host_buffers[] = {q, k, v, dout, dq0, dk0, dv0, out, probs, scratch, dq, dk, dv};
    for (size_t i = 0; i < sizeof host_buffers / sizeof *host_buffers; i++) free(host_buffers[i]);
}

static void attention_case(tp_mask_kind mask, int with_key_valid, float dropout, int with_dq)
{
    attention_case_at(TP_PRECISION_FP32, mask, with_key_valid, dropout, with_dq);
}

static void test_attention(void)
{
    attention_case(TP_MASK_FULLY_VISIBLE, 1, 0.0f, 1);
    attention_case(TP_MASK_FULLY_VISIBLE, 0, 0.0f, 1);
    attention_case(TP_MASK_CAUSAL, 0, 0.0f, 1);
    attention_case(TP_MASK_FULLY_VISIBLE, 1, 0.1f, 1);
    attention_case(TP_MASK_CAUSAL, 0, 0.1f, 0);
    attention_case(TP_MASK_PREFIX, 1, 0.0f, 1);
}

/* ---- reduced-precision products -------------------------------------------------------- */

/* Tolerance by rule: the 1e-2 for bf16 (7 stored mantissa bits), scaled by 2^-3 for
 * tf32's 10. */
/* Decoding against a key/value cache: 4 new queries after 13 cached positions (the later keys
 * masked), and one query, as tp-generate runs it. */
static void cached_attention_case(int64_t queries, int64_t past)
{
    enum { BATCH = 2, CAPACITY = 24, HEADS = 3, DIM = 8, HIDDEN = HEADS * DIM, CACHE = BATCH * CAPACITY * HIDDEN };
    tp_cached_attention_shape shape = {.batch = BATCH, .queries = queries, .past = past, .capacity = CAPACITY,
                                       .heads = HEADS, .head_dim = DIM, .scale = 1.0f / sqrtf((float)DIM)};
    int64_t n = BATCH * queries * HIDDEN, scratch_count = tp_cached_attention_scratch(&shape);
    float *q = random_floats(n, 1), *k = random_floats(CACHE, 1), *v = random_floats(CACHE, 1);
    float *out = tp_xmalloc((size_t)n * sizeof *out), *scratch = tp_xmalloc((size_t)scratch_count * sizeof *scratch);
    float *d_q = device_floats(q, n), *d_k = device_floats(k, CACHE), *d_v = device_floats(v, CACHE);
    float *d_out = device_poisoned(n), *d_scratch = device_poisoned(scratch_count);
    char name[64];
    snprintf(name, sizeof name, "2 x %lld after %lld, cap 24 h3 d8", (long long)queries, (long long)past);
    cpu->cached_attention_forward(&shape, out, q, k, v, scratch);
    gpu->cached_attention_forward(&shape, d_out, d_q, d_k, d_v, d_scratch);
    compare("cached_attention_forward", name, d_out, out, n, TOLERANCE);
    gpu->release(d_q), gpu->release(d_k), gpu->release(d_v), gpu->release(d_out), gpu->release(d_scratch);
    free(q), free(k), free(v), free(out), free(scratch);
}

static void test_cached_attention(void)
{
    cached_attention_case(4, 13);
    cached_attention_case(1, 20);
}

/* ---- encoder-decoder kernels: cross-attention with a bias, RMS norm, multiply --------- */

/* T5's cross-attention shape: 7 queries over 11 keys (3 of batch 1's padding), scale 1, a
 * [7*11, heads] bias whose gradient is the batch sum of dS. */
static void test_cross_attention_with_bias(void)
{
    enum { BATCH = 2, SEQ = 7, KEYS = 11, HEADS = 3, DIM = 8, HIDDEN = HEADS * DIM };
    enum { NQ = BATCH * SEQ * HIDDEN, NK = BATCH * KEYS * HIDDEN, PROBS = BATCH * HEADS * SEQ * KEYS };
    enum { BIAS = SEQ * KEYS * HEADS };
    int32_t key_valid[BATCH * KEYS];
    for (int i = 0; i < BATCH * KEYS; i++) key_valid[i] = i < KEYS || i % KEYS < KEYS - 3;
    int32_t *d_key_valid = device_copy(key_valid, sizeof key_valid);
    float *q = random_floats(NQ, 1), *k = random_floats(NK, 1), *v = random_floats(NK, 1), *bias = random_floats(BIAS, 1);
    float *dout = random_floats(NQ, 1), *dbias0 = random_floats(BIAS, 1);
    float *d_q = device_floats(q, NQ), *d_k = device_floats(k, NK), *d_v = device_floats(v, NK);
    float *d_bias = device_floats(bias, BIAS), *d_dout = device_floats(dout, NQ), *d_dbias = device_floats(dbias0, BIAS);
    float *dbias = host_copy(dbias0, BIAS);
    tp_attention_shape shape = {.batch = BATCH, .seq = SEQ, .heads = HEADS, .head_dim = DIM, .scale = 1.0f,
                                .mask = TP_MASK_FULLY_VISIBLE, .key_valid = key_valid, .dropout = 0.1f,
                                .dropout_seed = 5, .dropout_stream = 98, .kv_seq = KEYS, .bias = bias,
                                .bias_grad = dbias};
    tp_attention_shape d_shape = shape;
    d_shape.key_valid = d_key_valid, d_shape.bias = d_bias, d_shape.bias_grad = d_dbias;
    float *out = tp_xmalloc(NQ * sizeof *out), *probs = tp_xmalloc(PROBS * sizeof *probs);
    float *dq = tp_xcalloc(NQ, sizeof *dq), *dk = tp_xcalloc(NK, sizeof *dk), *dv = tp_xcalloc(NK, sizeof *dv);
    float *d_out = device_poisoned(NQ), *d_probs = device_poisoned(PROBS);
    float *d_dq = device_floats(dq, NQ), *d_dk = device_floats(dk, NK), *d_dv = device_floats(dv, NK);
    float *scratch = tp_xmalloc((size_t)cpu->attention_scratch(&shape) * sizeof *scratch);
    float *d_scratch = device_poisoned(gpu->attention_scratch(&d_shape));
    const char *name = "2x7 over 11 keys h3 d8 +pad +bias p=0.1";
    cpu->attention_forward(&shape, out, probs, q, k, v, scratch);
    gpu->attention_forward(&d_shape, d_out, d_probs, d_q, d_k, d_v, d_scratch);
    compare("attention_forward out", name, d_out, out, NQ, TOLERANCE);
    compare("attention_forward probs", name, d_probs, probs, PROBS, TOLERANCE);
    gpu->upload(d_probs, probs, PROBS * sizeof *probs);
    cpu->attention_backward(&shape, dq, dk, dv, dout, probs, q, k, v, scratch);
    gpu->attention_backward(&d_shape, d_dq, d_dk, d_dv, d_dout, d_probs, d_q, d_k, d_v, d_scratch);
    compare("attention_backward dq", name, d_dq, dq, NQ, TOLERANCE);
    compare("attention_backward dk", name, d_dk, dk, NK, TOLERANCE);
    compare("attention_backward dv", name, d_dv, dv, NK, TOLERANCE);
    compare("attention_backward bias_grad (+=)", name, d_dbias, dbias, BIAS, TOLERANCE);
    float *device_buffers[] = {d_q, d_k, d_v, d_bias, d_dout, d_dbias, d_out, d_probs, d_dq, d_dk, d_dv, d_scratch};
    for (size_t i = 0; i < sizeof device_buffers / sizeof *device_buffers; i++) gpu->release(device_buffers[i]);
    gpu->release(d_key_valid);
    float *host_buffers[] = {q, k, v, bias, dout, dbias0, dbias, out, probs, dq, dk, dv, scratch};
    for (size_t i = 0; i < sizeof host_buffers / sizeof *host_buffers; i++) free(host_buffers[i]);
}

static void test_rms_norm_and_multiply(void)
{
    enum { ROWS = 37, COLS = 300, N = ROWS * COLS };
    float *x = random_floats(N, 2), *gamma = random_floats(COLS, 1), *dy = random_floats(N, 1);
    float *dx = random_floats(N, 1), *dg = random_floats(COLS, 1);
    float *d_x = device_floats(x, N), *d_gamma = device_floats(gamma, COLS), *d_dy = device_floats(dy, N);
    float *d_dx = device_floats(dx, N), *d_dg = device_floats(dg, COLS);
    float *y = tp_xmalloc(N * sizeof *y), *stats = tp_xmalloc(2 * ROWS * sizeof *stats);
    float *d_y = device_poisoned(N), *d_stats = device_poisoned(2 * ROWS);
    cpu->layer_norm_forward(TP_NORM_RMS, y, stats, stats + ROWS, x, gamma, NULL, ROWS, COLS, 1e-6f);
    gpu->layer_norm_forward(TP_NORM_RMS, d_y, d_stats, d_stats + ROWS, d_x, d_gamma, NULL, ROWS, COLS, 1e-6f);
    compare("layer_norm_forward rms (no beta)", "37x300", d_y, y, N, TOLERANCE);
    compare("layer_norm_forward rms stats", "37x2", d_stats, stats, 2 * ROWS, TOLERANCE);
    gpu->upload(d_stats, stats, 2 * ROWS * sizeof *stats);
    cpu->layer_norm_backward(TP_NORM_RMS, dx, dg, NULL, dy, x, stats, stats + ROWS, gamma, ROWS, COLS, 1e-6f);
    gpu->layer_norm_backward(TP_NORM_RMS, d_dx, d_dg, NULL, d_dy, d_x, d_stats, d_stats + ROWS, d_gamma, ROWS, COLS,
                             1e-6f);
    compare("layer_norm_backward rms dx (+=)", "37x300", d_dx, dx, N, TOLERANCE);
    compare("layer_norm_backward rms dgamma (+=)", "300", d_dg, dg, COLS, TOLERANCE);
    cpu->multiply(y, x, dy, N, 0);
    gpu->multiply(d_y, d_x, d_dy, N, 0);
    compare("multiply", "11100", d_y, y, N, TOLERANCE);
    cpu->multiply(y, x, dy, N, 1);
    gpu->multiply(d_y, d_x, d_dy, N, 1);
    compare("multiply (+=)", "11100", d_y, y, N, TOLERANCE);
    float *device_buffers[] = {d_x, d_gamma, d_dy, d_dx, d_dg, d_y, d_stats};
    for (size_t i = 0; i < sizeof device_buffers / sizeof *device_buffers; i++) gpu->release(device_buffers[i]);
    float *host_buffers[] = {x, gamma, dy, dx, dg, y, stats};
    for (size_t i = 0; i < sizeof host_buffers / sizeof *host_buffers; i++) free(host_buffers[i]);
}

static double precision_tolerance(tp_precision precision) { return precision == TP_PRECISION_BF16 ? 1e-2 : 1.25e-3; }

/* x rounded to the nearest bf16 (ties to even), as __float2bfloat16_rn does; finite x only. */
static float bf16_rounded(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* tf32 / bf16 products against the CPU's fp32 ones (the precision's tolerance).  bf16 also
 * against the CPU's product of the bf16-rounded inputs, at the fp32 tolerance: that shows the
 * operands really were rounded to bf16, and nothing else changed. */
static void test_reduced_precision(tp_precision precision)
{
    const int64_t m = 256, n = 192, k = 320;
    float *a = random_floats(m * k, 1), *b = random_floats(k * n, 1), *c = random_floats(m * n, 1);
    float *da = device_floats(a, m * k), *db = device_floats(b, k * n), *dc = device_poisoned(m * n);
    cpu->gemm(0, 1, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
    tp_cuda_set_precision(precision);
    gpu->gemm(0, 1, m, n, k, 1.0f, da, k, db, k, 0.0f, dc, n);
    char name[64];
    snprintf(name, sizeof name, "gemm %s", tp_precision_name(precision));
    compare(name, "NT 256x192x320", dc, c, m * n, precision_tolerance(precision));
    if (precision == TP_PRECISION_BF16) {
        for (int64_t i = 0; i < m * k; i++) a[i] = bf16_rounded(a[i]);
        for (int64_t i = 0; i < k * n; i++) b[i] = bf16_rounded(b[i]);
        cpu->gemm(0, 1, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        compare("gemm bf16 vs cpu on bf16 inputs", "NT 256x192x320", dc, c, m * n, TOLERANCE);
        /* A starting one float into its buffer: not 16-byte aligned, converted one element a thread. */
        cpu->gemm(0, 1, m - 1, n, k, 1.0f, a + 1, k, b, k, 0.0f, c, n);
        gpu->gemm(0, 1, m - 1, n, k, 1.0f, da + 1, k, db, k, 0.0f, dc, n);
        compare("gemm bf16 vs cpu, unaligned A", "NT 255x192x320", dc, c, (m - 1) * n, TOLERANCE);
    }
    attention_case_at(precision, TP_MASK_FULLY_VISIBLE, 1, 0.1f, 1);
    tp_cuda_set_precision(TP_PRECISION_FP32);
    gpu->release(da), gpu->release(db), gpu->release(dc);
    free(a), free(b), free(c);
}

/* ---- cross-entropy -------------------------------------------------------------------- */

static void test_cross_entropy(void)
{
    enum { ROWS = 50, CLASSES = 37, LD = 40, N = ROWS * LD };
    int32_t targets[ROWS];
    for (int r = 0; r < ROWS; r++) targets[r] = r % 7 == 3 ? -1 : (int32_t)(tp_hash3(3, 4, (uint64_t)r) % CLASSES);
    float *logits = random_floats(N, 3), *dlogits = random_floats(N, 1);
    for (int r = 0; r < ROWS; r += 5) logits[r * LD + targets[r] * (targets[r] >= 0)] += 10.0f; /* some hits */
    float *d_logits = device_floats(logits, N), *d_dlogits = device_floats(dlogits, N);
    int32_t *d_targets = device_copy(targets, sizeof targets);
    float loss, lse[ROWS], *d_loss = device_poisoned(1), *d_lse = device_poisoned(ROWS);
    int64_t count, correct, gpu_count = -1, gpu_correct = -1;
    cpu->cross_entropy_forward(&loss, &count, &correct, lse, logits, targets, ROWS, CLASSES, LD);
    gpu->cross_entropy_forward(d_loss, &gpu_count, &gpu_correct, d_lse, d_logits, d_targets, ROWS, CLASSES, LD);
    compare("cross_entropy_forward loss", "50x37 ld 40", d_loss, &loss, 1, TOLERANCE);
    compare("cross_entropy_forward logsumexp", "50x37 ld 40", d_lse, lse, ROWS, TOLERANCE);
    printf("%-34s %-28s count %lld/%lld correct %lld/%lld\n", "cross_entropy_forward counts", "50x37 ld 40",
           (long long)gpu_count, (long long)count, (long long)gpu_correct, (long long)correct);
    CHECK(gpu_count == count);
    CHECK(gpu_correct == correct);
    gpu->upload(d_lse, lse, sizeof lse);
    const tp_column_block all = {0, LD};
    cpu->cross_entropy_backward(dlogits, 1.0f, 0.8f, count, logits, lse, targets, ROWS, CLASSES, LD, all);
    gpu->cross_entropy_backward(d_dlogits, 1.0f, 0.8f, count, d_logits, d_lse, d_targets, ROWS, CLASSES, LD, all);
    compare("cross_entropy_backward (+=, padding)", "50x37 ld 40", d_dlogits, dlogits, N, TOLERANCE);
    /* beta 0 writes every element, padding and unscored rows included: NaN / poison in, none out. */
    for (int i = 0; i < N; i++)
        dlogits[i] = NAN;
    gpu->release(d_dlogits);
    d_dlogits = device_poisoned(N);
    cpu->cross_entropy_backward(dlogits, 0.0f, 0.8f, count, logits, lse, targets, ROWS, CLASSES, LD, all);
    gpu->cross_entropy_backward(d_dlogits, 0.0f, 0.8f, count, d_logits, d_lse, d_targets, ROWS, CLASSES, LD, all);
    int all_written = 1;
    for (int i = 0; i < N; i++)
        all_written &= isfinite(dlogits[i]) && (i % LD < CLASSES || dlogits[i] == 0.0f);
    CHECK_MSG(all_written, "cpu cross_entropy_backward (beta 0) left an element unwritten");
    compare("cross_entropy_backward (=, padding)", "50x37 ld 40", d_dlogits, dlogits, N, TOLERANCE);
    /* A block of columns (tp_linear_cross_entropy's backward): 24..39, the classes' end and the padding. */
    const tp_column_block block = {24, LD - 24};
    gpu->release(d_dlogits);
    d_dlogits = device_poisoned(ROWS * block.count);
    cpu->cross_entropy_backward(dlogits, 0.0f, 0.8f, count, logits, lse, targets, ROWS, CLASSES, LD, block);
    gpu->cross_entropy_backward(d_dlogits, 0.0f, 0.8f, count, d_logits, d_lse, d_targets, ROWS, CLASSES, LD, block);
    compare("cross_entropy_backward (block)", "50x37 ld 40 cols 24..39", d_dlogits, dlogits, ROWS * block.count,
            TOLERANCE);
    gpu->release(d_logits), gpu->release(d_dlogits), gpu->release(d_targets), gpu->release(d_loss);
    gpu->release(d_lse);
    free(logits), free(dlogits);
}

/* Label smoothing's uniform cross-entropy (sum over the scored rows), rows with -1 and padding columns. */
static void test_uniform_cross_entropy(void)
{
    enum { ROWS = 50, CLASSES = 37, LD = 40, N = ROWS * LD };
    int32_t targets[ROWS];
    for (int r = 0; r < ROWS; r++) targets[r] = r % 7 == 3 ? -1 : (int32_t)(tp_hash3(3, 4, (uint64_t)r) % CLASSES);
    float *logits = random_floats(N, 3), *dlogits = random_floats(N, 1);
    float *d_logits = device_floats(logits, N), *d_dlogits = device_floats(dlogits, N);
    int32_t *d_targets = device_copy(targets, sizeof targets);
    float loss, lse[2 * ROWS], *d_loss = device_poisoned(1), *d_lse = device_poisoned(2 * ROWS);
    cpu->uniform_cross_entropy_forward(&loss, lse, logits, targets, ROWS, CLASSES, LD);
    gpu->uniform_cross_entropy_forward(d_loss, d_lse, d_logits, d_targets, ROWS, CLASSES, LD);
    compare("uniform_cross_entropy_forward loss", "50x37 ld 40", d_loss, &loss, 1, TOLERANCE);
    compare("uniform_cross_entropy_forward lse", "50x37 ld 40", d_lse, lse, ROWS, TOLERANCE);
    gpu->upload(d_lse, lse, ROWS * sizeof *lse);
    cpu->uniform_cross_entropy_backward(dlogits, 0.8f, logits, lse, targets, ROWS, CLASSES, LD);
    gpu->uniform_cross_entropy_backward(d_dlogits, 0.8f, d_logits, d_lse, d_targets, ROWS, CLASSES, LD);
    compare("uniform_cross_entropy_backward (+=)", "50x37 ld 40", d_dlogits, dlogits, N, TOLERANCE);
    gpu->release(d_logits), gpu->release(d_dlogits), gpu->release(d_targets), gpu->release(d_loss);
    gpu->release(d_lse);
    free(logits), free(dlogits);
}

/* ---- element-wise losses -------------------------------------------------------------- */

static void test_pointwise_loss(void)
{
    enum { N = 3000 }; /* more elements than the one summing block has threads */
    static const char *const names[] = {"pointwise_loss bce_with_logits", "pointwise_loss squared_error"};
    float *x = random_floats(N, 3), *values = random_floats(N, 1), *dx = random_floats(N, 1);
    float *binary = tp_xmalloc(N * sizeof *binary);
    for (int i = 0; i < N; i++) binary[i] = (float)(tp_hash3(5, 6, (uint64_t)i) % 3 == 0);
    float *d_x = device_floats(x, N), *d_dx = device_floats(dx, N), *d_loss = device_poisoned(1);
    for (int kind = TP_LOSS_BCE_WITH_LOGITS; kind <= TP_LOSS_SQUARED_ERROR; kind++) {
        const float *targets = kind == TP_LOSS_BCE_WITH_LOGITS ? binary : values;
        float *d_targets = device_floats(targets, N);
        float loss;
        int64_t correct = -1, gpu_correct = -2;
        cpu->pointwise_loss_forward((tp_pointwise_loss_kind)kind, &loss, &correct, x, targets, N);
        gpu->pointwise_loss_forward((tp_pointwise_loss_kind)kind, d_loss, &gpu_correct, d_x, d_targets, N);
        compare(names[kind], "3000 loss", d_loss, &loss, 1, TOLERANCE);
        printf("%-34s %-28s correct %lld/%lld\n", names[kind], "3000", (long long)gpu_correct, (long long)correct);
        CHECK(gpu_correct == correct);
        cpu->pointwise_loss_backward((tp_pointwise_loss_kind)kind, dx, 0.7f, x, targets, N);
        gpu->pointwise_loss_backward((tp_pointwise_loss_kind)kind, d_dx, 0.7f, d_x, d_targets, N);
        compare(names[kind], "3000 backward (+=)", d_dx, dx, N, TOLERANCE);
        gpu->release(d_targets);
    }
    gpu->release(d_x), gpu->release(d_dx), gpu->release(d_loss);
    free(x), free(values), free(dx), free(binary);
}

/* ---- linear-chain CRF ------------------------------------------------------------------ */

/* 40 sequences of 64 positions, 9 tags in rows of 12 floats; about 60% of the positions scored,
 * sequence 5 not at all.  Forward: log Z per sequence, the loss, the count; backward from each
 * side's own forward state into non-zero gradients. */
static void test_crf(void)
{
    enum { BATCH = 40, SEQ = 64, CLASSES = 9, LD = 12, ROWS = BATCH * SEQ };
    int32_t *tags = tp_xmalloc(ROWS * sizeof *tags);
    for (int r = 0; r < ROWS; r++) {
        int scored = r / SEQ != 5 && tp_hash3(8, 1, (uint64_t)r) % 5 >= 2;
        tags[r] = scored ? (int32_t)(tp_hash3(8, 2, (uint64_t)r) % CLASSES) : -1;
    }
    float *emissions = random_floats(ROWS * LD, 3), *transitions = random_floats(CLASSES * CLASSES, 1);
    float *start = random_floats(CLASSES, 1), *end = random_floats(CLASSES, 1);
    int32_t *d_tags = device_copy(tags, ROWS * sizeof *tags);
    tp_crf_problem host = {BATCH, SEQ, CLASSES, LD, tags, emissions, transitions, start, end};
    tp_crf_problem device = {BATCH, SEQ, CLASSES, LD, d_tags, device_floats(emissions, ROWS * LD),
                             device_floats(transitions, CLASSES * CLASSES), device_floats(start, CLASSES),
                             device_floats(end, CLASSES)};
    float loss, *alpha = tp_xmalloc(ROWS * CLASSES * sizeof *alpha), log_z[BATCH];
    float *d_loss = device_poisoned(1), *d_alpha = device_poisoned(ROWS * CLASSES), *d_log_z = device_poisoned(BATCH);
    int64_t count = -1, gpu_count = -2;
    cpu->crf_forward(&host, &loss, &count, alpha, log_z);
    gpu->crf_forward(&device, d_loss, &gpu_count, d_alpha, d_log_z);
    compare("crf_forward log Z", "40x64, 9 tags ld 12", d_log_z, log_z, BATCH, TOLERANCE);
    compare("crf_forward loss", "40x64, 9 tags ld 12", d_loss, &loss, 1, TOLERANCE);
    printf("%-34s %-28s count %lld/%lld\n", "crf_forward", "40x64", (long long)gpu_count, (long long)count);
    CHECK(gpu_count == count && count == BATCH - 1);

    int64_t scratch_floats = tp_crf_scratch_floats(&host);
    float *scratch = tp_xmalloc((size_t)scratch_floats * sizeof *scratch), *d_scratch = device_poisoned(scratch_floats);
    float *grads[4] = {random_floats(ROWS * LD, 1), random_floats(CLASSES * CLASSES, 1), random_floats(CLASSES, 1),
                       random_floats(CLASSES, 1)};
    const int64_t sizes[4] = {ROWS * LD, CLASSES * CLASSES, CLASSES, CLASSES};
    static const char *const names[4] = {"crf_backward emissions (+=)", "crf_backward transitions (+=)",
                                         "crf_backward start (+=)", "crf_backward end (+=)"};
    float *d_grads[4];
    for (int i = 0; i < 4; i++) d_grads[i] = device_floats(grads[i], sizes[i]);
    cpu->crf_backward(&host, 0.7f, count, alpha, log_z, grads[0], grads[1], grads[2], grads[3], scratch);
    gpu->crf_backward(&device, 0.7f, gpu_count, d_alpha, d_log_z, d_grads[0], d_grads[1], d_grads[2], d_grads[3],
                      d_scratch);
    for (int i = 0; i < 4; i++) {
        compare(names[i], "40x64, 9 tags ld 12", d_grads[i], grads[i], sizes[i], TOLERANCE);
        gpu->release(d_grads[i]);
        free(grads[i]);
    }
    gpu->release(d_tags), gpu->release((float *)device.emissions), gpu->release((float *)device.transitions);
    gpu->release((float *)device.start), gpu->release((float *)device.end);
    gpu->release(d_loss), gpu->release(d_alpha), gpu->release(d_log_z), gpu->release(d_scratch);
    free(tags), free(emissions), free(transitions), free(start), free(end), free(alpha), free(scratch);
}

/* ---- optimizer ------------------------------------------------------------------------ */

enum { FLAT = 70000, SEGMENTS = 40 };

/* Segments with gaps between them, some frozen, one empty; more than one kernel launch's worth. */
static int64_t make_segments(tp_param_segment *segments)
{
    int64_t offset = 3;
    for (int i = 0; i < SEGMENTS; i++) {
        int64_t numel = i == 7 ? 0 : 100 + (int64_t)(tp_hash3(1, 2, (uint64_t)i) % 1500);
        segments[i] = (tp_param_segment){.offset = offset, .numel = numel, .weight_decay = i % 3 ? 0.01 : 0.0,
                                         .lr_scale = i % 5 ? 1.0 : 0.5, .frozen = i % 11 == 4};
        offset += numel + 16;
    }
    return offset <= FLAT ? SEGMENTS : -1;
}

static void test_optimizer(void)
{
    tp_param_segment segments[SEGMENTS];
    CHECK(make_segments(segments) == SEGMENTS);
    float *params = random_floats(FLAT, 1), *grads = random_floats(FLAT, 0.1f), *m = random_floats(FLAT, 0.01f);
    float *v = random_floats(FLAT, 0.001f);
    for (int i = 0; i < FLAT; i++) v[i] = fabsf(v[i]);
    float *d_params = device_floats(params, FLAT), *d_grads = device_floats(grads, FLAT);
    float *d_m = device_floats(m, FLAT), *d_v = device_floats(v, FLAT);
    for (int variant = 0; variant < 2; variant++) {
        tp_adamw_options opt = tp_adamw_defaults();
        opt.variant = (tp_adamw_variant)variant;
        opt.correct_bias = 1;
        cpu->adamw_step(&opt, 1e-3, 3, params, grads, m, v, segments, SEGMENTS);
        gpu->adamw_step(&opt, 1e-3, 3, d_params, d_grads, d_m, d_v, segments, SEGMENTS);
        const char *name = variant ? "adamw_step torch" : "adamw_step tencentpretrain";
        compare(name, "params, 40 segments", d_params, params, FLAT, TOLERANCE);
        compare(name, "exp_avg", d_m, m, FLAT, TOLERANCE);
        compare(name, "exp_avg_sq", d_v, v, FLAT, TOLERANCE);
    }
    double norm = cpu->grad_norm(grads, segments, SEGMENTS), gpu_norm = gpu->grad_norm(d_grads, segments, SEGMENTS);
    printf("%-34s %-28s %10.3g\n", "grad_norm", "40 segments", fabs(gpu_norm - norm) / norm);
    CHECK(fabs(gpu_norm - norm) <= 1e-9 * norm);
    norm = cpu->clip_grad_norm(grads, segments, SEGMENTS, 0.5);
    gpu_norm = gpu->clip_grad_norm(d_grads, segments, SEGMENTS, 0.5);
    CHECK(fabs(gpu_norm - norm) <= 1e-9 * norm);
    compare("clip_grad_norm", "max_norm 0.5", d_grads, grads, FLAT, TOLERANCE);

    int cpu_finite = cpu->grads_finite(grads, segments, SEGMENTS);
    int gpu_finite = gpu->grads_finite(d_grads, segments, SEGMENTS);
    CHECK(cpu_finite == 1 && gpu_finite == 1);
    float inf = INFINITY;
    gpu->upload(d_grads + segments[4].offset + 1, &inf, sizeof inf); /* frozen: ignored */
    gpu->upload(d_grads + 1, &inf, sizeof inf);                       /* padding: ignored */
    CHECK(gpu->grads_finite(d_grads, segments, SEGMENTS) == 1);
    float nan = NAN;
    gpu->upload(d_grads + segments[SEGMENTS - 1].offset + segments[SEGMENTS - 1].numel - 1, &nan, sizeof nan);
    CHECK(gpu->grads_finite(d_grads, segments, SEGMENTS) == 0);
    printf("%-34s %-28s %s\n", "grads_finite", "inf in frozen/padding, nan", "checked");
    gpu->release(d_params), gpu->release(d_grads), gpu->release(d_m), gpu->release(d_v);
    free(params), free(grads), free(m), free(v);
}

#endif

int main(void)
{
#ifdef TP_HAVE_CUDA
    if (tp_cuda_device_count() > 0) {
        gpu = tp_cuda_backend_get();
        CHECK_MSG(gpu != NULL, "the CUDA kernel table is incomplete");
        if (!gpu) return tp_test_finish("test_gpu_ops");
        printf("%-34s %-28s %10s\n", "kernel", "shape", "max error");
        test_memory();
        test_gemm();
        test_elementwise();
        test_activations();
        test_layer_norm();
        test_gathers();
        test_pool();
        test_conv1d();
        test_clip_head();
        test_dropout();
        test_attention();
        test_cached_attention();
        test_cross_attention_with_bias();
        test_rms_norm_and_multiply();
        test_cross_entropy();
        test_uniform_cross_entropy();
        test_pointwise_loss();
        test_crf();
        test_optimizer();
        test_reduced_precision(TP_PRECISION_TF32);
        test_reduced_precision(TP_PRECISION_BF16);
        return tp_test_finish("test_gpu_ops");
    }
#endif
    printf("skipped: no CUDA device\n");
    return tp_test_finish("test_gpu_ops");
}
