/* Generation with an encoder-decoder model (T5, T5 v1.1, BART, Pegasus, speech-to-text: any model whose
 * decoder is the "transformer" decoder and whose target is lm), for tp-generate,
 * tp-finetune's text2text task and tp-infer.
 *
 * The entry point is model-agnostic on the source side: tp_seq2seq_generate takes the encoder's
 * output (`memory`, [source_length, hidden] in backend memory) of ONE source, however it was
 * computed -- tp_seq2seq_encode runs the model's own embedding and encoder on token ids; a speech or
 * image model hands its own encoder output.  The decoder encodes nothing itself:
 *   - tp_seq2seq_decoder_start projects the memory through every layer's context-attention keys and
 *     values once (the cross-attention cache, kept for the whole generation);
 *   - each tp_seq2seq_decoder_step runs one new position of every row (beam) and appends its
 *     self-attention keys and values to the per-layer cache (capacity max_seq_length positions);
 *   - tp_seq2seq_decoder_reorder makes row r continue row source_rows[r]'s cache (beam search).
 * Inference only: no tape, no dropout.
 *
 * The search follows transformers 4.46.3's generate for encoder-decoder models (decoder_input_ids
 * start as [decoder_start_id]; max_length = 1 + max_new_tokens):
 *   - num_beams 1: greedy (the argmax, the lowest id among ties) or sampling (tp_sampling), stopping
 *     after eos_id;
 *   - num_beams > 1: _beam_search with BeamSearchScorer / BeamHypotheses: log-softmax scores, the
 *     processors below, running beam scores (0 for beam 0 and -1e9 for the others at the start),
 *     the top 2 * num_beams candidates of all beams, a finished hypothesis scored
 *     sum_logprobs / generated_len ^ length_penalty (generated_len counts the eos but not the start
 *     id), early_stopping true / false (its heuristic: done when the worst kept hypothesis beats the
 *     best running score / (cur_len - 1) ^ length_penalty) / "never" (-1 here), and finalize adding
 *     the running beams, the best hypothesis followed by eos_id when shorter than max_length.
 * Logits processors, in transformers' order: repetition_penalty (tp_process_logits), then
 * no_repeat_ngram_size (a token that would repeat an n-gram of the sequence, start id included,
 * gets -inf), min_length (eos gets -inf while the sequence, start id included, is shorter), forced_bos_id (the first generated token; BART's config), forced_eos_id (the token at
 * max_length - 1; BART's config); sampling's temperature / top-k / top-p with num_beams 1 only. */
#ifndef TP_GENERATE_SEQ2SEQ_H
#define TP_GENERATE_SEQ2SEQ_H

#include <stdint.h>

#include "generate.h"
#include "model.h"

typedef struct tp_seq2seq_options {
    int64_t num_beams;      /* 1: greedy / sampling */
    int64_t max_new_tokens; /* generated ids at most (the eos included) */
    double length_penalty;  /* transformers' default 1 */
    int early_stopping;     /* 1 true, 0 false (default), -1 "never" */
    int64_t no_repeat_ngram_size; /* 0: off */
    int64_t min_length;           /* transformers' min_length: the start id included; 0: off */
    int32_t decoder_start_id, eos_id, pad_id;
    int32_t forced_bos_id, forced_eos_id; /* < 0: off */
    tp_sampling sampling;   /* repetition_penalty always; sampling only with num_beams 1 */
} tp_seq2seq_options;

/* transformers' defaults with no special ids (-1); the caller sets the ids and max_new_tokens. */
tp_seq2seq_options tp_seq2seq_default_options(void);
/* Fills the ids and the beam settings (num_beams, length_penalty, early_stopping,
 * no_repeat_ngram_size, min_length, max_new_tokens from max_length - 1 when given) from a Hugging Face model
 * directory: generation_config.json when present, else config.json, as transformers does.  -1 +
 * error naming the file and key. */
int tp_seq2seq_options_from_hf(const char *dir, tp_seq2seq_options *options);

typedef struct tp_seq2seq_decoder tp_seq2seq_decoder;

/* A decoder for `rows` sequences (num_beams) of the model; NULL + error naming what the model
 * lacks when it is not such an encoder-decoder model. */
tp_seq2seq_decoder *tp_seq2seq_decoder_create(tp_model *model, int64_t rows);
void tp_seq2seq_decoder_free(tp_seq2seq_decoder *decoder);
/* Forgets the target positions and caches the context-attention keys and values of memory
 * [source_length, hidden] (backend memory; may be freed afterwards); key_valid (host,
 * source_length, 0 = padding) may be NULL.  Any source length (a speech encoder's output may
 * exceed max_seq_length, which bounds the target positions); -1 for an empty one. */
int tp_seq2seq_decoder_start(tp_seq2seq_decoder *decoder, const tp_tensor *memory, const int32_t *key_valid);
/* Feeds one more id per row (ids[rows], host) and writes each row's logits to
 * logits[r * vocab_size + v] (host); -1 when max_seq_length target positions are used. */
int tp_seq2seq_decoder_step(tp_seq2seq_decoder *decoder, const int32_t *ids, float *logits);
/* Row r's cache becomes row source_rows[r]'s (host, rows entries). */
void tp_seq2seq_decoder_reorder(tp_seq2seq_decoder *decoder, const int32_t *source_rows);

/* The model's embedding and encoder on one source src[0..length) (all real tokens) -> memory
 * [length, hidden] in ctx (reset first). */
tp_tensor *tp_seq2seq_encode(tp_model *model, tp_ctx *ctx, const int32_t *src, int64_t length);

/* Generates for one source whose encoder output is memory (key_valid as above) with the cached
 * decoder (created with options->num_beams rows).  Writes the generated ids (after the start id;
 * the eos included when produced) to out (max_new_tokens entries) and their number to *count. */
int tp_seq2seq_generate(tp_seq2seq_decoder *decoder, const tp_tensor *memory, const int32_t *key_valid,
                        const tp_seq2seq_options *options, int32_t *out, int64_t *count);
/* The same search without caches: every step re-runs the whole model (encoder included) on the
 * source src[0..length) and each row's whole prefix -- the reference the cache is tested against,
 * and the "without cache" benchmark. */
int tp_seq2seq_generate_full(tp_model *model, tp_ctx *ctx, const int32_t *src, int64_t length,
                             const tp_seq2seq_options *options, int32_t *out, int64_t *count);

#endif
