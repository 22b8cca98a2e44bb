/* "cls": sequence classification (TencentPretrain's cls target and fine-tuning classifier):
 * pool the encoder output (`pooling`: first, mean, max or last real token) -> linear_1 ->
 * tanh -> linear_2 (`labels_num` classes) -> cross-entropy against the batch's labels.
 * Mean, max and last use the real tokens only; TencentPretrain weights segment-B tokens
 * twice in "mean" and indexes "last" by the sequence's segment sum, which is wrong for
 * sentence pairs -- tp does not copy that. */
#include "modules/layers/layers.h"

typedef enum { POOL_FIRST, POOL_MEAN, POOL_MAX, POOL_LAST } pooling_kind;

typedef struct cls_target {
    tp_linear_layer linear_1, linear_2;
    pooling_kind pooling;
    int64_t labels_num;
} cls_target;

static void *cls_create(tp_build *build, const char *prefix)
{
    static const char *const pooling_names[] = {"first", "mean", "max", "last", NULL};
    cls_target *self = tp_xcalloc(1, sizeof *self);
    char name[TP_NAME_MAX];
    int pooling = 0;
    if (tp_config_enum(build->config, "pooling", "first", pooling_names, &pooling) < 0 ||
        tp_config_int(build->config, "labels_num", 2, 2, 1 << 20, &self->labels_num) < 0) {
        free(self);
        return NULL;
    }
    self->pooling = (pooling_kind)pooling;
    tp_name(name, prefix, "linear_1");
    tp_linear_layer_init(&self->linear_1, build, name, build->hp->hidden_size, build->hp->hidden_size, 1);
    tp_name(name, prefix, "linear_2");
    tp_linear_layer_init(&self->linear_2, build, name, build->hp->hidden_size, self->labels_num, 1);
    return self;
}

static tp_tensor *pool(const cls_target *cls, tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch)
{
    switch (cls->pooling) {
    case POOL_MEAN: return tp_pool(ctx, hidden, TP_POOL_MEAN, batch->seg, batch->batch_size, batch->seq_length);
    case POOL_MAX: return tp_pool(ctx, hidden, TP_POOL_MAX, batch->seg, batch->batch_size, batch->seq_length);
    case POOL_LAST: return tp_gather_rows(ctx, hidden, batch->last_rows, batch->batch_size);
    default: return tp_gather_rows(ctx, hidden, batch->first_rows, batch->batch_size);
    }
}

static int cls_forward(void *self, tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch, tp_target_result *out)
{
    cls_target *cls = self;
    tp_tensor *pooled = tp_act(ctx, tp_linear_layer_forward(ctx, &cls->linear_1, pool(cls, ctx, hidden, batch)),
                               TP_ACT_TANH);
    out->logits = tp_linear_layer_forward(ctx, &cls->linear_2, pooled);
    out->classes = cls->labels_num;
    if (!batch->labels) return 0; /* inference: logits only */
    out->loss = tp_cross_entropy(ctx, out->logits, batch->labels, cls->labels_num, &out->count, &out->correct);
    return 0;
}

const tp_target_type tp_target_cls = {"cls", cls_create, cls_forward, NULL};
