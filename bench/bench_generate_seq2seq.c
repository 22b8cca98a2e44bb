/* bench-generate-seq2seq: encoder-decoder generation speed with and without the caches
 * (core/generate_seq2seq.h), greedy and with beam search, on a randomly initialised model of the
 * given tp config with T5's vocabulary (32128).  The cached run encodes the source once and feeds
 * one position per beam and step; the other re-runs encoder and decoder on the whole prefix for
 * every token.  Both continue the same random source and must produce the same ids; prints one
 * JSON line per beam count.  No eos: every run generates NEW_TOKENS ids.
 *
 *   bench-generate-seq2seq [MODEL_CONFIG [NEW_TOKENS [SOURCE_TOKENS [BEAMS]]]]
 *   (defaults: models/t5/small_config.json, 32, 32, 4; greedy always runs too) */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/error.h"
#include "core/generate_seq2seq.h"
#include "core/model.h"
#include "core/rng.h"

#define VOCAB_SIZE 32128

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fail(void)
{
    fprintf(stderr, "bench-generate-seq2seq: error: %s\n", tp_last_error());
    exit(1);
}

/* Seconds to generate o->max_new_tokens ids, with the decoder when non-NULL. */
static double timed(tp_model *model, tp_ctx *ctx, tp_seq2seq_decoder *decoder, const int32_t *src, int64_t length,
                    const tp_seq2seq_options *o, int32_t *out)
{
    int64_t count = 0;
    double start = now_seconds();
    int status = decoder ? tp_seq2seq_generate(decoder, tp_seq2seq_encode(model, ctx, src, length), NULL, o, out, &count)
                         : tp_seq2seq_generate_full(model, ctx, src, length, o, out, &count);
    if (status < 0) fail();
    if (count != o->max_new_tokens) {
        tp_fail("%lld ids instead of %lld", (long long)count, (long long)o->max_new_tokens);
        fail();
    }
    return now_seconds() - start;
}

static int bench(tp_model *model, tp_ctx *ctx, const char *config_path, const int32_t *src, int64_t length,
                 const tp_seq2seq_options *o)
{
    int64_t n = o->max_new_tokens;
    int32_t *cached = tp_xmalloc((size_t)n * sizeof *cached), *full = tp_xmalloc((size_t)n * sizeof *full);
    tp_seq2seq_decoder *decoder = tp_seq2seq_decoder_create(model, o->num_beams);
    if (!decoder) fail();
    double with_cache = timed(model, ctx, decoder, src, length, o, cached);
    double without = timed(model, ctx, NULL, src, length, o, full);
    int same = !memcmp(cached, full, (size_t)n * sizeof *cached);
    printf("{\"config\": \"%s\", \"parameters\": %lld, \"source_tokens\": %lld, \"new_tokens\": %lld, \"beams\": %lld, "
           "\"threads\": %d, \"cache_tokens_per_s\": %.1f, \"full_tokens_per_s\": %.1f, \"speedup\": %.1f, "
           "\"same_ids\": %s}\n",
           config_path, (long long)tp_params_logical_count(&model->params), (long long)length, (long long)n,
           (long long)o->num_beams, omp_get_max_threads(), n / with_cache, n / without, without / with_cache,
           same ? "true" : "false");
    fflush(stdout);
    tp_seq2seq_decoder_free(decoder);
    free(cached);
    free(full);
    return same;
}

int main(int argc, char **argv)
{
    const char *config_path = argc > 1 ? argv[1] : "models/t5/small_config.json";
    int64_t new_tokens = argc > 2 ? atoll(argv[2]) : 32, length = argc > 3 ? atoll(argv[3]) : 32;
    int64_t beams = argc > 4 ? atoll(argv[4]) : 4;
    tp_config *config = tp_config_load(config_path);
    tp_model model;
    if (!config || tp_model_build(&model, config, VOCAB_SIZE) < 0) fail();
    tp_model_allocate(&model, &tp_cpu_backend, 7);
    int32_t *src = tp_xmalloc((size_t)length * sizeof *src);
    for (int64_t i = 0; i < length; i++) src[i] = (int32_t)(tp_hash3(3, 1, (uint64_t)i) % VOCAB_SIZE);
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, (size_t)1 << 24);
    tp_seq2seq_options o = tp_seq2seq_default_options();
    o.max_new_tokens = new_tokens;
    o.decoder_start_id = 0;
    int same = bench(&model, &ctx, config_path, src, length, &o);
    o.num_beams = beams;
    o.eos_id = VOCAB_SIZE; /* beam search needs one; no token has it, so no hypothesis ends early */
    if (beams > 1) same &= bench(&model, &ctx, config_path, src, length, &o);
    tp_ctx_free(&ctx);
    tp_model_free(&model);
    tp_config_free(config);
    free(src);
    return same ? 0 : 1;
}
