#include "patches.h"

#include <stdio.h>
#include <string.h>

#include "core/image_augment.h"

int tp_patch_geometry_read(tp_config *config, tp_patch_projection *pe)
{
    if (tp_config_int(config, "image_height", 256, 1, 1 << 16, &pe->height) < 0 ||
        tp_config_int(config, "image_width", 256, 1, 1 << 16, &pe->width) < 0 ||
        tp_config_int(config, "patch_size", 16, 1, 1 << 16, &pe->patch) < 0 ||
        tp_config_int(config, "channels_num", 3, 1, 1024, &pe->channels) < 0)
        return -1;
    tp_image_augment augment; /* the data loaders' key, checked with the model's */
    if (tp_image_augment_read(config, &augment) < 0) return -1;
    pe->grid_rows = pe->height / pe->patch;
    pe->grid_cols = pe->width / pe->patch;
    if (pe->grid_rows == 0 || pe->grid_cols == 0)
        return tp_fail("%s: key 'patch_size': %lld is larger than the %lld x %lld image", tp_config_name(config),
                       (long long)pe->patch, (long long)pe->height, (long long)pe->width);
    return 0;
}

/* The image geometry keys; -1 + tp_fail when the image has no patch or the sequence does not fit. */
static int read_geometry(tp_build *build, tp_patch_projection *pe, int64_t other_rows, int *with_bias)
{
    const char *file = tp_config_name(build->config);
    if (tp_patch_geometry_read(build->config, pe) < 0 || tp_config_bool(build->config, "patch_bias", 1, with_bias) < 0)
        return -1;
    int64_t patches = pe->grid_rows * pe->grid_cols;
    if (other_rows + patches + 1 > build->hp->max_seq_length) {
        if (other_rows)
            return tp_fail("%s: key 'max_seq_length': %lld rows, but the image has %lld patches + the class token "
                           "after at least %lld other row(s)", file, (long long)build->hp->max_seq_length,
                           (long long)patches, (long long)other_rows);
        return tp_fail("%s: key 'max_seq_length': %lld rows, but the image has %lld patches + the class token", file,
                       (long long)build->hp->max_seq_length, (long long)patches);
    }
    return 0;
}

int tp_patch_projection_init(tp_patch_projection *pe, tp_build *build, const char *prefix, int64_t other_rows)
{
    int with_bias = 1;
    memset(pe, 0, sizeof *pe);
    if (read_geometry(build, pe, other_rows, &with_bias) < 0) return -1;
    char name[TP_NAME_MAX];
    int64_t emb = pe->emb_size = build->hp->emb_size;
    int64_t token_shape[3] = {1, 1, emb}, weight_shape[4] = {emb, pe->channels, pe->patch, pe->patch};
    tp_name(name, prefix, "cls_emb");
    pe->class_token = tp_param_new(build->params, name, 3, token_shape, TP_INIT_NORMAL);
    tp_name(name, prefix, "projection.weight");
    pe->weight = tp_param_new(build->params, name, 4, weight_shape, TP_INIT_NORMAL);
    if (with_bias) {
        tp_name(name, prefix, "projection.bias");
        pe->bias = tp_param_new(build->params, name, 1, &emb, TP_INIT_NORMAL);
    }
    return 0;
}

tp_tensor *tp_matrix_view(tp_ctx *ctx, const tp_tensor *t, int64_t rows, int64_t cols)
{
    tp_tensor *view = tp_arena_alloc(&ctx->host_arena, sizeof *view);
    *view = *t;
    view->ndim = 2;
    view->shape[0] = rows;
    view->shape[1] = cols;
    return view;
}

tp_tensor *tp_uploaded_matrix(tp_ctx *ctx, const float *host, int64_t rows, int64_t cols)
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
static void patch_row(const tp_patch_projection *pe, const float *image, int64_t gy, int64_t gx, float *row)
{
    int64_t p = pe->patch;
    for (int64_t c = 0; c < pe->channels; c++)
        for (int64_t y = 0; y < p; y++)
            memcpy(row + (c * p + y) * p, image + (c * pe->height + gy * p + y) * pe->width + gx * p,
                   (size_t)p * sizeof *row);
}

static void check_batch(const tp_patch_projection *pe, const tp_model_batch *batch, int64_t seq)
{
    int64_t image_floats = pe->channels * pe->height * pe->width;
    if (batch->pixels && batch->pixel_width == image_floats && batch->seq_length == seq) return;
    fprintf(stderr, "tp: internal error: patch embedding: a batch of %lld-value images in %lld-row sequences "
            "for %lld-value images in %lld rows\n", (long long)(batch->pixels ? batch->pixel_width : 0),
            (long long)batch->seq_length, (long long)image_floats, (long long)seq);
    abort();
}

/* The host indicator column of one kind of row, uploaded, times the [emb] vector `values` -> [rows, emb]. */
static tp_tensor *broadcast_rows(tp_ctx *ctx, const float *indicator, int64_t rows, const tp_tensor *values,
                                 int64_t emb)
{
    return tp_linear(ctx, tp_uploaded_matrix(ctx, indicator, rows, 1), tp_matrix_view(ctx, values, emb, 1), NULL);
}

tp_tensor *tp_patch_projection_forward(const tp_patch_projection *pe, tp_ctx *ctx, const tp_model_batch *batch,
                                       const tp_patch_layout *layout)
{
    int64_t patches = pe->grid_rows * pe->grid_cols, seq = layout->first_row + patches + 1;
    int64_t rows = batch->batch_size * seq, emb = pe->emb_size;
    int64_t width = pe->channels * pe->patch * pe->patch, image_floats = pe->channels * pe->height * pe->width;
    check_batch(pe, batch, seq);
    const uint8_t *masked = layout->mask_token ? batch->patch_mask : NULL;
    float *matrix = tp_arena_alloc(&ctx->host_arena, (size_t)(rows * width) * sizeof *matrix);
    float *is_patch = tp_arena_alloc(&ctx->host_arena, (size_t)rows * sizeof *is_patch);
    float *is_class = tp_arena_alloc(&ctx->host_arena, (size_t)rows * sizeof *is_class);
    float *is_masked = tp_arena_alloc(&ctx->host_arena, (size_t)rows * sizeof *is_masked);
    for (int64_t r = 0; r < rows; r++) {
        int64_t b = r / seq, image_row = r % seq - layout->first_row, patch = image_row - 1;
        int mask = patch >= 0 && masked && masked[b * patches + patch];
        is_class[r] = image_row == 0;
        is_patch[r] = patch >= 0 && !mask;
        is_masked[r] = mask;
        if (is_patch[r] != 0.0f)
            patch_row(pe, batch->pixels + b * image_floats, patch / pe->grid_cols, patch % pe->grid_cols,
                      matrix + r * width);
        else
            memset(matrix + r * width, 0, (size_t)width * sizeof *matrix);
    }
    tp_tensor *out = tp_linear(ctx, tp_uploaded_matrix(ctx, matrix, rows, width),
                               tp_matrix_view(ctx, pe->weight, emb, width), NULL);
    if (pe->bias) out = tp_add(ctx, out, broadcast_rows(ctx, is_patch, rows, pe->bias, emb));
    out = tp_add(ctx, out, broadcast_rows(ctx, is_class, rows, pe->class_token, emb));
    if (masked) out = tp_add(ctx, out, broadcast_rows(ctx, is_masked, rows, layout->mask_token, emb));
    return out;
}
