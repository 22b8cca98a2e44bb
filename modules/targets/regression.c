/* "regression": one real value per sequence (TencentPretrain's run_regression.py): the pooled
 * head (pooling -> linear_1 -> tanh -> linear_2 with 1 output) -> mean squared error against the
 * batch's targets.  The training log's accuracy of this target is always 0. */
#include "modules/layers/layers.h"

typedef struct regression_target {
    tp_pooled_head head;
} regression_target;

static void *regression_create(tp_build *build, const char *prefix)
{
    regression_target *self = tp_xcalloc(1, sizeof *self);
    if (tp_pooled_head_init(&self->head, build, prefix, 1) < 0) {
        free(self);
        return NULL;
    }
    return self;
}

static int regression_forward(void *self, tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch,
                              tp_target_result *out)
{
    regression_target *target = self;
    out->logits = tp_pooled_head_forward(ctx, &target->head, hidden, batch);
    out->classes = 1;
    if (!batch->targets) return 0; /* inference: predictions only */
    if (batch->target_width != 1)
        return tp_fail("regression target: the batch has %lld targets per sequence, expected 1",
                       (long long)batch->target_width);
    out->loss = tp_pointwise_loss(ctx, out->logits, batch->targets, TP_LOSS_SQUARED_ERROR, NULL);
    out->count = batch->batch_size;
    return 0;
}

const tp_target_type tp_target_regression = {"regression", regression_create, regression_forward, NULL,
                                             tp_pooled_target_reads_marked_rows};
