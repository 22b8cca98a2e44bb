/* Op tests for tp_pointwise_loss: BCE with logits (0/1 and soft targets, logits up to +-40 where
 * the naive sigmoid form overflows) and squared error, forward against a double reference written
 * from the definitions (BCE as t log(1 + e^-x) + (1 - t) log(1 + e^x), not the kernel's
 * max(x, 0) - x t + log(1 + e^-|x|)), the count of right predictions, and the gradient against
 * central finite differences. */
#include <math.h>

#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;
/* A loss is one scalar of order 1 whatever element moves (see test_ops_loss.c): step 1e-2. */
static const tp_gradcheck_options fd_options = {.step = 1e-2, .max_elements = 0, .seed = 71};

enum { ROWS = 4, COLS = 5, N = ROWS * COLS };

typedef struct {
    const char *name;
    tp_pointwise_loss_kind kind;
    const float *targets;
} loss_case;

static tp_tensor *loss_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    const loss_case *c = user;
    return tp_pointwise_loss(ctx, in[0], c->targets, c->kind, NULL);
}

static double reference_loss(const loss_case *c, const float *x, int64_t *correct)
{
    double total = 0;
    *correct = 0;
    for (int i = 0; i < N; i++) {
        double t = c->targets[i], xi = x[i];
        if (c->kind == TP_LOSS_SQUARED_ERROR) {
            total += (xi - t) * (xi - t);
        } else {
            total += t * log1p(exp(-xi)) + (1 - t) * log1p(exp(xi));
            *correct += (xi > 0) == (t > 0.5);
        }
    }
    return total / N;
}

static void test_case(const loss_case *c, float spread, uint64_t seed)
{
    const int64_t shape[2] = {ROWS, COLS};
    tp_tensor *x = tp_test_tensor(backend, 2, shape, seed, 0, spread);
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    int64_t correct = -1, expected_correct = 0;
    tp_tensor *loss = tp_pointwise_loss(&ctx, x, c->targets, c->kind, &correct);
    double expected = reference_loss(c, x->data, &expected_correct);
    CHECK(loss->ndim == 1 && loss->shape[0] == 1);
    CHECK(tp_forward_ok(loss->data, &expected, 1, c->name));
    CHECK_MSG(correct == expected_correct, "%s: correct %lld, expected %lld", c->name, (long long)correct,
              (long long)expected_correct);
    tp_ctx_free(&ctx);

    tp_ctx_init(&ctx, backend, 1 << 16);
    tp_gradcheck_result r = tp_gradcheck(&ctx, loss_fn, (void *)c, &x, 1, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, c->name));
    tp_ctx_free(&ctx);
    tp_test_tensor_free(backend, x);
}

/* Large logits: the loss stays finite and equals the reference (no exp overflow). */
static void test_saturated(const float *targets)
{
    const int64_t shape[2] = {ROWS, COLS};
    tp_tensor *x = tp_test_tensor(backend, 2, shape, 9, 0, 1);
    for (int i = 0; i < N; i++) x->data[i] = i % 2 ? 40.0f : -40.0f;
    loss_case c = {"bce_with_logits, logits +-40", TP_LOSS_BCE_WITH_LOGITS, targets};
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    ctx.record = 1;
    int64_t correct = 0, expected_correct = 0;
    tp_tensor *loss = tp_pointwise_loss(&ctx, x, targets, c.kind, &correct);
    double expected = reference_loss(&c, x->data, &expected_correct);
    CHECK(tp_forward_ok(loss->data, &expected, 1, c.name));
    tp_backward(&ctx, loss);
    for (int i = 0; i < N; i++) {
        double sigmoid = 1.0 / (1.0 + exp(-(double)x->data[i]));
        CHECK_MSG(fabs(x->grad[i] - (sigmoid - targets[i]) / N) < 1e-7, "%s: gradient %d: %g", c.name, i,
                  x->grad[i]);
    }
    x->grad = NULL;
    tp_ctx_free(&ctx);
    tp_test_tensor_free(backend, x);
}

int main(void)
{
    float binary[N], soft[N], values[N];
    for (int i = 0; i < N; i++) {
        binary[i] = (float)((i * 7 + 3) % 3 == 0);
        soft[i] = (float)((i * 5) % 11) / 10.0f;
        values[i] = 0.5f * (float)(i % 7) - 1.2f;
    }
    const loss_case bce = {"bce_with_logits, 0/1 targets", TP_LOSS_BCE_WITH_LOGITS, binary};
    const loss_case bce_soft = {"bce_with_logits, soft targets", TP_LOSS_BCE_WITH_LOGITS, soft};
    const loss_case mse = {"squared_error", TP_LOSS_SQUARED_ERROR, values};
    test_case(&bce, 2.0f, 1);
    test_case(&bce_soft, 2.0f, 2);
    test_case(&mse, 1.5f, 3);
    test_saturated(binary);
    return tp_test_finish("test_ops_pointwise_loss");
}
