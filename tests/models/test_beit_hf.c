/* Hugging Face BEiT checkpoints loaded into tp (core/hf_beit.c): BEiT's relative position bias
 * (modules/layers/relative_position.c, its 2-D offset index) and layer scale
 * (modules/encoders/transformer.c) against transformers, on small random models written by
 * tests/reference/gen_beit_hf_fixture.py into tests/fixtures/beit_hf/<name>/.  Checked:
 *  - the table index of a 2 x 3 grid is BeitRelativePositionBias's (a non-square grid);
 *  - models/beit/base-16-pt22k_config.json builds a model of microsoft/beit-base-patch16-224-pt22k's
 *    parameter count (counted by transformers) + one key bias per layer;
 *  - mim (BeitForMaskedImageModeling: shared table, layer scale, mask token, no absolute
 *    positions): the head's input (the top-level layernorm of the last hidden state) within 1e-4
 *    of its largest magnitude, without a mask and with a per-image patch mask;
 *  - classifier (BeitForImageClassification: a table per layer, layer scale, absolute positions,
 *    class-token head): last_hidden_state and logits within 1e-4;
 *  - mean (the same with mean pooling, no absolute positions: no final norm, the classifier over the
 *    layer-normed mean of the patch rows): last_hidden_state and logits within 1e-4;
 *  - the conversion to a tp directory uses every tensor but the visual-token head (2 dropped), and
 *    the key biases, which BEiT lacks, come out 0;
 *  - written back (tp-convert --to-hf): classifier and mean give their original tensors, bit for bit
 *    and no others (no key bias, no unused mask token), and their config.json's BEiT flags; mim
 *    becomes a BeitModel (its visual-token head dropped) whose hidden states, read back, are
 *    transformers' within 1e-4 with and without a patch mask; a patch projection without a bias is
 *    refused naming the key;
 *  - central finite differences (within 1e-3) of a tiny model's output (a 2 x 3 grid) for the shared
 *    table, the per-layer tables and the layer scales;
 *  - both kinds of relative position bias at once are refused naming the key. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/hf.h"
#include "core/model.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "modules/layers/relative_position.h"
#include "support/check.h"
#include "support/fixture.h"
#include "support/gradcheck.h"
#include "support/scratch.h"

#define DIR "tests/fixtures/beit_hf"
#define GENERATOR "tests/reference/gen_beit_hf_fixture.py"
#define TOLERANCE 1e-4

enum { BATCH = 2, ROWS = 17, PATCHES = ROWS - 1 };

typedef struct image_batch {
    int32_t seg[BATCH * ROWS], positions[BATCH * ROWS], first_rows[BATCH], last_rows[BATCH];
    float *pixels;
    tp_model_batch batch;
} image_batch;

static void image_batch_init(image_batch *b, const tp_st_file *expected, const uint8_t *mask)
{
    int64_t n = 0;
    b->pixels = tp_fixture_floats(expected, GENERATOR, "pixel_values", &n);
    for (int r = 0; r < BATCH * ROWS; r++) b->seg[r] = 1, b->positions[r] = r % ROWS;
    for (int i = 0; i < BATCH; i++) b->first_rows[i] = i * ROWS, b->last_rows[i] = i * ROWS + ROWS - 1;
    b->batch = (tp_model_batch){.batch_size = BATCH, .seq_length = ROWS, .seg = b->seg, .positions = b->positions,
                                .first_rows = b->first_rows, .last_rows = b->last_rows, .pixels = b->pixels, .pixel_width = n / BATCH,
                                .patch_mask = mask};
}

/* The model's encoder output (and the first target's logits when logits_name is not NULL) against
 * the fixture's. */
static void check_run(tp_model *model, const tp_st_file *expected, const uint8_t *mask, const char *label,
                      const char *hidden_name, const char *logits_name)
{
    image_batch b;
    image_batch_init(&b, expected, mask);
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    tp_model_output out;
    char what[128];
    CHECK(tp_model_forward(model, &ctx, &b.batch, &out) == 0);
    float *hidden = tp_fixture_floats(expected, GENERATOR, hidden_name, NULL);
    snprintf(what, sizeof what, "%s %s", label, hidden_name);
    tp_check_normalised(what, out.hidden->data, hidden, BATCH * ROWS * tp_cols(out.hidden), TOLERANCE);
    if (logits_name) {
        const tp_st_tensor *logits = tp_fixture_tensor(expected, GENERATOR, "%s", logits_name);
        CHECK(out.results[0].classes == logits->shape[1]);
        float *values = tp_fixture_floats(expected, GENERATOR, logits_name, NULL);
        snprintf(what, sizeof what, "%s %s", label, logits_name);
        tp_check_normalised(what, out.results[0].logits->data, values, (long)logits->numel, TOLERANCE);
        free(values);
    }
    tp_ctx_free(&ctx);
    free(hidden), free(b.pixels);
}

static void check_grid_index(const tp_st_file *expected)
{
    int64_t n = 0;
    float *index = tp_fixture_floats(expected, GENERATOR, "grid_index_2x3", &n);
    int wrong = 0;
    CHECK(n == 49);
    for (int64_t q = 0; q < 7 && n == 49; q++)
        for (int64_t k = 0; k < 7; k++)
            wrong += tp_relative_position_grid_index(q, k, 2, 3) != (int32_t)index[q * 7 + k];
    CHECK_MSG(wrong == 0, "%d of 49 entries of the 2 x 3 grid's index differ from transformers'", wrong);
    free(index);
}

/* ---- gradients through the relative position bias and the layer scale ----------------------------- */

/* A tiny BEiT (1 channel, 8 x 12 images in 4-pixel patches: a 2 x 3 grid) with relative_position_bias
 * `bias_kind` and layer scale, weights N(0, 0.02) from tp's initialisation, the tables and layer scales
 * N(0, 0.5) (they start at 0 and 0.5). */
enum { TINY_ROWS = 7, TINY_PIXELS = 8 * 12 };
static const char *const tiny_config =
    "{\"emb_size\": 8, \"hidden_size\": 8, \"feedforward_size\": 16, \"heads_num\": 2, \"layers_num\": 2,"
    " \"max_seq_length\": 7, \"dropout\": 0.0, \"embedding\": [\"masked_patch\"], \"remove_embedding_layernorm\": true,"
    " \"encoder\": \"transformer\", \"mask\": \"fully_visible\", \"layernorm_positioning\": \"pre\","
    " \"layernorm\": \"normal_torch\", \"image_height\": 8, \"image_width\": 12, \"patch_size\": 4,"
    " \"channels_num\": 1, \"layer_scale_init\": 0.5, \"relative_position_bias\": \"%s\"}";

typedef struct tiny_run {
    tp_model model;
    int32_t seg[BATCH * TINY_ROWS], first_rows[BATCH];
    float pixels[BATCH * TINY_PIXELS];
    tp_model_batch batch;
} tiny_run;

static tp_tensor *tiny_forward(tp_ctx *ctx, tp_tensor *const *inputs, void *user)
{
    (void)inputs; /* the model's own parameters */
    tiny_run *run = user;
    tp_model_output out;
    return tp_model_forward(&run->model, ctx, &run->batch, &out) == 0 ? out.hidden : NULL;
}

static void check_gradients(const char *bias_kind, const char *const *names, int count)
{
    static tiny_run run;
    char text[1024];
    snprintf(text, sizeof text, tiny_config, bias_kind);
    tp_config *config = tp_config_parse("tiny_beit.json", text);
    memset(&run.model, 0, sizeof run.model);
    int built = config && tp_model_build(&run.model, config, 0) == 0 && tp_config_check_unused(config) == 0;
    CHECK_MSG(built, "%s", tp_last_error());
    tp_config_free(config);
    if (!built) return;
    tp_model_allocate(&run.model, &tp_cpu_backend, 1);
    tp_params_initialize(&run.model.params, 7);
    for (int i = 0; i < BATCH * TINY_PIXELS; i++) run.pixels[i] = (float)((i * 37 % 101) / 50.0 - 1.0);
    for (int r = 0; r < BATCH * TINY_ROWS; r++) run.seg[r] = 1;
    run.first_rows[1] = TINY_ROWS;
    run.batch = (tp_model_batch){.batch_size = BATCH, .seq_length = TINY_ROWS, .seg = run.seg,
                                 .first_rows = run.first_rows, .pixels = run.pixels, .pixel_width = TINY_PIXELS};
    tp_tensor *inputs[4];
    int found = 0;
    for (int i = 0; i < count; i++) {
        tp_param *param = tp_params_find(&run.model.params, names[i]);
        CHECK_MSG(param != NULL, "%s missing", names[i]);
        if (!param) continue;
        inputs[found++] = &param->tensor;
        for (int64_t j = 0; j < tp_numel(&param->tensor); j++)
            param->tensor.data[j] = 0.5f * (float)tp_normal(99, (uint64_t)i, (uint64_t)j);
    }
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    tp_gradcheck_options options = {.step = 3e-2, .max_elements = 0, .seed = 3};
    tp_gradcheck_result r = tp_gradcheck(&ctx, tiny_forward, &run, inputs, found, &options);
    char what[128];
    snprintf(what, sizeof what, "relative_position_bias %s, layer scales", bias_kind);
    CHECK(found == count && tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, what));
    tp_ctx_free(&ctx);
    tp_model_free(&run.model);
}

/* models/beit/base-16-pt22k_config.json has microsoft/beit-base-patch16-224-pt22k's parameters (the
 * fixture's metadata, counted by transformers) + one key bias per layer. */
static void check_config_size(const tp_st_file *expected)
{
    const char *counted = tp_st_metadata(expected, "parameters.beit.base-16-pt22k");
    CHECK_MSG(counted != NULL, "parameter count metadata missing (written by " GENERATOR ")");
    tp_config *config = tp_config_load("models/beit/base-16-pt22k_config.json");
    tp_model model;
    int built = config && tp_model_build(&model, config, 0) == 0 && tp_config_check_unused(config) == 0;
    CHECK_MSG(built, "%s", tp_last_error());
    if (built && counted) {
        int64_t count = 0, key_biases = 12 * 768;
        for (int64_t i = 0; i < model.params.count; i++) count += tp_param_logical_numel(model.params.items[i]);
        CHECK_MSG(count == atoll(counted) + key_biases, "base-16-pt22k: %lld parameters, transformers %s + %lld",
                  (long long)count, counted, (long long)key_biases);
        fprintf(stderr, "  models/beit/base-16-pt22k_config.json: %lld parameters (transformers: %s + %lld "
                "key biases)\n",
                (long long)count, counted, (long long)key_biases);
    }
    if (built) tp_model_free(&model);
    tp_config_free(config);
}

/* ---- the models ------------------------------------------------------------------------------- */

/* dir: the fixture's, or the one written back (with the fixture's expected.safetensors). */
static void check_masked_image_modeling(const char *dir, const char *label)
{
    tp_config *config = NULL;
    tp_model model;
    tp_st_file *expected = tp_fixture_open_model(dir, "test_beit_hf", &config, &model);
    if (!strcmp(dir, DIR "/mim")) {
        check_grid_index(expected);
        check_config_size(expected);
    }
    check_run(&model, expected, NULL, label, "hidden", NULL);
    float *masked = tp_fixture_floats(expected, GENERATOR, "bool_masked_pos", NULL);
    uint8_t mask[BATCH * PATCHES];
    int count = 0;
    for (int i = 0; i < BATCH * PATCHES; i++) count += mask[i] = masked[i] != 0.0f;
    CHECK_MSG(count > 0 && count < BATCH * PATCHES, "%d of %d patches masked", count, BATCH * PATCHES);
    check_run(&model, expected, mask, label, "masked_hidden", NULL);
    free(masked);
    tp_st_close(expected);
    tp_model_free(&model);
    tp_config_free(config);
}

static void check_classifier(const char *name, const char *label)
{
    char dir[256];
    tp_config *config = NULL;
    tp_model model;
    snprintf(dir, sizeof dir, "%s/%s", DIR, name);
    tp_st_file *expected = tp_fixture_open_model(dir, "test_beit_hf", &config, &model);
    check_run(&model, expected, NULL, label, "hidden", "logits");
    tp_st_close(expected);
    tp_model_free(&model);
    tp_config_free(config);
}

/* The tp directory holds every tensor but lm_head's, and zero key biases. */
static void check_conversion(const char *tp_dir)
{
    char weights[600];
    tp_hf_report report;
    CHECK_MSG(tp_hf_convert_from_hf(DIR "/mim", tp_dir, &report) == 0, "%s", tp_last_error());
    /* embeddings 4, shared table 1, final norm 2, per layer ViT's 16 less the key bias + 2 layer scales */
    CHECK_MSG(report.written == 4 + 1 + 2 + 2 * (15 + 2) && report.dropped == 2, "%lld written, dropped: %s",
              (long long)report.written, report.dropped_names);
    CHECK_MSG(strstr(report.dropped_names, "lm_head.weight") != NULL, "dropped: %s", report.dropped_names);
    snprintf(weights, sizeof weights, "%s/model.safetensors", tp_dir);
    tp_st_file *file = tp_st_open(weights);
    CHECK_MSG(file != NULL, "%s", tp_last_error());
    if (!file) return;
    float bias[16] = {1};
    int64_t shape[1] = {16};
    CHECK(tp_st_read_f32(file, "encoder.transformer.1.self_attn.linear_layers.1.bias", 1, shape, bias) == 0);
    float largest = 0;
    for (int i = 0; i < 16; i++) largest = bias[i] > largest ? bias[i] : -bias[i] > largest ? -bias[i] : largest;
    CHECK_MSG(largest == 0.0f, "key bias not 0 (%g)", largest);
    tp_st_close(file);
}

/* config.json's key in the two directories: the same JSON value. */
static int same_key(const cJSON *original, const cJSON *written, const char *key)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(original, key), *b = cJSON_GetObjectItemCaseSensitive(written, key);
    int same = a && b && cJSON_Compare(a, b, 1);
    if (!same) fprintf(stderr, "config.json key '%s' differs after the round trip\n", key);
    return same;
}

static cJSON *read_json(const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = tp_read_file(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK_MSG(root != NULL, "%s: not JSON", path);
    return root;
}

/* Hugging Face -> tp -> Hugging Face for fixture `name`; the written directory into back. */
static int round_trip(const char *name, char *back, size_t cap)
{
    char tp_dir[600], config[700], weights[700];
    tp_hf_report report;
    snprintf(tp_dir, sizeof tp_dir, "%s/%s_tp", tp_scratch_dir(), name);
    snprintf(back, cap, "%s/%s_hf", tp_scratch_dir(), name);
    snprintf(config, sizeof config, "%s/model_config.json", tp_dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", tp_dir);
    char original[256];
    snprintf(original, sizeof original, "%s/%s", DIR, name);
    int status = tp_hf_convert_from_hf(original, tp_dir, &report) == 0 &&
                 tp_hf_convert_to_hf(config, weights, NULL, 0, back, &report) == 0;
    CHECK_MSG(status, "%s: %s", name, tp_last_error());
    return status;
}

static const char *const flag_keys[] = {"architectures", "use_mask_token", "use_absolute_position_embeddings",
                                        "use_relative_position_bias", "use_shared_relative_position_bias",
                                        "layer_scale_init_value", "use_mean_pooling", "image_size", "patch_size",
                                        "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                                        "layer_norm_eps", "id2label"};

/* The classifiers come back as they were: tensors and BEiT's flags. */
static void check_written_classifier(const char *name)
{
    char back[600], original[700], copy[700];
    if (!round_trip(name, back, sizeof back)) return;
    snprintf(original, sizeof original, "%s/%s/model.safetensors", DIR, name);
    snprintf(copy, sizeof copy, "%s/model.safetensors", back);
    tp_fixture_check_same_tensors(name, original, copy, NULL, 0);
    snprintf(original, sizeof original, "%s/%s", DIR, name);
    cJSON *before = read_json(original), *after = read_json(back);
    int same = before && after;
    for (size_t i = 0; same && i < sizeof flag_keys / sizeof flag_keys[0]; i++)
        same &= same_key(before, after, flag_keys[i]);
    CHECK_MSG(same, "%s: config.json's BEiT keys differ after the round trip", name);
    cJSON_Delete(before);
    cJSON_Delete(after);
}

/* mim comes back as a BeitModel that computes transformers' hidden states. */
static void check_written_mim(void)
{
    char back[600], path[700];
    if (!round_trip("mim", back, sizeof back)) return;
    size_t size = 0;
    char *expected = tp_read_file(DIR "/mim/expected.safetensors", &size);
    snprintf(path, sizeof path, "%s/expected.safetensors", back);
    CHECK(expected && tp_write_file_atomic(path, expected, size) == 0);
    free(expected);
    cJSON *written = read_json(back);
    const cJSON *architectures = cJSON_GetObjectItemCaseSensitive(written, "architectures");
    CHECK(cJSON_IsArray(architectures) && !strcmp(cJSON_GetArrayItem(architectures, 0)->valuestring, "BeitModel"));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(written, "use_mask_token")) &&
          cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(written, "use_shared_relative_position_bias")) &&
          cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(written, "use_mean_pooling")));
    cJSON_Delete(written);
    check_masked_image_modeling(back, "mim written back as BeitModel");
}

/* A patch projection without a bias has no BEiT counterpart. */
static void check_write_refused(const char *tp_dir)
{
    char path[700], config[700], weights[700], back[700];
    snprintf(path, sizeof path, "%s/model_config.json", tp_dir);
    char *text = tp_read_file(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(root != NULL);
    if (!root) return;
    cJSON_AddBoolToObject(root, "patch_bias", 0);
    char *changed = cJSON_Print(root);
    snprintf(config, sizeof config, "%s/unbiased_config.json", tp_dir);
    CHECK(tp_write_file_atomic(config, changed, strlen(changed)) == 0);
    snprintf(weights, sizeof weights, "%s/model.safetensors", tp_dir);
    snprintf(back, sizeof back, "%s/unbiased_hf", tp_scratch_dir());
    tp_hf_report report;
    CHECK(tp_hf_convert_to_hf(config, weights, NULL, 0, back, &report) != 0);
    CHECK_MSG(strstr(tp_last_error(), "key 'patch_bias': Hugging Face's BEiT patch projection has a bias") != NULL,
              "%s", tp_last_error());
    free(changed);
    cJSON_Delete(root);
}

/* Both kinds of relative position bias at once are refused naming the key. */
static void check_refused(void)
{
    static const char text[] = "{\"model_type\": \"beit\", \"use_relative_position_bias\": true,"
                               " \"use_shared_relative_position_bias\": true}";
    char dir[512];
    snprintf(dir, sizeof dir, "%s/both", tp_scratch_dir());
    CHECK(tp_mkdirs(dir) == 0);
    tp_scratch_write("both/config.json", text, sizeof text - 1);
    tp_config *config = tp_hf_config(dir);
    CHECK(config == NULL);
    CHECK_MSG(strstr(tp_last_error(), "'use_relative_position_bias'") != NULL, "%s", tp_last_error());
    tp_config_free(config);
}

int main(void)
{
    tp_scratch_init("beit_hf");
    check_masked_image_modeling(DIR "/mim", "mim (shared bias)");
    check_classifier("classifier", "classifier (per-layer bias)");
    check_classifier("mean", "mean (per-layer bias, mean pooling)");
    char tp_dir[512];
    snprintf(tp_dir, sizeof tp_dir, "%s/beit_tp", tp_scratch_dir());
    check_conversion(tp_dir);
    check_written_classifier("classifier");
    check_written_classifier("mean");
    check_written_mim();
    check_write_refused(tp_dir);
    check_refused();
    static const char *const shared[] = {"encoder.relative_position_bias_table", "encoder.transformer.0.gamma_1",
                                         "encoder.transformer.1.gamma_2"};
    check_gradients("shared", shared, 3);
    static const char *const layer[] = {"encoder.transformer.0.self_attn.relative_position_bias_table",
                                        "encoder.transformer.1.self_attn.relative_position_bias_table",
                                        "encoder.transformer.0.gamma_2"};
    check_gradients("layer", layer, 3);
    return tp_test_finish("test_beit_hf");
}
