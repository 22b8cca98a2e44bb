/* A Hugging Face CLIPModel loaded into tp (core/hf_clip.c: the dual embedding, the dual encoder and the
 * clr target) gives transformers' outputs: a small random model (text hidden 32, vision hidden 24,
 * 2 layers each, 3 texts of 7 / 5 / 3 tokens padded to 7, 3 x 8 x 8 images) written with its outputs
 * and gradients by tests/reference/gen_clip_fixture.py into tests/fixtures/clip/.  Checked, each within
 * 1e-4 of its largest magnitude: logits_per_text (tp's clr logits), the symmetric contrastive loss,
 * and the loss's gradients in 12 parameters of both towers, the projections and logit_scale (through
 * tp's tape: the text tower's causal mask and end-of-text pooling, the vision tower's pre_layrnorm,
 * quick_gelu); the conversion to a tp directory uses every tensor, and HF -> tp -> HF gives every
 * tensor back bit-identical.  models/clip/base-{32,16}_config.json build models of exactly
 * CLIPModel's parameter counts (the fixture's metadata, counted by transformers), and two-stream
 * configs with a misspelt or missing stream key are refused naming it. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/hf.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "support/fixture.h"
#include "support/scratch.h"

#define DIR "tests/fixtures/clip"
#define GENERATOR "tests/reference/gen_clip_fixture.py"
#define TOLERANCE 1e-4

/* tp's name for each Hugging Face parameter whose gradient the fixture holds. */
static const struct {
    const char *hf, *tp;
} gradients[] = {
    {"logit_scale", "target.clr.logit_scale"},
    {"text_projection.weight", "target.clr.encoder_0_projection"},
    {"visual_projection.weight", "target.clr.encoder_1_projection"},
    {"text_model.embeddings.token_embedding.weight", "embedding.dual.embedding_0.word.embedding.weight"},
    {"text_model.embeddings.position_embedding.weight", "embedding.dual.embedding_0.pos.embedding.weight"},
    {"text_model.encoder.layers.0.self_attn.q_proj.weight", "encoder.encoder_0.transformer.0.self_attn.linear_layers.0.weight"},
    {"text_model.final_layer_norm.bias", "encoder.encoder_0.layer_norm.bias"},
    {"vision_model.embeddings.patch_embedding.weight", "embedding.dual.embedding_1.patch.projection.weight"},
    {"vision_model.embeddings.class_embedding", "embedding.dual.embedding_1.patch.cls_emb"},
    {"vision_model.pre_layrnorm.weight", "embedding.dual.stream_1_layer_norm.weight"},
    {"vision_model.encoder.layers.1.mlp.fc1.weight", "encoder.encoder_1.transformer.1.feed_forward.linear_1.weight"},
    {"vision_model.post_layernorm.weight", "encoder.encoder_1.layer_norm.weight"},
};

/* The fixture's texts and images as one host batch (the caller frees src and seg). */
static tp_batch fixture_batch(const tp_st_file *expected)
{
    int64_t tokens = 0, mask_count = 0;
    int32_t *ids = tp_fixture_ids(expected, GENERATOR, "input_ids", &tokens);
    int32_t *mask = tp_fixture_ids(expected, GENERATOR, "attention_mask", &mask_count);
    const tp_st_tensor *pixels = tp_fixture_tensor(expected, GENERATOR, "pixel_values");
    const tp_st_tensor *shape = tp_fixture_tensor(expected, GENERATOR, "input_ids");
    int64_t real = 0;
    for (int64_t i = 0; i < mask_count; i++) real += mask[i];
    return (tp_batch){.batch_size = shape->shape[0], .seq_length = shape->shape[1], .src = ids, .seg = mask,
                      .pixels = (float *)pixels->data, .pixel_width = pixels->numel / pixels->shape[0],
                      .real_tokens = real};
}

static void check_gradients(tp_model *model, const tp_st_file *expected)
{
    char name[256];
    for (size_t i = 0; i < sizeof gradients / sizeof gradients[0]; i++) {
        const tp_param *param = tp_params_find(&model->params, gradients[i].tp);
        snprintf(name, sizeof name, "grad.%s", gradients[i].hf);
        int64_t n = 0;
        float *reference = tp_fixture_floats(expected, GENERATOR, name, &n);
        CHECK_MSG(param && tp_param_logical_numel(param) == n, "%s: no parameter of %lld values", gradients[i].tp,
                  (long long)n);
        if (param && tp_param_logical_numel(param) == n)
            tp_check_normalised(name, param->tensor.grad, reference, (long)n, TOLERANCE);
        free(reference);
    }
}

static void check_outputs(tp_model *model, const tp_st_file *expected)
{
    tp_batch batch = fixture_batch(expected);
    const tp_st_tensor *logits = tp_fixture_tensor(expected, GENERATOR, "logits_per_text");
    float *loss = tp_fixture_floats(expected, GENERATOR, "loss", NULL);
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    ctx.record = 1;
    tp_params_zero_grad(&model->params);
    tp_model_batch model_batch = tp_model_batch_upload(&ctx, &batch);
    tp_model_output out;
    CHECK_MSG(tp_model_forward(model, &ctx, &model_batch, &out) == 0, "%s", tp_last_error());
    CHECK(out.results[0].classes == batch.batch_size && tp_numel(out.results[0].logits) == logits->numel);
    tp_check_normalised("logits_per_text", out.results[0].logits->data, logits->data, (long)logits->numel, TOLERANCE);
    tp_check_normalised("loss", out.loss->data, loss, 1, TOLERANCE);
    tp_backward(&ctx, out.loss);
    check_gradients(model, expected);
    tp_ctx_free(&ctx);
    free(loss);
    free(batch.src), free(batch.seg);
}

static void check_conversion(void)
{
    char tp_dir[512], config[600], weights[600], back[600], path[700];
    tp_hf_report report;
    snprintf(tp_dir, sizeof tp_dir, "%s/clip_tp", tp_scratch_dir());
    CHECK_MSG(tp_hf_convert_from_hf(DIR, tp_dir, &report) == 0, "%s", tp_last_error());
    /* embeddings 2 + 3 + pre_layrnorm 2, 2 x 2 layers of 16, final norms 4, projections 2, logit_scale */
    CHECK_MSG(report.written == 7 + 64 + 4 + 3 && report.dropped == 0, "%lld written, dropped: %s",
              (long long)report.written, report.dropped_names);
    snprintf(config, sizeof config, "%s/model_config.json", tp_dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", tp_dir);
    snprintf(back, sizeof back, "%s/clip_hf", tp_scratch_dir());
    CHECK_MSG(tp_hf_convert_to_hf(config, weights, NULL, 0, back, &report) == 0, "to hf: %s", tp_last_error());
    snprintf(path, sizeof path, "%s/model.safetensors", back);
    tp_fixture_check_same_tensors("CLIP", DIR "/model.safetensors", path, NULL, 0);
}

/* tp's model of models/clip/<name>_config.json has as many parameters as transformers' CLIPModel. */
static void check_config_size(const tp_st_file *expected, const char *name)
{
    char path[256], key[64];
    snprintf(path, sizeof path, "models/clip/%s_config.json", name);
    snprintf(key, sizeof key, "parameters.%s", name);
    const char *count = tp_st_metadata(expected, key);
    snprintf(key, sizeof key, "vocab_size.%s", name);
    const char *vocab = tp_st_metadata(expected, key);
    CHECK_MSG(count && vocab, "%s: metadata '%s' missing (written by " GENERATOR ")", tp_st_path(expected), key);
    tp_config *config = tp_config_load(path);
    tp_model model;
    int built = count && vocab && config && tp_model_build(&model, config, atoll(vocab)) == 0;
    CHECK_MSG(built && tp_config_check_unused(config) == 0, "%s: %s", path, tp_last_error());
    if (built) {
        CHECK_MSG(tp_params_logical_count(&model.params) == atoll(count), "%s: %lld parameters, CLIPModel has %s", path,
                  (long long)tp_params_logical_count(&model.params), count);
        fprintf(stderr, "  %s: %lld parameters (CLIPModel: %s)\n", path, (long long)tp_params_logical_count(&model.params),
                count);
        tp_model_free(&model);
    }
    tp_config_free(config);
}

/* The config at path with one key set to text: the build fails with a message containing `message`. */
static void check_refused(const char *path, const char *key, const char *text, const char *message)
{
    tp_config *config = tp_config_load(path);
    tp_model model;
    CHECK_MSG(config && tp_config_set(config, key, text) == 0, "%s", tp_last_error());
    int built = config && tp_model_build(&model, config, 48) == 0 && tp_config_check_unused(config) == 0;
    CHECK_MSG(!built && strstr(tp_last_error(), message), "%s = %s: '%s'", key, text, built ? "built" : tp_last_error());
    if (built) tp_model_free(&model);
    tp_config_free(config);
}

static void check_configs(const tp_st_file *expected)
{
    check_config_size(expected, "base-32");
    check_config_size(expected, "base-16");
    const char *tiny = "models/clip/tiny_config.json";
    check_refused(tiny, "stream_1.hiden_size", "24", "tiny_config.json (stream_1): key 'hiden_size'");
    check_refused(tiny, "stream_1", "3", "key 'stream_1': missing or not an object");
    check_refused(tiny, "stream_0.embedding", "[\"word\", \"dual\"]", "'dual' is not an embedding a stream can have");
    check_refused(tiny, "stream_0.pooling", "\"middle\"", "tiny_config.json (stream_0): key 'pooling'");
    check_refused("models/gpt2/tiny_config.json", "target", "[\"clr\"]", "need 'stream_0' and 'stream_1'");
}

int main(void)
{
    tp_scratch_init("clip_parity");
    tp_config *config = NULL;
    tp_model model;
    tp_st_file *expected = tp_fixture_open_model(DIR, "test_clip_parity", &config, &model);
    check_outputs(&model, expected);
    check_conversion();
    check_configs(expected);
    tp_st_close(expected);
    tp_model_free(&model);
    tp_config_free(config);
    return tp_test_finish("test_clip_parity");
}
