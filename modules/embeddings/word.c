/* "word": token embedding, [vocab_size (rows padded for the kernels), emb_size]; with scale_embedding
 * (Pegasus) the rows are multiplied by sqrt(emb_size). */
#include <math.h>

#include "modules/layers/layers.h"

static const int32_t *word_ids(const tp_model_batch *batch) { return batch->src; }

static void *word_create(tp_build *build, const char *prefix)
{
    tp_lookup_embedding *self =
        tp_lookup_embedding_create(build, prefix, build->hp->vocab_size, build->hp->vocab_row_multiple, word_ids);
    if (build->hp->scale_embedding) self->scale = sqrtf((float)build->hp->emb_size);
    return self;
}

const tp_embedding_type tp_embedding_word = {"word", word_create, tp_lookup_embedding_forward, NULL};
