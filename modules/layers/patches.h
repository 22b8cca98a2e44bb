/* The image-to-patch projection the patch embeddings share ("patch", "masked_patch",
 * "word_patch"): TencentPretrain's PatchEmbedding, Hugging Face's ViT / BEiT / ViLT patch
 * embeddings without the positions.  A Conv2d with kernel = stride = patch_size over the
 * channels_num x image_height x image_width image, one row per patch (row-major over the patch
 * grid; a remainder narrower than a patch is dropped, as the convolution drops it), preceded by
 * the learned class token:
 *   image row 0        cls_emb
 *   image row 1 + i    projection.weight . (patch i, flattened as (channel, y, x)) + projection.bias
 * Parameters (TencentPretrain's names and shapes): <prefix>.cls_emb [1, 1, emb_size],
 * <prefix>.projection.weight [emb_size, channels_num, patch_size, patch_size],
 * <prefix>.projection.bias [emb_size].  Keys: image_height, image_width (256), patch_size (16),
 * channels_num (3): TencentPretrain's defaults; tp extension `patch_bias` (default true, Hugging
 * Face ViT's; false: no projection.bias, as TencentPretrain's own PatchEmbedding and CLIP have).
 *
 * The convolution is one product: the patches are laid out on the host as the rows of a matrix
 * X [rows, channels * patch^2] (im2col; every other row zero) and uploaded, and
 *   out = X W^T + is_patch b^T + is_class c^T (+ is_masked m^T)
 * with the is_* the [rows, 1] indicator columns of the kinds of row -- tp_linear calls, so the
 * tape gives W, b, c (and a mask token m) their gradients with no op of its own. */
#ifndef TP_PATCHES_H
#define TP_PATCHES_H

#include "layers.h"

typedef struct tp_patch_projection {
    int64_t channels, height, width, patch, grid_rows, grid_cols, emb_size;
    tp_tensor *class_token, *weight, *bias; /* bias NULL with patch_bias false */
} tp_patch_projection;

/* Reads image_height, image_width, patch_size and channels_num into pe and sets its grid, and checks
 * image_preprocess (core/image_augment.h, which the data loaders apply); -1 + tp_fail naming the
 * config when a patch does not fit the image or a key is wrong. */
int tp_patch_geometry_read(tp_config *config, tp_patch_projection *pe);
/* Reads the keys and declares the parameters under prefix; the sequences hold other_rows rows
 * besides the image's patches + class token, and max_seq_length must cover them all (the pos
 * embedding looks every row up).  -1 + tp_fail naming the config and key. */
int tp_patch_projection_init(tp_patch_projection *pe, tp_build *build, const char *prefix, int64_t other_rows);

/* The rows an image takes: patches + the class token. */
static inline int64_t tp_patch_image_rows(const tp_patch_projection *pe)
{
    return pe->grid_rows * pe->grid_cols + 1;
}

/* What tp_patch_projection_forward lays out: the batch's images (batch->pixels, one per sequence)
 * in rows first_row .. first_row + patches of every sequence (the rows before are 0); with
 * mask_token, the patches batch->patch_mask marks are mask_token's rows instead (BEiT). */
typedef struct tp_patch_layout {
    int64_t first_row;
    tp_tensor *mask_token; /* [emb_size] values, or NULL: no patch is masked */
} tp_patch_layout;

/* [batch * seq_length, emb_size]; a batch without pixels of the configured size, or with
 * sequences of another length than first_row + the image's rows, is an internal error (abort). */
tp_tensor *tp_patch_projection_forward(const tp_patch_projection *pe, tp_ctx *ctx, const tp_model_batch *batch,
                                       const tp_patch_layout *layout);

/* A host [rows, cols] matrix uploaded into the step arena (no gradient). */
tp_tensor *tp_uploaded_matrix(tp_ctx *ctx, const float *host, int64_t rows, int64_t cols);
/* t's values read as a [rows, cols] matrix, sharing its data and its gradient buffer: for
 * parameters (their gradient buffer exists before the forward pass) and inputs needing none. */
tp_tensor *tp_matrix_view(tp_ctx *ctx, const tp_tensor *t, int64_t rows, int64_t cols);

#endif
