/* tp_backward releases the gradient of every op output once that op's backward has run, and
 * tp_grad_of reuses a released buffer of the same size: a deep chain of same-shaped layers needs
 * gradient memory for about one layer, not one per layer.
 *   - the step arena's high-water mark: going from 4 to 16 layers (linear + GELU, [64, 64]) adds
 *     the 12 layers' activations (two tensors per layer) and no gradients (without the release
 *     it would add four tensors per layer); the outputs' grads are NULL afterwards, the leaves'
 *     remain;
 *   - a chain whose backward reuses buffers (three same-shaped layers with a residual sum, so a
 *     gradient is accumulated from two readers) against central differences. */
#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;
enum { ROWS = 64, COLS = 64 };

static tp_tensor *layer(tp_ctx *ctx, tp_tensor *y, tp_tensor *weight)
{
    return tp_act(ctx, tp_linear(ctx, y, weight, NULL), TP_ACT_GELU);
}

/* x -> layers -> weighted sum; returns the arena's high-water mark after backward. */
static size_t chain_high_water(tp_tensor *x, tp_tensor *weight, int layers)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 10);
    ctx.record = 1;
    static float weights[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++) weights[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
    tp_tensor *y = x, *outputs[16];
    for (int i = 0; i < layers; i++) outputs[i] = y = layer(&ctx, y, weight);
    tp_backward(&ctx, tp_test_weighted_sum(&ctx, y, weights));
    for (int i = 0; i < layers; i++) CHECK(outputs[i]->grad == NULL);
    CHECK(x->grad != NULL && weight->grad != NULL); /* leaves keep theirs */
    size_t high_water = ctx.arena.high_water;
    x->grad = weight->grad = NULL; /* they lived in the arena */
    tp_ctx_free(&ctx);
    return high_water;
}

static tp_tensor *residual_chain(tp_ctx *ctx, tp_tensor *const *inputs, void *user)
{
    (void)user;
    tp_tensor *first = layer(ctx, inputs[0], inputs[1]);
    tp_tensor *second = layer(ctx, first, inputs[1]);
    return layer(ctx, tp_add(ctx, first, second), inputs[1]);
}

int main(void)
{
    const int64_t shape[2] = {ROWS, COLS};
    tp_tensor *x = tp_test_tensor(backend, 2, shape, 1, 0, 1);
    tp_tensor *weight = tp_test_tensor(backend, 2, shape, 2, 0, 0.1);
    size_t shallow = chain_high_water(x, weight, 4), deep = chain_high_water(x, weight, 16);
    size_t activations = 12 * 2 * sizeof(float) * ROWS * COLS;
    CHECK_MSG(deep - shallow <= activations + 4096, "12 more layers took %zu bytes; their activations are %zu",
              deep - shallow, activations);

    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 20);
    tp_tensor *inputs[2] = {x, weight};
    tp_gradcheck_options options = {TP_GRADIENT_STEP, 200, 3};
    tp_gradcheck_result result = tp_gradcheck(&ctx, residual_chain, NULL, inputs, 2, &options);
    CHECK(tp_gradcheck_ok(&result, TP_GRADIENT_TOLERANCE, "residual chain with reused gradient buffers"));
    tp_ctx_free(&ctx);
    tp_test_tensor_free(backend, x);
    tp_test_tensor_free(backend, weight);
    return tp_test_finish("test_ops_grad_release");
}
