/* A Hugging Face ViTForImageClassification loaded into tp (core/hf_vit.c) gives transformers'
 * logits: a small random model (3 x 30 x 30 images, 7-pixel patches with a dropped remainder,
 * 2 layers) and its outputs written by tests/reference/gen_vit_fixture.py into
 * tests/fixtures/vit/.  Checked: the logits and the final hidden states within 1e-4 of their
 * largest magnitude, through the image batch path (tp_batch pixels -> the patch embedding); the
 * conversion to a tp directory uses every tensor; HF -> tp -> HF (tp-convert's library functions)
 * gives every tensor back bit-identical, with the config.json fields transformers reads. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/hf.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "support/fixture.h"
#include "support/scratch.h"

#define DIR "tests/fixtures/vit"
#define GENERATOR "tests/reference/gen_vit_fixture.py"
#define TOLERANCE 1e-4

static void check_outputs(tp_model *model, const tp_st_file *expected)
{
    const tp_st_tensor *pixels = tp_fixture_tensor(expected, GENERATOR, "pixel_values");
    const tp_st_tensor *logits = tp_fixture_tensor(expected, GENERATOR, "logits");
    const tp_st_tensor *hidden = tp_fixture_tensor(expected, GENERATOR, "hidden");
    int64_t batch_size = pixels->shape[0], seq = hidden->shape[1], width = pixels->numel / batch_size;
    int32_t *seg = tp_xmalloc((size_t)(batch_size * seq) * sizeof *seg);
    for (int64_t i = 0; i < batch_size * seq; i++) seg[i] = 1;
    tp_batch batch = {.batch_size = batch_size, .seq_length = seq, .seg = seg, .pixels = (float *)pixels->data,
                      .pixel_width = width, .real_tokens = batch_size * seq};
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    tp_model_batch model_batch = tp_model_batch_upload(&ctx, &batch);
    tp_model_output out;
    CHECK(tp_model_forward(model, &ctx, &model_batch, &out) == 0);
    CHECK(out.results[0].classes == logits->shape[1] && tp_cols(out.results[0].logits) == logits->shape[1]);
    tp_check_normalised("logits", out.results[0].logits->data, logits->data, (long)logits->numel, TOLERANCE);
    tp_check_normalised("final hidden states", out.hidden->data, hidden->data, (long)hidden->numel, TOLERANCE);
    tp_ctx_free(&ctx);
    free(seg);
}

/* Every field of ViTConfig that shapes the model is the same in both config.json files. */
static void check_same_config(const char *original_path, const char *back_path)
{
    static const char *const keys[] = {"model_type", "architectures", "hidden_size", "num_hidden_layers",
                                       "num_attention_heads", "intermediate_size", "hidden_act", "image_size",
                                       "patch_size", "num_channels", "layer_norm_eps", "qkv_bias", "id2label"};
    char *original_text = tp_read_file(original_path, NULL), *back_text = tp_read_file(back_path, NULL);
    cJSON *original = cJSON_Parse(original_text), *back = cJSON_Parse(back_text);
    CHECK(original && back);
    for (size_t i = 0; original && back && i < sizeof keys / sizeof keys[0]; i++)
        CHECK_MSG(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(original, keys[i]),
                                cJSON_GetObjectItemCaseSensitive(back, keys[i]), 1),
                  "config.json key '%s' differs after HF -> tp -> HF", keys[i]);
    cJSON_Delete(original), cJSON_Delete(back);
    free(original_text), free(back_text);
}

static void check_conversion(void)
{
    char tp_dir[512], config[600], weights[600], back[600], path[700];
    tp_hf_report report;
    snprintf(tp_dir, sizeof tp_dir, "%s/vit_tp", tp_scratch_dir());
    CHECK_MSG(tp_hf_convert_from_hf(DIR, tp_dir, &report) == 0, "%s", tp_last_error());
    CHECK_MSG(report.written == 4 + 2 * 16 + 2 + 2 && report.dropped == 0, "%lld written, dropped: %s",
              (long long)report.written, report.dropped_names);
    snprintf(config, sizeof config, "%s/model_config.json", tp_dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", tp_dir);
    snprintf(back, sizeof back, "%s/vit_hf", tp_scratch_dir());
    CHECK_MSG(tp_hf_convert_to_hf(config, weights, NULL, 0, back, &report) == 0, "to hf: %s", tp_last_error());
    snprintf(path, sizeof path, "%s/model.safetensors", back);
    tp_fixture_check_same_tensors("ViT", DIR "/model.safetensors", path, NULL, 0);
    snprintf(path, sizeof path, "%s/config.json", back);
    check_same_config(DIR "/config.json", path);
}

int main(void)
{
    tp_scratch_init("vit_parity");
    tp_config *config = NULL;
    tp_model model;
    tp_st_file *expected = tp_fixture_open_model(DIR, "test_vit_parity", &config, &model);
    check_outputs(&model, expected);
    check_conversion();
    tp_st_close(expected);
    tp_model_free(&model);
    tp_config_free(config);
    return tp_test_finish("test_vit_parity");
}
