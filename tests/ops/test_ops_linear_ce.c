/* Op tests for tp_linear_cross_entropy, the vocabulary projection and its cross-entropy as one op
 * whose backward makes the logits' gradient a block of columns at a time:
 *  - against tp_cross_entropy(tp_linear(...)) on the same inputs: the same loss, count, hits and
 *    logits bit for bit (the forward is theirs), and gradients of x, the weight and the bias within
 *    1e-5 of the largest (the blocks only regroup the products' sums), with the weight's gradient
 *    fresh or added to (tied weights), rows ignored (-1), a padded vocabulary, one block and many;
 *  - the same gradients bit for bit when run again, and within 1e-6 on 1, 2 and 3 threads (OpenBLAS
 *    takes its small-matrix kernels for some of the threads' blocks, which sum in another order);
 *  - central finite differences for every input, through many blocks;
 *  - no gradient at all when every target is ignored. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

enum { IN = 24 };

typedef struct {
    const char *name;
    int64_t rows, classes, ld;     /* ld: the padded vocabulary, the weight's rows */
    int64_t block_bytes;           /* the backend's linear_ce_block_bytes */
    int ignore_every, accumulate;  /* every ignore_every-th target -1 (0: none; 1: all); a weight gradient to add to */
} ce_case;

typedef struct {
    const ce_case *c;
    const int32_t *targets;
} fn_user;

static tp_tensor *fused_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    const fn_user *u = user;
    return tp_linear_cross_entropy(ctx, in[0], in[1], in[2], u->targets, u->c->classes, NULL, NULL, NULL);
}

static int32_t *make_targets(const ce_case *c)
{
    int32_t *targets = malloc((size_t)c->rows * sizeof *targets);
    for (int64_t r = 0; r < c->rows; r++)
        targets[r] = c->ignore_every && r % c->ignore_every == 0 ? -1 : (int32_t)((r * 7919 + 13) % c->classes);
    return targets;
}

typedef struct {
    float loss;
    int64_t count, correct;
    float *logits, *dx, *dweight, *dbias;
} run_result;

static void result_free(run_result *r)
{
    free(r->logits), free(r->dx), free(r->dweight), free(r->dbias);
}

static float *copy_of(const float *data, int64_t n)
{
    float *copy = malloc((size_t)n * sizeof *copy);
    memcpy(copy, data, (size_t)n * sizeof *copy);
    return copy;
}

/* One forward and backward, fused or not, on backend; the weight's gradient starts at `start` when
 * the case accumulates. */
static run_result run(const ce_case *c, const tp_backend *backend, tp_tensor *const *in, const int32_t *targets,
                      int fused, const float *start)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    ctx.record = 1;
    tp_tensor *x = in[0], *weight = in[1], *bias = in[2];
    float *weight_grad = NULL;
    if (c->accumulate) weight->grad = weight_grad = copy_of(start, c->ld * IN);
    run_result r;
    tp_tensor *logits, *loss;
    if (fused) {
        loss = tp_linear_cross_entropy(&ctx, x, weight, bias, targets, c->classes, &r.count, &r.correct, &logits);
    } else {
        logits = tp_linear(&ctx, x, weight, bias);
        loss = tp_cross_entropy(&ctx, logits, targets, c->classes, &r.count, &r.correct);
    }
    r.loss = loss->data[0];
    r.logits = copy_of(logits->data, c->rows * c->ld);
    tp_backward(&ctx, loss);
    r.dx = copy_of(x->grad, c->rows * IN);
    r.dweight = copy_of(weight->grad, c->ld * IN);
    r.dbias = copy_of(bias->grad, c->ld);
    x->grad = weight->grad = bias->grad = NULL;
    free(weight_grad);
    tp_ctx_free(&ctx);
    return r;
}

static double max_relative_difference(const float *a, const float *b, int64_t n)
{
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return scale > 0 ? worst / scale : worst;
}

static int same_bits(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof *a) == 0; }

static void test_case(const ce_case *c, uint64_t seed)
{
    tp_backend backend = tp_cpu_backend;
    backend.linear_ce_block_bytes = c->block_bytes;
    const int64_t x_shape[2] = {c->rows, IN}, weight_shape[2] = {c->ld, IN}, bias_shape[1] = {c->ld};
    tp_tensor *in[3] = {tp_test_tensor(&backend, 2, x_shape, seed, 0, 1),
                        tp_test_tensor(&backend, 2, weight_shape, seed + 1, 0, 0.5),
                        tp_test_tensor(&backend, 1, bias_shape, seed + 2, 0, 0.5)};
    int32_t *targets = make_targets(c);
    float *start = c->accumulate ? copy_of(in[1]->data, c->ld * IN) : NULL; /* any values to add to */

    run_result plain = run(c, &backend, in, targets, 0, start), fused = run(c, &backend, in, targets, 1, start);
    CHECK_MSG(fused.loss == plain.loss && fused.count == plain.count && fused.correct == plain.correct,
              "%s: loss %.9g count %lld hits %lld, unfused %.9g %lld %lld", c->name, fused.loss,
              (long long)fused.count, (long long)fused.correct, plain.loss, (long long)plain.count,
              (long long)plain.correct);
    CHECK_MSG(same_bits(fused.logits, plain.logits, c->rows * c->ld), "%s: logits differ", c->name);
    const struct {
        const char *what;
        const float *fused, *plain;
        int64_t n;
    } grads[3] = {{"x", fused.dx, plain.dx, c->rows * IN},
                  {"weight", fused.dweight, plain.dweight, c->ld * IN},
                  {"bias", fused.dbias, plain.dbias, c->ld}};
    for (int g = 0; g < 3; g++) {
        double difference = max_relative_difference(grads[g].fused, grads[g].plain, grads[g].n);
        CHECK_MSG(difference <= 1e-5, "%s: d%s differs from the unfused ops' by %.3g", c->name, grads[g].what,
                  difference);
    }

    run_result again = run(c, &backend, in, targets, 1, start);
    CHECK_MSG(same_bits(again.dx, fused.dx, c->rows * IN) && same_bits(again.dweight, fused.dweight, c->ld * IN) &&
                  same_bits(again.dbias, fused.dbias, c->ld),
              "%s: the gradients differ when run again", c->name);
    result_free(&again);
    int threads_before = omp_get_max_threads();
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        again = run(c, &backend, in, targets, 1, start);
        for (int g = 0; g < 3; g++) {
            const float *on_threads = g == 0 ? again.dx : g == 1 ? again.dweight : again.dbias;
            double difference = max_relative_difference(on_threads, grads[g].fused, grads[g].n);
            CHECK_MSG(difference <= 1e-6, "%s: d%s on %d threads differs by %.3g", c->name, grads[g].what, threads,
                      difference);
        }
        result_free(&again);
    }
    omp_set_num_threads(threads_before);
    result_free(&plain);
    result_free(&fused);

    if (!c->accumulate) {
        fn_user user = {c, targets};
        tp_gradcheck_options options = {.step = 1e-2, .max_elements = 200, .seed = seed};
        tp_ctx ctx;
        tp_ctx_init(&ctx, &backend, 1 << 16);
        tp_gradcheck_result r = tp_gradcheck(&ctx, fused_fn, &user, in, 3, &options);
        if (c->ignore_every == 1)
            CHECK_MSG(r.max_error == 0 && r.worst_analytic == 0, "%s: gradient %g where the loss is constant",
                      c->name, r.worst_analytic);
        else
            CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, c->name));
        tp_ctx_free(&ctx);
    }
    free(start);
    free(targets);
    for (int i = 0; i < 3; i++) tp_test_tensor_free(&backend, in[i]);
}

int main(void)
{
    /* Block widths: bytes / (rows * 4) rounded down to 64 columns, at least 64. */
    const ce_case cases[] = {
        {"one block, padded vocabulary, every 3rd row ignored", 9, 290, 304, 1 << 20, 3, 0},
        {"64-column blocks (5), padded, every 4th row ignored", 9, 290, 304, 9 * 4 * 64, 4, 0},
        {"128-column blocks (3), the last part-filled, weight gradient added to", 40, 300, 300, 40 * 4 * 128, 5, 1},
        {"blocks of 64, every target ignored", 6, 250, 256, 6 * 4 * 64, 1, 0},
        {"300 rows, 832-column blocks over a 2000-column vocabulary", 300, 1990, 2000, 1 << 20, 7, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) test_case(&cases[i], 100 + 10 * i);
    return tp_test_finish("test_ops_linear_ce");
}
