/* "multi_label": multi-label classification (TencentPretrain's run_classifier_multi_label.py):
 * the pooled head (pooling -> linear_1 -> tanh -> linear_2 with `labels_num` outputs) ->
 * sigmoid + binary cross-entropy per label (BCEWithLogitsLoss, the mean over batch x labels)
 * against the batch's 0/1 targets.  A label is predicted where its logit is > 0. */
#include "modules/layers/layers.h"

typedef struct multi_label_target {
    tp_pooled_head head;
} multi_label_target;

static void *multi_label_create(tp_build *build, const char *prefix)
{
    multi_label_target *self = tp_xcalloc(1, sizeof *self);
    int64_t labels_num = 0;
    if (tp_config_int(build->config, "labels_num", 2, 1, 1 << 20, &labels_num) < 0 ||
        tp_pooled_head_init(&self->head, build, prefix, labels_num) < 0) {
        free(self);
        return NULL;
    }
    return self;
}

static int multi_label_forward(void *self, tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch,
                               tp_target_result *out)
{
    multi_label_target *target = self;
    out->logits = tp_pooled_head_forward(ctx, &target->head, hidden, batch);
    out->classes = target->head.outputs;
    if (!batch->targets) return 0; /* inference: logits only */
    if (batch->target_width != out->classes)
        return tp_fail("multi_label target: the batch has %lld targets per sequence, the head %lld labels",
                       (long long)batch->target_width, (long long)out->classes);
    /* count / correct: label bits, so the training accuracy is the share of bits predicted right. */
    out->loss = tp_pointwise_loss(ctx, out->logits, batch->targets, TP_LOSS_BCE_WITH_LOGITS, &out->correct);
    out->count = batch->batch_size * out->classes;
    return 0;
}

const tp_target_type tp_target_multi_label = {"multi_label", multi_label_create, multi_label_forward, NULL,
                                              tp_pooled_target_reads_marked_rows};
