/* Op tests for tp_cross_entropy: loss, count and argmax hits against a naive double-precision
 * reference (rows with target -1 ignored, only the first `classes` columns of a padded
 * vocabulary used); gradient against central finite differences, and exactly zero on the
 * padded columns and on ignored rows. */
#include <math.h>
#include <string.h>

#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;
/* The loss is one scalar of order 1 whatever element moves, so its rounding noise is relatively
 * large: worst error ~1.5e-4 at the usual step 3e-3, ~5e-5 at 1e-2. */
static const tp_gradcheck_options fd_options = {.step = 1e-2, .max_elements = 0, .seed = 61};

typedef struct {
    const char *name;
    int64_t rows, cols, classes;
    const int32_t *targets;
} loss_case;

static tp_tensor *loss_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    const loss_case *c = user;
    return tp_cross_entropy(ctx, in[0], c->targets, c->classes, NULL, NULL);
}

typedef struct {
    double loss;
    int64_t count, correct;
} loss_reference;

/* mean over rows with target >= 0 of log(sum_c exp(x_c)) - x_target, over the first `classes` columns */
static loss_reference reference_loss(const loss_case *c, const float *logits)
{
    loss_reference ref = {0, 0, 0};
    for (int64_t r = 0; r < c->rows; r++) {
        if (c->targets[r] < 0) continue;
        const float *row = logits + r * c->cols;
        double sum = 0;
        int64_t best = 0;
        for (int64_t j = 0; j < c->classes; j++) {
            sum += exp((double)row[j]);
            if (row[j] > row[best]) best = j;
        }
        ref.loss += log(sum) - row[c->targets[r]];
        ref.count++;
        ref.correct += best == c->targets[r];
    }
    if (ref.count) ref.loss /= ref.count;
    return ref;
}

/* Gradient entries that must be exactly zero: padded columns and ignored rows. */
static int64_t nonzero_outside_loss(const loss_case *c, const float *grad)
{
    int64_t nonzero = 0;
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t j = 0; j < c->cols; j++)
            nonzero += (c->targets[r] < 0 || j >= c->classes) && grad[r * c->cols + j] != 0.0f;
    return nonzero;
}

static void test_case(const loss_case *c, int64_t expected_count, uint64_t seed)
{
    const int64_t shape[3] = {2, c->rows / 2, c->cols};
    tp_tensor *logits = tp_test_tensor(backend, 3, shape, seed, 0, 2);
    /* Lift some targets' logits so that a few rows are argmax hits. */
    for (int64_t r = 0; r < c->rows; r += 2)
        if (c->targets[r] >= 0) logits->data[r * c->cols + c->targets[r]] += 3.0f;
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    ctx.record = 1;
    /* NaN in the arena: the backward writes every element of the fresh gradient (it is not zeroed first). */
    for (tp_arena_block *block = ctx.arena.blocks; block; block = block->next)
        memset(block->base, 0xff, block->size);

    int64_t count = -1, correct = -1;
    tp_tensor *loss = tp_cross_entropy(&ctx, logits, c->targets, c->classes, &count, &correct);
    loss_reference ref = reference_loss(c, logits->data);
    CHECK(loss->ndim == 1 && loss->shape[0] == 1);
    CHECK(tp_forward_ok(loss->data, &ref.loss, 1, c->name));
    CHECK_MSG(count == expected_count && count == ref.count, "%s: count %lld", c->name, (long long)count);
    CHECK_MSG(correct == ref.correct, "%s: correct %lld, expected %lld", c->name, (long long)correct,
              (long long)ref.correct);

    tp_backward(&ctx, loss);
    CHECK_MSG(nonzero_outside_loss(c, logits->grad) == 0, "%s: gradient on padded columns or ignored rows", c->name);
    logits->grad = NULL;
    tp_ctx_free(&ctx);

    tp_ctx_init(&ctx, backend, 1 << 16);
    tp_gradcheck_result r = tp_gradcheck(&ctx, loss_fn, (void *)c, &logits, 1, &fd_options);
    if (expected_count > 0) {
        CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, c->name));
    } else {
        CHECK_MSG(r.max_error == 0, "%s: gradient %g where the loss is constant", c->name, r.worst_analytic);
    }
    tp_ctx_free(&ctx);
    tp_test_tensor_free(backend, logits);
}

int main(void)
{
    static const int32_t some_ignored[6] = {2, -1, 6, 0, -1, 3}, all_ignored[4] = {-1, -1, -1, -1};
    static const int32_t all_counted[4] = {4, 0, 1, 4};
    const loss_case padded = {"cross_entropy, 7 classes of 10 columns, -1 ignored", 6, 10, 7, some_ignored};
    const loss_case unpadded = {"cross_entropy, all classes counted", 4, 5, 5, all_counted};
    const loss_case nothing = {"cross_entropy, every target ignored", 4, 6, 6, all_ignored};
    test_case(&padded, 4, 1);
    test_case(&unpadded, 4, 2);
    test_case(&nothing, 0, 3);
    return tp_test_finish("test_ops_loss");
}
