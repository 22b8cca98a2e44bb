/* Corpus -> binary dataset (core/dataset.h), with TencentPretrain's data
 * processors (tencentpretrain/utils/dataset.py):
 *
 *   bert  one sentence per line, documents separated by blank lines; per
 *         document and dup round, NSP instances [CLS] A [SEP] B [SEP] of at
 *         most seq_length tokens (BertDataset.create_ins_from_doc).
 *   mlm   every non-blank line becomes [CLS] tokens [SEP]; those are cut into
 *         seq_length pieces per line, or, with full_sentences, concatenated
 *         over a buffer of lines first (MlmDataset).
 *   lm    as mlm, with windows of seq_length + 1 tokens (LmDataset): the loader feeds the first
 *         seq_length to the model and predicts the next token at each; [CLS]/[SEP] are the
 *         tokenizer's bos/eos where it has no [CLS]/[SEP] (GPT-2: <|endoftext|>); no masks.
 *   t5, bart, mt, prefixlm  encoder-decoder and prefix-LM instances: core/preprocess_seq2seq.h.
 *
 * Documents are read in buffers of docs_buffer_size (bert: documents, mlm:
 * lines); a buffer is tokenized in parallel (OpenMP) and its instances are
 * built in order: for each buffer, for each dup round, for each document.
 * All randomness comes from tp_rng streams keyed by (seed, TP_STREAM_PREPROCESS,
 * dup round, document index (bert) / buffer index (mlm)), so the output is the
 * same byte for byte for any thread count. */
#ifndef TP_PREPROCESS_H
#define TP_PREPROCESS_H

#include <stdint.h>

#include "tokenizers/tokenizer.h"

typedef struct tp_preprocess_progress {
    int64_t bytes_done, bytes_total; /* corpus bytes read so far / in all */
    int64_t lines, documents, sentences, corpus_tokens;
    int64_t instances, instance_tokens, masks;
} tp_preprocess_progress;

typedef struct tp_preprocess_options {
    const char *corpus_path, *dataset_path;
    const char *processor;          /* "bert", "mlm", "lm", "t5", "bart", "mt" or "prefixlm" */
    tp_tokenizer_options tokenizer; /* kind, vocab_path, do_lower_case */
    int64_t seq_length;             /* bert: >= 5 (A and B get at least one token each); mlm: >= 2 */
    int64_t dup_factor;             /* instances are built this many times, each time with other randomness */
    int64_t docs_buffer_size;       /* TencentPretrain's default: 100000 */
    double short_seq_prob;          /* bert: chance of a shorter target length */
    double mask_prob;               /* static masking: 0.15 */
    uint64_t seed;
    int dynamic_masking; /* 1: no masks stored (the loader masks) */
    int full_sentences;  /* mlm: pack lines across line ends */
    /* Called after each buffer with the running totals; may be NULL. */
    void (*progress)(const tp_preprocess_progress *progress, void *user);
    void *progress_user;
    /* t5, bart (core/preprocess_seq2seq.h): span masking as TencentPretrain's --span_masking,
     * --span_geo_prob (0.2), --span_max_length (10); mt: the target's length (TencentPretrain's
     * --tgt_seq_length). */
    int span_masking;
    double span_geo_prob;
    int64_t span_max_length;
    int64_t tgt_seq_length;
} tp_preprocess_options;

/* Builds options->dataset_path from options->corpus_path, atomically: on
 * failure nothing is left under dataset_path (nor a temporary file) and the
 * error names the file and line.  totals may be NULL. */
int tp_preprocess(const tp_preprocess_options *options, tp_preprocess_progress *totals);

#endif
