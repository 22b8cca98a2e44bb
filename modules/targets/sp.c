/* "sp": sentence prediction (BERT's NSP, ALBERT's SOP) from each sequence's
 * first token: linear_1 -> tanh -> linear_2 (2 classes) -> cross-entropy.  linear_1 is
 * Hugging Face's pooler (bert.pooler.dense, albert.pooler). */
#include "modules/layers/layers.h"

typedef struct sp_target {
    tp_linear_layer linear_1, linear_2;
} sp_target;

static void *sp_create(tp_build *build, const char *prefix)
{
    sp_target *self = tp_xcalloc(1, sizeof *self);
    char name[TP_NAME_MAX];
    tp_name(name, prefix, "linear_1");
    tp_linear_layer_init(&self->linear_1, build, name, build->hp->hidden_size, build->hp->hidden_size, 1);
    tp_name(name, prefix, "linear_2");
    tp_linear_layer_init(&self->linear_2, build, name, build->hp->hidden_size, 2, 1);
    return self;
}

static int sp_forward(void *self, tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch, tp_target_result *out)
{
    sp_target *sp = self;
    tp_tensor *first = tp_gather_rows(ctx, hidden, batch->first_rows, batch->batch_size);
    tp_tensor *pooled = tp_act(ctx, tp_linear_layer_forward(ctx, &sp->linear_1, first), TP_ACT_TANH);
    tp_tensor *logits = tp_linear_layer_forward(ctx, &sp->linear_2, pooled);
    out->logits = logits;
    out->classes = 2;
    if (!batch->sp_labels) return 0; /* inference: logits only */
    out->loss = tp_cross_entropy(ctx, logits, batch->sp_labels, 2, &out->count, &out->correct);
    return 0;
}

const tp_target_type tp_target_sp = {"sp", sp_create, sp_forward, NULL, tp_target_reads_marked_rows};
