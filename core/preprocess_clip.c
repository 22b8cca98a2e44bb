/* The `clip` data processor, image-text batches and zero-shot classification: see preprocess_clip.h. */
#include "preprocess_clip.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "model.h"
#include "rng.h"
#include "modules/layers/patches.h"
#include "modules/layers/streams.h"
#include "tokenizers/vocab.h"

int tp_clip_image_options(tp_config *model_config, tp_image_set_options *options)
{
    tp_config *vision = tp_stream_config(model_config, 1);
    if (!vision) return -1;
    int64_t patch = 0;
    int status = tp_image_set_geometry(vision, options, &patch);
    tp_config_free(vision);
    options->processor = TP_IMAGE_SET_CLIP;
    return status;
}

int tp_vilt_image_options(tp_config *model_config, tp_image_set_options *options, int64_t *image_rows)
{
    tp_patch_projection geometry;
    if (tp_patch_geometry_read(model_config, &geometry) < 0 ||
        tp_image_augment_read(model_config, &options->augment) < 0)
        return -1;
    options->channels = geometry.channels;
    options->height = geometry.height;
    options->width = geometry.width;
    options->processor = TP_IMAGE_SET_VILT;
    *image_rows = tp_patch_image_rows(&geometry);
    return 0;
}

/* ---- texts ----------------------------------------------------------------------------------- */

int tp_clip_encode_text(const tp_tokenizer *tok, const char *text, int64_t seq_length, tp_ids *out)
{
    int32_t start = tok->cls_id >= 0 ? tok->cls_id : tok->bos_id, end = tok->sep_id >= 0 ? tok->sep_id : tok->eos_id;
    if (start < 0 || end < 0)
        return tp_fail("%s: the vocabulary has neither %s (needed by the clip processor)", tok->source_path,
                       start < 0 ? "[CLS] nor a start token" : "[SEP] nor an end token");
    tp_ids_push(out, start);
    int64_t first = out->count;
    if (tp_tokenizer_encode(tok, text, strlen(text), out) < 0) return -1;
    if (out->count - first > seq_length - 2) out->count = first + seq_length - 2;
    tp_ids_push(out, end);
    return 0;
}

/* Joins per-text ids into lists (each freed). */
static void join_ids(tp_ids *each, int64_t count, tp_id_lists *out)
{
    out->count = count;
    out->offsets = tp_xmalloc((size_t)(count + 1) * sizeof *out->offsets);
    out->offsets[0] = 0;
    for (int64_t i = 0; i < count; i++) out->offsets[i + 1] = out->offsets[i] + each[i].count;
    out->token_count = out->offsets[count];
    out->ids = tp_xmalloc((size_t)(out->token_count > 0 ? out->token_count : 1) * sizeof *out->ids);
    out->longest = 0;
    for (int64_t i = 0; i < count; i++) {
        memcpy(out->ids + out->offsets[i], each[i].ids, (size_t)each[i].count * sizeof *out->ids);
        if (each[i].count > out->longest) out->longest = each[i].count;
        tp_ids_free(&each[i]);
    }
}

/* texts[i] encoded into out in parallel; the first failure (by index) is the error, for a text that
 * is not UTF-8 naming path and lines[i]. */
static int encode_texts(const tp_tokenizer *tok, char *const *texts, int64_t count, int64_t seq_length,
                        const char *path, const int64_t *lines, tp_id_lists *out)
{
    for (int64_t i = 0; i < count; i++) {
        int64_t bad = tp_utf8_invalid_offset(texts[i], strlen(texts[i]));
        if (bad >= 0)
            return tp_fail("%s: line %" PRId64 ": invalid UTF-8 at byte %" PRId64 " of the text", path, lines[i],
                           bad + 1);
    }
    tp_ids *each = tp_xcalloc((size_t)count, sizeof *each);
    char **messages = tp_xcalloc((size_t)count, sizeof *messages);
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t i = 0; i < count; i++)
        if (tp_clip_encode_text(tok, texts[i], seq_length, &each[i]) < 0)
            messages[i] = tp_xstrdup(tp_last_error()); /* per-thread: carry it out */
    int status = 0;
    for (int64_t i = 0; i < count; i++) {
        if (messages[i] && status == 0) status = tp_fail("%s", messages[i]);
        free(messages[i]);
    }
    free(messages);
    if (status == 0) {
        join_ids(each, count, out);
    } else {
        for (int64_t i = 0; i < count; i++) tp_ids_free(&each[i]);
    }
    free(each);
    return status;
}

int tp_clip_tokenize_set(tp_image_set *set, const tp_tokenizer *tok, int64_t seq_length)
{
    if (!set->captions) return tp_fail("%s: no texts to tokenize (not a text<TAB>path list)", set->path);
    if (seq_length < 2)
        return tp_fail("%s: seq_length %" PRId64 " leaves no room for [CLS] and [SEP]", set->path, seq_length);
    tp_id_lists_free(&set->texts);
    set->vocab_size = tok->vocab_size;
    return encode_texts(tok, set->captions, set->count, seq_length, set->path, set->lines, &set->texts);
}

/* The non-empty lines of text, split in place, and their line numbers. */
static int split_lines(const char *path, char *text, char ***lines, int64_t **numbers, int64_t *count)
{
    int64_t capacity = 16, line = 0;
    *count = 0;
    *lines = tp_xmalloc((size_t)capacity * sizeof **lines);
    *numbers = tp_xmalloc((size_t)capacity * sizeof **numbers);
    for (char *cursor = text, *start; (start = tp_next_line(&cursor, &line));) {
        if (!*start) continue;
        if (*count == capacity) {
            capacity *= 2;
            *lines = tp_xrealloc(*lines, (size_t)capacity * sizeof **lines);
            *numbers = tp_xrealloc(*numbers, (size_t)capacity * sizeof **numbers);
        }
        (*numbers)[*count] = line;
        (*lines)[(*count)++] = start;
    }
    if (*count < 2) return tp_fail("%s: %" PRId64 " texts; zero-shot classification needs at least 2", path, *count);
    return 0;
}

int tp_clip_read_texts(const char *path, const tp_tokenizer *tok, int64_t seq_length, tp_id_lists *out,
                       char ***lines)
{
    memset(out, 0, sizeof *out);
    char *text = tp_read_file(path, NULL), **found = NULL;
    if (!text) return -1;
    int64_t count = 0, *numbers = NULL;
    int status = split_lines(path, text, &found, &numbers, &count);
    if (status == 0) status = encode_texts(tok, found, count, seq_length, path, numbers, out);
    if (status == 0 && lines) {
        *lines = tp_xcalloc((size_t)count + 1, sizeof **lines);
        for (int64_t i = 0; i < count; i++) (*lines)[i] = tp_xstrdup(found[i]);
    }
    free(numbers);
    free(found);
    free(text);
    return status;
}

int64_t tp_id_lists_find(const tp_id_lists *lists, const int32_t *ids, int64_t length)
{
    for (int64_t i = 0; i < lists->count; i++)
        if (lists->offsets[i + 1] - lists->offsets[i] == length &&
            !memcmp(lists->ids + lists->offsets[i], ids, (size_t)length * sizeof *ids))
            return i;
    return -1;
}

/* ---- batches --------------------------------------------------------------------------------- */

struct tp_image_text_loader {
    const tp_image_set *set;
    tp_image_text_loader_options options;
    int64_t epoch, cursor;  /* the next batch's position */
    int64_t *order;         /* the permutation of order_epoch */
    int64_t order_epoch;
    int64_t *row_instance, *row_epoch;  /* [batch_size] */
    int64_t *row_masks;                 /* [batch_size] masked positions per row (vilt) */
    int32_t *row_positions, *row_labels; /* [batch_size * seq_length] each row's masks before compaction */
    tp_batch batch;
};

static int check_loader_options(const tp_image_set *set, const tp_image_text_loader_options *options)
{
    if (set->texts.count != set->count)
        return tp_fail("%s: no texts (image-text pairs come from tp-preprocess --data_processor clip or vilt)",
                       set->path);
    if (set->texts.longest > options->seq_length)
        return tp_fail("%s: its texts reach %" PRId64 " tokens, more than seq_length %" PRId64
                       " (tp-preprocess --seq_length cuts them)", set->path, set->texts.longest, options->seq_length);
    if (options->batch_size < 1)
        return tp_fail("loader: batch_size %" PRId64 " must be at least 1", options->batch_size);
    if (options->world_size < 1 || options->rank < 0 || options->rank >= options->world_size)
        return tp_fail("loader: rank %d outside [0, world_size %d)", options->rank, options->world_size);
    if (set->count < options->world_size)
        return tp_fail("%s: %" PRId64 " image-text pairs are fewer than world_size %d", set->path, set->count,
                       options->world_size);
    if (options->image_rows < 0) return tp_fail("loader: image_rows %" PRId64 " is negative", options->image_rows);
    if (options->masking.mask_prob != 0 && tp_masking_options_check(&options->masking) < 0) return -1;
    if (!(options->mismatch_prob >= 0 && options->mismatch_prob <= 1))
        return tp_fail("loader: mismatch_prob %g outside [0, 1]", options->mismatch_prob);
    if (options->mismatch_prob > 0 && set->count < 2)
        return tp_fail("%s: one image-text pair: mismatched pairs need at least 2", set->path);
    return 0;
}

tp_image_text_loader *tp_image_text_loader_create(const tp_image_set *set,
                                                  const tp_image_text_loader_options *options)
{
    if (check_loader_options(set, options) < 0) return NULL;
    tp_image_text_loader *loader = tp_xcalloc(1, sizeof *loader);
    loader->set = set;
    loader->options = *options;
    int64_t rows = options->batch_size, text_cells = rows * options->seq_length;
    int64_t cells = rows * (options->seq_length + options->image_rows);
    loader->order = tp_xmalloc((size_t)set->count * sizeof *loader->order);
    loader->row_instance = tp_xmalloc((size_t)rows * sizeof *loader->row_instance);
    loader->row_epoch = tp_xmalloc((size_t)rows * sizeof *loader->row_epoch);
    loader->row_masks = tp_xcalloc((size_t)rows, sizeof *loader->row_masks);
    loader->row_positions = tp_xmalloc((size_t)text_cells * sizeof *loader->row_positions);
    loader->row_labels = tp_xmalloc((size_t)text_cells * sizeof *loader->row_labels);
    tp_batch *batch = &loader->batch;
    batch->batch_size = rows;
    batch->seq_length = options->seq_length + options->image_rows;
    batch->src = tp_xmalloc((size_t)cells * sizeof *batch->src);
    batch->seg = tp_xmalloc((size_t)cells * sizeof *batch->seg);
    if (options->masking.mask_prob > 0) {
        batch->mlm_positions = tp_xmalloc((size_t)text_cells * sizeof *batch->mlm_positions);
        batch->mlm_labels = tp_xmalloc((size_t)text_cells * sizeof *batch->mlm_labels);
    }
    batch->sp_labels = tp_xcalloc((size_t)rows, sizeof *batch->sp_labels);
    batch->pixel_width = set->channels * set->height * set->width;
    batch->pixels = tp_xmalloc((size_t)(rows * batch->pixel_width) * sizeof *batch->pixels);
    loader->order_epoch = 0;
    tp_data_order(options->seed, 0, options->shuffle, loader->order, set->count);
    return loader;
}

void tp_image_text_loader_free(tp_image_text_loader *loader)
{
    if (!loader) return;
    free(loader->order);
    free(loader->row_instance);
    free(loader->row_epoch);
    free(loader->row_masks);
    free(loader->row_positions);
    free(loader->row_labels);
    tp_batch_free(&loader->batch);
    free(loader);
}

/* Text `index` of texts as row `row` of src / seg: its ids, pad_id and seg 0 up to text_seq, then (ViLT)
 * the image's rows up to the batch's seq_length, segment 2 and pad_id. */
static void fill_text(const tp_id_lists *texts, int64_t index, int64_t row, int32_t pad_id, int64_t text_seq,
                      tp_batch *batch)
{
    int64_t seq = batch->seq_length, length = texts->offsets[index + 1] - texts->offsets[index];
    const int32_t *ids = texts->ids + texts->offsets[index];
    for (int64_t s = 0; s < seq; s++) {
        batch->src[row * seq + s] = s < length ? ids[s] : pad_id;
        batch->seg[row * seq + s] = s < length ? 1 : s < text_seq ? 0 : 2;
    }
}

/* The generator of a pair's draws in one epoch (each pair's own, as tp_loader's masking). */
static tp_rng pair_rng(const tp_image_text_loader *loader, int stream, int64_t row)
{
    uint64_t draw = (uint64_t)loader->row_epoch[row] * (uint64_t)loader->set->count +
                    (uint64_t)loader->row_instance[row];
    return tp_rng_make(tp_hash3(loader->options.seed, (uint64_t)stream, draw), (uint64_t)stream, 0);
}

/* The instance whose image goes with row's text: its own, or with probability mismatch_prob another
 * pair's, drawn uniformly from the others (sp_labels: 1 own, 0 another). */
static int64_t row_image(tp_image_text_loader *loader, int64_t row)
{
    int64_t own = loader->row_instance[row];
    loader->batch.sp_labels[row] = 1;
    if (loader->options.mismatch_prob == 0) return own;
    tp_rng rng = pair_rng(loader, TP_STREAM_IMAGE_MISMATCH, row);
    if (tp_rng_uniform(&rng) >= loader->options.mismatch_prob) return own;
    loader->batch.sp_labels[row] = 0;
    int64_t other = (int64_t)tp_rng_below(&rng, (uint64_t)loader->set->count - 1);
    return other < own ? other : other + 1;
}

/* Row `row`: its text (masked when the loader masks), the image rows after it, its image. */
static void fill_row(tp_image_text_loader *loader, int64_t row)
{
    const tp_image_set *set = loader->set;
    const tp_image_text_loader_options *o = &loader->options;
    tp_batch *batch = &loader->batch;
    int64_t index = loader->row_instance[row];
    int64_t length = set->texts.offsets[index + 1] - set->texts.offsets[index];
    fill_text(&set->texts, index, row, o->pad_id, o->seq_length, batch);
    if (o->masking.mask_prob > 0) {
        tp_rng rng = pair_rng(loader, TP_STREAM_MASKING, row);
        loader->row_masks[row] = tp_mask_sequence(batch->src + row * batch->seq_length, length, &o->masking, &rng,
                                                  loader->row_positions + row * o->seq_length,
                                                  loader->row_labels + row * o->seq_length);
    }
    float *chw = batch->pixels + row * batch->pixel_width;
    int64_t image = row_image(loader, row);
    if (tp_image_augment_active(&o->augment)) {
        tp_rng rng = pair_rng(loader, TP_STREAM_IMAGE_AUGMENT, row);
        tp_image_set_augment(set, image, &o->augment, &rng, chw);
    } else {
        tp_image_set_normalize(set, image, chw);
    }
}

/* The rows' masks as the batch's flat positions, ascending. */
static void compact_masks(tp_image_text_loader *loader)
{
    tp_batch *batch = &loader->batch;
    int64_t text_seq = loader->options.seq_length;
    batch->mlm_count = 0;
    for (int64_t row = 0; row < batch->batch_size; row++)
        for (int64_t k = 0; k < loader->row_masks[row]; k++) {
            batch->mlm_positions[batch->mlm_count] = (int32_t)(row * batch->seq_length +
                                                               loader->row_positions[row * text_seq + k]);
            batch->mlm_labels[batch->mlm_count++] = loader->row_labels[row * text_seq + k];
        }
}

const tp_batch *tp_image_text_loader_next(tp_image_text_loader *loader)
{
    const tp_image_set *set = loader->set;
    tp_batch *batch = &loader->batch;
    int64_t rows = batch->batch_size, count = set->count, first = loader->options.rank * rows;
    for (int64_t row = 0; row < rows; row++) { /* sequential: an epoch may end inside the batch */
        int64_t position = loader->cursor + first + row, epoch = loader->epoch + position / count;
        if (epoch != loader->order_epoch) {
            loader->order_epoch = epoch;
            tp_data_order(loader->options.seed, epoch, loader->options.shuffle, loader->order, count);
        }
        loader->row_instance[row] = loader->order[position % count];
        loader->row_epoch[row] = epoch;
    }
    loader->cursor += rows * loader->options.world_size;
    loader->epoch += loader->cursor / count;
    loader->cursor %= count;
    int64_t real_tokens = 0;
#pragma omp parallel for schedule(static) reduction(+ : real_tokens)
    for (int64_t row = 0; row < rows; row++) {
        int64_t index = loader->row_instance[row];
        fill_row(loader, row);
        real_tokens += set->texts.offsets[index + 1] - set->texts.offsets[index] + loader->options.image_rows;
    }
    if (loader->options.masking.mask_prob > 0) compact_masks(loader);
    batch->real_tokens = real_tokens;
    return batch;
}

void tp_image_text_loader_position(const tp_image_text_loader *loader, int64_t *epoch, int64_t *cursor)
{
    *epoch = loader->epoch;
    *cursor = loader->cursor;
}

int tp_image_text_loader_seek(tp_image_text_loader *loader, int64_t epoch, int64_t cursor)
{
    if (epoch < 0 || cursor < 0 || cursor >= loader->set->count)
        return tp_fail("loader: position (epoch %" PRId64 ", cursor %" PRId64
                       ") outside epoch >= 0, cursor in [0, %" PRId64 ")", epoch, cursor, loader->set->count);
    loader->epoch = epoch;
    loader->cursor = cursor;
    return 0;
}

/* ---- zero-shot classification ---------------------------------------------------------------- */

/* The target that scores: clr (CLIP) or, with image rows (ViLT), sp's image-text matching. */
static int find_scoring_target(const tp_model *model, int64_t image_rows)
{
    int target = tp_model_target_index(model, image_rows ? "sp" : "clr");
    if (target >= 0) return target;
    return image_rows ? tp_fail("the model has no sp target (a ViLT model scores image-text matching with it)")
                      : tp_fail("the model has no clr target (zero-shot classification needs a CLIP model)");
}

/* The batch through the model (no tape): the target's logits, [rows x cols], into out. */
static int target_logits(tp_model *model, tp_ctx *ctx, const tp_batch *batch, int target, int64_t rows, int64_t cols,
                         float *out)
{
    tp_model_batch model_batch = tp_model_batch_upload(ctx, batch);
    tp_model_output output;
    ctx->record = 0;
    ctx->training = 0;
    int status = tp_model_forward(model, ctx, &model_batch, &output);
    const tp_tensor *result = status == 0 ? output.results[target].logits : NULL;
    if (status == 0 && (tp_rows(result) != rows || tp_cols(result) != cols))
        status = tp_fail("the %s target's logits are not [%" PRId64 " x %" PRId64 "]",
                         tp_model_target_name(model, target), rows, cols);
    if (status == 0) ctx->backend->download(out, result->data, (size_t)(rows * cols) * sizeof *out);
    tp_ctx_reset(ctx);
    return status;
}

/* CLIP, one batch: the candidates beside images [first, first + rows) (the last one repeated to fill
 * the batch), scored by the clr logits; best and logits of those rows. */
static int score_images(tp_model *model, tp_ctx *ctx, int target, const tp_image_set *images, tp_batch *batch,
                        int64_t first, int64_t rows, int64_t *best, float *logits, float *scores)
{
    int64_t candidates = batch->batch_size;
    for (int64_t r = 0; r < candidates; r++)
        tp_image_set_normalize(images, first + (r < rows ? r : rows - 1), batch->pixels + r * batch->pixel_width);
    int status = target_logits(model, ctx, batch, target, candidates, candidates, scores);
    /* scores[t][r]: text t against image r (logits_per_text) */
    for (int64_t r = 0; status == 0 && r < rows; r++) {
        int64_t top = 0;
        for (int64_t t = 0; t < candidates; t++) {
            if (scores[t * candidates + r] > scores[top * candidates + r]) top = t;
            if (logits) logits[(first + r) * candidates + t] = scores[t * candidates + r];
        }
        best[first + r] = top;
    }
    return status;
}

/* ViLT: image `index` in every row beside each candidate, scored by the sp target's log-odds of a
 * match (logit 1 - logit 0). */
static int score_pairs(tp_model *model, tp_ctx *ctx, int target, const tp_image_set *images, tp_batch *batch,
                       int64_t index, int64_t *best, float *logits, float *scores)
{
    int64_t candidates = batch->batch_size, width = batch->pixel_width;
    tp_image_set_normalize(images, index, batch->pixels);
    for (int64_t t = 1; t < candidates; t++)
        memcpy(batch->pixels + t * width, batch->pixels, (size_t)width * sizeof *batch->pixels);
    int status = target_logits(model, ctx, batch, target, candidates, 2, scores);
    int64_t top = 0;
    for (int64_t t = 0; status == 0 && t < candidates; t++) {
        float odds = scores[2 * t + 1] - scores[2 * t];
        if (odds > scores[2 * top + 1] - scores[2 * top]) top = t;
        if (logits) logits[index * candidates + t] = odds;
    }
    best[index] = top;
    return status;
}

int tp_image_text_zero_shot(tp_model *model, tp_ctx *ctx, const tp_image_set *images, const tp_id_lists *candidates,
                            int64_t seq_length, int64_t image_rows, int32_t pad_id, int64_t *best, float *logits)
{
    int target = find_scoring_target(model, image_rows);
    if (target < 0) return -1;
    if (candidates->longest > seq_length)
        return tp_fail("a candidate text has %" PRId64 " tokens, more than seq_length %" PRId64, candidates->longest,
                       seq_length);
    int64_t count = candidates->count, cells = count * (seq_length + image_rows);
    tp_batch batch = {.batch_size = count, .seq_length = seq_length + image_rows};
    batch.src = tp_xmalloc((size_t)cells * sizeof *batch.src);
    batch.seg = tp_xmalloc((size_t)cells * sizeof *batch.seg);
    batch.pixel_width = images->channels * images->height * images->width;
    batch.pixels = tp_xmalloc((size_t)(count * batch.pixel_width) * sizeof *batch.pixels);
    for (int64_t t = 0; t < count; t++) {
        fill_text(candidates, t, t, pad_id, seq_length, &batch);
        batch.real_tokens += candidates->offsets[t + 1] - candidates->offsets[t] + image_rows;
    }
    float *scores = tp_xmalloc((size_t)(count * (image_rows ? 2 : count)) * sizeof *scores);
    int status = 0;
    for (int64_t first = 0; !image_rows && first < images->count && status == 0; first += count) {
        int64_t rows = images->count - first < count ? images->count - first : count;
        status = score_images(model, ctx, target, images, &batch, first, rows, best, logits, scores);
    }
    for (int64_t i = 0; image_rows && i < images->count && status == 0; i++)
        status = score_pairs(model, ctx, target, images, &batch, i, best, logits, scores);
    free(scores);
    tp_batch_free(&batch);
    return status;
}
