/* T5, T5 v1.1, BART and Pegasus in tp against transformers: small random-init
 * T5ForConditionalGeneration (relu, tied head), T5 v1.1 (gated-gelu, untied head, 4 heads of 6 !=
 * d_model 32: attention_head_size), BartForConditionalGeneration and PegasusForConditionalGeneration
 * (sinusoidal positions, scaled embeddings, pre-LN), both with a non-zero final_logits_bias, saved by
 * transformers (tests/reference/gen_t5_bart.py writes them and their outputs to
 * tests/fixtures/{t5,t5_v1_1,bart,pegasus}/), loaded through tp's Hugging Face maps:
 *   - logits of 2 x 6 decoder tokens over 2 x 9 encoder tokens (3 of them padding) within 1e-4 of
 *     transformers' largest magnitude;
 *   - the loaded tensors are every tensor of the file but the known copies (Pegasus: and its two
 *     fixed position tables);
 *   - HF -> tp -> HF through tp-convert's library functions gives back every tensor with the same
 *     name, dtype, shape and bytes (Pegasus: but the position tables, which transformers computes),
 *     and configs Hugging Face cannot express are refused naming the key;
 *   - T5's relative position buckets equal transformers' for distances -200..200 (bidirectional and
 *     causal; 32 buckets / max distance 128 and 8 / 20). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/hf.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "modules/layers/relative_position.h"
#include "support/check.h"
#include "support/fixture.h"
#include "support/scratch.h"

#define GENERATOR "tests/reference/gen_t5_bart.py"
#define TOLERANCE 1e-4

/* BART / Pegasus: the lm loss with the fixture's labels and the gradient of the lm bias
 * (final_logits_bias in transformers) after backward. */
static void check_bias_gradient(const char *dir, const tp_st_file *expected, tp_model *model, tp_ctx *ctx,
                                tp_tensor *loss)
{
    int64_t n = 0, vocab = model->hp.vocab_size;
    float *want_loss = tp_fixture_floats(expected, GENERATOR, "loss", &n), *want_grad = tp_fixture_floats(expected, GENERATOR, "final_logits_bias_grad", &n);
    const tp_param *bias = tp_params_find(&model->params, "target.lm.output_layer.bias");
    CHECK_MSG(loss && bias && n == vocab, "%s: no lm loss or bias", dir);
    if (loss && bias && n == vocab) {
        CHECK_MSG(tp_close(loss->data[0], want_loss[0], 1e-5, 1e-6), "%s loss: tp %.9g, transformers %.9g", dir,
                  (double)loss->data[0], (double)want_loss[0]);
        tp_backward(ctx, loss);
        double error = tp_max_normalised_error(model->params.grad + bias->offset, want_grad, (long)vocab);
        fprintf(stderr, "  %s loss %.7g, lm bias gradient: normalised error %.2g\n", dir, (double)loss->data[0], error);
        CHECK_MSG(error <= TOLERANCE, "%s lm bias gradient: normalised error %.3g", dir, error);
    }
    free(want_loss);
    free(want_grad);
}

static void check_logits(const char *dir)
{
    tp_config *config = NULL;
    tp_model model;
    tp_st_file *expected = tp_fixture_open_model(dir, "test_seq2seq_parity", &config, &model);
    int64_t src_count = 0, mask_count = 0, tgt_count = 0, logit_count = 0;
    int32_t *src = tp_fixture_ids(expected, GENERATOR, "input_ids", &src_count);
    int32_t *seg = tp_fixture_ids(expected, GENERATOR, "attention_mask", &mask_count);
    int32_t *tgt = tp_fixture_ids(expected, GENERATOR, "decoder_input_ids", &tgt_count);
    float *want = tp_fixture_floats(expected, GENERATOR, "logits", &logit_count);
    int64_t vocab = model.hp.vocab_size, batch = 2;
    tp_batch host = {.batch_size = batch, .seq_length = src_count / batch, .src = src, .seg = seg};
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    int32_t *labels = tp_st_find(expected, "labels") ? tp_fixture_ids(expected, GENERATOR, "labels", &tgt_count) : NULL;
    ctx.record = labels != NULL; /* dropout stays off (ctx.training 0) */
    tp_model_batch in = tp_model_batch_upload(&ctx, &host);
    in.tgt_seq_length = tgt_count / batch;
    in.tgt_src = tp_ids_upload(&ctx, tgt, tgt_count);
    for (int64_t i = 0; labels && i < tgt_count; i++) labels[i] = labels[i] < 0 ? -1 : labels[i];
    in.tags = labels ? tp_ids_upload(&ctx, labels, tgt_count) : NULL;
    tp_model_output out;
    CHECK(tp_model_forward(&model, &ctx, &in, &out) == 0);
    const tp_tensor *logits = out.results[0].logits;
    CHECK(tp_rows(logits) == tgt_count && logit_count == tgt_count * vocab);
    float *packed = tp_xmalloc((size_t)(tgt_count * vocab) * sizeof *packed);
    for (int64_t r = 0; r < tgt_count; r++)
        memcpy(packed + r * vocab, logits->data + r * tp_cols(logits), (size_t)vocab * sizeof *packed);
    double error = tp_max_normalised_error(packed, want, (long)logit_count);
    fprintf(stderr, "  %s logits [2, 6, %lld]: normalised error %.2g\n", dir, (long long)vocab, error);
    CHECK_MSG(error <= TOLERANCE, "%s logits: normalised error %.3g", dir, error);
    if (labels) check_bias_gradient(dir, expected, &model, &ctx, out.results[0].loss);
    free(packed), free(src), free(seg), free(tgt), free(want), free(labels);
    tp_ctx_free(&ctx);
    tp_st_close(expected);
    tp_model_free(&model);
    tp_config_free(config);
}

/* Every tensor of the file is placed or a known droppable one (convert's strict report). */
static void check_conversion_report(const char *dir, int64_t dropped)
{
    char out_dir[256];
    snprintf(out_dir, sizeof out_dir, "/tmp/tp_seq2seq_parity_%d", (int)getpid());
    tp_hf_report report;
    int status = tp_hf_convert_from_hf(dir, out_dir, &report);
    CHECK_MSG(status == 0, "%s: %s", dir, tp_last_error());
    CHECK_MSG(report.dropped == dropped, "%s: dropped %lld tensors (%s), expected %lld", dir, (long long)report.dropped,
              report.dropped_names, (long long)dropped);
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", out_dir);
    CHECK(system(command) == 0);
}

/* HF -> tp -> HF, and the tp config with `key` set to `value` (JSON) refused naming the key. */
static void check_round_trip(const char *dir, const char *name, int64_t skipped, const char *key, const char *value)
{
    char tp_dir[512], back_dir[512], config[600], weights[600], original[600], copy[600], bad_config[600];
    tp_hf_report report;
    snprintf(tp_dir, sizeof tp_dir, "%s/%s_tp", tp_scratch_dir(), name);
    snprintf(back_dir, sizeof back_dir, "%s/%s_hf", tp_scratch_dir(), name);
    CHECK_MSG(tp_hf_convert_from_hf(dir, tp_dir, &report) == 0, "%s: %s", dir, tp_last_error());
    snprintf(config, sizeof config, "%s/model_config.json", tp_dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", tp_dir);
    CHECK_MSG(tp_hf_convert_to_hf(config, weights, NULL, 0, back_dir, &report) == 0, "%s: %s", dir, tp_last_error());
    snprintf(original, sizeof original, "%s/model.safetensors", dir);
    snprintf(copy, sizeof copy, "%s/model.safetensors", back_dir);
    tp_fixture_check_same_tensors(dir, original, copy, "embed_positions", skipped);

    char *text = tp_read_file(config, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK(root != NULL);
    if (!root) return;
    tp_hf_put(root, key, cJSON_Parse(value));
    char *changed = cJSON_Print(root);
    snprintf(bad_config, sizeof bad_config, "%s/%s_bad.json", tp_scratch_dir(), name);
    CHECK(tp_write_file_atomic(bad_config, changed, strlen(changed)) == 0);
    snprintf(back_dir, sizeof back_dir, "%s/%s_refused", tp_scratch_dir(), name);
    int status = tp_hf_convert_to_hf(bad_config, weights, NULL, 0, back_dir, &report);
    char needle[128];
    snprintf(needle, sizeof needle, "key '%s'", key);
    CHECK_MSG(status < 0 && strstr(tp_last_error(), needle), "%s with %s = %s: %s", dir, key, value,
              status < 0 ? tp_last_error() : "accepted");
    CHECK_MSG(access(back_dir, F_OK) != 0, "%s: a refused conversion left %s", dir, back_dir);
    free(changed);
    cJSON_Delete(root);
    free(text);
}

static void check_buckets(void)
{
    tp_st_file *file = tp_st_open("tests/fixtures/t5/buckets.safetensors");
    CHECK_MSG(file != NULL, "%s", tp_last_error());
    if (!file) return;
    static const struct {
        const char *name;
        int bidirectional;
        int64_t buckets, max_distance;
    } cases[] = {{"bidirectional_32", 1, 32, 128}, {"causal_32", 0, 32, 128}, {"bidirectional_8", 1, 8, 20},
                 {"causal_8", 0, 8, 20}};
    int64_t n = 0, m = 0;
    float *distance = tp_fixture_floats(file, GENERATOR, "distance", &n);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        float *want = tp_fixture_floats(file, GENERATOR, cases[c].name, &m);
        int64_t wrong = 0;
        for (int64_t i = 0; i < n && m == n; i++)
            wrong += tp_relative_position_bucket((int64_t)distance[i], cases[c].bidirectional, cases[c].buckets,
                                                 cases[c].max_distance) != (int32_t)want[i];
        CHECK_MSG(m == n && wrong == 0, "buckets %s: %lld of %lld distances differ", cases[c].name, (long long)wrong,
                  (long long)n);
        free(want);
    }
    free(distance);
    tp_st_close(file);
}

int main(void)
{
    check_buckets();
    check_logits("tests/fixtures/t5");
    check_logits("tests/fixtures/t5_v1_1");
    check_logits("tests/fixtures/bart");
    check_logits("tests/fixtures/pegasus");
    check_conversion_report("tests/fixtures/t5", 0);
    check_conversion_report("tests/fixtures/t5_v1_1", 0);
    check_conversion_report("tests/fixtures/bart", 0);
    check_conversion_report("tests/fixtures/pegasus", 2);
    tp_scratch_init("seq2seq_parity");
    check_round_trip("tests/fixtures/t5", "t5", 0, "has_lmtarget_bias", "true");
    check_round_trip("tests/fixtures/t5_v1_1", "t5_v1_1", 0, "tied_output_scale", "true");
    check_round_trip("tests/fixtures/bart", "bart", 0, "layernorm_positioning", "\"pre\"");
    check_round_trip("tests/fixtures/pegasus", "pegasus", 2, "sinusoidalpos_layout", "\"interleaved\"");
    return tp_test_finish("test_seq2seq_parity");
}
