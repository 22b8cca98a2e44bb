/* "cls": sequence classification (TencentPretrain's cls target and fine-tuning classifier):
 * the pooled head (modules/layers/layers.h: pooling -> linear_1 -> tanh -> linear_2 with
 * `labels_num` classes) -> cross-entropy against the batch's labels. */
#include "modules/layers/layers.h"

typedef struct cls_target {
    tp_pooled_head head;
} cls_target;

static void *cls_create(tp_build *build, const char *prefix)
{
    cls_target *self = tp_xcalloc(1, sizeof *self);
    int64_t labels_num = 0;
    if (tp_config_int(build->config, "labels_num", 2, 2, 1 << 20, &labels_num) < 0 ||
        tp_pooled_head_init(&self->head, build, prefix, labels_num) < 0) {
        free(self);
        return NULL;
    }
    return self;
}

static int cls_forward(void *self, tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch, tp_target_result *out)
{
    cls_target *cls = self;
    out->logits = tp_pooled_head_forward(ctx, &cls->head, hidden, batch);
    out->classes = cls->head.outputs;
    if (!batch->labels) return 0; /* inference: logits only */
    out->loss = tp_cross_entropy(ctx, out->logits, batch->labels, out->classes, &out->count, &out->correct);
    return 0;
}

const tp_target_type tp_target_cls = {"cls", cls_create, cls_forward, NULL, tp_pooled_target_reads_marked_rows};
