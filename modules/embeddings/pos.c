/* "pos": learned absolute position embedding, [max_seq_length, emb_size]. */
#include "modules/layers/layers.h"

static const int32_t *pos_ids(const tp_model_batch *batch) { return batch->positions; }

static void *pos_create(tp_build *build, const char *prefix)
{
    return tp_lookup_embedding_create(build, prefix, build->hp->max_seq_length, 1, pos_ids);
}

const tp_embedding_type tp_embedding_pos = {"pos", pos_create, tp_lookup_embedding_forward, NULL};
