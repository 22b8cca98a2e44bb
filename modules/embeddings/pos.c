/* "pos": learned absolute position embedding, [max_seq_length, emb_size]. */
#include "modules/layers/layers.h"

typedef struct pos_embedding {
    tp_tensor *table;
} pos_embedding;

static void *pos_create(tp_build *build, const char *prefix)
{
    pos_embedding *self = tp_xmalloc(sizeof *self);
    char name[TP_NAME_MAX];
    int64_t shape[2] = {build->hp->max_seq_length, build->hp->emb_size};
    tp_name(name, prefix, "embedding.weight");
    self->table = tp_param_new(build->params, name, 2, shape, TP_INIT_NORMAL);
    return self;
}

static tp_tensor *pos_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    pos_embedding *pos = self;
    return tp_embedding(ctx, pos->table, batch->positions, batch->batch_size * batch->seq_length);
}

const tp_embedding_type tp_embedding_pos = {"pos", pos_create, pos_forward, NULL};
