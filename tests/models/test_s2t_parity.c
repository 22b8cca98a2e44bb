/* Speech2Text in tp against transformers: a small random-init Speech2TextForConditionalGeneration
 * saved by transformers (tests/reference/gen_s2t.py writes it and its outputs to tests/fixtures/s2t/),
 * loaded through tp's Hugging Face map (core/hf_s2t.c):
 *   - logits of 2 x 5 decoder tokens over 2 utterances of 23 frames x 12 features (the second one 17
 *     frames, then zeros) within 1e-4 of transformers' largest magnitude; the encoder's rows are the
 *     frames subsampled twice (23 -> 12 -> 6) and its key mask is transformers' subsampled mask;
 *   - the convolutions' gradients (through the GLU's weight halves) against central differences;
 *   - conversion places every tensor of the file but the two sinusoid tables, and converting back
 *     gives the same tensors bit for bit;
 *   - models/s2t/small_config.json has exactly the trainable parameters of transformers'
 *     Speech2TextForConditionalGeneration with facebook/s2t-small-librispeech-asr's config, and
 *     transformers' total exceeds it by exactly the two sinusoid tables tp computes instead. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/hf.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "support/fixture.h"

#define GENERATOR "tests/reference/gen_s2t.py"
#define DIR "tests/fixtures/s2t"
#define TOLERANCE 1e-4

typedef struct s2t_inputs {
    float *audio;
    int32_t *seg, *tgt, *labels;
    int64_t batch, frames, features, seq, tgt_seq;
} s2t_inputs;

/* The model on the fixture's batch in a fresh step (labels: the decoder ids shifted by one, so that
 * the lm target has a loss to differentiate). */
static tp_model_output run(tp_model *model, tp_ctx *ctx, const s2t_inputs *x, int record)
{
    tp_ctx_reset(ctx);
    ctx->record = record;
    tp_batch host = {.batch_size = x->batch, .seq_length = x->seq, .seg = x->seg, .tags = x->labels,
                     .audio = x->audio, .audio_frames = x->frames, .audio_feature_size = x->features,
                     .tgt_seq_length = x->tgt_seq, .tgt_src = x->tgt};
    tp_model_batch in = tp_model_batch_upload(ctx, &host);
    tp_model_output out;
    CHECK(tp_model_forward(model, ctx, &in, &out) == 0);
    return out;
}

static double loss_value(tp_model *model, tp_ctx *ctx, const s2t_inputs *x)
{
    float loss = 0;
    tp_model_output out = run(model, ctx, x, 0);
    ctx->backend->download(&loss, out.loss->data, sizeof loss);
    return loss;
}

/* The convolutions' gradients through the GLU's halves (weight and bias views) against central
 * differences of the loss: elements of both halves of both layers. */
static void check_conv_gradients(tp_model *model, tp_ctx *ctx, const s2t_inputs *x)
{
    static const struct {
        const char *name;
        int64_t element;
    } probes[] = {{"embedding.speech.conv.conv_layers.0.weight", 7},    {"embedding.speech.conv.conv_layers.0.weight", 900},
                  {"embedding.speech.conv.conv_layers.0.bias", 3},      {"embedding.speech.conv.conv_layers.0.bias", 20},
                  {"embedding.speech.conv.conv_layers.1.weight", 100},  {"embedding.speech.conv.conv_layers.1.weight", 1500},
                  {"embedding.speech.conv.conv_layers.1.bias", 40}};
    tp_params_zero_grad(&model->params);
    tp_model_output out = run(model, ctx, x, 1);
    tp_backward(ctx, out.loss);
    for (size_t p = 0; p < sizeof probes / sizeof *probes; p++) {
        tp_param *param = tp_params_find(&model->params, probes[p].name);
        CHECK_MSG(param != NULL, "%s missing", probes[p].name);
        if (!param) continue;
        float *value = param->tensor.data + probes[p].element, saved = *value, h = 3e-3f;
        double analytic = param->tensor.grad[probes[p].element];
        *value = saved + h;
        double up = loss_value(model, ctx, x);
        *value = saved - h;
        double down = loss_value(model, ctx, x);
        *value = saved;
        /* the fp32 loss's rounding puts up to a few 1e-4 of noise into each central difference */
        double numeric = (up - down) / (2.0 * h);
        fprintf(stderr, "  %s[%lld]: gradient %.6g, central difference %.6g\n", probes[p].name,
                (long long)probes[p].element, analytic, numeric);
        CHECK_MSG(fabs(numeric - analytic) <= 2e-2 * fabs(numeric) + 1e-3, "%s[%lld]: gradient %.6g, central "
                  "difference %.6g", probes[p].name, (long long)probes[p].element, analytic, numeric);
    }
}

static void check_logits(const tp_st_file *expected)
{
    tp_config *config = NULL;
    tp_model model;
    int loaded = tp_fixture_hf_model(DIR, &config, &model);
    CHECK_MSG(loaded == 0, "%s: %s", DIR, tp_last_error());
    if (loaded < 0) exit(tp_test_finish("test_s2t_parity"));
    int64_t feature_count = 0, mask_count = 0, tgt_count = 0, logit_count = 0;
    s2t_inputs x = {.batch = 2, .frames = 23, .features = 12};
    x.audio = tp_fixture_floats(expected, GENERATOR, "input_features", &feature_count);
    x.seg = tp_fixture_ids(expected, GENERATOR, "encoder_mask", &mask_count);
    x.tgt = tp_fixture_ids(expected, GENERATOR, "decoder_input_ids", &tgt_count);
    float *want = tp_fixture_floats(expected, GENERATOR, "logits", &logit_count);
    CHECK(feature_count == x.batch * x.frames * x.features);
    x.seq = mask_count / x.batch;
    x.tgt_seq = tgt_count / x.batch;
    x.labels = tp_xmalloc((size_t)tgt_count * sizeof *x.labels);
    for (int64_t i = 0; i < tgt_count; i++) x.labels[i] = (i + 1) % x.tgt_seq ? x.tgt[i + 1] : -1;
    int64_t vocab = model.hp.vocab_size;
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    tp_model_output out = run(&model, &ctx, &x, 0);
    const tp_tensor *logits = out.results[0].logits;
    CHECK(tp_rows(logits) == tgt_count && logit_count == tgt_count * vocab);
    float *packed = tp_xmalloc((size_t)(tgt_count * vocab) * sizeof *packed);
    for (int64_t r = 0; r < tgt_count; r++)
        memcpy(packed + r * vocab, logits->data + r * tp_cols(logits), (size_t)vocab * sizeof *packed);
    double error = tp_max_normalised_error(packed, want, (long)logit_count);
    fprintf(stderr, "  s2t logits [2, 5, %lld]: normalised error %.2g\n", (long long)vocab, error);
    CHECK_MSG(error <= TOLERANCE, "s2t logits: normalised error %.3g", error);
    check_conv_gradients(&model, &ctx, &x);
    free(packed), free(x.audio), free(x.seg), free(x.tgt), free(x.labels), free(want);
    tp_ctx_free(&ctx);
    tp_model_free(&model);
    tp_config_free(config);
}

/* Hugging Face -> tp -> Hugging Face: every tensor of the file is placed but the two position tables
 * (convert's strict report), and comes back bit for bit under its name. */
static void check_round_trip(void)
{
    char tp_dir[256], hf_dir[256], config[300], weights[300], back[300], command[600];
    snprintf(tp_dir, sizeof tp_dir, "/tmp/tp_s2t_parity_%d", (int)getpid());
    snprintf(hf_dir, sizeof hf_dir, "/tmp/tp_s2t_parity_hf_%d", (int)getpid());
    snprintf(config, sizeof config, "%s/model_config.json", tp_dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", tp_dir);
    snprintf(back, sizeof back, "%s/model.safetensors", hf_dir);
    tp_hf_report report;
    int status = tp_hf_convert_from_hf(DIR, tp_dir, &report);
    CHECK_MSG(status == 0, "%s: %s", DIR, tp_last_error());
    CHECK_MSG(status < 0 || report.dropped == 2, "dropped %lld tensors (%s), expected the 2 position tables",
              (long long)report.dropped, report.dropped_names);
    if (status == 0) status = tp_hf_convert_to_hf(config, weights, NULL, 0, hf_dir, &report);
    CHECK_MSG(status == 0, "to hf: %s", tp_last_error());
    tp_st_file *original = tp_st_open(DIR "/model.safetensors"), *written = status == 0 ? tp_st_open(back) : NULL;
    CHECK_MSG(original && written, "%s", tp_last_error());
    for (int64_t i = 0; original && written && i < tp_st_count(original); i++) {
        const tp_st_tensor *want = tp_st_at(original, i), *got = tp_st_find(written, want->name);
        if (strstr(want->name, "embed_positions")) continue;
        CHECK_MSG(got && got->nbytes == want->nbytes && !memcmp(got->data, want->data, (size_t)want->nbytes),
                  "round trip: tensor %s differs or is missing", want->name);
    }
    if (original && written) CHECK(tp_st_count(written) == tp_st_count(original) - 2);
    if (original) tp_st_close(original);
    if (written) tp_st_close(written);
    snprintf(command, sizeof command, "rm -rf '%s' '%s'", tp_dir, hf_dir);
    CHECK(system(command) == 0);
}

static void check_small_parameters(const tp_st_file *expected)
{
    int64_t n = 0;
    float *counts = tp_fixture_floats(expected, GENERATOR, "small_parameters", &n);
    tp_config *config = tp_config_load("models/s2t/small_config.json");
    tp_model model;
    int built = config ? tp_model_build(&model, config, 10000) : -1;
    CHECK_MSG(built == 0 && tp_config_check_unused(config) == 0, "models/s2t/small_config.json: %s", tp_last_error());
    if (built == 0 && n == 2) {
        int64_t ours = tp_params_logical_count(&model.params), all = (int64_t)counts[0], trainable = (int64_t)counts[1];
        int64_t sinusoids = 256 * ((6000 + 2) + (1024 + 2)); /* transformers' tables: max positions + offset rows */
        fprintf(stderr, "  s2t-small: tp %lld parameters, transformers %lld trainable, %lld in all\n", (long long)ours,
                (long long)trainable, (long long)all);
        CHECK_MSG(ours == trainable, "s2t-small: %lld parameters, transformers has %lld trainable", (long long)ours,
                  (long long)trainable);
        CHECK(all - trainable == sinusoids);
        tp_model_free(&model);
    }
    tp_config_free(config);
    free(counts);
}

int main(void)
{
    tp_st_file *expected = tp_st_open(DIR "/expected.safetensors");
    CHECK_MSG(expected != NULL, "%s", tp_last_error());
    if (!expected) return tp_test_finish("test_s2t_parity");
    check_logits(expected);
    check_round_trip();
    check_small_parameters(expected);
    tp_st_close(expected);
    return tp_test_finish("test_s2t_parity");
}
