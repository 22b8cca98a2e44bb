/* libFuzzer harness for the dataset reader and the batch loader: every input either is refused
 * with a message naming the file, or opens into instances that keep every promise of
 * core/dataset.h -- lengths in [2, seq_length], ids below vocab_size, segment lengths that fit --
 * and feeds a loader whose batches (full length and truncated, shuffled and in file order, one
 * rank of two, the file's static masks or dynamic masking) hold only valid ids, segments and
 * ascending mask positions.  Build and run with tests/fuzz/run.sh dataset <seconds>. */
#include "tests/fuzz/memfile.h"

#include "core/dataset.h"
#include "core/error.h"

#include <string.h>

enum { PAD_ID = 0, CLS_ID = 2, SEP_ID = 3, MASK_ID = 4, MIN_MASKING_VOCAB = 8, BATCHES = 3 };

static void walk_instances(const tp_dataset *ds)
{
    int64_t seq_length = tp_dataset_seq_length(ds), vocab_size = tp_dataset_vocab_size(ds);
    int64_t longest = seq_length + tp_dataset_tgt_seq_length(ds); /* seq2seq: source + target */
    int32_t *ids = malloc(sizeof *ids * (size_t)longest);
    for (int64_t i = 0; i < tp_dataset_count(ds); i++) {
        tp_dataset_meta meta;
        int64_t length = tp_dataset_instance(ds, i, ids, &meta);
        fuzz_check(length >= 2 && length <= longest);
        fuzz_check(meta.segment_a_length <= length && meta.is_random_next <= 1);
        if (tp_dataset_kind(ds) == TP_DATASET_BERT) fuzz_check(meta.segment_a_length >= 2 && meta.segment_a_length < length);
        if (tp_dataset_kind(ds) == TP_DATASET_SEQ2SEQ)
            fuzz_check(meta.segment_a_length >= 1 && meta.segment_a_length <= seq_length &&
                       length - meta.segment_a_length >= 2 && length - meta.segment_a_length <= longest - seq_length);
        if (tp_dataset_kind(ds) == TP_DATASET_PREFIXLM) fuzz_check(meta.segment_a_length >= 1 && meta.segment_a_length < length);
        for (int64_t t = 0; t < length; t++) fuzz_check(ids[t] >= 0 && ids[t] < vocab_size);
    }
    fuzz_check(tp_dataset_instance(ds, tp_dataset_count(ds), ids, NULL) == -1);
    free(ids);
}

static void check_batch(const tp_batch *batch, int64_t vocab_size, int bert)
{
    int64_t cells = batch->batch_size * batch->seq_length, real = 0;
    for (int64_t c = 0; c < cells; c++) {
        fuzz_check(batch->src[c] >= 0 && batch->src[c] < vocab_size);
        fuzz_check(batch->seg[c] >= 0 && batch->seg[c] <= 2);
        fuzz_check(batch->seg[c] != 0 || batch->src[c] == PAD_ID);
        real += batch->seg[c] != 0;
    }
    /* seq2seq: the decoder's real inputs count too (those with a tag) */
    for (int64_t c = 0; batch->tgt_src && c < batch->batch_size * batch->tgt_seq_length; c++) real += batch->tags[c] >= 0;
    fuzz_check(real == batch->real_tokens);
    for (int64_t m = 0; m < batch->mlm_count; m++) {
        int32_t position = batch->mlm_positions[m];
        fuzz_check(position >= 0 && position < cells && batch->seg[position] != 0);
        fuzz_check(m == 0 || position > batch->mlm_positions[m - 1]);
        fuzz_check(batch->mlm_labels[m] >= 0 && batch->mlm_labels[m] < vocab_size);
    }
    for (int64_t b = 0; bert && b < batch->batch_size; b++) fuzz_check(batch->sp_labels[b] == 0 || batch->sp_labels[b] == 1);
    /* lm, prefixlm, seq2seq: next-token tags (over the decoder's rows for seq2seq) are ids or -1 */
    int64_t tag_cells = batch->tgt_src ? batch->batch_size * batch->tgt_seq_length : cells;
    for (int64_t c = 0; batch->tags && c < tag_cells; c++)
        fuzz_check(batch->tags[c] == -1 || (batch->tags[c] >= 0 && batch->tags[c] < vocab_size));
    for (int64_t c = 0; batch->tgt_src && c < tag_cells; c++)
        fuzz_check(batch->tgt_src[c] >= 0 && batch->tgt_src[c] < vocab_size);
}

/* The position is all the state: seeking back to it replays the same batch. */
static void check_replay(tp_loader *loader)
{
    int64_t epoch, cursor;
    tp_loader_position(loader, &epoch, &cursor);
    const tp_batch *batch = tp_loader_next(loader);
    size_t cell_bytes = sizeof(int32_t) * (size_t)(batch->batch_size * batch->seq_length);
    int32_t *src = malloc(cell_bytes);
    memcpy(src, batch->src, cell_bytes);
    int64_t mlm_count = batch->mlm_count;
    fuzz_check(tp_loader_seek(loader, epoch, cursor) == 0);
    batch = tp_loader_next(loader);
    fuzz_check(batch->mlm_count == mlm_count && memcmp(batch->src, src, cell_bytes) == 0);
    free(src);
}

/* seq_length 0 is the dataset's own; world_size 2 needs two instances, so that loader may be
 * refused.  A dataset with static masks ignores mask_prob (its masks are used); one without is
 * masked dynamically. */
static void run_loader(const tp_dataset *ds, int64_t seq_length, int shuffle, int world_size, double mask_prob)
{
    tp_loader_options options = {
        .batch_size = 3,
        .seq_length = seq_length,
        .seed = 11,
        .rank = world_size - 1,
        .world_size = world_size,
        .shuffle = shuffle,
        .masking = {.mask_prob = mask_prob, .mask_id = MASK_ID, .pad_id = PAD_ID, .cls_id = CLS_ID, .sep_id = SEP_ID},
    };
    /* Special ids below 8 must exist: a dataset with a smaller vocabulary is masked as if it had 8 ids. */
    if (tp_dataset_vocab_size(ds) < MIN_MASKING_VOCAB) options.masking.vocab_size = MIN_MASKING_VOCAB;
    tp_loader *loader = tp_loader_create(ds, &options);
    if (!loader) {
        fuzz_check(world_size > 1 && tp_dataset_count(ds) < world_size);
        return;
    }
    int64_t masking_vocab = options.masking.vocab_size ? options.masking.vocab_size : tp_dataset_vocab_size(ds);
    for (int b = 0; b < BATCHES; b++)
        check_batch(tp_loader_next(loader), masking_vocab, tp_dataset_kind(ds) == TP_DATASET_BERT);
    check_replay(loader);
    tp_loader_free(loader);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile_write(data, size);
    tp_dataset *ds = tp_dataset_open(path);
    if (!ds) {
        fuzz_check(strstr(tp_last_error(), path) == tp_last_error()); /* every refusal names the file */
        return 0;
    }
    fuzz_check(tp_dataset_count(ds) >= 1);
    walk_instances(ds);
    run_loader(ds, 0, 1, 1, 0.15);
    run_loader(ds, 2, 0, 2, 1.0); /* truncated to [CLS] + one token, everything masked */
    tp_dataset_close(ds);
    return 0;
}
