/* The binary dataset (writer, validation on open), MLM masking and the batch loader. */
#include "core/dataset.h"
#include "core/error.h"
#include "core/preprocess.h"
#include "core/rng.h"
#include "support/check.h"
#include "support/scratch.h"

#include <inttypes.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A tiny vocabulary: the special ids as in BERT's layout, words from 5 up. */
enum { PAD = 0, UNK = 1, CLS = 2, SEP = 3, MASK = 4, FIRST_WORD = 5, VOCAB = 100, SEQ = 64 };

static tp_masking_options masking_options(void)
{
    tp_masking_options m = {
        .mask_prob = 0.15, .mask_id = MASK, .pad_id = PAD, .cls_id = CLS, .sep_id = SEP, .vocab_size = VOCAB};
    return m;
}

/* Instance i of the test datasets: [CLS] A [SEP] B [SEP] (bert) or [CLS] words [SEP] (mlm),
 * lengths and words drawn from a test-only stream. */
static int64_t make_instance(int kind, int64_t i, int64_t max_length, int32_t vocab, int32_t *ids,
                             tp_dataset_meta *meta)
{
    tp_rng rng = tp_rng_make(12345, 99, (uint64_t)i * 1000);
    int64_t length = 5 + (int64_t)tp_rng_below(&rng, (uint64_t)max_length - 4);
    int64_t a = 2 + (int64_t)tp_rng_below(&rng, (uint64_t)length - 3); /* [CLS] + >= 1 word + [SEP] */
    for (int64_t t = 0; t < length; t++)
        ids[t] = FIRST_WORD + (int32_t)tp_rng_below(&rng, (uint64_t)vocab - FIRST_WORD);
    ids[0] = CLS;
    ids[length - 1] = SEP;
    meta->reserved = 0;
    if (kind == TP_DATASET_BERT) {
        ids[a - 1] = SEP;
        meta->segment_a_length = (uint16_t)a;
        meta->is_random_next = (uint8_t)(i % 3 == 0);
    } else {
        meta->segment_a_length = (uint16_t)length;
        meta->is_random_next = 0;
    }
    return length;
}

/* Static masks for an instance, chosen as tp-preprocess does. */
static int64_t make_masks(const int32_t *ids, int64_t length, int64_t i, tp_dataset_mask *masks)
{
    int32_t masked[SEQ], positions[SEQ], labels[SEQ];
    memcpy(masked, ids, sizeof(int32_t) * (size_t)length);
    tp_masking_options m = masking_options();
    tp_rng rng = tp_rng_make(777, TP_STREAM_PREPROCESS, (uint64_t)i * 1000);
    int64_t count = tp_mask_sequence(masked, length, &m, &rng, positions, labels);
    for (int64_t k = 0; k < count; k++) {
        masks[k].position = (uint16_t)positions[k];
        masks[k].reserved = 0;
        masks[k].replacement = masked[positions[k]];
    }
    return count;
}

static int write_dataset(const char *path, int kind, int64_t count, int64_t vocab, int static_masking)
{
    tp_dataset_writer_options options = {kind, SEQ, vocab, static_masking, 0};
    tp_dataset_writer *w = tp_dataset_writer_open(path, &options);
    if (!w) return -1;
    int32_t ids[SEQ];
    tp_dataset_mask masks[SEQ];
    for (int64_t i = 0; i < count; i++) {
        tp_dataset_meta meta;
        int64_t length = make_instance(kind, i, SEQ, (int32_t)(vocab < VOCAB ? vocab : VOCAB), ids, &meta);
        int64_t mask_count = static_masking ? make_masks(ids, length, i, masks) : 0;
        if (tp_dataset_writer_add(w, ids, length, meta, masks, mask_count) != 0) {
            tp_dataset_writer_abort(w);
            return -1;
        }
    }
    return tp_dataset_writer_commit(w);
}

static tp_loader_options loader_options(int64_t batch_size, int shuffle)
{
    tp_loader_options o = {.batch_size = batch_size,
                           .seq_length = SEQ,
                           .seed = 42,
                           .rank = 0,
                           .world_size = 1,
                           .shuffle = shuffle,
                           .masking = masking_options()};
    return o;
}

static int batches_equal(const tp_batch *a, const tp_batch *b)
{
    size_t cells = (size_t)(a->batch_size * a->seq_length);
    return a->batch_size == b->batch_size && a->seq_length == b->seq_length && a->mlm_count == b->mlm_count &&
           a->real_tokens == b->real_tokens && memcmp(a->src, b->src, cells * 4) == 0 &&
           memcmp(a->seg, b->seg, cells * 4) == 0 &&
           memcmp(a->mlm_positions, b->mlm_positions, (size_t)a->mlm_count * 4) == 0 &&
           memcmp(a->mlm_labels, b->mlm_labels, (size_t)a->mlm_count * 4) == 0 &&
           memcmp(a->sp_labels, b->sp_labels, (size_t)a->batch_size * 4) == 0;
}

/* A deep copy of a batch, for comparing across loaders. */
typedef struct saved_batch {
    tp_batch batch;
    int32_t data[5][4 * SEQ * 8];
} saved_batch;

static void save_batch(saved_batch *saved, const tp_batch *b)
{
    size_t cells = (size_t)(b->batch_size * b->seq_length);
    saved->batch = *b;
    int32_t **fields[5] = {&saved->batch.src, &saved->batch.seg, &saved->batch.mlm_positions, &saved->batch.mlm_labels,
                           &saved->batch.sp_labels};
    const int32_t *sources[5] = {b->src, b->seg, b->mlm_positions, b->mlm_labels, b->sp_labels};
    size_t counts[5] = {cells, cells, (size_t)b->mlm_count, (size_t)b->mlm_count, (size_t)b->batch_size};
    for (int f = 0; f < 5; f++) {
        memcpy(saved->data[f], sources[f], counts[f] * 4);
        *fields[f] = saved->data[f];
    }
}

static void test_round_trip(int64_t vocab, int static_masking)
{
    const char *path = tp_scratch_path("round_trip.tpd");
    int kinds[2] = {TP_DATASET_BERT, TP_DATASET_MLM};
    for (int k = 0; k < 2; k++) {
        CHECK_MSG(write_dataset(path, kinds[k], 50, vocab, static_masking) == 0, "%s", tp_last_error());
        tp_dataset *ds = tp_dataset_open(path);
        CHECK_MSG(ds != NULL, "%s", tp_last_error());
        if (!ds) continue;
        CHECK(tp_dataset_kind(ds) == kinds[k]);
        CHECK(tp_dataset_count(ds) == 50);
        CHECK(tp_dataset_seq_length(ds) == SEQ);
        CHECK(tp_dataset_vocab_size(ds) == vocab);
        CHECK(tp_dataset_static_masking(ds) == static_masking);
        int mismatches = 0;
        for (int64_t i = 0; i < 50; i++) {
            int32_t expected[SEQ], actual[SEQ];
            tp_dataset_meta expected_meta, actual_meta;
            int64_t length = make_instance(kinds[k], i, SEQ, VOCAB, expected, &expected_meta);
            mismatches += tp_dataset_instance(ds, i, actual, &actual_meta) != length ||
                          memcmp(expected, actual, sizeof(int32_t) * (size_t)length) != 0 ||
                          memcmp(&expected_meta, &actual_meta, sizeof actual_meta) != 0;
        }
        CHECK(mismatches == 0);
        CHECK(tp_dataset_instance(ds, 50, NULL, NULL) == -1);
        tp_dataset_close(ds);
    }
    /* uint16 storage exactly when the vocabulary fits. */
    FILE *fp = fopen(path, "rb");
    tp_dataset_header h;
    CHECK(fp && fread(&h, sizeof h, 1, fp) == 1);
    if (fp) fclose(fp);
    CHECK(h.token_bytes == (vocab <= 65536 ? 2u : 4u));
}

/* Rows against the instances they came from: padding, segments, labels, masking rules. */
static void test_batch_contents(int static_masking)
{
    const char *path = tp_scratch_path("contents.tpd");
    CHECK(write_dataset(path, TP_DATASET_BERT, 24, VOCAB, static_masking) == 0);
    tp_dataset *ds = tp_dataset_open(path);
    tp_loader_options o = loader_options(8, 0);
    tp_loader *loader = ds ? tp_loader_create(ds, &o) : NULL;
    CHECK_MSG(loader != NULL, "%s", tp_last_error());
    if (!loader) return;
    int bad_rows = 0, bad_masks = 0;
    saved_batch *first_epoch = tp_xmalloc(sizeof *first_epoch * 3);
    for (int step = 0; step < 3; step++) {
        const tp_batch *b = tp_loader_next(loader);
        save_batch(&first_epoch[step], b);
        int64_t next_mask = 0, real_tokens = 0;
        for (int64_t row = 0; row < 8; row++) {
            int32_t ids[SEQ];
            tp_dataset_meta meta;
            int64_t length = make_instance(TP_DATASET_BERT, step * 8 + row, SEQ, VOCAB, ids, &meta);
            real_tokens += length;
            const int32_t *src = b->src + row * SEQ, *seg = b->seg + row * SEQ;
            for (int64_t s = 0; s < SEQ; s++) {
                int expected_seg = s >= length ? 0 : s < meta.segment_a_length ? 1 : 2;
                bad_rows += seg[s] != expected_seg || (s >= length && src[s] != PAD);
            }
            bad_rows += b->sp_labels[row] != meta.is_random_next;
            /* Positions of this row, ascending; every other position is unchanged. */
            int64_t previous = -1;
            for (int64_t s = 0; s < length; s++) {
                int masked = next_mask < b->mlm_count && b->mlm_positions[next_mask] == row * SEQ + s;
                if (!masked) {
                    bad_masks += src[s] != ids[s];
                    continue;
                }
                bad_masks += b->mlm_labels[next_mask] != ids[s] || ids[s] == CLS || ids[s] == SEP ||
                             b->mlm_positions[next_mask] <= previous;
                previous = b->mlm_positions[next_mask];
                next_mask++;
            }
        }
        CHECK(next_mask == b->mlm_count);
        CHECK(b->real_tokens == real_tokens);
    }
    CHECK(bad_rows == 0);
    CHECK(bad_masks == 0);
    /* The second epoch (same order, no shuffle): dynamic masking masks again, static masks repeat. */
    int same = 0;
    for (int step = 0; step < 3; step++) same += batches_equal(&first_epoch[step].batch, tp_loader_next(loader));
    CHECK(same == (static_masking ? 3 : 0));
    free(first_epoch);
    tp_loader_free(loader);
    tp_dataset_close(ds);
}

static void test_determinism_and_threads(void)
{
    const char *path = tp_scratch_path("determinism.tpd");
    CHECK(write_dataset(path, TP_DATASET_BERT, 40, VOCAB, 0) == 0);
    tp_dataset *ds = tp_dataset_open(path);
    if (!ds) return;
    tp_loader_options o = loader_options(8, 1);
    int differ = 0;
    saved_batch *reference = tp_xmalloc(sizeof *reference * 20);
    omp_set_num_threads(1);
    tp_loader *one = tp_loader_create(ds, &o);
    for (int step = 0; step < 20; step++) save_batch(&reference[step], tp_loader_next(one)); /* 4 epochs of 5 batches */
    omp_set_num_threads(2);
    tp_loader *two = tp_loader_create(ds, &o);
    for (int step = 0; step < 20; step++) differ += !batches_equal(&reference[step].batch, tp_loader_next(two));
    CHECK(differ == 0);
    int64_t epoch, cursor;
    tp_loader_position(two, &epoch, &cursor);
    CHECK(epoch == 4 && cursor == 0);
    /* Each epoch has its own order; another seed gives other batches. */
    CHECK(!batches_equal(&reference[0].batch, &reference[5].batch));
    o.seed = 43;
    tp_loader *other = tp_loader_create(ds, &o);
    CHECK(!batches_equal(&reference[0].batch, tp_loader_next(other)));
    tp_loader_free(one);
    tp_loader_free(two);
    tp_loader_free(other);
    free(reference);
    tp_dataset_close(ds);
}

/* The batch after seek(position) equals the batch an uninterrupted stream gives there. */
static void test_resume(void)
{
    const char *path = tp_scratch_path("resume.tpd");
    CHECK(write_dataset(path, TP_DATASET_MLM, 30, VOCAB, 0) == 0);
    tp_dataset *ds = tp_dataset_open(path);
    if (!ds) return;
    tp_loader_options o = loader_options(7, 1);
    tp_loader *stream = tp_loader_create(ds, &o);
    int64_t epochs[12], cursors[12];
    saved_batch *batches = tp_xmalloc(sizeof *batches * 12);
    for (int step = 0; step < 12; step++) {
        tp_loader_position(stream, &epochs[step], &cursors[step]);
        save_batch(&batches[step], tp_loader_next(stream));
    }
    int differ = 0;
    for (int step = 11; step >= 0; step--) { /* backwards: seeks cross epochs both ways */
        tp_loader *resumed = tp_loader_create(ds, &o);
        CHECK(tp_loader_seek(resumed, epochs[step], cursors[step]) == 0);
        for (int later = step; later < 12; later++)
            differ += !batches_equal(&batches[later].batch, tp_loader_next(resumed));
        CHECK(tp_loader_seek(stream, epochs[step], cursors[step]) == 0);
        differ += !batches_equal(&batches[step].batch, tp_loader_next(stream));
        tp_loader_free(resumed);
    }
    CHECK(differ == 0);
    CHECK(tp_loader_seek(stream, 0, 30) == -1);
    CHECK(strcmp(tp_last_error(), "loader: position (epoch 0, cursor 30) outside epoch >= 0, cursor in [0, 30)") == 0);
    tp_loader_free(stream);
    free(batches);
    tp_dataset_close(ds);
}

/* Rank r of 2 sees every second instance of the 1-rank order: interleaved they are the 1-rank stream. */
static void test_sharding(void)
{
    const char *path = tp_scratch_path("sharding.tpd");
    CHECK(write_dataset(path, TP_DATASET_BERT, 26, VOCAB, 0) == 0);
    tp_dataset *ds = tp_dataset_open(path);
    if (!ds) return;
    tp_loader_options o = loader_options(1, 1);
    tp_loader *single = tp_loader_create(ds, &o);
    o.world_size = 2;
    tp_loader *ranks[2];
    for (int r = 0; r < 2; r++) {
        o.rank = r;
        ranks[r] = tp_loader_create(ds, &o);
    }
    int differ = 0;
    for (int step = 0; step < 26 * 2; step++) /* two epochs */
        differ += !batches_equal(tp_loader_next(single), tp_loader_next(ranks[step % 2]));
    CHECK(differ == 0);
    int64_t epoch, cursor;
    tp_loader_position(ranks[1], &epoch, &cursor);
    CHECK(epoch == 2 && cursor == 0);
    o.world_size = 27;
    o.rank = 0;
    CHECK(tp_loader_create(ds, &o) == NULL);
    char expected[512];
    snprintf(expected, sizeof expected, "%s: 26 instances are fewer than world_size 27", path);
    CHECK_MSG(strcmp(tp_last_error(), expected) == 0, "%s", tp_last_error());
    tp_loader_free(single);
    tp_loader_free(ranks[0]);
    tp_loader_free(ranks[1]);
    tp_dataset_close(ds);
}

/* Write instances of chosen lengths: [CLS] words... [SEP]. */
static int write_fixed_lengths(const char *path, const int64_t *lengths, int64_t count, int64_t repeats)
{
    tp_dataset_writer_options options = {TP_DATASET_MLM, 128, VOCAB, 0, 0};
    tp_dataset_writer *w = tp_dataset_writer_open(path, &options);
    if (!w) return -1;
    int32_t ids[128];
    for (int64_t i = 0; i < count * repeats; i++) {
        int64_t length = lengths[i % count];
        for (int64_t t = 0; t < length; t++) ids[t] = FIRST_WORD + (int32_t)((i * 7 + t * 13) % (VOCAB - FIRST_WORD));
        ids[0] = CLS;
        ids[length - 1] = SEP;
        tp_dataset_meta meta = {(uint16_t)length, 0, 0};
        if (tp_dataset_writer_add(w, ids, length, meta, NULL, 0) != 0) {
            tp_dataset_writer_abort(w);
            return -1;
        }
    }
    return tp_dataset_writer_commit(w);
}

static void test_masking_statistics(void)
{
    /* Number to predict per instance, from Python: max(1, int(round(n * 0.15))) (TencentPretrain's mask_seq). */
    static const int64_t lengths[] = {3, 5, 9, 10, 16, 17, 23, 30, 50, 70, 90, 128};
    static const int64_t predicted[] = {1, 1, 1, 2, 2, 3, 3, 4, 8, 10, 14, 19};
    enum { KINDS = sizeof lengths / sizeof lengths[0], REPEATS = 200 };
    const char *path = tp_scratch_path("statistics.tpd");
    CHECK(write_fixed_lengths(path, lengths, KINDS, REPEATS) == 0);
    tp_dataset *ds = tp_dataset_open(path);
    if (!ds) return;
    tp_loader_options o = loader_options(KINDS, 0);
    o.seq_length = 128;
    tp_loader *loader = tp_loader_create(ds, &o);
    int64_t wrong_counts = 0, specials = 0, masked = 0, replaced = 0, kept = 0, total = 0;
    int64_t position_hits[128] = {0}, min_random = VOCAB, max_random = 0;
    for (int step = 0; step < REPEATS; step++) {
        const tp_batch *b = tp_loader_next(loader);
        int64_t per_row[KINDS] = {0};
        for (int64_t k = 0; k < b->mlm_count; k++) {
            int64_t row = b->mlm_positions[k] / 128, s = b->mlm_positions[k] % 128;
            int32_t now = b->src[b->mlm_positions[k]], label = b->mlm_labels[k];
            per_row[row]++;
            total++;
            specials += label == CLS || label == SEP || label == PAD || s == 0 || s == lengths[row] - 1;
            if (now == MASK) {
                masked++;
            } else if (now == label) {
                kept++;
            } else {
                replaced++;
                specials += now == CLS || now == SEP || now == PAD;
                min_random = now < min_random ? now : min_random;
                max_random = now > max_random ? now : max_random;
            }
            if (row == KINDS - 1) position_hits[s]++;
        }
        for (int64_t row = 0; row < KINDS; row++) wrong_counts += per_row[row] != predicted[row];
    }
    CHECK(wrong_counts == 0);
    CHECK(specials == 0);
    /* 80 / 10 / 10 within 1.5 points (about 5 standard deviations over ~16k predictions);
     * a random id may equal the original, which counts as kept (1 in 95). */
    CHECK_MSG(tp_close((double)masked / total, 0.8, 0.015 / 0.8, 0), "masked %.4f", (double)masked / total);
    CHECK_MSG(tp_close((double)replaced / total, 0.1, 0.15, 0), "replaced %.4f", (double)replaced / total);
    CHECK_MSG(tp_close((double)kept / total, 0.1, 0.15, 0), "kept %.4f", (double)kept / total);
    CHECK(min_random == 1 && max_random == VOCAB - 1); /* randint(1, len(vocab) - 1) */
    /* Uniform over the 126 inner positions of the 128-token rows: 200 * 19 picks, ~30 each. */
    int64_t low = INT64_MAX, high = 0;
    for (int s = 1; s < 127; s++) {
        low = position_hits[s] < low ? position_hits[s] : low;
        high = position_hits[s] > high ? position_hits[s] : high;
    }
    CHECK_MSG(low >= 10 && high <= 60, "position hits %" PRId64 "..%" PRId64, low, high);
    tp_loader_free(loader);
    tp_dataset_close(ds);
}

/* A batch shorter than the dataset's seq_length truncates instances and their static masks. */
static void test_truncation(void)
{
    const char *path = tp_scratch_path("truncation.tpd");
    CHECK(write_dataset(path, TP_DATASET_BERT, 16, VOCAB, 1) == 0);
    tp_dataset *ds = tp_dataset_open(path);
    if (!ds) return;
    tp_loader_options o = loader_options(16, 0);
    o.seq_length = 12;
    tp_loader *loader = tp_loader_create(ds, &o);
    const tp_batch *b = tp_loader_next(loader);
    int bad = 0;
    int64_t next_mask = 0;
    for (int64_t row = 0; row < 16; row++) {
        int32_t ids[SEQ];
        tp_dataset_mask masks[SEQ];
        tp_dataset_meta meta;
        int64_t length = make_instance(TP_DATASET_BERT, row, SEQ, VOCAB, ids, &meta);
        int64_t mask_count = make_masks(ids, length, row, masks);
        for (int64_t m = 0; m < mask_count && masks[m].position < 12; m++, next_mask++)
            bad += b->mlm_positions[next_mask] != row * 12 + masks[m].position ||
                   b->src[row * 12 + masks[m].position] != masks[m].replacement ||
                   b->mlm_labels[next_mask] != ids[masks[m].position];
        for (int64_t s = 0; s < 12; s++)
            bad += b->seg[row * 12 + s] != (s >= length ? 0 : s < meta.segment_a_length ? 1 : 2);
    }
    CHECK(bad == 0 && next_mask == b->mlm_count);
    tp_loader_free(loader);
    tp_dataset_close(ds);
}

static void test_loader_options(void)
{
    const char *path = tp_scratch_path("options.tpd");
    CHECK(write_dataset(path, TP_DATASET_BERT, 4, VOCAB, 0) == 0);
    tp_dataset *ds = tp_dataset_open(path);
    if (!ds) return;
    tp_loader_options o = loader_options(2, 1);
    o.seq_length = SEQ + 1;
    CHECK(tp_loader_create(ds, &o) == NULL &&
          strcmp(tp_last_error(), "loader: seq_length 65 outside [2, 64] (the dataset's seq_length)") == 0);
    o = loader_options(2, 1);
    o.masking.mask_id = -1;
    CHECK(tp_loader_create(ds, &o) == NULL &&
          strcmp(tp_last_error(), "masking: mask_id -1 outside [0, vocab_size 100)") == 0);
    o = loader_options(2, 1);
    o.masking.mask_prob = 0;
    CHECK(tp_loader_create(ds, &o) == NULL && strcmp(tp_last_error(), "masking: mask_prob 0 outside (0, 1]") == 0);
    o = loader_options(0, 1);
    CHECK(tp_loader_create(ds, &o) == NULL && strcmp(tp_last_error(), "loader: batch_size 0 must be at least 1") == 0);
    o = loader_options(2, 1);
    o.rank = 1;
    CHECK(tp_loader_create(ds, &o) == NULL && strcmp(tp_last_error(), "loader: rank 1 outside [0, world_size 1)") == 0);
    tp_dataset_close(ds);
}

/* ---- corrupt datasets ---- */

static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    *size = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *data = tp_xmalloc(*size + 256);
    size_t got = fread(data, 1, *size, fp);
    fclose(fp);
    return got == *size ? data : NULL;
}

/* Opens a patched copy of the good file and compares the error with expected (a format with one %s for the path). */
static void expect_corrupt(const uint8_t *data, size_t size, const char *expected_format, ...)
{
    const char *path = tp_scratch_write("corrupt.tpd", data, size);
    char expected_tail[512], expected[1024];
    va_list args;
    va_start(args, expected_format);
    vsnprintf(expected_tail, sizeof expected_tail, expected_format, args);
    va_end(args);
    snprintf(expected, sizeof expected, "%s: %s", path, expected_tail);
    tp_dataset *ds = tp_dataset_open(path);
    CHECK_MSG(ds == NULL && strcmp(tp_last_error(), expected) == 0, "expected \"%s\", got \"%s\"", expected,
              ds ? "success" : tp_last_error());
    tp_dataset_close(ds);
}

static void put_u32(uint8_t *data, size_t offset, uint32_t value) { memcpy(data + offset, &value, 4); }
static void put_u64(uint8_t *data, size_t offset, uint64_t value) { memcpy(data + offset, &value, 8); }
static uint64_t get_u64(const uint8_t *data, size_t offset)
{
    uint64_t value;
    memcpy(&value, data + offset, 8);
    return value;
}

static void test_corrupt_datasets(void)
{
    const char *good_path = tp_scratch_path("good.tpd");
    CHECK(write_dataset(good_path, TP_DATASET_BERT, 10, VOCAB, 1) == 0);
    size_t size = 0;
    uint8_t *good = read_all(good_path, &size);
    if (!good) return;
    uint8_t *bad = tp_xmalloc(size + 256);
    tp_dataset_header h;
    memcpy(&h, good, sizeof h);
    uint64_t off1 = get_u64(good, h.offsets_pos + 8);
    size_t beyond = (size + 127) / 64 * 64; /* aligned, past the end */

#define PATCHED(statement) (memcpy(bad, good, size), (statement), bad)
    expect_corrupt(PATCHED(bad[0] = 'X'), size, "offset 0: bad magic (not a tp dataset)");
    expect_corrupt(PATCHED(put_u32(bad, 8, 2)), size, "offset 8: unsupported version 2 (this build reads version 1)");
    expect_corrupt(PATCHED(put_u32(bad, 12, 7)), size, "offset 12: unknown dataset kind 7 (1 = bert, 2 = mlm, 3 = lm, 4 = seq2seq, 5 = prefixlm)");
    expect_corrupt(PATCHED(put_u32(bad, 16, 3)), size, "offset 16: token_bytes 3 is not 2 or 4");
    expect_corrupt(good, size - 10, "truncated or extended: header says %zu bytes, file has %zu", size, size - 10);
    expect_corrupt(PATCHED(memset(bad + size, 0, 64)), size + 64,
                   "truncated or extended: header says %zu bytes, file has %zu", size, size + 64);
    expect_corrupt(PATCHED(put_u64(bad, 96, size + 1)), size,
                   "truncated or extended: header says %zu bytes, file has %zu", size + 1, size);
    expect_corrupt(good, 100, "file has 100 bytes, less than the 128-byte header");
    expect_corrupt(PATCHED(put_u64(bad, h.offsets_pos + 24, h.token_count + 100)), size,
                   "offset %" PRIu64 ": offsets[3] = %" PRIu64 " is beyond token_count %" PRIu64, h.offsets_pos + 24,
                   h.token_count + 100, h.token_count);
    expect_corrupt(PATCHED(put_u64(bad, h.offsets_pos + 16, off1 - 1)), size,
                   "offset %" PRIu64 ": token offsets not increasing at instance 1", h.offsets_pos + 16);
    expect_corrupt(PATCHED(put_u64(bad, h.offsets_pos + 16, off1)), size,
                   "offset %" PRIu64 ": instance 1 has 0 tokens, fewer than 2", h.offsets_pos + 16);
    expect_corrupt(PATCHED(put_u64(bad, h.offsets_pos + 80, h.token_count - 1)), size,
                   "offset %" PRIu64 ": offsets end at %" PRIu64 " but token_count is %" PRIu64, h.offsets_pos + 80,
                   h.token_count - 1, h.token_count);
    uint16_t big_id = VOCAB;
    expect_corrupt(PATCHED(memcpy(bad + h.tokens_pos + 2 * (off1 + 1), &big_id, 2)), size,
                   "offset %" PRIu64 ": instance 1: token id 100 >= vocab_size 100", h.tokens_pos + 2 * (off1 + 1));
    expect_corrupt(PATCHED(put_u32(bad, 20, 4)), size,
                   "offset %" PRIu64 ": instance 0 has %" PRIu64 " tokens, more than seq_length 4", h.offsets_pos + 8,
                   off1);
    expect_corrupt(
        PATCHED(put_u64(bad, 72, beyond)), size,
        "offset 72: meta section (10 entries of 4 bytes at %zu) extends past the end of the file (%zu bytes)", beyond,
        size);
    expect_corrupt(PATCHED(put_u64(bad, 64, 130)), size, "offset 64: tokens section at 130 is not 64-byte aligned");
    expect_corrupt(PATCHED(put_u64(bad, 56, h.tokens_pos)), size,
                   "sections offsets (at %" PRIu64 ") and tokens (at %" PRIu64 ") overlap", h.tokens_pos, h.tokens_pos);
    expect_corrupt(PATCHED(put_u64(bad, 32, UINT64_MAX)), size,
                   "offset 32: instance_count %" PRIu64 " impossible in a %zu-byte file", UINT64_MAX, size);
    tp_dataset_meta long_a = {(uint16_t)(off1 + 1), 0, 0};
    expect_corrupt(PATCHED(memcpy(bad + h.meta_pos, &long_a, 4)), size,
                   "offset %" PRIu64 ": instance 0: segment_a_length %" PRIu64 " exceeds the instance length %" PRIu64,
                   h.meta_pos, off1 + 1, off1);
    tp_dataset_mask first_mask;
    memcpy(&first_mask, good + h.masks_pos, sizeof first_mask);
    first_mask.position = (uint16_t)off1;
    expect_corrupt(PATCHED(memcpy(bad + h.masks_pos, &first_mask, sizeof first_mask)), size,
                   "offset %" PRIu64 ": instance 0: mask position %" PRIu64 " beyond the instance length %" PRIu64,
                   h.masks_pos, off1, off1);
    expect_corrupt(PATCHED(put_u64(bad, 88, 0)), size,
                   "offset 80: mask_offsets_pos and masks_pos must both be set (static masking) or both be 0");
#undef PATCHED

    CHECK(tp_dataset_open(tp_scratch_path("missing.tpd")) == NULL);
    char expected[512];
    snprintf(expected, sizeof expected, "%s: No such file or directory", tp_scratch_path("missing.tpd"));
    CHECK(strcmp(tp_last_error(), expected) == 0);
    free(good);
    free(bad);
}

/* Writer errors name the file and instance and leave nothing behind. */
static void test_writer_errors(void)
{
    const char *path = tp_scratch_path("writer.tpd");
    tp_dataset_writer_options options = {TP_DATASET_BERT, SEQ, VOCAB, 0, 0};
    tp_dataset_writer *w = tp_dataset_writer_open(path, &options);
    int32_t ids[4] = {CLS, 7, SEP, 150};
    tp_dataset_meta meta = {2, 0, 0};
    CHECK(tp_dataset_writer_add(w, ids, 1, meta, NULL, 0) == -1);
    char expected[512];
    snprintf(expected, sizeof expected, "%s: instance 0: length 1 outside [2, seq_length 64]", path);
    CHECK_MSG(strcmp(tp_last_error(), expected) == 0, "%s", tp_last_error());
    CHECK(tp_dataset_writer_add(w, ids, 4, meta, NULL, 0) == -1);
    snprintf(expected, sizeof expected, "%s: instance 0: token id 150 outside [0, vocab_size 100)", path);
    CHECK_MSG(strcmp(tp_last_error(), expected) == 0, "%s", tp_last_error());
    tp_dataset_mask mask = {1, 0, MASK};
    CHECK(tp_dataset_writer_add(w, ids, 3, meta, &mask, 1) == -1);
    snprintf(expected, sizeof expected, "%s: instance 0: masks given to a dataset without static masking", path);
    CHECK_MSG(strcmp(tp_last_error(), expected) == 0, "%s", tp_last_error());
    CHECK(tp_dataset_writer_commit(w) == -1);
    snprintf(expected, sizeof expected, "%s: no instances to write", path);
    CHECK(strcmp(tp_last_error(), expected) == 0);
    options.static_masking = 1;
    w = tp_dataset_writer_open(path, &options);
    CHECK(w != NULL);
    tp_dataset_writer_abort(w);
    CHECK(access(path, F_OK) != 0);
    options.seq_length = 70000;
    CHECK(tp_dataset_writer_open(path, &options) == NULL);
    snprintf(expected, sizeof expected, "%s: seq_length 70000 outside [2, 65535]", path);
    CHECK(strcmp(tp_last_error(), expected) == 0);
}

/* ---- tp_preprocess on a tiny vocabulary (the e2e test covers real text and the BERT vocabulary) ---- */

static const char *tiny_words[] = {"the", "cat", "sat", "on", "mat", "dog", "ran", "far", "a", "bird", "sang", "loud"};
enum { TINY_WORDS = sizeof tiny_words / sizeof tiny_words[0], TINY_FIRST_WORD = 5 };

static const char *write_tiny_vocab(const char *name, int with_mask)
{
    char text[512] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n";
    strcat(text, with_mask ? "[MASK]\n" : "[unused0]\n");
    for (int w = 0; w < TINY_WORDS; w++) strcat(strcat(text, tiny_words[w]), "\n");
    return tp_scratch_write_text(name, text);
}

/* Ids of a line of tiny_words separated by single spaces: the reference tokenization. */
static int64_t tiny_ids(const char *line, int32_t *ids)
{
    int64_t count = 0;
    for (const char *word = line; *word && *word != '\n';) {
        size_t len = strcspn(word, " \n");
        for (int w = 0; w < TINY_WORDS; w++)
            if (strlen(tiny_words[w]) == len && strncmp(tiny_words[w], word, len) == 0)
                ids[count++] = TINY_FIRST_WORD + w;
        word += len + (word[len] == ' ');
    }
    return count;
}

static const char tiny_corpus[] = "the cat sat on the mat\nthe dog ran far\na bird sang\n\n"
                                  "a dog sat\nthe bird ran on\n\n"
                                  "the mat\nthe cat sang loud\na cat ran far far\nthe dog sat on a mat\n\n"
                                  "loud loud bird\n";

static tp_preprocess_options tiny_options(const char *processor, const char *corpus, const char *vocab,
                                          const char *dataset)
{
    tp_preprocess_options o = {.corpus_path = corpus,
                               .dataset_path = dataset,
                               .processor = processor,
                               .tokenizer = {.kind = "bert", .vocab_path = vocab, .do_lower_case = 1},
                               .seq_length = 12,
                               .dup_factor = 3,
                               .docs_buffer_size = 100000,
                               .short_seq_prob = 0.1,
                               .mask_prob = 0.15,
                               .seed = 7};
    return o;
}

static void test_preprocess_bert(void)
{
    const char *corpus = tp_scratch_write_text("tiny_corpus.txt", tiny_corpus),
               *vocab = write_tiny_vocab("tiny_vocab.txt", 1);
    tp_preprocess_options o = tiny_options("bert", corpus, vocab, tp_scratch_path("tiny_bert_1.tpd"));
    tp_preprocess_progress totals;
    omp_set_num_threads(1);
    CHECK_MSG(tp_preprocess(&o, &totals) == 0, "%s", tp_last_error());
    omp_set_num_threads(2);
    o.dataset_path = tp_scratch_path("tiny_bert_2.tpd");
    CHECK_MSG(tp_preprocess(&o, NULL) == 0, "%s", tp_last_error());
    size_t size1 = 0, size2 = 0;
    uint8_t *one = read_all(tp_scratch_path("tiny_bert_1.tpd"), &size1), *two = read_all(o.dataset_path, &size2);
    CHECK(one && two && size1 == size2 && memcmp(one, two, size1) == 0); /* any thread count, same bytes */
    free(one);
    free(two);
    CHECK(totals.lines == 13 && totals.documents == 4 && totals.sentences == 10 && totals.corpus_tokens == 40);
    tp_dataset *ds = tp_dataset_open(o.dataset_path);
    CHECK_MSG(ds != NULL, "%s", tp_last_error());
    if (!ds) return;
    CHECK(tp_dataset_kind(ds) == TP_DATASET_BERT && tp_dataset_static_masking(ds));
    CHECK(tp_dataset_count(ds) == totals.instances && totals.instances >= 3 * 4);
    int bad = 0;
    for (int64_t i = 0; i < tp_dataset_count(ds); i++) {
        int32_t ids[12];
        tp_dataset_meta meta;
        int64_t length = tp_dataset_instance(ds, i, ids, &meta);
        bad += ids[0] != CLS || ids[meta.segment_a_length - 1] != SEP || ids[length - 1] != SEP;
        for (int64_t t = 1; t < length - 1; t++) bad += t != meta.segment_a_length - 1 && ids[t] < TINY_FIRST_WORD;
    }
    CHECK(bad == 0);
    tp_dataset_close(ds);
}

/* mlm, one piece list per line: [CLS] line [SEP] cut into seq_length pieces. */
static void test_preprocess_mlm(void)
{
    const char *corpus = tp_scratch_path("tiny_corpus.txt"), *vocab = tp_scratch_path("tiny_vocab.txt");
    tp_preprocess_options o = tiny_options("mlm", corpus, vocab, tp_scratch_path("tiny_mlm.tpd"));
    o.seq_length = 5;
    o.dup_factor = 1;
    o.dynamic_masking = 1;
    CHECK_MSG(tp_preprocess(&o, NULL) == 0, "%s", tp_last_error());
    tp_dataset *ds = tp_dataset_open(o.dataset_path);
    if (!ds) return;
    CHECK(tp_dataset_kind(ds) == TP_DATASET_MLM && !tp_dataset_static_masking(ds));
    int64_t instance = 0, mismatches = 0;
    for (const char *line = tiny_corpus; *line; line = strchr(line, '\n') + 1) {
        int32_t expected[32], actual[32];
        int64_t words = tiny_ids(line, expected + 1);
        if (words == 0) continue;
        expected[0] = CLS;
        expected[words + 1] = SEP;
        for (int64_t start = 0; start < words + 2; start += 5) {
            int64_t length = words + 2 - start < 5 ? words + 2 - start : 5;
            if (length < 2) continue;
            mismatches += instance >= tp_dataset_count(ds) ||
                          tp_dataset_instance(ds, instance++, actual, NULL) != length ||
                          memcmp(actual, expected + start, sizeof(int32_t) * (size_t)length) != 0;
        }
    }
    CHECK(mismatches == 0 && instance == tp_dataset_count(ds));
    tp_dataset_close(ds);
}

static void expect_preprocess_error(tp_preprocess_options o, const char *expected)
{
    CHECK(tp_preprocess(&o, NULL) == -1);
    CHECK_MSG(strcmp(tp_last_error(), expected) == 0, "expected \"%s\", got \"%s\"", expected, tp_last_error());
    CHECK(access(o.dataset_path, F_OK) != 0);
}

static void test_preprocess_errors(void)
{
    const char *vocab = tp_scratch_path("tiny_vocab.txt"), *no_mask = write_tiny_vocab("vocab_no_mask.txt", 0),
               *out = tp_scratch_path("bad.tpd");
    const char *corpus = tp_scratch_write_text("bad_corpus.txt", "the cat sat\nthe dog ran\n");
    char expected[512];
    snprintf(expected, sizeof expected,
             "%s: the bert processor needs documents separated by blank lines; found 1 document", corpus);
    expect_preprocess_error(tiny_options("bert", corpus, vocab, out), expected);
    tp_scratch_write_text("bad_corpus.txt", "the cat\n\na \xc3\x28 dog\n");
    snprintf(expected, sizeof expected, "%s: line 3: invalid UTF-8 at byte 3 of the line", corpus);
    expect_preprocess_error(tiny_options("mlm", corpus, vocab, out), expected);
    snprintf(expected, sizeof expected, "%s: the vocabulary lacks [MASK] (needed by the bert processor)", no_mask);
    expect_preprocess_error(tiny_options("bert", corpus, no_mask, out), expected);
    expect_preprocess_error(tiny_options("gpt", corpus, vocab, out), "unknown processor 'gpt' (known: bert, mlm, lm, t5, bart, mt, prefixlm)");
}

int main(void)
{
    tp_scratch_init("dataset");
    test_round_trip(VOCAB, 0);
    test_round_trip(VOCAB, 1);
    test_round_trip(70000, 0);
    test_batch_contents(0);
    test_batch_contents(1);
    test_determinism_and_threads();
    test_resume();
    test_sharding();
    test_masking_statistics();
    test_truncation();
    test_loader_options();
    test_corrupt_datasets();
    test_writer_errors();
    test_preprocess_bert();
    test_preprocess_mlm();
    test_preprocess_errors();
    CHECK(tp_scratch_count_temp_files(tp_scratch_dir()) == 0); /* no temporary file survives a commit or an abort */
    return tp_test_finish("test_dataset");
}
