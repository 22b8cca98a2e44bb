/* "tagging": a tag for every token (TencentPretrain's run_ner.py without CRF): output_layer, one
 * linear map of each token's hidden state to `labels_num` tag scores -> cross-entropy against the
 * batch's tag ids, averaged over the tokens whose tag is >= 0 (the caller marks [CLS], [SEP],
 * padding and the non-first pieces of a word with -1). */
#include "modules/layers/layers.h"

typedef struct tagging_target {
    tp_linear_layer output_layer;
    int64_t labels_num;
} tagging_target;

static void *tagging_create(tp_build *build, const char *prefix)
{
    tagging_target *self = tp_xcalloc(1, sizeof *self);
    char name[TP_NAME_MAX];
    if (tp_config_int(build->config, "labels_num", 2, 1, 1 << 20, &self->labels_num) < 0) {
        free(self);
        return NULL;
    }
    tp_name(name, prefix, "output_layer");
    tp_linear_layer_init(&self->output_layer, build, name, build->hp->hidden_size, self->labels_num, 1);
    return self;
}

static int tagging_forward(void *self, tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch,
                           tp_target_result *out)
{
    tagging_target *target = self;
    out->logits = tp_linear_layer_forward(ctx, &target->output_layer, hidden); /* [B*S, labels_num] */
    out->classes = target->labels_num;
    if (!batch->tags) return 0; /* inference: scores only */
    out->loss = tp_cross_entropy(ctx, out->logits, batch->tags, target->labels_num, &out->count, &out->correct);
    return 0;
}

const tp_target_type tp_target_tagging = {"tagging", tagging_create, tagging_forward, NULL};
