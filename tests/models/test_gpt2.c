/* GPT-2 in tp against transformers: a small random-init GPT2LMHeadModel saved by transformers
 * (tests/reference/make_gpt2_fixture.py writes it and its outputs to tests/fixtures/gpt2/).
 *   - logits of 2 x 16 tokens within 1e-4 of transformers' largest magnitude, and the lm target's
 *     loss (next-token ids as an lm dataset's loader gives them) within 1e-5 relative;
 *   - greedy generation of 32 tokens, with and without repetition penalty 1.3, identical to
 *     transformers' generate, both with the key/value cache and by full recomputation, and the
 *     cache's logits at every step within 1e-5 of the recomputation's;
 *   - temperature 0.7, top-k 20 and top-p 0.9 remove exactly the logits transformers' warpers remove
 *     and scale the others as they do;
 *   - HF -> tp -> HF through tp-convert's library functions is bit-identical, tensor by tensor;
 *   - GPT-2 options tp does not implement are refused naming the key. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/generate.h"
#include "core/hf.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "support/fixture.h"
#include "support/scratch.h"

#define FIXTURE "tests/fixtures/gpt2"
#define GENERATOR "tests/reference/make_gpt2_fixture.py"
#define TOLERANCE 1e-4

/* The whole model on the fixture's 2 x 16 tokens: logits, and the loss on next-token targets. */
static void check_forward(tp_model *model, const tp_st_file *expected)
{
    int64_t count = 0, logit_count = 0, loss_count = 0;
    int32_t *ids = tp_fixture_ids(expected, GENERATOR, "input_ids", &count);
    float *want = tp_fixture_floats(expected, GENERATOR, "logits", &logit_count), *want_loss = tp_fixture_floats(expected, GENERATOR, "loss", &loss_count);
    int64_t batch = 2, seq = count / 2, vocab = model->hp.vocab_size;
    int32_t seg[32], targets[32];
    for (int64_t i = 0; i < count; i++) {
        seg[i] = 1;
        targets[i] = i % seq == seq - 1 ? -1 : ids[i + 1];
    }
    tp_batch host = {.batch_size = batch, .seq_length = seq, .src = ids, .seg = seg, .tags = targets};
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    tp_model_batch batch_in = tp_model_batch_upload(&ctx, &host);
    tp_model_output out;
    CHECK(tp_model_forward(model, &ctx, &batch_in, &out) == 0);
    const tp_tensor *logits = out.results[0].logits;
    float *packed = tp_xmalloc((size_t)(count * vocab) * sizeof *packed);
    for (int64_t r = 0; r < count; r++)
        memcpy(packed + r * vocab, logits->data + r * tp_cols(logits), (size_t)vocab * sizeof *packed);
    double error = tp_max_normalised_error(packed, want, (long)logit_count);
    fprintf(stderr, "  logits [2, 16, 256]: normalised error %.2g\n", error);
    CHECK_MSG(error <= TOLERANCE, "logits: normalised error %.3g", error);
    fprintf(stderr, "  loss %.7f, transformers %.7f\n", out.loss->data[0], want_loss[0]);
    CHECK_MSG(tp_close(out.loss->data[0], want_loss[0], 1e-5, 1e-6), "loss %.7f, transformers %.7f", out.loss->data[0],
              want_loss[0]);
    CHECK(out.results[0].count == batch * (seq - 1));
    tp_ctx_free(&ctx);
    free(ids), free(want), free(want_loss), free(packed);
}

/* Greedy generation with and without the cache against transformers' ids. */
static void check_greedy(tp_model *model, const tp_st_file *expected, const char *name, double penalty)
{
    int64_t prompt_length = 0, new_count = 0, count_cached = 0, count_full = 0;
    int32_t *prompt = tp_fixture_ids(expected, GENERATOR, "prompt", &prompt_length), *want = tp_fixture_ids(expected, GENERATOR, name, &new_count);
    int32_t cached[64], full[64];
    tp_sampling greedy = {.temperature = 1, .top_p = 1, .repetition_penalty = penalty};
    tp_lm_decoder *decoder = tp_lm_decoder_create(model, 1);
    CHECK_MSG(decoder != NULL, "decoder: %s", tp_last_error());
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    CHECK(tp_generate(model, &ctx, decoder, prompt, prompt_length, new_count, -1, &greedy, cached, &count_cached) == 0);
    CHECK(tp_generate(model, &ctx, NULL, prompt, prompt_length, new_count, -1, &greedy, full, &count_full) == 0);
    int same_cached = count_cached == new_count, same_full = count_full == new_count;
    for (int64_t i = 0; i < new_count; i++) {
        same_cached = same_cached && cached[i] == want[i];
        same_full = same_full && full[i] == want[i];
    }
    fprintf(stderr, "  %s (penalty %.1f): %lld tokens, cache %s, full recomputation %s transformers'\n", name, penalty,
            (long long)new_count, same_cached ? "==" : "!=", same_full ? "==" : "!=");
    CHECK_MSG(same_cached, "%s: the cached generation differs from transformers'", name);
    CHECK_MSG(same_full, "%s: the recomputed generation differs from transformers'", name);
    tp_ctx_free(&ctx);
    tp_lm_decoder_free(decoder);
    free(prompt), free(want);
}

/* Step by step, the cache's logits against the whole model's on the same growing sequence, the
 * prompt fed at once and then one token at a time (also two sequences at once: batch 2). */
static void check_cache_logits(tp_model *model, const tp_st_file *expected)
{
    int64_t count = 0, vocab = model->hp.vocab_size, seq = 16;
    int32_t *ids = tp_fixture_ids(expected, GENERATOR, "input_ids", &count);
    float *cached = tp_xmalloc((size_t)(2 * vocab) * sizeof *cached), *full = tp_xmalloc((size_t)vocab * sizeof *full);
    tp_lm_decoder *decoder = tp_lm_decoder_create(model, 2);
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    double worst = 0;
    int32_t step_ids[2 * 5];
    for (int64_t position = 0; position < seq;) {
        int64_t n = position == 0 ? 5 : 1; /* a 5-token prompt, then single tokens */
        for (int64_t b = 0; b < 2; b++) memcpy(step_ids + b * n, ids + b * seq + position, (size_t)n * sizeof *ids);
        CHECK(tp_lm_decoder_step(decoder, step_ids, n, cached) == 0);
        position += n;
        for (int64_t b = 0; b < 2; b++) {
            CHECK(tp_lm_full_logits(model, &ctx, ids + b * seq, position, full) == 0);
            double error = tp_max_normalised_error(cached + b * vocab, full, (long)vocab);
            worst = error > worst ? error : worst;
        }
    }
    fprintf(stderr, "  cached vs recomputed logits, 16 steps x 2 sequences: worst normalised error %.2g\n", worst);
    CHECK_MSG(worst <= 1e-5, "cached logits differ from recomputed ones: %.3g", worst);
    CHECK_MSG(tp_lm_decoder_step(decoder, step_ids, model->hp.max_seq_length, cached) < 0 &&
                  strstr(tp_last_error(), "max_seq_length"),
              "overflowing the cache: %s", tp_last_error());
    tp_ctx_free(&ctx);
    tp_lm_decoder_free(decoder);
    free(ids), free(cached), free(full);
}

static void check_warpers(const tp_st_file *expected)
{
    int64_t n = 0;
    float *logits = tp_fixture_floats(expected, GENERATOR, "warp_logits", &n), *want = tp_fixture_floats(expected, GENERATOR, "warped", NULL);
    tp_sampling sampling = {.do_sample = 1, .temperature = 0.7, .top_k = 20, .top_p = 0.9, .repetition_penalty = 1};
    int64_t vocab = n / 2, kept = 0, same_removed = 1;
    double worst = 0;
    for (int64_t row = 0; row < 2; row++) {
        float *l = logits + row * vocab, *w = want + row * vocab;
        tp_process_logits(l, vocab, NULL, 0, &sampling);
        for (int64_t v = 0; v < vocab; v++) {
            same_removed = same_removed && isinf(l[v]) == isinf(w[v]);
            if (isinf(w[v]) || isinf(l[v])) continue;
            kept++;
            double error = fabs(l[v] - w[v]) / fmax(fabs(w[v]), 1.0);
            worst = error > worst ? error : worst;
        }
    }
    fprintf(stderr, "  temperature 0.7, top-k 20, top-p 0.9: %lld logits kept, removed set %s, worst error %.2g\n",
            (long long)kept, same_removed ? "identical" : "DIFFERENT", worst);
    CHECK(same_removed);
    CHECK(kept > 2 && kept < 40); /* the fixture's logits make both filters bite */
    CHECK(worst <= 1e-6);
    /* a draw from the filtered distribution never picks a removed id, and is reproducible */
    for (int64_t step = 0; step < 50; step++) {
        int32_t id = tp_choose_token(logits, vocab, &sampling, step);
        CHECK(!isinf(logits[id]) && id == tp_choose_token(logits, vocab, &sampling, step));
    }
    free(logits), free(want);
}

/* HF -> tp -> HF: every tensor back with its name, shape and bytes. */
static void check_round_trip(void)
{
    tp_hf_report report;
    const char *tp_dir = tp_scratch_path("gpt2_tp"), *hf_dir = tp_scratch_path("gpt2_hf");
    CHECK_MSG(tp_hf_convert_from_hf(FIXTURE, tp_dir, &report) == 0, "from hf: %s", tp_last_error());
    char config[600], weights[600], back_path[600];
    snprintf(config, sizeof config, "%s/model_config.json", tp_dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", tp_dir);
    CHECK_MSG(tp_hf_convert_to_hf(config, weights, NULL, 0, hf_dir, &report) == 0, "to hf: %s", tp_last_error());
    snprintf(back_path, sizeof back_path, "%s/model.safetensors", hf_dir);
    tp_fixture_check_same_tensors("GPT-2", FIXTURE "/model.safetensors", back_path, NULL, 0);
}

/* A config.json edited from -> to is refused, naming needle. */
static void check_refused(const char *name, const char *from, const char *to, const char *needle)
{
    char *text = tp_read_file(FIXTURE "/config.json", NULL);
    char *at = text ? strstr(text, from) : NULL;
    CHECK_MSG(at != NULL, "config.json lacks '%s'", from);
    if (!at) {
        free(text);
        return;
    }
    char edited[4096], dir[600], path[700];
    snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    snprintf(dir, sizeof dir, "%s", tp_scratch_path(name));
    CHECK(tp_mkdirs(dir) == 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(tp_write_file_atomic(path, edited, strlen(edited)) == 0);
    tp_config *config = tp_hf_config(dir);
    CHECK_MSG(!config && strstr(tp_last_error(), needle), "%s: accepted or not naming '%s': %s", name, needle,
              config ? "accepted" : tp_last_error());
    fprintf(stderr, "  refused %-22s %s\n", name, tp_last_error());
    tp_config_free(config);
    free(text);
}

/* The causal decoder refuses what its caches cannot hold, naming it, instead of decoding wrongly. */
static void check_decoder_refuses(const char *key, const char *value, const char *needle)
{
    tp_config *config = tp_hf_config(FIXTURE);
    int64_t vocab_size = 0;
    tp_model model;
    memset(&model, 0, sizeof model);
    int built = config && tp_config_set(config, key, value) == 0 &&
                tp_config_int(config, "vocab_size", 0, 1, INT32_MAX, &vocab_size) == 0 &&
                tp_model_build(&model, config, vocab_size) == 0;
    CHECK_MSG(built, "%s = %s: %s", key, value, tp_last_error());
    if (built) {
        tp_model_allocate(&model, &tp_cpu_backend, 3);
        tp_lm_decoder *decoder = tp_lm_decoder_create(&model, 1);
        CHECK_MSG(!decoder && strstr(tp_last_error(), needle), "%s = %s: %s", key, value,
                  decoder ? "accepted" : tp_last_error());
        tp_lm_decoder_free(decoder);
        tp_model_free(&model);
    }
    tp_config_free(config);
}

int main(void)
{
    tp_scratch_init("gpt2");
    tp_config *config = NULL;
    tp_model model;
    memset(&model, 0, sizeof model);
    CHECK_MSG(tp_fixture_hf_model(FIXTURE, &config, &model) == 0, "loading %s: %s", FIXTURE, tp_last_error());
    tp_st_file *expected = tp_st_open(FIXTURE "/expected.safetensors");
    CHECK_MSG(expected != NULL, "%s", tp_last_error());
    if (config && expected) {
        check_forward(&model, expected);
        check_greedy(&model, expected, "greedy", 1.0);
        check_greedy(&model, expected, "greedy_penalty", 1.3);
        check_cache_logits(&model, expected);
        check_warpers(expected);
    }
    check_round_trip();
    check_refused("layer_idx_scaling", "\"model_type\"", "\"scale_attn_by_inverse_layer_idx\": true, \"model_type\"",
                  "'scale_attn_by_inverse_layer_idx'");
    check_refused("architecture", "GPT2LMHeadModel", "GPT2ForSequenceClassification", "'architectures'");
    check_refused("activation", "\"gelu_new\"", "\"mish\"", "'activation_function'");
    check_decoder_refuses("attention_head_size", "4", "attention_head_size");
    check_decoder_refuses("has_lmtarget_bias", "true", "lm output bias");
    if (expected) tp_st_close(expected);
    tp_model_free(&model);
    tp_config_free(config);
    return tp_test_finish("test_gpt2");
}
