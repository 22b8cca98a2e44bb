/* Text generation with a causal language model (GPT-2 layout: word (+ pos) embeddings, a causal
 * transformer, the lm target), for tp-generate and its tests.
 *
 * tp_lm_decoder runs the model incrementally: the keys and values of every layer are kept in a
 * cache (backend memory, max_seq_length positions per sequence), so each new token costs one
 * position's work instead of the whole prefix's (TencentPretrain's generate re-runs the prefix;
 * tp_lm_full_logits does that, as the reference the cache is tested against).  Inference only:
 * no tape, no dropout.
 *
 * The choice of the next token follows transformers' generate: the repetition penalty first
 * (every id in the sequence so far: a logit l becomes l / penalty if l > 0, else l * penalty),
 * then for sampling the temperature, top-k (logits below the k-th largest removed; ties kept) and
 * top-p (the smallest logits whose probabilities sum to at most 1 - top_p removed, at least one
 * kept), then the argmax (greedy; the lowest id among ties) or a draw from the softmax. */
#ifndef TP_GENERATE_H
#define TP_GENERATE_H

#include <stdint.h>

#include "model.h"

typedef struct tp_lm_decoder tp_lm_decoder;

/* A decoder for `batch` sequences of the model (allocated on its backend); NULL + error naming
 * what the model lacks when it is not a causal language model. */
tp_lm_decoder *tp_lm_decoder_create(const tp_model *model, int64_t batch);
void tp_lm_decoder_free(tp_lm_decoder *decoder);
/* Forgets the cached positions. */
void tp_lm_decoder_reset(tp_lm_decoder *decoder);
/* Positions cached so far. */
int64_t tp_lm_decoder_length(const tp_lm_decoder *decoder);
/* Feeds n more tokens of every sequence (ids[b * n + i], host memory) and writes the logits of
 * each sequence's last one to logits[b * vocab_size + v] (host); -1 when the sequence would
 * exceed max_seq_length. */
int tp_lm_decoder_step(tp_lm_decoder *decoder, const int32_t *ids, int64_t n, float *logits);

/* Without a cache: the whole model on ids[0..length) of one sequence, the last position's logits
 * (host, vocab_size floats).  ctx is reset first. */
int tp_lm_full_logits(tp_model *model, tp_ctx *ctx, const int32_t *ids, int64_t length, float *logits);

typedef struct tp_sampling {
    int do_sample;             /* 0: greedy */
    double temperature;        /* > 0; 1: none */
    int64_t top_k;             /* 0: none */
    double top_p;              /* in (0, 1]; 1: none */
    double repetition_penalty; /* > 0; 1: none */
    uint64_t seed;             /* the draws of step t come from (seed, TP_STREAM_SAMPLING, t) */
} tp_sampling;

/* The processing above on one row of logits, in place (removed entries become -INFINITY); the
 * repetition penalty applies to the ids seen[0..seen_count).  Sampling options apply only when
 * do_sample is set. */
void tp_process_logits(float *logits, int64_t vocab_size, const int32_t *seen, int64_t seen_count,
                       const tp_sampling *sampling);
/* The next token from processed logits: the argmax, or with do_sample a draw for step `step`. */
int32_t tp_choose_token(const float *logits, int64_t vocab_size, const tp_sampling *sampling, int64_t step);

/* Generates up to max_new tokens after prompt[0..prompt_length) of one sequence (with the cache
 * when decoder is non-NULL, else by full recomputation with model and ctx), stopping after
 * stop_id (< 0: never).  Writes the new ids to out and their number to *count. */
int tp_generate(tp_model *model, tp_ctx *ctx, tp_lm_decoder *decoder, const int32_t *prompt, int64_t prompt_length,
                int64_t max_new, int32_t stop_id, const tp_sampling *sampling, int32_t *out, int64_t *count);

#endif
