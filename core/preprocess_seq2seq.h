/* tp-preprocess's encoder-decoder and prefix-LM processors (core/preprocess.h runs them), after
 * TencentPretrain's tencentpretrain/utils/dataset.py and dataloader.py.  Every instance is built
 * here, corruption included (TencentPretrain corrupts in its loaders): dup_factor rounds give each
 * piece other corruptions, and the loader only pads and shifts (core/dataset.h, TP_DATASET_SEQ2SEQ
 * and TP_DATASET_PREFIXLM).
 *
 *   t5        mlm pieces of seq_length ([CLS] line [SEP], cut or packed as the mlm processor does:
 *             T5Dataset is MlmDataset), each corrupted by mask_seq (below); every chosen position
 *             becomes part of a sentinel span: a run of chosen positions is replaced in the source
 *             by one sentinel <extra_id_k> (k = 0, 1, ... in the piece), and the target is
 *             [CLS] <extra_id_0> span0 <extra_id_1> span1 ... <extra_id_n> [SEP] (T5Dataloader).
 *             Needs <extra_id_0> in the vocabulary; the sentinels are looked up by name, and a piece
 *             with more spans than the vocabulary has sentinels reuses the last one (TencentPretrain
 *             stops at the vocabulary's end).
 *   bart      documents as the bert processor reads them (sentences per line, blank lines between
 *             documents); BartDataset.create_ins_from_doc packs sentences shorter than
 *             seq_length - 2 into chunks of fewer than seq_length - 2 tokens; the target is
 *             [CLS] chunk [SEP], the source [CLS] the chunk's sentences in a random order (sentence
 *             permutation) [SEP], corrupted by mask_seq, each run of [MASK] then collapsed to one
 *             (text infilling, BartDataloader).  Needs [MASK].
 *   mt        `source<TAB>target` lines (MtDataset): source [CLS] src [SEP] cut to seq_length, target
 *             [CLS] tgt [SEP] cut to tgt_seq_length + 1.
 *   prefixlm  `source<TAB>target` lines (PrefixlmDataset): [CLS] src [SEP] tgt [SEP] cut to
 *             seq_length; lines whose [CLS] src [SEP] alone fills seq_length are skipped.
 * A line without a tab is an error for mt and prefixlm (TencentPretrain skips it silently); the
 * text after the first tab is the target.  [CLS]/[SEP] are the tokenizer's bos/eos where it has
 * none; [PAD] is needed by all four.
 *
 * mask_seq (tencentpretrain/utils/mask.py, whole-word masking excepted): the candidate positions are
 * those whose id is not [CLS], [SEP] or [PAD]; without span masking each is a span of one; with it
 * a span of geometric length (span_geo_prob, at most span_max_length, cut at the sequence's end)
 * starts at each candidate not inside the previous span.  The spans are shuffled; whole spans are
 * taken in that order (one that would pass the budget is skipped) until
 * max(1, round(length * mask_prob)) positions are chosen; each taken span becomes all [MASK] (80%),
 * random ids (10%) or stays (10%). */
#ifndef TP_PREPROCESS_SEQ2SEQ_H
#define TP_PREPROCESS_SEQ2SEQ_H

#include <stdint.h>

#include "core/dataset.h"
#include "core/rng.h"
#include "tokenizers/tokenizer.h"

typedef struct tp_span_masking {
    double mask_prob;         /* 0.15 */
    int span_masking;         /* 0: spans of one token */
    double span_geo_prob;     /* 0.2 */
    int64_t span_max_length;  /* 10 */
    int32_t mask_id, pad_id, cls_id, sep_id;
    int64_t vocab_size;
} tp_span_masking;

/* mask_seq on ids[0..length), in place; writes the chosen positions ascending and their original
 * ids into positions / labels (length entries each) and returns how many.  scratch: 2 * length
 * int64 values. */
int64_t tp_span_mask_sequence(int32_t *ids, int64_t length, const tp_span_masking *masking, tp_rng *rng,
                              int32_t *positions, int32_t *labels, int64_t *scratch);

/* Which processor a name is: the dataset kind it writes, or 0 when it is none of these four. */
int tp_seq2seq_processor_kind(const char *name);
/* 1 when the processor reads `source<TAB>target` lines. */
int tp_seq2seq_reads_pairs(const char *name);

typedef struct tp_seq2seq_options {
    const char *processor;
    int64_t seq_length, tgt_seq_length; /* tgt_seq_length: mt's target (decoder) length */
    tp_span_masking masking;            /* its special ids are the tokenizer's (filled in by create) */
} tp_seq2seq_options;

typedef struct tp_seq2seq tp_seq2seq;

/* Checks the options and the vocabulary's special tokens (the error names the vocabulary file and
 * the missing token); NULL + error. */
tp_seq2seq *tp_seq2seq_create(const tp_seq2seq_options *options, const tp_tokenizer *tok);
void tp_seq2seq_free(tp_seq2seq *s);
/* The writer's options for this processor's dataset. */
tp_dataset_writer_options tp_seq2seq_writer_options(const tp_seq2seq *s);
int32_t tp_seq2seq_cls_id(const tp_seq2seq *s);
int32_t tp_seq2seq_sep_id(const tp_seq2seq *s);
int64_t tp_seq2seq_tokens_written(const tp_seq2seq *s);

/* Each writes its instances and returns how many (or -1 + error). */
/* t5: one mlm piece (with its [CLS]/[SEP]). */
int64_t tp_seq2seq_t5_piece(tp_seq2seq *s, tp_dataset_writer *writer, const int32_t *piece, int64_t length,
                            tp_rng *rng);
/* bart: one document of `count` sentences (their ids and lengths). */
int64_t tp_seq2seq_bart_document(tp_seq2seq *s, tp_dataset_writer *writer, const int32_t *const *sentences,
                                 const int64_t *lengths, int64_t count, tp_rng *rng);
/* mt, prefixlm: one line's source and target ids (without special tokens). */
int64_t tp_seq2seq_pair(tp_seq2seq *s, tp_dataset_writer *writer, const int32_t *source, int64_t source_length,
                        const int32_t *target, int64_t target_length);

/* The building blocks, for the unit tests (tests/unit/test_preprocess_seq2seq.c checks them against
 * tests/reference/seq2seq_reference.py).  t5: src / tgt receive the corrupted source and the whole
 * target (room: length and 2 * length + 3); returns the source's length and sets *tgt_length. */
int64_t tp_seq2seq_t5_corrupt(tp_seq2seq *s, const int32_t *piece, int64_t length, tp_rng *rng, int32_t *src,
                              int32_t *tgt, int64_t *tgt_length);
/* bart: the source of one chunk (ids [CLS] shuffled sentences [SEP] are in src[0..length)), masked
 * and with its [MASK] runs collapsed, in place; returns its new length. */
int64_t tp_seq2seq_bart_infill(tp_seq2seq *s, int32_t *src, int64_t length, tp_rng *rng);

#endif
