/* Binary datasets written by tp-preprocess and read (mmap) by the trainers.
 *
 * File layout (all little-endian, every section 64-byte aligned):
 *   header (128 bytes):
 *     char     magic[8]       "TPDATA\0\0"
 *     uint32   version        1
 *     uint32   kind           TP_DATASET_BERT / _MLM / _LM / _SEQ2SEQ / _PREFIXLM
 *     uint32   token_bytes    2 (uint16 ids, vocab <= 65536) or 4 (uint32)
 *     uint32   seq_length     maximum instance length incl. special tokens
 *     uint64   vocab_size
 *     uint64   instance_count
 *     uint64   token_count    total tokens over all instances
 *     uint64   mask_count     total static-mask entries (0 = dynamic masking)
 *     uint64   offsets_pos    file offset of uint64 token offsets[instance_count + 1]
 *     uint64   tokens_pos     file offset of the token ids
 *     uint64   meta_pos       file offset of per-instance records (tp_dataset_meta)
 *     uint64   mask_offsets_pos / masks_pos  (static masking only, else 0)
 *     uint64   file_size      must equal the real size (truncation check)
 *     uint32   tgt_seq_length seq2seq: the longest target sequence (incl. its start and end
 *                            tokens); 0 for every other kind
 *     then zero padding to 128 bytes.
 *   Every offset and count is checked against the file size when opened;
 *   errors name the file and the byte offset or instance index.
 *
 * An instance is the full token sequence with its special tokens
 * ([CLS] A [SEP] (B [SEP])), unpadded.  tp_dataset_meta gives the length of
 * segment A (incl. [CLS] and its [SEP]) and the NSP label; static masks are
 * (position, replacement id) pairs: the label is the original token. */
#ifndef TP_DATASET_H
#define TP_DATASET_H

#include <stdint.h>

#include "core/rng.h"
#include "tokenizers/tokenizer.h"

/* TP_DATASET_LM (the lm processor): every instance is a window of up to seq_length tokens of the
 * token stream; the loader feeds its first seq_length - 1 to the model and the next token of each
 * as its target (tp_batch.tags), TencentPretrain's LmDataset / LmDataloader. */
/* TP_DATASET_SEQ2SEQ (the t5, bart and mt processors, core/preprocess_seq2seq.h): an instance is the
 * encoder's input (segment_a_length tokens, at most seq_length) followed by the whole target
 * sequence (2 .. tgt_seq_length tokens: a start token, the text, an end token).  The loader feeds
 * the target without its last token to the decoder (tp_batch.tgt_src, "shifted right") and asks
 * for it without its first (tp_batch.tags): TencentPretrain's tgt_in = tgt[:-1], tgt_out = tgt[1:].
 * TP_DATASET_PREFIXLM (the prefixlm processor): [CLS] source [SEP] target [SEP], the first
 * segment_a_length tokens the prefix (seg 1, fully visible under the model's causal_with_prefix
 * mask), the rest the target (seg 2); the lm loss is on the target's tokens only: the loader's tags
 * hold the next token at positions segment_a_length - 1 .. length - 2 and -1 elsewhere. */
enum { TP_DATASET_BERT = 1, TP_DATASET_MLM = 2, TP_DATASET_LM = 3, TP_DATASET_SEQ2SEQ = 4, TP_DATASET_PREFIXLM = 5 };

typedef struct tp_dataset_meta {
    uint16_t segment_a_length; /* tokens of segment A incl. [CLS] and the first [SEP] */
    uint8_t is_random_next;    /* NSP/SOP label: 1 when B is not A's continuation */
    uint8_t reserved;
} tp_dataset_meta;

typedef struct tp_dataset_mask {
    uint16_t position;
    uint16_t reserved;
    int32_t replacement; /* id written into the input at position */
} tp_dataset_mask;

typedef struct tp_dataset tp_dataset;

tp_dataset *tp_dataset_open(const char *path); /* validates header and index; NULL + error */
void tp_dataset_close(tp_dataset *ds);
int tp_dataset_kind(const tp_dataset *ds);
int64_t tp_dataset_count(const tp_dataset *ds);
int64_t tp_dataset_seq_length(const tp_dataset *ds);
int64_t tp_dataset_tgt_seq_length(const tp_dataset *ds); /* seq2seq: the longest target; else 0 */
int64_t tp_dataset_vocab_size(const tp_dataset *ds);
int tp_dataset_static_masking(const tp_dataset *ds);
/* Copies instance i's ids into out (length returned, at most seq_length + tgt_seq_length), meta may be NULL. */
int64_t tp_dataset_instance(const tp_dataset *ds, int64_t index, int32_t *out, tp_dataset_meta *meta);

/* One training batch, padded to seq_length.  Positions are row-major flat
 * indices (b * seq_length + s), ascending. */
typedef struct tp_batch {
    int64_t batch_size, seq_length;
    int32_t *src;            /* [B*S] input ids after masking, pad_id beyond each instance */
    int32_t *seg;            /* [B*S] 1 = segment A, 2 = segment B, 0 = padding */
    int32_t *mlm_positions;  /* [mlm_count] masked positions */
    int32_t *mlm_labels;     /* [mlm_count] original ids there */
    int64_t mlm_count;
    int32_t *sp_labels;      /* [B] is_random_next (BERT); unused for MLM datasets */
    int64_t real_tokens;     /* non-padding tokens in the batch (throughput) */
    int32_t *labels;         /* [B] class ids of sequence-level tasks (fine-tuning), or NULL */
    float *targets;          /* [B * target_width] float targets (fine-tuning), or NULL: regression values */
    int64_t target_width;    /* (width 1) or multi-label 0/1 indicators (width = number of labels) */
    int32_t *tags;           /* [B*S] tag id per token (tagging) or next-token id (lm datasets), -1 where none
                              * is scored, or NULL */
    /* Images instead of token ids (the patch embedding's input; src is NULL then, seg marks the
     * class token and the patches as real): B images of pixel_width floats, channel planes
     * (C x H x W), normalized. */
    float *pixels;
    int64_t pixel_width;
    /* Audio instead of token ids (the speech embedding's input; src is NULL, seg marks the real
     * subsampled frames): B utterances of audio_frames x audio_feature_size features, zero frames
     * after each one's end. */
    float *audio;
    int64_t audio_frames, audio_feature_size;
    /* seq2seq datasets: the decoder's input [B * tgt_seq_length] (pad_id past each target), whose
     * next tokens are then `tags` ([B * tgt_seq_length], -1 at padding); NULL otherwise. */
    int64_t tgt_seq_length;
    int32_t *tgt_src;
} tp_batch;

/* Frees every array a batch holds (those it lacks are NULL) and zeroes it. */
void tp_batch_free(tp_batch *batch);

typedef struct tp_masking_options {
    double mask_prob;        /* 0.15 */
    int32_t mask_id, pad_id, cls_id, sep_id;
    int64_t vocab_size;      /* random replacements are drawn below it; the loader reads 0 as the dataset's */
} tp_masking_options;

/* The loader: a deterministic stream of batches from one dataset.
 * Instance order: epoch e visits a permutation drawn from
 * (seed, TP_STREAM_DATA_ORDER, e), and the epochs follow each other in one
 * stream.  Each call takes the next global batch of batch_size * world_size
 * instances of that stream, of which rank r gets positions
 * [r * batch_size, (r + 1) * batch_size): world_size ranks with batch B see
 * exactly the instances one rank with batch world_size * B sees, in the same
 * order.  Dynamic masking draws from (seed, TP_STREAM_MASKING,
 * e * count + instance index), so batches do not depend on batch grouping,
 * rank or thread count.  The position (epoch, cursor) of the next global
 * batch, the same on every rank, is all the state a checkpoint needs.
 * (Batches are always full and run on across epoch boundaries.  The
 * generators: key = tp_hash3(seed, stream, index), then
 * tp_rng_make(key, stream, 0).) */
typedef struct tp_loader tp_loader;

typedef struct tp_loader_options {
    int64_t batch_size;
    int64_t seq_length;      /* <= dataset seq_length (lm datasets: < it; 0: the longest); longer instances are
                              * truncated */
    uint64_t seed;
    int rank, world_size;
    int shuffle;             /* 1: permute per epoch; 0: file order */
    tp_masking_options masking;
} tp_loader_options;

tp_loader *tp_loader_create(const tp_dataset *ds, const tp_loader_options *options);
/* The instance order of one epoch, as the loaders visit it: 0 .. count - 1, permuted by (seed,
 * TP_STREAM_DATA_ORDER, epoch) when shuffle (also core/preprocess_clip.h's image-text loader). */
void tp_data_order(uint64_t seed, int64_t epoch, int shuffle, int64_t *order, int64_t count);
void tp_loader_free(tp_loader *loader);
/* Fills the loader-owned batch; returns it (valid until the next call), or NULL + an error naming
 * the file (and offset) when the file was modified, cut short or became unreadable since it was
 * opened: a dataset is read in place for the whole run. */
const tp_batch *tp_loader_next(tp_loader *loader);
void tp_loader_position(const tp_loader *loader, int64_t *epoch, int64_t *cursor);
int tp_loader_seek(tp_loader *loader, int64_t epoch, int64_t cursor);

/* ---- Writing datasets and masking (shared by tp-preprocess and the loader) ---- */

/* The 128-byte header exactly as stored (the host must be little-endian). */
typedef struct tp_dataset_header {
    char magic[8];
    uint32_t version, kind, token_bytes, seq_length;
    uint64_t vocab_size, instance_count, token_count, mask_count;
    uint64_t offsets_pos, tokens_pos, meta_pos, mask_offsets_pos, masks_pos;
    uint64_t file_size;
    uint32_t tgt_seq_length;
    uint8_t padding[20];
} tp_dataset_header;

/* TencentPretrain's mask_seq on one unpadded sequence ids[0..length), in place:
 * candidates are all positions whose id is not [CLS], [SEP] or [PAD];
 * max(1, round_half_even(length * mask_prob)) of them (at most all) are chosen
 * uniformly; each becomes [MASK] (80%), a uniform id in [1, vocab_size - 1]
 * other than [CLS]/[SEP]/[MASK]/[PAD] (10%) or stays (10%).  Writes the chosen
 * positions ascending and their original ids; positions must hold length
 * entries (it is also the candidate scratch).  Returns the number chosen. */
int64_t tp_mask_sequence(int32_t *ids, int64_t length, const tp_masking_options *masking, tp_rng *rng,
                         int32_t *positions, int32_t *labels);
/* Checks mask_prob and the special ids against vocab_size; the error names what is wrong. */
int tp_masking_options_check(const tp_masking_options *masking);

/* Streams instances into a dataset file written atomically: nothing appears
 * under path unless tp_dataset_writer_commit succeeds. */
typedef struct tp_dataset_writer tp_dataset_writer;

typedef struct tp_dataset_writer_options {
    int kind;              /* TP_DATASET_BERT / TP_DATASET_MLM / ... */
    int64_t seq_length;    /* 2 .. 65535 (seq2seq: the source's longest, 1 .. 65535) */
    int64_t vocab_size;    /* token_bytes = 2 when <= 65536 */
    int static_masking;    /* 1: every instance carries its masks */
    int64_t tgt_seq_length; /* seq2seq: the longest target allowed, 2 .. 65535 (the header gets the longest
                             * written); 0 otherwise */
} tp_dataset_writer_options;

tp_dataset_writer *tp_dataset_writer_open(const char *path, const tp_dataset_writer_options *options);
/* Appends one instance (ids with their special tokens); masks ascending by
 * position, only with static masking.  Checks what tp_dataset_open checks. */
int tp_dataset_writer_add(tp_dataset_writer *writer, const int32_t *ids, int64_t length, tp_dataset_meta meta,
                          const tp_dataset_mask *masks, int64_t mask_count);
/* Writes the index and header and renames the file into place; frees the writer either way. */
int tp_dataset_writer_commit(tp_dataset_writer *writer);
/* Frees the writer and removes its temporary file. */
void tp_dataset_writer_abort(tp_dataset_writer *writer);

#endif
