/* bench-generate: greedy generation speed with and without the key/value cache, on a randomly
 * initialised causal model with GPT-2's vocabulary (50257).  Both runs continue the same random
 * prompt and must produce the same ids; prints one JSON line.
 *
 *   bench-generate [MODEL_CONFIG [NEW_TOKENS [PROMPT_TOKENS]]]
 *   (defaults: bench/gpt2_bench_config.json, 256, 8) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>

#include "core/config.h"
#include "core/error.h"
#include "core/generate.h"
#include "core/model.h"
#include "core/rng.h"

#define VOCAB_SIZE 50257

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double timed_generate(tp_model *model, tp_ctx *ctx, tp_lm_decoder *decoder, const int32_t *prompt,
                             int64_t prompt_length, int64_t new_tokens, int32_t *out)
{
    tp_sampling greedy = {.temperature = 1, .top_p = 1, .repetition_penalty = 1};
    int64_t count = 0;
    double start = now_seconds();
    if (tp_generate(model, ctx, decoder, prompt, prompt_length, new_tokens, -1, &greedy, out, &count) < 0 ||
        count != new_tokens) {
        fprintf(stderr, "bench-generate: error: %s\n", tp_last_error());
        exit(1);
    }
    return now_seconds() - start;
}

int main(int argc, char **argv)
{
    const char *config_path = argc > 1 ? argv[1] : "bench/gpt2_bench_config.json";
    int64_t new_tokens = argc > 2 ? atoll(argv[2]) : 256, prompt_length = argc > 3 ? atoll(argv[3]) : 8;
    tp_config *config = tp_config_load(config_path);
    tp_model model;
    if (!config || tp_model_build(&model, config, VOCAB_SIZE) < 0) {
        fprintf(stderr, "bench-generate: error: %s\n", tp_last_error());
        return 1;
    }
    tp_model_allocate(&model, &tp_cpu_backend, 7);
    int32_t *prompt = tp_xmalloc((size_t)prompt_length * sizeof *prompt);
    int32_t *cached = tp_xmalloc((size_t)new_tokens * sizeof *cached), *full = tp_xmalloc((size_t)new_tokens * sizeof *full);
    for (int64_t i = 0; i < prompt_length; i++) prompt[i] = (int32_t)(tp_hash3(3, 1, (uint64_t)i) % VOCAB_SIZE);
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, (size_t)1 << 24);
    tp_lm_decoder *decoder = tp_lm_decoder_create(&model, 1);
    if (!decoder) {
        fprintf(stderr, "bench-generate: error: %s\n", tp_last_error());
        return 1;
    }
    double with_cache = timed_generate(&model, &ctx, decoder, prompt, prompt_length, new_tokens, cached);
    double without = timed_generate(&model, &ctx, NULL, prompt, prompt_length, new_tokens, full);
    int same = !memcmp(cached, full, (size_t)new_tokens * sizeof *cached);
    printf("{\"config\": \"%s\", \"parameters\": %lld, \"prompt_tokens\": %lld, \"new_tokens\": %lld, \"threads\": %d, "
           "\"cache_tokens_per_s\": %.1f, \"full_tokens_per_s\": %.1f, \"speedup\": %.1f, \"same_ids\": %s}\n",
           config_path, (long long)tp_params_logical_count(&model.params), (long long)prompt_length,
           (long long)new_tokens, omp_get_max_threads(), new_tokens / with_cache, new_tokens / without,
           without / with_cache, same ? "true" : "false");
    tp_lm_decoder_free(decoder);
    tp_ctx_free(&ctx);
    tp_model_free(&model);
    tp_config_free(config);
    free(prompt), free(cached), free(full);
    return same ? 0 : 1;
}
