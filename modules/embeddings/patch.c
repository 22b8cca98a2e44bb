/* "patch": ViT's image-to-patch embedding (TencentPretrain's PatchEmbedding, Hugging Face's
 * ViTEmbeddings without the positions): a Conv2d with kernel = stride = patch_size over the
 * channels_num x image_height x image_width image, one row per patch (row-major over the patch
 * grid; a remainder narrower than a patch is dropped, as the convolution drops it), preceded by
 * the learned class token:
 *   row 0          cls_emb
 *   row 1 + i      projection.weight . (patch i, flattened as (channel, y, x)) + projection.bias
 * Parameters (TencentPretrain's names and shapes): embedding.patch.cls_emb [1, 1, emb_size],
 * embedding.patch.projection.weight [emb_size, channels_num, patch_size, patch_size],
 * embedding.patch.projection.bias [emb_size].  Keys: image_height, image_width (256), patch_size
 * (16), channels_num (3): TencentPretrain's defaults; tp extension `patch_bias` (default true, Hugging
 * Face ViT's; false: no projection.bias, as TencentPretrain's own PatchEmbedding and CLIP have).
 * Sequences are patches + 1 rows long, and
 * max_seq_length must cover them (the pos embedding looks every row up).
 *
 * The convolution is one product: the patches are laid out on the host as the rows of a matrix
 * X [rows, channels * patch^2] (im2col; class-token rows zero) and uploaded, and
 *   out = X W^T + is_patch b^T + is_class c^T
 * with is_patch / is_class the [rows, 1] indicator columns of the two kinds of row -- three
 * tp_linear calls, so the tape gives W, b and c their gradients with no op of its own. */
#include <stdio.h>
#include <string.h>

#include "modules/layers/layers.h"

typedef struct patch_embedding {
    int64_t channels, height, width, patch, grid_rows, grid_cols, emb_size;
    tp_tensor *class_token, *weight, *bias; /* bias NULL with patch_bias false */
} patch_embedding;

/* The image geometry keys; -1 + tp_fail when the image has no patch or the sequence does not fit. */
static int read_geometry(tp_build *build, patch_embedding *pe, int *with_bias)
{
    const char *file = tp_config_name(build->config);
    if (tp_config_int(build->config, "image_height", 256, 1, 1 << 16, &pe->height) < 0 ||
        tp_config_int(build->config, "image_width", 256, 1, 1 << 16, &pe->width) < 0 ||
        tp_config_int(build->config, "patch_size", 16, 1, 1 << 16, &pe->patch) < 0 ||
        tp_config_int(build->config, "channels_num", 3, 1, 1024, &pe->channels) < 0 ||
        tp_config_bool(build->config, "patch_bias", 1, with_bias) < 0)
        return -1;
    pe->grid_rows = pe->height / pe->patch;
    pe->grid_cols = pe->width / pe->patch;
    if (pe->grid_rows == 0 || pe->grid_cols == 0)
        return tp_fail("%s: key 'patch_size': %lld is larger than the %lld x %lld image", file, (long long)pe->patch,
                       (long long)pe->height, (long long)pe->width);
    int64_t patches = pe->grid_rows * pe->grid_cols;
    if (patches + 1 > build->hp->max_seq_length)
        return tp_fail("%s: key 'max_seq_length': %lld rows, but the image has %lld patches + the class token", file,
                       (long long)build->hp->max_seq_length, (long long)patches);
    return 0;
}

static void *patch_create(tp_build *build, const char *prefix)
{
    patch_embedding *self = tp_xcalloc(1, sizeof *self);
    int with_bias = 1;
    if (read_geometry(build, self, &with_bias) < 0) {
        free(self);
        return NULL;
    }
    char name[TP_NAME_MAX];
    int64_t emb = self->emb_size = build->hp->emb_size;
    int64_t token_shape[3] = {1, 1, emb}, weight_shape[4] = {emb, self->channels, self->patch, self->patch};
    tp_name(name, prefix, "cls_emb");
    self->class_token = tp_param_new(build->params, name, 3, token_shape, TP_INIT_NORMAL);
    tp_name(name, prefix, "projection.weight");
    self->weight = tp_param_new(build->params, name, 4, weight_shape, TP_INIT_NORMAL);
    if (with_bias) {
        tp_name(name, prefix, "projection.bias");
        self->bias = tp_param_new(build->params, name, 1, &emb, TP_INIT_NORMAL);
    }
    return self;
}

/* t's values read as a [rows, cols] matrix, sharing its data and its gradient buffer: for
 * parameters (their gradient buffer exists before the forward pass) and inputs needing none. */
static tp_tensor *as_matrix(tp_ctx *ctx, const tp_tensor *t, int64_t rows, int64_t cols)
{
    tp_tensor *view = tp_arena_alloc(&ctx->host_arena, sizeof *view);
    *view = *t;
    view->ndim = 2;
    view->shape[0] = rows;
    view->shape[1] = cols;
    return view;
}

/* A host matrix uploaded into the step arena (no gradient). */
static tp_tensor *uploaded(tp_ctx *ctx, const float *host, int64_t rows, int64_t cols)
{
    tp_tensor *t = tp_arena_alloc(&ctx->host_arena, sizeof *t);
    memset(t, 0, sizeof *t);
    t->ndim = 2;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->data = tp_floats_upload(ctx, host, rows * cols);
    return t;
}

/* Patch (gy, gx) of a C x H x W image as one row, in the order (channel, y, x) of the weight. */
static void patch_row(const patch_embedding *pe, const float *image, int64_t gy, int64_t gx, float *row)
{
    int64_t p = pe->patch;
    for (int64_t c = 0; c < pe->channels; c++)
        for (int64_t y = 0; y < p; y++)
            memcpy(row + (c * p + y) * p, image + (c * pe->height + gy * p + y) * pe->width + gx * p,
                   (size_t)p * sizeof *row);
}

static tp_tensor *patch_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    patch_embedding *pe = self;
    int64_t patches = pe->grid_rows * pe->grid_cols, seq = patches + 1, rows = batch->batch_size * seq;
    int64_t width = pe->channels * pe->patch * pe->patch, image_floats = pe->channels * pe->height * pe->width;
    if (!batch->pixels || batch->pixel_width != image_floats || batch->seq_length != seq) {
        fprintf(stderr, "tp: internal error: patch embedding: a batch of %lld-value images in %lld-row sequences "
                "for %lld-value images in %lld rows\n", (long long)(batch->pixels ? batch->pixel_width : 0),
                (long long)batch->seq_length, (long long)image_floats, (long long)seq);
        abort();
    }
    float *matrix = tp_arena_alloc(&ctx->host_arena, (size_t)(rows * width) * sizeof *matrix);
    float *is_patch = tp_arena_alloc(&ctx->host_arena, (size_t)rows * sizeof *is_patch);
    float *is_class = tp_arena_alloc(&ctx->host_arena, (size_t)rows * sizeof *is_class);
    for (int64_t r = 0; r < rows; r++) {
        int64_t b = r / seq, token = r % seq;
        is_class[r] = token == 0;
        is_patch[r] = token != 0;
        if (token == 0)
            memset(matrix + r * width, 0, (size_t)width * sizeof *matrix);
        else
            patch_row(pe, batch->pixels + b * image_floats, (token - 1) / pe->grid_cols, (token - 1) % pe->grid_cols,
                      matrix + r * width);
    }
    int64_t emb = pe->emb_size;
    tp_tensor *out = tp_linear(ctx, uploaded(ctx, matrix, rows, width), as_matrix(ctx, pe->weight, emb, width), NULL);
    if (pe->bias)
        out = tp_add(ctx, out,
                     tp_linear(ctx, uploaded(ctx, is_patch, rows, 1), as_matrix(ctx, pe->bias, emb, 1), NULL));
    return tp_add(ctx, out,
                  tp_linear(ctx, uploaded(ctx, is_class, rows, 1), as_matrix(ctx, pe->class_token, emb, 1), NULL));
}

const tp_embedding_type tp_embedding_patch = {"patch", patch_create, patch_forward, NULL};
