/* Target-side "pos" embedding: learned positions of the decoder's input,
 * tgt_embedding.pos.embedding.weight [max_seq_length + position_offset, emb_size]; token t looks up
 * row t + position_offset (Hugging Face BART: 2). */
#include "modules/layers/layers.h"

typedef struct tgt_pos_embedding {
    tp_lookup_embedding *lookup;
    int64_t offset;
} tgt_pos_embedding;

static void *tgt_pos_create(tp_build *build, const char *prefix)
{
    tgt_pos_embedding *self = tp_xmalloc(sizeof *self);
    self->offset = build->hp->position_offset;
    self->lookup = tp_lookup_embedding_create(build, prefix, build->hp->max_seq_length + self->offset, 1, NULL);
    return self;
}

static tp_tensor *tgt_pos_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    tgt_pos_embedding *pos = self;
    int64_t tokens = batch->batch_size * batch->tgt_seq_length;
    int32_t *ids = tp_arena_alloc(&ctx->host_arena, (size_t)tokens * sizeof *ids);
    for (int64_t i = 0; i < tokens; i++) ids[i] = (int32_t)(i % batch->tgt_seq_length + pos->offset);
    return tp_embedding(ctx, pos->lookup->table, tp_ids_upload(ctx, ids, tokens), tokens);
}

static void tgt_pos_destroy(void *self)
{
    tgt_pos_embedding *pos = self;
    free(pos->lookup);
    free(pos);
}

const tp_embedding_type tp_tgt_embedding_pos = {"pos", tgt_pos_create, tgt_pos_forward, tgt_pos_destroy};
