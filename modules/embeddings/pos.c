/* "pos": learned absolute position embedding, [max_seq_length + position_offset, emb_size].
 * Token s of a sequence looks up row s + position_offset (0 for BERT and TencentPretrain;
 * Hugging Face RoBERTa's table starts at padding_idx + 1 = 2). */
#include "modules/layers/layers.h"

typedef struct pos_embedding {
    tp_lookup_embedding *lookup;
    int64_t offset;
} pos_embedding;

static const int32_t *pos_ids(const tp_model_batch *batch) { return batch->positions; }

static void *pos_create(tp_build *build, const char *prefix)
{
    pos_embedding *self = tp_xmalloc(sizeof *self);
    self->offset = build->hp->position_offset;
    self->lookup = tp_lookup_embedding_create(build, prefix, build->hp->max_seq_length + self->offset, 1, pos_ids);
    return self;
}

static tp_tensor *pos_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    pos_embedding *pos = self;
    if (pos->offset == 0) return tp_lookup_embedding_forward(pos->lookup, ctx, batch);
    int64_t tokens = batch->batch_size * batch->seq_length;
    int32_t *ids = tp_arena_alloc(&ctx->host_arena, (size_t)tokens * sizeof *ids);
    for (int64_t i = 0; i < tokens; i++) ids[i] = (int32_t)(i % batch->seq_length + pos->offset);
    return tp_embedding(ctx, pos->lookup->table, tp_ids_upload(ctx, ids, tokens), tokens);
}

static void pos_destroy(void *self)
{
    pos_embedding *pos = self;
    free(pos->lookup);
    free(pos);
}

const tp_embedding_type tp_embedding_pos = {"pos", pos_create, pos_forward, pos_destroy};
