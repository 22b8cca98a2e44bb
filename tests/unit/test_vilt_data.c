/* The vilt data processor (core/preprocess_clip.h's ViLT batches, core/preprocess_vit.h's vilt
 * processor):
 *  - a text<TAB>path list read by the vilt processor gives the vit processor's pixels for the same
 *    images (ViTImageProcessor's, checked against transformers by test_image_set), and its pre-decoded
 *    file (processor 2) reads back equal, is refused for a clip model and for a vit model naming what
 *    it holds and the --data_processor to run, and the IDX source is refused naming the processor;
 *  - the loader's ViLT batches over 40 pairs of distinct random images: every row is the text's
 *    rows (seg 1, padding seg 0) then image_rows rows of seg 2 and the padding id; the masks are
 *    BERT's (max(1, round(0.15 length)) of the text's non-special positions, labels the original ids,
 *    [MASK] at about 80% of them), all inside the row's text; sp_labels 1 rows carry their own image
 *    and sp_labels 0 rows another pair's (never their own), about half of each (binomial bounds);
 *  - the draws depend on neither batch grouping nor ranks: one rank with batches of 4 equals two ranks
 *    with 2 and one rank with two batches of 2, also with image_preprocess's crops and flips; seeking to a saved position gives the same batch;
 *  - refused: mismatched pairs from one pair, bad masking options. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/preprocess_clip.h"
#include "core/rng.h"
#include "support/check.h"
#include "support/image_sets.h"
#include "support/scratch.h"

#define MEDIA "tests/fixtures/media"
#define PAIRS 40
#define TEXT_SEQ 12
#define IMAGE_ROWS 5
#define ROW (TEXT_SEQ + IMAGE_ROWS)
#define PIXELS (3 * 4 * 4)
enum { PAD = 0, UNUSED = 1, CLS = 2, SEP = 3, MASK = 4, VOCAB = 50 };

static const tp_image_set_options vilt_options = {.channels = 3, .height = 12, .width = 16,
                                                  .processor = TP_IMAGE_SET_VILT};

/* The vilt processor's images are the vit processor's; its file names what it holds. */
static void check_processor(const tp_tokenizer *tok)
{
    const char *pairs = tp_scratch_write_text("pairs.tsv", "text\tpath\na grey photo\t" MEDIA
                                                           "/gray.jpg\nsomething\t" MEDIA "/rgb16.png\n");
    const char *labels = tp_scratch_write_text("labels.tsv", "0\t" MEDIA "/gray.jpg\n1\t" MEDIA "/rgb16.png\n");
    tp_image_set vilt, vit, back;
    tp_image_set_options vit_options = vilt_options;
    vit_options.processor = TP_IMAGE_SET_VIT;
    CHECK_MSG(tp_image_set_read(pairs, &vilt_options, &vilt) == 0, "%s", tp_last_error());
    CHECK_MSG(tp_image_set_read(labels, &vit_options, &vit) == 0, "%s", tp_last_error());
    CHECK(vilt.count == 2 && vit.count == 2 && vilt.captions && !strcmp(vilt.captions[1], "something"));
    float from_vilt[3 * 12 * 16], from_vit[3 * 12 * 16];
    for (int i = 0; i < 2 && vilt.count == 2 && vit.count == 2; i++) {
        tp_image_set_normalize(&vilt, i, from_vilt);
        tp_image_set_normalize(&vit, i, from_vit);
        CHECK_MSG(!memcmp(from_vilt, from_vit, sizeof from_vit), "image %d: the vilt processor's pixels are not vit's",
                  i);
    }
    const char *predecoded = tp_scratch_path("pairs.tpimg");
    CHECK_MSG(tp_clip_tokenize_set(&vilt, tok, 8) == 0 && tp_image_set_write(&vilt, predecoded) == 0, "%s",
              tp_last_error());
    CHECK_MSG(tp_image_set_read(predecoded, &vilt_options, &back) == 0, "%s", tp_last_error());
    CHECK(back.count == 2 && back.processor == TP_IMAGE_SET_VILT && back.texts.count == 2 &&
          back.texts.token_count == vilt.texts.token_count &&
          !memcmp(back.texts.ids, vilt.texts.ids, (size_t)vilt.texts.token_count * sizeof *vilt.texts.ids) &&
          !memcmp(back.pixels, vilt.pixels, 2 * 3 * 12 * 16));
    tp_image_set_free(&back);
    tp_image_set_options clip_options = vilt_options;
    clip_options.processor = TP_IMAGE_SET_CLIP;
    CHECK(tp_image_set_fails_with(
        predecoded, &clip_options,
        "pairs.tpimg: holds image-text pairs of the vilt processor; this model reads image-text pairs of "
        "the clip processor (run tp-preprocess with --data_processor clip)"));
    CHECK(tp_image_set_fails_with(
        predecoded, &vit_options,
        "holds image-text pairs of the vilt processor; this model reads labelled images of the vit "
        "processor (run tp-preprocess with --data_processor vit)"));
    static const unsigned char idx[] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7};
    CHECK(tp_image_set_fails_with(tp_scratch_write("t-images-idx3-ubyte", idx, sizeof idx), &vilt_options,
                                  "an IDX file holds labelled images; the vilt processor reads text<TAB>path lines"));
    tp_image_set_free(&vit);
    tp_image_set_free(&vilt);
}

/* PAIRS pairs of distinct random 3 x 4 x 4 images and texts [CLS] ids [SEP] of 5 .. TEXT_SEQ ids. */
static void make_set(tp_image_set *set)
{
    memset(set, 0, sizeof *set);
    set->path = strdup("random pairs");
    set->count = PAIRS;
    set->channels = 3;
    set->height = set->width = 4;
    set->num_labels = 1;
    set->processor = TP_IMAGE_SET_VILT;
    set->vocab_size = VOCAB;
    set->pixels = malloc(PAIRS * PIXELS);
    set->labels = calloc(PAIRS, sizeof *set->labels);
    tp_rng rng = tp_rng_make(11, 0, 0);
    for (int i = 0; i < PAIRS * PIXELS; i++) set->pixels[i] = (uint8_t)tp_rng_below(&rng, 256);
    tp_id_lists *texts = &set->texts;
    texts->count = PAIRS;
    texts->offsets = malloc((PAIRS + 1) * sizeof *texts->offsets);
    texts->ids = malloc(PAIRS * TEXT_SEQ * sizeof *texts->ids);
    texts->offsets[0] = 0;
    for (int i = 0; i < PAIRS; i++) {
        int64_t length = 5 + (int64_t)tp_rng_below(&rng, TEXT_SEQ - 4), at = texts->offsets[i];
        texts->ids[at] = CLS;
        for (int64_t k = 1; k < length - 1; k++) texts->ids[at + k] = MASK + 1 + (int32_t)tp_rng_below(&rng, VOCAB - 5);
        texts->ids[at + length - 1] = SEP;
        texts->offsets[i + 1] = at + length;
        if (length > texts->longest) texts->longest = length;
    }
    texts->token_count = texts->offsets[PAIRS];
}

static tp_image_text_loader_options vilt_loader(int64_t batch_size, int rank, int world_size, int augment)
{
    return (tp_image_text_loader_options){.batch_size = batch_size,
                                          .seq_length = TEXT_SEQ,
                                          .seed = 3,
                                          .shuffle = 1,
                                          .pad_id = PAD,
                                          .rank = rank,
                                          .world_size = world_size,
                                          .image_rows = IMAGE_ROWS,
                                          .masking = {0.15, MASK, PAD, CLS, SEP, VOCAB},
                                          .mismatch_prob = 0.5,
                                          .augment = {augment, augment}};
}

/* The pair whose normalized image is `pixels`, or -1. */
static int64_t image_of(const tp_image_set *set, const float *pixels)
{
    float chw[PIXELS];
    for (int64_t i = 0; i < set->count; i++) {
        tp_image_set_normalize(set, i, chw);
        if (!memcmp(chw, pixels, sizeof chw)) return i;
    }
    return -1;
}

/* The pair whose text starts row `row` of src, unmasked positions compared (-1 when none or several). */
static int64_t text_of(const tp_image_set *set, const tp_batch *batch, int64_t row, const int8_t *masked)
{
    int64_t found = -1;
    for (int64_t i = 0; i < set->count; i++) {
        int64_t length = set->texts.offsets[i + 1] - set->texts.offsets[i], same = 1;
        const int32_t *ids = set->texts.ids + set->texts.offsets[i];
        for (int64_t s = 0; s < TEXT_SEQ && same; s++)
            same = s < length ? masked[s] || batch->src[row * ROW + s] == ids[s] : batch->src[row * ROW + s] == PAD;
        if (same && batch->seg[row * ROW + length - 1] == 1 && batch->seg[row * ROW + length] != 1) {
            if (found >= 0) return -1;
            found = i;
        }
    }
    return found;
}

typedef struct vilt_counts {
    int64_t rows, mismatched, masked, mask_tokens;
} vilt_counts;

/* One batch's layout, masks and images against the set. */
static void check_batch(const tp_image_set *set, const tp_batch *batch, vilt_counts *counts)
{
    CHECK(batch->seq_length == ROW && batch->pixel_width == PIXELS);
    int8_t masked[ROW];
    int64_t next_mask = 0;
    for (int64_t row = 0; row < batch->batch_size; row++) {
        memset(masked, 0, sizeof masked);
        int64_t first = next_mask;
        while (next_mask < batch->mlm_count && batch->mlm_positions[next_mask] < (row + 1) * ROW)
            masked[batch->mlm_positions[next_mask++] - row * ROW] = 1;
        int64_t own = text_of(set, batch, row, masked);
        CHECK_MSG(own >= 0, "row %lld: its text is none of the set's", (long long)row);
        if (own < 0) continue;
        int64_t length = set->texts.offsets[own + 1] - set->texts.offsets[own];
        const int32_t *ids = set->texts.ids + set->texts.offsets[own];
        int64_t wanted = (int64_t)nearbyint(0.15 * (double)length), masks = next_mask - first;
        CHECK_MSG(masks == (wanted < 1 ? 1 : wanted), "row %lld: %lld masks for a text of %lld ids", (long long)row,
                  (long long)masks, (long long)length);
        for (int64_t k = first; k < next_mask; k++) {
            int64_t s = batch->mlm_positions[k] - row * ROW;
            CHECK(s > 0 && s < length - 1 && batch->mlm_labels[k] == ids[s]);
            CHECK(k == first || batch->mlm_positions[k] > batch->mlm_positions[k - 1]);
            counts->mask_tokens += batch->src[row * ROW + s] == MASK;
        }
        counts->masked += masks;
        for (int64_t s = 0; s < ROW; s++) {
            int32_t want_seg = s < length ? 1 : s < TEXT_SEQ ? 0 : 2;
            CHECK(batch->seg[row * ROW + s] == want_seg);
            if (s >= TEXT_SEQ) CHECK(batch->src[row * ROW + s] == PAD);
        }
        int64_t image = image_of(set, batch->pixels + row * PIXELS);
        CHECK(batch->sp_labels[row] == 0 || batch->sp_labels[row] == 1);
        CHECK_MSG(image >= 0 && (image == own) == (batch->sp_labels[row] == 1),
                  "row %lld: label %d, its own pair %lld, the image's %lld", (long long)row, batch->sp_labels[row],
                  (long long)own, (long long)image);
        counts->mismatched += batch->sp_labels[row] == 0;
        counts->rows++;
    }
    CHECK(next_mask == batch->mlm_count);
}

static void check_batches(const tp_image_set *set)
{
    tp_image_text_loader_options options = vilt_loader(8, 0, 1, 0);
    tp_image_text_loader *loader = tp_image_text_loader_create(set, &options);
    CHECK_MSG(loader != NULL, "%s", tp_last_error());
    vilt_counts counts = {0};
    for (int step = 0; loader && step < 50; step++) check_batch(set, tp_image_text_loader_next(loader), &counts);
    /* 400 rows: a fair coin gives 200 +- 10 (sd); [140, 260] is 6 sd.  [MASK] replaces 80% of the masks. */
    CHECK_MSG(counts.rows == 400 && counts.mismatched >= 140 && counts.mismatched <= 260,
              "%lld of %lld rows mismatched", (long long)counts.mismatched, (long long)counts.rows);
    double mask_share = (double)counts.mask_tokens / (double)counts.masked;
    CHECK_MSG(counts.masked >= 400 && mask_share > 0.7 && mask_share < 0.9, "[MASK] at %.3f of %lld masks", mask_share,
              (long long)counts.masked);
    tp_image_text_loader_free(loader);
}

/* Everything a batch holds, compared row by row (mlm positions relative to each row). */
static int same_rows(const tp_batch *a, int64_t row_a, const tp_batch *b, int64_t row_b)
{
    if (memcmp(a->src + row_a * ROW, b->src + row_b * ROW, ROW * sizeof *a->src) ||
        memcmp(a->seg + row_a * ROW, b->seg + row_b * ROW, ROW * sizeof *a->seg) ||
        memcmp(a->pixels + row_a * PIXELS, b->pixels + row_b * PIXELS, PIXELS * sizeof *a->pixels) ||
        a->sp_labels[row_a] != b->sp_labels[row_b])
        return 0;
    int32_t masks_a[ROW], masks_b[ROW];
    int64_t count_a = 0, count_b = 0;
    for (int64_t k = 0; k < a->mlm_count; k++)
        if (a->mlm_positions[k] / ROW == row_a) masks_a[count_a++] = a->mlm_positions[k] % ROW + ROW * a->mlm_labels[k];
    for (int64_t k = 0; k < b->mlm_count; k++)
        if (b->mlm_positions[k] / ROW == row_b) masks_b[count_b++] = b->mlm_positions[k] % ROW + ROW * b->mlm_labels[k];
    return count_a == count_b && !memcmp(masks_a, masks_b, (size_t)count_a * sizeof *masks_a);
}

/* One rank with batches of 4 = two ranks with batches of 2 = one rank with two batches of 2 (rows in
 * the global order), across epochs, the images cropped and flipped (image_preprocess); a saved
 * position gives the same next batch. */
static void check_grouping(const tp_image_set *set)
{
    tp_image_text_loader_options whole_options = vilt_loader(4, 0, 1, 1), half_options = vilt_loader(2, 0, 1, 1);
    tp_image_text_loader *whole = tp_image_text_loader_create(set, &whole_options);
    tp_image_text_loader *halves = tp_image_text_loader_create(set, &half_options), *ranks[2];
    for (int r = 0; r < 2; r++) {
        tp_image_text_loader_options rank_options = vilt_loader(2, r, 2, 1);
        ranks[r] = tp_image_text_loader_create(set, &rank_options);
    }
    int64_t epoch = 0, cursor = 0;
    int32_t saved_src[4 * ROW];
    int equal = whole && halves && ranks[0] && ranks[1];
    for (int step = 0; equal && step < 25; step++) { /* 100 rows: 2.5 epochs of 40 */
        if (step == 12) tp_image_text_loader_position(whole, &epoch, &cursor);
        const tp_batch *batch = tp_image_text_loader_next(whole);
        if (step == 12) memcpy(saved_src, batch->src, sizeof saved_src);
        for (int part = 0; part < 2; part++) {
            const tp_batch *half = tp_image_text_loader_next(halves), *rank = tp_image_text_loader_next(ranks[part]);
            for (int64_t row = 0; row < 2; row++) {
                equal &= same_rows(batch, part * 2 + row, half, row);
                equal &= same_rows(batch, part * 2 + row, rank, row);
            }
        }
    }
    CHECK_MSG(equal, "batches of 4, of 2 and over 2 ranks differ");
    tp_image_text_loader *again = tp_image_text_loader_create(set, &whole_options);
    CHECK(again && epoch == 1 && cursor == 8 && tp_image_text_loader_seek(again, epoch, cursor) == 0 &&
          !memcmp(tp_image_text_loader_next(again)->src, saved_src, sizeof saved_src));
    tp_image_text_loader_free(again);
    for (int r = 0; r < 2; r++) tp_image_text_loader_free(ranks[r]);
    tp_image_text_loader_free(halves);
    tp_image_text_loader_free(whole);
}

static void check_refused(tp_image_set *set)
{
    tp_image_text_loader_options options = vilt_loader(1, 0, 1, 0);
    int64_t count = set->count;
    set->count = set->texts.count = 1;
    CHECK(tp_image_text_loader_create(set, &options) == NULL &&
          strstr(tp_last_error(), "random pairs: one image-text pair: mismatched pairs need at least 2"));
    set->count = set->texts.count = count;
    options.masking.mask_id = VOCAB;
    CHECK(tp_image_text_loader_create(set, &options) == NULL &&
          strstr(tp_last_error(), "masking: mask_id 50 outside [0, vocab_size 50)"));
    options = vilt_loader(1, 0, 1, 0);
    options.mismatch_prob = 1.5;
    CHECK(tp_image_text_loader_create(set, &options) == NULL &&
          strstr(tp_last_error(), "loader: mismatch_prob 1.5 outside [0, 1]"));
}

int main(void)
{
    tp_scratch_init("vilt_data");
    tp_tokenizer_options options = {.kind = "bert", .vocab_path = "data/vocab/bert-base-uncased-vocab.txt",
                                    .do_lower_case = 1};
    tp_tokenizer *tok = tp_tokenizer_create(&options);
    CHECK_MSG(tok != NULL, "%s (run scripts/fetch_data.sh)", tp_last_error());
    if (tok) check_processor(tok);
    tp_image_set set;
    make_set(&set);
    check_batches(&set);
    check_grouping(&set);
    check_refused(&set);
    tp_image_set_free(&set);
    if (tok) tp_tokenizer_free(tok);
    return tp_test_finish("test_vilt_data");
}
