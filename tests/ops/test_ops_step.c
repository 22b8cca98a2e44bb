/* Whole-step properties of the op layer:
 *  - arena and tape: after tp_ctx_reset an identical step (ops, dropout, backward) gives
 *    bit-identical loss and gradients, and the arena stops growing after the first step;
 *  - thread-count independence: layer norm, bias backward, cross-entropy, attention and dropout
 *    give bit-identical results with 1 and 2 OpenMP threads on sizes that take the parallel
 *    paths.  GEMM (OpenBLAS) results are only reported: exact equality across thread counts is
 *    not something OpenBLAS promises. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;

/* ---- arena and tape ------------------------------------------------------------ */

enum { BATCH = 2, SEQ = 6, HIDDEN = 8, HEADS = 2, VOCAB_ROWS = 10, CLASSES = 9, PARAMS = 5 };

/* A toy transformer-like step; parameters own their gradient buffers, as model parameters do. */
typedef struct {
    tp_tensor *x, *params[PARAMS]; /* w1, b1, gamma, beta, w2 */
} toy_model;

static toy_model toy_model_make(void)
{
    const int64_t x_shape[2] = {BATCH * SEQ, HIDDEN}, square[2] = {HIDDEN, HIDDEN}, vector[1] = {HIDDEN};
    const int64_t out_shape[2] = {VOCAB_ROWS, HIDDEN};
    toy_model m = {.x = tp_test_tensor(backend, 2, x_shape, 1, 0, 1)};
    m.x->requires_grad = 0;
    m.params[0] = tp_test_tensor(backend, 2, square, 2, 0, 0.4);
    m.params[1] = tp_test_tensor(backend, 1, vector, 3, 0, 0.1);
    m.params[2] = tp_test_tensor(backend, 1, vector, 4, 1, 0.1);
    m.params[3] = tp_test_tensor(backend, 1, vector, 5, 0, 0.1);
    m.params[4] = tp_test_tensor(backend, 2, out_shape, 6, 0, 0.4);
    for (int p = 0; p < PARAMS; p++) m.params[p]->grad = tp_xcalloc((size_t)tp_numel(m.params[p]), sizeof(float));
    return m;
}

static void toy_model_free(toy_model *m)
{
    tp_test_tensor_free(backend, m->x);
    for (int p = 0; p < PARAMS; p++) {
        free(m->params[p]->grad);
        tp_test_tensor_free(backend, m->params[p]);
    }
}

/* Forward and backward of one step; returns the loss. */
static float toy_step(tp_ctx *ctx, toy_model *m)
{
    static const int32_t key_valid[BATCH * SEQ] = {1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1};
    static const int32_t targets[BATCH * SEQ] = {1, 8, -1, 3, -1, -1, 0, 2, 2, 7, 5, 4};
    for (int p = 0; p < PARAMS; p++) memset(m->params[p]->grad, 0, (size_t)tp_numel(m->params[p]) * sizeof(float));
    tp_tensor *h = tp_linear(ctx, m->x, m->params[0], m->params[1]);
    h = tp_dropout(ctx, tp_act(ctx, tp_layer_norm(ctx, h, m->params[2], m->params[3], TP_NORM_TORCH, 1e-5f),
                               TP_ACT_GELU), 0.1f);
    tp_tensor *a = tp_attention(ctx, h, h, h, BATCH, SEQ, HEADS, TP_MASK_FULLY_VISIBLE, key_valid, 0.1f);
    tp_tensor *logits = tp_linear(ctx, tp_add(ctx, a, h), m->params[4], NULL);
    tp_tensor *loss = tp_cross_entropy(ctx, logits, targets, CLASSES, NULL, NULL);
    tp_backward(ctx, loss);
    return loss->data[0];
}

/* The loss followed by every parameter gradient. */
static float *step_results(tp_ctx *ctx, toy_model *m, int64_t *count)
{
    int64_t n = 1;
    for (int p = 0; p < PARAMS; p++) n += tp_numel(m->params[p]);
    float *results = tp_xmalloc((size_t)n * sizeof *results);
    results[0] = toy_step(ctx, m);
    int64_t at = 1;
    for (int p = 0; p < PARAMS; p++) {
        memcpy(results + at, m->params[p]->grad, (size_t)tp_numel(m->params[p]) * sizeof *results);
        at += tp_numel(m->params[p]);
    }
    *count = n;
    return results;
}

static void test_steady_state_steps(void)
{
    toy_model m = toy_model_make();
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 4096); /* small on purpose: the first step must grow the arena */
    ctx.record = ctx.training = 1;
    ctx.seed = 42;
    ctx.step = 3;
    int64_t n;
    float *first = step_results(&ctx, &m, &n);
    size_t growth = ctx.arena.growth_count;
    CHECK_MSG(growth > 0, "the first step should have outgrown a 4 KiB arena");
    for (int step = 2; step <= 3; step++) {
        tp_ctx_reset(&ctx);
        float *again = step_results(&ctx, &m, &n);
        CHECK_MSG(memcmp(first, again, (size_t)n * sizeof *first) == 0, "step %d differs from step 1", step);
        CHECK_MSG(ctx.arena.growth_count == growth, "step %d grew the arena: %zu blocks added, %zu after step 1",
                  step, ctx.arena.growth_count, growth);
        free(again);
    }
    free(first);
    tp_ctx_free(&ctx);
    toy_model_free(&m);
}

/* ---- thread-count independence ------------------------------------------------- */

/* Sizes above the kernels' PARALLEL_MIN (32768 elements), so the OpenMP paths run. */
enum { ROWS = 256, COLS = 160, LOSS_CLASSES = 150, MAX_RESULTS = 24 };

typedef struct {
    const char *name[MAX_RESULTS];
    float *values[MAX_RESULTS];
    int64_t n[MAX_RESULTS];
    int must_match[MAX_RESULTS]; /* 0: GEMM results, reported only */
    int count;
} result_set;

static void keep(result_set *set, const char *name, const float *values, int64_t n, int must_match)
{
    if (set->count == MAX_RESULTS) {
        fprintf(stderr, "test_ops_step: more than %d results: raise MAX_RESULTS\n", MAX_RESULTS);
        abort();
    }
    int i = set->count++;
    set->name[i] = name;
    set->n[i] = n;
    set->must_match[i] = must_match;
    set->values[i] = tp_xmalloc((size_t)n * sizeof(float));
    memcpy(set->values[i], values, (size_t)n * sizeof(float));
}

/* Keeps t's gradient and forgets it (it lives in the arena). */
static void keep_grad(result_set *set, const char *name, tp_tensor *t, int must_match)
{
    keep(set, name, t->grad, tp_numel(t), must_match);
    t->grad = NULL;
}

typedef struct {
    tp_tensor *x, *gamma, *beta, *weight, *bias, *logits, *weights_out, *q, *k, *v;
    int32_t targets[ROWS];
} thread_inputs;

static thread_inputs thread_inputs_make(void)
{
    const int64_t matrix[2] = {ROWS, COLS}, square[2] = {COLS, COLS}, vector[1] = {COLS};
    thread_inputs in = {
        .x = tp_test_tensor(backend, 2, matrix, 11, 1, 2),
        .gamma = tp_test_tensor(backend, 1, vector, 12, 1, 0.2),
        .beta = tp_test_tensor(backend, 1, vector, 13, 0, 0.2),
        .weight = tp_test_tensor(backend, 2, square, 14, 0, 0.1),
        .bias = tp_test_tensor(backend, 1, vector, 15, 0, 1),
        .logits = tp_test_tensor(backend, 2, matrix, 16, 0, 2),
        .weights_out = tp_test_tensor(backend, 2, matrix, 17, 0, 1), /* R of the weighted-sum losses */
        .q = tp_test_tensor(backend, 2, matrix, 18, 0, 1),
        .k = tp_test_tensor(backend, 2, matrix, 19, 0, 1),
        .v = tp_test_tensor(backend, 2, matrix, 20, 0, 1),
    };
    for (int r = 0; r < ROWS; r++) in.targets[r] = r % 7 == 3 ? -1 : (r * 37) % LOSS_CLASSES;
    return in;
}

static void thread_inputs_free(thread_inputs *in)
{
    tp_tensor *all[] = {in->x, in->gamma, in->beta, in->weight, in->bias, in->logits, in->weights_out,
                        in->q, in->k, in->v};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) tp_test_tensor_free(backend, all[i]);
}

static void run_layer_norms(tp_ctx *ctx, thread_inputs *in, result_set *set)
{
    static const char *const names[2][4] = {
        {"layer_norm unbiased y", "layer_norm unbiased dx", "layer_norm unbiased dgamma", "layer_norm unbiased dbeta"},
        {"layer_norm torch y", "layer_norm torch dx", "layer_norm torch dgamma", "layer_norm torch dbeta"}};
    const tp_norm_kind kinds[2] = {TP_NORM_UNBIASED_STD, TP_NORM_TORCH};
    for (int k = 0; k < 2; k++) {
        tp_ctx_reset(ctx);
        tp_tensor *y = tp_layer_norm(ctx, in->x, in->gamma, in->beta, kinds[k], 1e-6f);
        tp_backward(ctx, tp_test_weighted_sum(ctx, y, in->weights_out->data));
        keep(set, names[k][0], y->data, ROWS * COLS, 1);
        keep_grad(set, names[k][1], in->x, 1);
        keep_grad(set, names[k][2], in->gamma, 1);
        keep_grad(set, names[k][3], in->beta, 1);
    }
}

static void run_linear(tp_ctx *ctx, thread_inputs *in, result_set *set)
{
    tp_ctx_reset(ctx);
    tp_tensor *y = tp_linear(ctx, in->x, in->weight, in->bias);
    tp_backward(ctx, tp_test_weighted_sum(ctx, y, in->weights_out->data));
    keep_grad(set, "linear dbias (bias_backward)", in->bias, 1);
    keep(set, "linear y (GEMM)", y->data, ROWS * COLS, 0);
    keep_grad(set, "linear dx (GEMM)", in->x, 0);
    keep_grad(set, "linear dW (GEMM)", in->weight, 0);
}

static void run_cross_entropy(tp_ctx *ctx, thread_inputs *in, result_set *set)
{
    tp_ctx_reset(ctx);
    tp_tensor *loss = tp_cross_entropy(ctx, in->logits, in->targets, LOSS_CLASSES, NULL, NULL);
    tp_backward(ctx, loss);
    keep(set, "cross_entropy loss", loss->data, 1, 1);
    keep_grad(set, "cross_entropy dlogits", in->logits, 1);
}

/* Attention runs one (batch, head) per thread, each GEMM inside single-threaded; dropout's mask
 * is a function of the element index. */
static void run_attention_and_dropout(tp_ctx *ctx, thread_inputs *in, result_set *set)
{
    tp_ctx_reset(ctx);
    tp_tensor *out = tp_attention(ctx, in->q, in->k, in->v, 8, ROWS / 8, 4, TP_MASK_CAUSAL, NULL, 0.1f);
    tp_tensor *dropped = tp_dropout(ctx, out, 0.2f);
    tp_backward(ctx, tp_test_weighted_sum(ctx, dropped, in->weights_out->data));
    keep(set, "attention + dropout forward", dropped->data, ROWS * COLS, 1);
    keep_grad(set, "attention dq", in->q, 1);
    keep_grad(set, "attention dk", in->k, 1);
    keep_grad(set, "attention dv", in->v, 1);
}

static result_set run_with_threads(int threads, thread_inputs *in)
{
    result_set set = {.count = 0};
    omp_set_num_threads(threads);
    CHECK(omp_get_max_threads() == threads);
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 22);
    ctx.record = ctx.training = 1;
    ctx.seed = 9;
    run_layer_norms(&ctx, in, &set);
    run_linear(&ctx, in, &set);
    run_cross_entropy(&ctx, in, &set);
    run_attention_and_dropout(&ctx, in, &set);
    tp_ctx_free(&ctx);
    return set;
}

static void test_thread_count_independence(void)
{
    thread_inputs in = thread_inputs_make();
    result_set one = run_with_threads(1, &in), two = run_with_threads(2, &in);
    for (int i = 0; i < one.count; i++) {
        int same = memcmp(one.values[i], two.values[i], (size_t)one.n[i] * sizeof(float)) == 0;
        if (one.must_match[i])
            CHECK_MSG(same, "%s differs between 1 and 2 threads", one.name[i]);
        else
            printf("note: %s is %s with 1 and 2 threads\n", one.name[i], same ? "bit-identical" : "NOT bit-identical");
        free(one.values[i]);
        free(two.values[i]);
    }
    thread_inputs_free(&in);
}

int main(void)
{
    test_steady_state_steps();
    test_thread_count_independence();
    return tp_test_finish("test_ops_step");
}
