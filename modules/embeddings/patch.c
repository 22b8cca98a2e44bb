/* "patch": ViT's image-to-patch embedding (TencentPretrain's PatchEmbedding, Hugging Face's
 * ViTEmbeddings without the positions): the class token, then one row per patch of the batch's
 * image (modules/layers/patches.h has the layout, the parameters under embedding.patch and the
 * keys).  Sequences are patches + 1 rows long, and max_seq_length must cover them. */
#include "modules/layers/patches.h"

static void *patch_create(tp_build *build, const char *prefix)
{
    tp_patch_projection *self = tp_xmalloc(sizeof *self);
    if (tp_patch_projection_init(self, build, prefix, 0) < 0) {
        free(self);
        return NULL;
    }
    return self;
}

static tp_tensor *patch_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    tp_patch_layout layout = {.first_row = 0, .mask_token = NULL};
    return tp_patch_projection_forward(self, ctx, batch, &layout);
}

const tp_embedding_type tp_embedding_patch = {"patch", patch_create, patch_forward, NULL};
