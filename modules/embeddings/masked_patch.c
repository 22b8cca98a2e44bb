/* "masked_patch": BEiT's patch embedding (TencentPretrain's MaskedPatchEmbedding, Hugging Face's
 * BeitEmbeddings without the positions): the "patch" embedding's rows (modules/layers/patches.h:
 * the class token, then one row per patch), except that each patch the batch's patch_mask marks
 * is the learned mask token instead of its projection -- the row is replaced, not added to, and
 * the embeddings listed after this one (BEiT: "pos") are added to it, as TencentPretrain and the
 * original BEiT do.  A batch without a patch_mask masks nothing (fine-tuning, inference).
 * Parameters (TencentPretrain's names): embedding.masked_patch.cls_emb [1, 1, emb_size],
 * embedding.masked_patch.mask_emb [1, emb_size], embedding.masked_patch.projection.weight (and
 * .bias unless patch_bias is false; TencentPretrain's has none, Hugging Face's has one).  Keys:
 * the "patch" embedding's. */
#include "modules/layers/patches.h"

typedef struct masked_patch_embedding {
    tp_patch_projection projection;
    tp_tensor *mask_token;
} masked_patch_embedding;

static void *masked_patch_create(tp_build *build, const char *prefix)
{
    masked_patch_embedding *self = tp_xmalloc(sizeof *self);
    if (tp_patch_projection_init(&self->projection, build, prefix, 0) < 0) {
        free(self);
        return NULL;
    }
    char name[TP_NAME_MAX];
    int64_t shape[2] = {1, build->hp->emb_size};
    tp_name(name, prefix, "mask_emb");
    self->mask_token = tp_param_new(build->params, name, 2, shape, TP_INIT_NORMAL);
    return self;
}

static tp_tensor *masked_patch_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    masked_patch_embedding *masked = self;
    tp_patch_layout layout = {.first_row = 0, .mask_token = masked->mask_token};
    return tp_patch_projection_forward(&masked->projection, ctx, batch, &layout);
}

const tp_embedding_type tp_embedding_masked_patch = {"masked_patch", masked_patch_create, masked_patch_forward,
                                                     NULL};
