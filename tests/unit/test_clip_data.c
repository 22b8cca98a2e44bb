/* The clip data processor (core/preprocess_clip.h, core/preprocess_vit.h's clip parts):
 *  - a text<TAB>path list of the committed media images, read for a 3 x 12 x 16 model, gives
 *    CLIPImageProcessor's pixel values (transformers 4.46.3, tests/reference/make_clip_data_fixture.py)
 *    within 1e-6 after the pre-decoded round trip, and texts tokenized as BertTokenizer frames them
 *    ([CLS] ids[:n - 2] [SEP], TencentPretrain's clip instance);
 *  - the pre-decoded file (version 2) reads back equal, and is refused, naming the file and the byte,
 *    with a token id beyond its vocabulary, a text offset out of order, an unknown version, or read
 *    for a vit model;
 *  - the loader visits every pair once per epoch in tp_loader's order, lays out src / seg / pixels,
 *    and seeking to a saved position gives the same next batch; ranks 0 and 1 of 2 get the halves of
 *    one rank's batches of twice the size;
 *  - bad lists: a line without a tab, an empty text, a text that is not UTF-8, a missing image (named
 *    with its line), or skipped and counted with skip_bad_images; an IDX file is refused; candidate
 *    texts: fewer than two, or not UTF-8 (named with the line). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/preprocess_clip.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "support/image_sets.h"
#include "support/fixture.h"
#include "support/scratch.h"

#define MEDIA "tests/fixtures/media"
#define GENERATOR "tests/reference/make_clip_data_fixture.py"
#define VOCAB "data/vocab/bert-base-uncased-vocab.txt"

static const char *const images[] = {"s444.jpg", "gray.jpg", "rgb16.png"};
static const tp_image_set_options clip_options = {.channels = 3, .height = 12, .width = 16,
                                                  .processor = TP_IMAGE_SET_CLIP};

/* The three media images with the fixture's text first, under a header. */
static const char *write_pairs(const char *text)
{
    char list[1024];
    snprintf(list, sizeof list, "text\tpath\n%s\t" MEDIA "/%s\nshort\t" MEDIA "/%s\nthird one\t" MEDIA "/%s\n", text,
             images[0], images[1], images[2]);
    return tp_scratch_write_text("pairs.tsv", list);
}

static void check_ids(const tp_st_file *expected, const char *name, const int32_t *ids, int64_t count)
{
    const tp_st_tensor *reference = tp_fixture_tensor(expected, GENERATOR, "%s", name);
    CHECK_MSG(reference->dtype == TP_ST_I32 && reference->numel == count &&
                  !memcmp(ids, reference->data, (size_t)count * sizeof *ids),
              "%s: %lld ids differ from the %lld int32 of the fixture", name, (long long)count,
              (long long)reference->numel);
}

/* Pixels and ids as transformers makes them, through the pre-decoded file. */
static void check_reference(const tp_st_file *expected, const tp_tokenizer *tok, const char *predecoded)
{
    const char *text = tp_st_metadata(expected, "text");
    CHECK_MSG(text != NULL, "%s: no text in the metadata (" GENERATOR ")", tp_st_path(expected));
    if (!text) return;
    tp_image_set set, back;
    CHECK_MSG(tp_image_set_read(write_pairs(text), &clip_options, &set) == 0, "%s", tp_last_error());
    CHECK(set.count == 3 && set.captions && !strcmp(set.captions[0], text) && !strcmp(set.captions[1], "short"));
    CHECK_MSG(tp_clip_tokenize_set(&set, tok, 32) == 0, "%s", tp_last_error());
    check_ids(expected, "ids.32", set.texts.ids, set.texts.offsets[1]);
    tp_ids cut = {0};
    CHECK(tp_clip_encode_text(tok, text, 6, &cut) == 0);
    check_ids(expected, "ids.6", cut.ids, cut.count);
    tp_ids_free(&cut);
    CHECK_MSG(tp_image_set_write(&set, predecoded) == 0, "%s", tp_last_error());
    CHECK_MSG(tp_image_set_read(predecoded, &clip_options, &back) == 0, "%s", tp_last_error());
    CHECK(back.count == 3 && back.processor == TP_IMAGE_SET_CLIP && back.vocab_size == tok->vocab_size);
    CHECK(back.texts.token_count == set.texts.token_count && back.texts.longest == set.texts.longest &&
          !memcmp(back.texts.ids, set.texts.ids, (size_t)set.texts.token_count * sizeof *set.texts.ids));
    float chw[3 * 12 * 16];
    for (int i = 0; i < 3; i++) {
        int64_t n = 0;
        char name[64];
        snprintf(name, sizeof name, "pixels.%s", images[i]);
        float *reference = tp_fixture_floats(expected, GENERATOR, name, &n);
        tp_image_set_normalize(&back, i, chw);
        double error = 0;
        for (int64_t k = 0; k < n; k++) error = fmax(error, fabs((double)chw[k] - reference[k]));
        CHECK_MSG(n == 3 * 12 * 16 && error <= 1e-6, "%s: %lld values, max |tp - transformers| %.3g", name,
                  (long long)n, error);
        free(reference);
    }
    tp_image_set_free(&back);
    tp_image_set_free(&set);
}

static void put_u64(unsigned char *bytes, size_t at, uint64_t value) { memcpy(bytes + at, &value, sizeof value); }

/* Broken copies of the pre-decoded file, each refused naming the file and the byte. */
static void check_broken(const char *predecoded)
{
    size_t size = 0;
    unsigned char *good = (unsigned char *)tp_read_file(predecoded, &size), *bad = malloc(size);
    uint64_t offsets_pos, tokens_pos;
    memcpy(&offsets_pos, good + 104, 8);
    memcpy(&tokens_pos, good + 112, 8);
    memcpy(bad, good, size);
    put_u64(bad, tokens_pos, 40000); /* also zeroes the second id: 40000 fits the int32 */
    CHECK(tp_image_set_fails_with(tp_scratch_write("id.tpimg", bad, size), &clip_options,
                                  "id.tpimg: token id 40000 at byte"));
    memcpy(bad, good, size);
    put_u64(bad, offsets_pos + 8, 0);
    CHECK(tp_image_set_fails_with(tp_scratch_write("offset.tpimg", bad, size), &clip_options,
                                  "offset.tpimg: text offset 0 at byte"));
    memcpy(bad, good, size);
    bad[8] = 3;
    CHECK(tp_image_set_fails_with(tp_scratch_write("version.tpimg", bad, size), &clip_options,
                                  "version 3 at byte 8 is not supported"));
    memcpy(bad, good, size);
    bad[80] = 0;
    CHECK(tp_image_set_fails_with(tp_scratch_write("processor.tpimg", bad, size), &clip_options,
                                  "processor 0 at byte 80"));
    tp_image_set_options vit = clip_options;
    vit.processor = TP_IMAGE_SET_VIT;
    CHECK(tp_image_set_fails_with(predecoded, &vit,
                                  "holds image-text pairs of the clip processor; this model reads labelled images"));
    CHECK(tp_image_set_fails_with(tp_scratch_write("cut.tpimg", good, size - 4), &clip_options,
                                  "cut.tpimg: the file has"));
    free(bad);
    free(good);
}

/* Two epochs of batches of 2 over 3 pairs: each pair once per epoch; seeking reproduces a batch. */
static void check_loader(const char *predecoded)
{
    tp_image_set set;
    CHECK_MSG(tp_image_set_read(predecoded, &clip_options, &set) == 0, "%s", tp_last_error());
    tp_image_text_loader_options options = {.batch_size = 2, .seq_length = 16, .seed = 5, .shuffle = 1, .pad_id = 0,
                                            .world_size = 1};
    tp_image_text_loader *loader = tp_image_text_loader_create(&set, &options), *again = NULL;
    CHECK_MSG(loader != NULL, "%s", tp_last_error());
    int64_t order[2][3], seen = 0, epoch = 0, cursor = 0;
    tp_data_order(5, 0, 1, order[0], 3);
    tp_data_order(5, 1, 1, order[1], 3);
    float chw[3 * 12 * 16];
    int32_t saved[32];
    for (int step = 0; loader && step < 3; step++) {
        const tp_batch *batch = tp_image_text_loader_next(loader);
        for (int r = 0; r < 2; r++, seen++) {
            int64_t index = order[seen / 3][seen % 3], length = set.texts.offsets[index + 1] - set.texts.offsets[index];
            const int32_t *src = batch->src + r * 16, *seg = batch->seg + r * 16;
            CHECK(!memcmp(src, set.texts.ids + set.texts.offsets[index], (size_t)length * sizeof *src));
            CHECK(seg[length - 1] == 1 && seg[length] == 0 && src[15] == 0);
            tp_image_set_normalize(&set, index, chw);
            CHECK(!memcmp(chw, batch->pixels + r * batch->pixel_width, sizeof chw));
        }
        if (step == 0) tp_image_text_loader_position(loader, &epoch, &cursor);
        if (step == 1) memcpy(saved, batch->src, sizeof saved);
    }
    CHECK(epoch == 0 && cursor == 2);
    again = tp_image_text_loader_create(&set, &options);
    CHECK(again && tp_image_text_loader_seek(again, epoch, cursor) == 0 &&
          !memcmp(tp_image_text_loader_next(again)->src, saved, sizeof saved));
    options.seq_length = 4;
    CHECK(tp_image_text_loader_create(&set, &options) == NULL && strstr(tp_last_error(), "more than seq_length 4"));
    tp_image_text_loader_free(again);
    tp_image_text_loader_free(loader);
    tp_image_set_free(&set);
}

/* Ranks 0 and 1 of 2 with batches of 1 get the rows of one rank's batches of 2, across epochs, at the
 * same positions; a rank outside the world and a world larger than the set are refused. */
static void check_loader_ranks(const char *predecoded)
{
    tp_image_set set;
    CHECK_MSG(tp_image_set_read(predecoded, &clip_options, &set) == 0, "%s", tp_last_error());
    tp_image_text_loader_options one = {.batch_size = 2, .seq_length = 16, .seed = 5, .shuffle = 1, .world_size = 1};
    tp_image_text_loader_options shard = one;
    shard.batch_size = 1;
    shard.world_size = 2;
    tp_image_text_loader *whole = tp_image_text_loader_create(&set, &one), *ranks[2];
    for (int r = 0; r < 2; r++) {
        shard.rank = r;
        ranks[r] = tp_image_text_loader_create(&set, &shard);
        CHECK_MSG(ranks[r] != NULL, "%s", tp_last_error());
    }
    for (int step = 0; whole && ranks[0] && ranks[1] && step < 4; step++) {
        const tp_batch *batch = tp_image_text_loader_next(whole);
        for (int r = 0; r < 2; r++) {
            const tp_batch *rows = tp_image_text_loader_next(ranks[r]);
            CHECK(!memcmp(rows->src, batch->src + r * 16, 16 * sizeof *rows->src));
            CHECK(!memcmp(rows->pixels, batch->pixels + r * batch->pixel_width,
                          (size_t)batch->pixel_width * sizeof *rows->pixels));
            int64_t epoch[2], cursor[2];
            tp_image_text_loader_position(whole, &epoch[0], &cursor[0]);
            tp_image_text_loader_position(ranks[r], &epoch[1], &cursor[1]);
            CHECK(epoch[0] == epoch[1] && cursor[0] == cursor[1]);
        }
    }
    shard.rank = 2;
    CHECK(tp_image_text_loader_create(&set, &shard) == NULL && strstr(tp_last_error(), "rank 2 outside [0, world_size 2)"));
    shard.rank = 0;
    shard.world_size = 4;
    CHECK(tp_image_text_loader_create(&set, &shard) == NULL &&
          strstr(tp_last_error(), "3 image-text pairs are fewer than world_size 4"));
    for (int r = 0; r < 2; r++) tp_image_text_loader_free(ranks[r]);
    tp_image_text_loader_free(whole);
    tp_image_set_free(&set);
}

static void check_bad_lists(const tp_tokenizer *tok)
{
    CHECK(tp_image_set_fails_with(tp_scratch_write_text("tabless.tsv", "text\tpath\na photo " MEDIA "/gray.jpg\n"),
                                  &clip_options, "tabless.tsv: line 2: expected 2 tab-separated columns (text, path)"));
    CHECK(tp_image_set_fails_with(tp_scratch_write_text("empty.tsv", "\t" MEDIA "/gray.jpg\n"), &clip_options,
                                  "empty.tsv: line 1: empty text"));
    const char *missing = tp_scratch_write_text("missing.tsv", "one\t" MEDIA "/gray.jpg\ntwo\tno/such.png\n");
    CHECK(
        tp_image_set_fails_with(missing, &clip_options, "missing.tsv: line 2: no/such.png: No such file or directory"));
    tp_image_set_options skip = clip_options;
    skip.skip_bad_images = 1;
    tp_image_set set;
    CHECK(tp_image_set_read(missing, &skip, &set) == 0 && set.count == 1 && set.skipped == 1 &&
          !strcmp(set.captions[0], "one"));
    tp_image_set_free(&set);
    static const unsigned char idx[] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7};
    CHECK(tp_image_set_fails_with(tp_scratch_write("t-images-idx3-ubyte", idx, sizeof idx), &clip_options,
                                  "an IDX file holds labelled images; the clip processor reads text<TAB>path lines"));
    tp_id_lists texts;
    CHECK(tp_clip_read_texts(tp_scratch_write_text("one.txt", "\na cat\n\n"), tok, 8, &texts, NULL) < 0 &&
          strstr(tp_last_error(), "one.txt: 1 texts; zero-shot classification needs at least 2"));
    CHECK(tp_clip_read_texts(tp_scratch_write_text("latin1.txt", "a cat\n\na c\xe4t\n"), tok, 8, &texts, NULL) < 0 &&
          strstr(tp_last_error(), "latin1.txt: line 3: invalid UTF-8 at byte 4 of the text"));
    tp_image_set latin1;
    CHECK(tp_image_set_read(
              tp_scratch_write_text("latin1.tsv", "a cat\t" MEDIA "/gray.jpg\na c\xe4t\t" MEDIA "/gray.jpg\n"),
              &clip_options, &latin1) == 0 &&
          tp_clip_tokenize_set(&latin1, tok, 8) < 0 &&
          strstr(tp_last_error(), "latin1.tsv: line 2: invalid UTF-8 at byte 4 of the text"));
    tp_image_set_free(&latin1);
    tp_image_set_options gray = clip_options;
    gray.channels = 1;
    CHECK(tp_image_set_fails_with(missing, &gray, "the clip processor's images have 3 channels"));
}

int main(void)
{
    tp_scratch_init("clip_data");
    tp_tokenizer_options options = {.kind = "bert", .vocab_path = VOCAB, .do_lower_case = 1};
    tp_tokenizer *tok = tp_tokenizer_create(&options);
    CHECK_MSG(tok != NULL, "%s (run scripts/fetch_data.sh)", tp_last_error());
    tp_st_file *expected = tp_st_open("tests/fixtures/clip/data.safetensors");
    CHECK_MSG(expected != NULL, "%s (written by " GENERATOR ")", tp_last_error());
    const char *predecoded = tp_scratch_path("pairs.tpimg");
    if (tok && expected) {
        check_reference(expected, tok, predecoded);
        check_broken(predecoded);
        check_loader(predecoded);
        check_loader_ranks(predecoded);
    }
    if (tok) check_bad_lists(tok);
    if (expected) tp_st_close(expected);
    if (tok) tp_tokenizer_free(tok);
    return tp_test_finish("test_clip_data");
}
