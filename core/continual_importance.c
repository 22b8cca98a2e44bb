/* Parameter importance from per-example gradients of log p(y|x) (core/continual.h). */
#include "core/continual.h"

#include "core/error.h"

int tp_importance_estimate(tp_params *params, tp_ctx *ctx, tp_example_loss_fn loss_fn, void *user,
                           const int64_t *examples, int64_t count, float *importance)
{
    int64_t n = params->total;
    int record = ctx->record, training = ctx->training;
    for (int64_t i = 0; i < n; i++) importance[i] = 0.0f;
    tp_params_zero_grad(params);
    int64_t failed = -1;
    /* One example per backward: the squares must be of each example's own gradient, not of a batch's. */
    for (int64_t e = 0; e < count && failed < 0; e++) {
        ctx->record = 1;
        ctx->training = 0;
        tp_tensor *loss = loss_fn(ctx, user, examples[e]);
        if (loss) {
            tp_backward(ctx, loss);
            const float *grad = params->grad;
            for (int64_t i = 0; i < n; i++) importance[i] += grad[i] * grad[i];
            tp_params_zero_grad(params);
        } else {
            failed = examples[e];
        }
        tp_ctx_reset(ctx);
    }
    ctx->record = record;
    ctx->training = training;
    if (failed >= 0) return tp_fail_context("importance estimation, example %lld", (long long)failed);
    float inverse = count > 0 ? 1.0f / (float)count : 0.0f;
    for (int64_t i = 0; i < n; i++) importance[i] *= inverse;
    return 0;
}

void tp_importance_accumulate(float *importance, const float *update, double gamma, int64_t n)
{
    float g = (float)gamma;
    for (int64_t i = 0; i < n; i++) importance[i] = g * importance[i] + update[i];
}
