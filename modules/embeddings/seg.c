/* "seg": segment embedding with 3 rows (0 = padding, 1 = segment A, 2 = segment B). */
#include "modules/layers/layers.h"

static const int32_t *seg_ids(const tp_model_batch *batch) { return batch->seg; }

static void *seg_create(tp_build *build, const char *prefix)
{
    return tp_lookup_embedding_create(build, prefix, 3, 1, seg_ids);
}

const tp_embedding_type tp_embedding_seg = {"seg", seg_create, tp_lookup_embedding_forward, NULL};
