/* "word": token embedding, [vocab_size (rows padded for the kernels), emb_size]. */
#include "modules/layers/layers.h"

typedef struct word_embedding {
    tp_tensor *table;
} word_embedding;

static void *word_create(tp_build *build, const char *prefix)
{
    word_embedding *self = tp_xmalloc(sizeof *self);
    char name[TP_NAME_MAX];
    int64_t shape[2] = {build->hp->vocab_size, build->hp->emb_size};
    tp_name(name, prefix, "embedding.weight");
    self->table = tp_param_new_padded(build->params, name, 2, shape, TP_INIT_NORMAL, build->hp->vocab_row_multiple);
    return self;
}

static tp_tensor *word_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    word_embedding *word = self;
    return tp_embedding(ctx, word->table, batch->src, batch->batch_size * batch->seq_length);
}

const tp_embedding_type tp_embedding_word = {"word", word_create, word_forward, NULL};
