/* "seg": segment embedding with 3 rows (0 = padding, 1 = segment A, 2 = segment B). */
#include "modules/layers/layers.h"

typedef struct seg_embedding {
    tp_tensor *table;
} seg_embedding;

static void *seg_create(tp_build *build, const char *prefix)
{
    seg_embedding *self = tp_xmalloc(sizeof *self);
    char name[TP_NAME_MAX];
    int64_t shape[2] = {3, build->hp->emb_size};
    tp_name(name, prefix, "embedding.weight");
    self->table = tp_param_new(build->params, name, 2, shape, TP_INIT_NORMAL);
    return self;
}

static tp_tensor *seg_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    seg_embedding *seg = self;
    return tp_embedding(ctx, seg->table, batch->seg, batch->batch_size * batch->seq_length);
}

const tp_embedding_type tp_embedding_seg = {"seg", seg_create, seg_forward, NULL};
