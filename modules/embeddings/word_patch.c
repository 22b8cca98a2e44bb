/* "word_patch": ViLT's single-stream input (TencentPretrain's WordPatchEmbedding): a sequence of
 * text_length token rows followed by an image's rows -- the class token, then one row per patch
 * (modules/layers/patches.h) -- in one sequence of seq_length = text_length + patches + 1 rows:
 *   rows 0 .. text_length - 1     language_embedding (a "word" embedding) of the batch's src ids
 *   rows text_length ..           vision_embedding (a "patch" embedding) of the batch's image
 * The embeddings listed after it run over the whole sequence, as TencentPretrain's do: "pos" gives
 * row s position s (one table for text and image, so max_seq_length covers both), and "seg" is the
 * modality -- TencentPretrain's ViLT batches give text rows segment 1 (padding 0) and image rows
 * segment 2.  The image rows' src ids are looked up and discarded, so they must be valid ids (the
 * padding id).  Parameters (TencentPretrain's names): embedding.word_patch.language_embedding
 * .embedding.weight [vocab_size, emb_size], embedding.word_patch.vision_embedding.cls_emb and
 * .projection.weight (.bias unless patch_bias is false).  Keys: the "patch" embedding's; the text
 * length is the batch's (seq_length - patches - 1), at least 1 row of max_seq_length.
 *
 * Hugging Face's ViltEmbeddings differs past this module: it gives text and image their own
 * position tables, a LayerNorm to the text rows alone and a 2-row modality embedding after it
 * (docs/media.md). */
#include "modules/layers/patches.h"

extern const tp_embedding_type tp_embedding_word;

typedef struct word_patch_embedding {
    void *language;
    tp_patch_projection vision;
} word_patch_embedding;

static void word_patch_destroy(void *self)
{
    word_patch_embedding *word_patch = self;
    if (tp_embedding_word.destroy)
        tp_embedding_word.destroy(word_patch->language);
    else
        free(word_patch->language);
    free(word_patch);
}

static void *word_patch_create(tp_build *build, const char *prefix)
{
    word_patch_embedding *self = tp_xcalloc(1, sizeof *self);
    char name[TP_NAME_MAX];
    tp_name(name, prefix, "language_embedding");
    if (!(self->language = tp_embedding_word.create(build, name))) {
        free(self);
        return NULL;
    }
    tp_name(name, prefix, "vision_embedding");
    if (tp_patch_projection_init(&self->vision, build, name, 1) < 0) {
        word_patch_destroy(self);
        return NULL;
    }
    return self;
}

/* x with its rows at or after each sequence's row first_image_row set to 0. */
static tp_tensor *text_rows_only(tp_ctx *ctx, tp_tensor *x, const tp_model_batch *batch, int64_t first_image_row)
{
    int64_t rows = batch->batch_size * batch->seq_length, emb = tp_cols(x);
    float *is_text = tp_arena_alloc(&ctx->host_arena, (size_t)rows * sizeof *is_text);
    float *ones = tp_arena_alloc(&ctx->host_arena, (size_t)emb * sizeof *ones);
    for (int64_t r = 0; r < rows; r++) is_text[r] = r % batch->seq_length < first_image_row;
    for (int64_t e = 0; e < emb; e++) ones[e] = 1.0f;
    tp_tensor *mask = tp_linear(ctx, tp_uploaded_matrix(ctx, is_text, rows, 1), tp_uploaded_matrix(ctx, ones, emb, 1),
                                NULL);
    return tp_mul(ctx, x, mask);
}

static tp_tensor *word_patch_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    word_patch_embedding *word_patch = self;
    int64_t text_length = batch->seq_length - tp_patch_image_rows(&word_patch->vision);
    /* a batch without text rows fails tp_patch_projection_forward's check of its length */
    tp_patch_layout layout = {.first_row = text_length > 0 ? text_length : 0, .mask_token = NULL};
    tp_tensor *image = tp_patch_projection_forward(&word_patch->vision, ctx, batch, &layout);
    tp_tensor *text = tp_embedding_word.forward(word_patch->language, ctx, batch);
    return tp_add(ctx, text_rows_only(ctx, text, batch, text_length), image);
}

const tp_embedding_type tp_embedding_word_patch = {"word_patch", word_patch_create, word_patch_forward,
                                                   word_patch_destroy};
