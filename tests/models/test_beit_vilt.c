/* BEiT's masked_patch and ViLT's word_patch embeddings (modules/embeddings/) against transformers:
 * small random models and their outputs written by tests/reference/gen_beit_vilt_fixture.py into
 * tests/fixtures/beit_vilt/, the weights mapped here by name (the tables below).  Checked, each
 * within 1e-5 of its largest magnitude:
 *  - BEiT: tp's masked_patch + pos embeddings, pre-LN transformer and final LayerNorm give BeitModel's
 *    embeddings and last_hidden_state, without a mask, and with a per-image patch mask (with zero
 *    positions: Hugging Face adds the positions before the mask token, TencentPretrain after);
 *  - ViLT: word_patch gives TencentPretrain's WordPatchEmbedding of Hugging Face's modules (word
 *    rows, class token, patch rows), and word_patch + pos + seg give ViltEmbeddings' image rows
 *    (positions after the text, modality as segment 2);
 *  - central finite differences (within 1e-3) through both embeddings for every parameter (mask
 *    token, class token, projection, word table);
 *  - a word_patch without room for a text row, or inside a two-stream model's stream, is refused;
 *  - models/beit/base-16_config.json and models/vilt/base_config.json build models of transformers'
 *    parameter counts (the fixture's metadata): BEiT's with one key bias per layer more (Hugging Face
 *    BEiT's key projection has none; it converts as 0), ViLT's shared modules with one bias less
 *    (TencentPretrain's patch projection, and so its ViLT config, has none). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "support/fixture.h"
#include "support/gradcheck.h"

#define FIXTURE "tests/fixtures/beit_vilt/expected.safetensors"
#define GENERATOR "tests/reference/gen_beit_vilt_fixture.py"
#define TOLERANCE 1e-5

enum { HIDDEN = 32, GRID = 4, PATCHES = GRID * GRID, IMAGE_ROWS = PATCHES + 1, TEXT = 5, VILT_SEQ = TEXT + IMAGE_ROWS };

static const char *const beit_config_text =
    "{\"emb_size\": 32, \"hidden_size\": 32, \"feedforward_size\": 64, \"heads_num\": 4, \"layers_num\": 2,"
    " \"max_seq_length\": 17, \"dropout\": 0.0, \"hidden_act\": \"gelu\", \"embedding\": [\"masked_patch\", \"pos\"],"
    " \"remove_embedding_layernorm\": true, \"encoder\": \"transformer\", \"mask\": \"fully_visible\","
    " \"layernorm_positioning\": \"pre\", \"layernorm\": \"normal_torch\", \"layernorm_eps\": 1e-12,"
    " \"image_height\": 16, \"image_width\": 16, \"patch_size\": 4, \"channels_num\": 3}";

/* tp's name -> BeitModel's; %d is the layer. */
static const struct {
    const char *tp, *hf;
} beit_names[] = {
    {"embedding.masked_patch.cls_emb", "embeddings.cls_token"},
    {"embedding.masked_patch.mask_emb", "embeddings.mask_token"},
    {"embedding.masked_patch.projection.weight", "embeddings.patch_embeddings.projection.weight"},
    {"embedding.masked_patch.projection.bias", "embeddings.patch_embeddings.projection.bias"},
    {"embedding.pos.embedding.weight", "embeddings.position_embeddings"},
    {"encoder.layer_norm.weight", "layernorm.weight"},
    {"encoder.layer_norm.bias", "layernorm.bias"},
    {"encoder.transformer.%d.self_attn.linear_layers.0.weight", "encoder.layer.%d.attention.attention.query.weight"},
    {"encoder.transformer.%d.self_attn.linear_layers.0.bias", "encoder.layer.%d.attention.attention.query.bias"},
    {"encoder.transformer.%d.self_attn.linear_layers.1.weight", "encoder.layer.%d.attention.attention.key.weight"},
    {"encoder.transformer.%d.self_attn.linear_layers.1.bias", NULL}, /* none in BEiT: 0 */
    {"encoder.transformer.%d.self_attn.linear_layers.2.weight", "encoder.layer.%d.attention.attention.value.weight"},
    {"encoder.transformer.%d.self_attn.linear_layers.2.bias", "encoder.layer.%d.attention.attention.value.bias"},
    {"encoder.transformer.%d.self_attn.final_linear.weight", "encoder.layer.%d.attention.output.dense.weight"},
    {"encoder.transformer.%d.self_attn.final_linear.bias", "encoder.layer.%d.attention.output.dense.bias"},
    {"encoder.transformer.%d.layer_norm_1.weight", "encoder.layer.%d.layernorm_before.weight"},
    {"encoder.transformer.%d.layer_norm_1.bias", "encoder.layer.%d.layernorm_before.bias"},
    {"encoder.transformer.%d.feed_forward.linear_1.weight", "encoder.layer.%d.intermediate.dense.weight"},
    {"encoder.transformer.%d.feed_forward.linear_1.bias", "encoder.layer.%d.intermediate.dense.bias"},
    {"encoder.transformer.%d.feed_forward.linear_2.weight", "encoder.layer.%d.output.dense.weight"},
    {"encoder.transformer.%d.feed_forward.linear_2.bias", "encoder.layer.%d.output.dense.bias"},
    {"encoder.transformer.%d.layer_norm_2.weight", "encoder.layer.%d.layernorm_after.weight"},
    {"encoder.transformer.%d.layer_norm_2.bias", "encoder.layer.%d.layernorm_after.bias"},
};

/* Copies the fixture tensor `name` (numel values) into tp's parameter tp_name; 0 when either is missing. */
static int load_param(tp_params *params, const char *tp_name, const tp_st_file *fixture, const char *name)
{
    tp_param *param = tp_params_find(params, tp_name);
    int64_t n = 0;
    float *values = tp_fixture_floats(fixture, GENERATOR, name, &n);
    int ok = param && tp_numel(&param->tensor) == n;
    CHECK_MSG(ok, "%s: no parameter of the %lld values of %s", tp_name, (long long)n, name);
    if (ok) memcpy(param->tensor.data, values, (size_t)n * sizeof *values);
    free(values);
    return ok;
}

/* Every parameter of the BEiT model from the fixture (the key biases 0). */
static void load_beit(tp_model *model, const tp_st_file *fixture)
{
    char tp_name[256], hf_name[256], format[256];
    int64_t loaded = 0;
    for (size_t i = 0; i < sizeof beit_names / sizeof beit_names[0]; i++)
        for (int layer = 0; layer < (strchr(beit_names[i].tp, '%') ? 2 : 1); layer++) {
            snprintf(tp_name, sizeof tp_name, beit_names[i].tp, layer);
            if (!beit_names[i].hf) {
                tp_param *param = tp_params_find(&model->params, tp_name);
                CHECK_MSG(param != NULL, "%s missing", tp_name);
                if (param) memset(param->tensor.data, 0, (size_t)tp_numel(&param->tensor) * sizeof(float));
                loaded += param != NULL;
                continue;
            }
            snprintf(format, sizeof format, "beit.%s", beit_names[i].hf);
            snprintf(hf_name, sizeof hf_name, format, layer);
            loaded += load_param(&model->params, tp_name, fixture, hf_name);
        }
    CHECK_MSG(loaded == model->params.count, "%lld of %lld parameters loaded", (long long)loaded,
              (long long)model->params.count);
}

/* The sum of the model's embeddings (BEiT has no embedding norm). */
static tp_tensor *embedded(tp_model *model, tp_ctx *ctx, const tp_model_batch *batch)
{
    tp_tensor *sum = NULL;
    for (int i = 0; i < model->embedding_count; i++) {
        tp_tensor *part = model->embedding_types[i]->forward(model->embeddings[i], ctx, batch);
        sum = sum ? tp_add(ctx, sum, part) : part;
    }
    return sum;
}

static void check_beit_run(tp_model *model, const tp_st_file *fixture, const uint8_t *mask, const char *embeddings_name,
                           const char *hidden_name)
{
    int64_t n = 0;
    float *pixels = tp_fixture_floats(fixture, GENERATOR, "beit.pixel_values", &n);
    float *embeddings = tp_fixture_floats(fixture, GENERATOR, embeddings_name, NULL);
    float *hidden = tp_fixture_floats(fixture, GENERATOR, hidden_name, NULL);
    int32_t seg[2 * IMAGE_ROWS], positions[2 * IMAGE_ROWS], first_rows[2] = {0, IMAGE_ROWS};
    int32_t last_rows[2] = {IMAGE_ROWS - 1, 2 * IMAGE_ROWS - 1};
    for (int r = 0; r < 2 * IMAGE_ROWS; r++) seg[r] = 1, positions[r] = r % IMAGE_ROWS;
    tp_model_batch batch = {.batch_size = 2, .seq_length = IMAGE_ROWS, .seg = seg, .positions = positions,
                            .first_rows = first_rows, .last_rows = last_rows, .pixels = pixels,
                            .pixel_width = n / 2, .patch_mask = mask};
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    char what[128];
    snprintf(what, sizeof what, "BEiT %s", embeddings_name);
    tp_check_normalised(what, embedded(model, &ctx, &batch)->data, embeddings, 2 * IMAGE_ROWS * HIDDEN,
                        TOLERANCE);
    tp_model_output out;
    CHECK(tp_model_forward(model, &ctx, &batch, &out) == 0);
    snprintf(what, sizeof what, "BEiT %s", hidden_name);
    tp_check_normalised(what, out.hidden->data, hidden, 2 * IMAGE_ROWS * HIDDEN, TOLERANCE);
    tp_ctx_free(&ctx);
    free(pixels), free(embeddings), free(hidden);
}

static void check_beit(const tp_st_file *fixture)
{
    tp_config *config = tp_config_parse("beit.json", beit_config_text);
    tp_model model;
    memset(&model, 0, sizeof model);
    int built = config && tp_model_build(&model, config, 8) == 0 && tp_config_check_unused(config) == 0;
    CHECK_MSG(built, "%s", tp_last_error());
    if (built) {
        tp_model_allocate(&model, &tp_cpu_backend, 1);
        load_beit(&model, fixture);
        check_beit_run(&model, fixture, NULL, "beit.embeddings", "beit.hidden");
        float *masked = tp_fixture_floats(fixture, GENERATOR, "beit.bool_masked_pos", NULL);
        uint8_t mask[2 * PATCHES];
        int count = 0;
        for (int i = 0; i < 2 * PATCHES; i++) count += mask[i] = masked[i] != 0.0f;
        CHECK_MSG(count > 0 && count < 2 * PATCHES, "%d of %d patches masked", count, 2 * PATCHES);
        tp_param *positions = tp_params_find(&model.params, "embedding.pos.embedding.weight");
        memset(positions->tensor.data, 0, (size_t)tp_numel(&positions->tensor) * sizeof(float));
        check_beit_run(&model, fixture, mask, "beit.masked_embeddings", "beit.masked_hidden");
        free(masked);
        tp_model_free(&model);
    }
    tp_config_free(config);
}

/* ---- module-level builds: ViLT's embeddings, gradient checks ------------------------------------ */

static const tp_embedding_type *embedding_type(const char *name)
{
    for (const tp_embedding_type *const *type = tp_embedding_registry; *type; type++)
        if (!strcmp((*type)->name, name)) return *type;
    return NULL;
}

/* Up to three embedding modules summed over one batch, all parameters in `params`. */
typedef struct modules {
    tp_params params;
    tp_model_config hp;
    int count;
    const tp_embedding_type *types[3];
    void *selves[3];
    tp_model_batch batch;
} modules;

/* The modules named (NULL-terminated) from a config text; 0, or -1 with tp's message (modules_free
 * frees what was built either way). */
static int modules_build(modules *m, const char *config_text, const char *const *names)
{
    tp_config *config = tp_config_parse("module.json", config_text);
    tp_build build = {.config = config, .hp = &m->hp, .params = &m->params};
    char prefix[64];
    int ok = config != NULL;
    tp_params_init(&m->params);
    for (m->count = 0; ok && names[m->count]; m->count++) {
        const tp_embedding_type *type = embedding_type(names[m->count]);
        snprintf(prefix, sizeof prefix, "embedding.%s", names[m->count]);
        m->types[m->count] = type;
        if (!type || !(m->selves[m->count] = type->create(&build, prefix))) break;
    }
    ok = ok && !names[m->count];
    tp_config_free(config);
    if (!ok) return -1;
    tp_params_allocate(&m->params, &tp_cpu_backend);
    tp_params_initialize(&m->params, 11);
    return 0;
}

static void modules_free(modules *m)
{
    for (int i = 0; i < m->count; i++) {
        if (m->types[i]->destroy)
            m->types[i]->destroy(m->selves[i]);
        else
            free(m->selves[i]);
    }
    tp_params_free(&m->params);
}

/* modules_build's status checked: 1 when built, else 0 with the modules freed. */
static int modules_ok(modules *m, int status)
{
    CHECK_MSG(status == 0, "%s", tp_last_error());
    if (status) modules_free(m);
    return status == 0;
}

static tp_tensor *modules_forward(tp_ctx *ctx, tp_tensor *const *inputs, void *user)
{
    (void)inputs; /* the modules' own parameters: the same tensors */
    modules *m = user;
    tp_tensor *sum = NULL;
    for (int i = 0; i < m->count; i++) {
        tp_tensor *part = m->types[i]->forward(m->selves[i], ctx, &m->batch);
        sum = sum ? tp_add(ctx, sum, part) : part;
    }
    return sum;
}

static float *param_data(modules *m, const char *name)
{
    tp_param *param = tp_params_find(&m->params, name);
    CHECK_MSG(param != NULL, "%s missing", name);
    return param ? param->tensor.data : NULL;
}

/* ViLT: rows 0..4 text (segment 1), then the image (segment 2); the image rows' ids 0. */
static void vilt_batch(modules *m, const tp_st_file *fixture, int32_t *src, int32_t *seg, int32_t *positions,
                       float **pixels)
{
    int32_t *ids = tp_fixture_ids(fixture, GENERATOR, "vilt.input_ids", NULL);
    int64_t n = 0;
    *pixels = tp_fixture_floats(fixture, GENERATOR, "vilt.pixel_values", &n);
    for (int r = 0; r < 2 * VILT_SEQ; r++) {
        int b = r / VILT_SEQ, s = r % VILT_SEQ;
        src[r] = s < TEXT ? ids[b * TEXT + s] : 0;
        seg[r] = s < TEXT ? 1 : 2;
        positions[r] = s;
    }
    m->batch = (tp_model_batch){.batch_size = 2, .seq_length = VILT_SEQ, .src = src, .seg = seg,
                                .positions = positions, .pixels = *pixels, .pixel_width = n / 2};
    free(ids);
}

static void load_vilt(modules *m, const tp_st_file *fixture)
{
    const char *prefix = "vilt.embeddings.";
    static const struct {
        const char *tp, *hf;
    } names[] = {
        {"embedding.word_patch.language_embedding.embedding.weight", "text_embeddings.word_embeddings.weight"},
        {"embedding.word_patch.vision_embedding.cls_emb", "cls_token"},
        {"embedding.word_patch.vision_embedding.projection.weight", "patch_embeddings.projection.weight"},
        {"embedding.word_patch.vision_embedding.projection.bias", "patch_embeddings.projection.bias"},
    };
    char name[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, names[i].hf);
        load_param(&m->params, names[i].tp, fixture, name);
    }
    /* The image's positions follow the text's; the modality (token type 1) is segment 2. */
    float *positions = tp_fixture_floats(fixture, GENERATOR, "vilt.embeddings.position_embeddings", NULL);
    float *types = tp_fixture_floats(fixture, GENERATOR, "vilt.embeddings.token_type_embeddings.weight", NULL);
    float *pos_table = param_data(m, "embedding.pos.embedding.weight");
    float *seg_table = param_data(m, "embedding.seg.embedding.weight");
    if (pos_table) memcpy(pos_table + TEXT * HIDDEN, positions, IMAGE_ROWS * HIDDEN * sizeof *positions);
    if (seg_table) memcpy(seg_table + 2 * HIDDEN, types + HIDDEN, HIDDEN * sizeof *types);
    free(positions), free(types);
}

static void check_vilt(const tp_st_file *fixture)
{
    static modules m;
    static const char *const names[] = {"word_patch", "pos", "seg", NULL};
    m.hp = (tp_model_config){.vocab_size = 30, .emb_size = HIDDEN, .hidden_size = HIDDEN, .max_seq_length = VILT_SEQ,
                             .vocab_row_multiple = 1};
    if (!modules_ok(&m, modules_build(&m, "{\"image_height\": 16, \"image_width\": 16, \"patch_size\": 4}", names)))
        return;
    int32_t src[2 * VILT_SEQ], seg[2 * VILT_SEQ], positions[2 * VILT_SEQ];
    float *pixels = NULL;
    vilt_batch(&m, fixture, src, seg, positions, &pixels);
    load_vilt(&m, fixture);
    float *word_patch = tp_fixture_floats(fixture, GENERATOR, "vilt.word_patch", NULL);
    float *joint = tp_fixture_floats(fixture, GENERATOR, "vilt.embeddings", NULL);
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    tp_tensor *alone = m.types[0]->forward(m.selves[0], &ctx, &m.batch);
    tp_check_normalised("ViLT word_patch (text + class + patches)", alone->data, word_patch, 2 * VILT_SEQ * HIDDEN,
                        TOLERANCE);
    tp_tensor *sum = modules_forward(&ctx, NULL, &m);
    for (int b = 0; b < 2; b++) {
        int64_t offset = (b * VILT_SEQ + TEXT) * HIDDEN;
        tp_check_normalised(b ? "ViLT embeddings' image rows, image 1" : "ViLT embeddings' image rows, image 0",
                            sum->data + offset, joint + offset, IMAGE_ROWS * HIDDEN, TOLERANCE);
    }
    tp_ctx_free(&ctx);
    free(word_patch), free(joint), free(pixels);
    modules_free(&m);
}

/* Finite differences through the modules for the named parameters (all of each). */
static void gradcheck(modules *m, const char *const *names, int count, const char *what)
{
    tp_tensor *inputs[4];
    int64_t total = 0;
    for (int i = 0; i < count; i++) {
        inputs[i] = &tp_params_find(&m->params, names[i])->tensor;
        total += tp_numel(inputs[i]);
    }
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 18);
    tp_gradcheck_options options = {.step = TP_GRADIENT_STEP, .max_elements = 0, .seed = 5};
    tp_gradcheck_result r = tp_gradcheck(&ctx, modules_forward, m, inputs, count, &options);
    CHECK_MSG(r.checked == total, "%lld of %lld elements checked", (long long)r.checked, (long long)total);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, what));
    tp_ctx_free(&ctx);
}

/* A 2-channel 7 x 9 image, 3-pixel patches (2 x 3 grid), emb 5, two images; the masked_patch with
 * three of the twelve patches masked, the word_patch after 2 text rows. */
enum { G_EMB = 5, G_IMAGE = 2 * 7 * 9, G_PATCHES = 6, G_TEXT = 2 };
static const char *const small_image =
    "{\"image_height\": 7, \"image_width\": 9, \"patch_size\": 3, \"channels_num\": 2}";

static void check_gradients(void)
{
    static modules m;
    static float pixels[2 * G_IMAGE];
    static int32_t src[2 * (G_TEXT + G_PATCHES + 1)], seg[2 * (G_TEXT + G_PATCHES + 1)];
    static const uint8_t mask[2 * G_PATCHES] = {0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0};
    for (int i = 0; i < 2 * G_IMAGE; i++) pixels[i] = (float)((i * 37 % 101) / 50.0 - 1.0);
    static const char *const masked_names[] = {"masked_patch", NULL};
    m.hp = (tp_model_config){.vocab_size = 7, .emb_size = G_EMB, .hidden_size = G_EMB, .max_seq_length = 16,
                             .vocab_row_multiple = 1};
    if (!modules_ok(&m, modules_build(&m, small_image, masked_names))) return;
    m.batch = (tp_model_batch){.batch_size = 2, .seq_length = G_PATCHES + 1, .seg = seg, .pixels = pixels,
                               .pixel_width = G_IMAGE, .patch_mask = mask};
    static const char *const masked_params[] = {"embedding.masked_patch.mask_emb", "embedding.masked_patch.cls_emb",
                                                "embedding.masked_patch.projection.weight",
                                                "embedding.masked_patch.projection.bias"};
    gradcheck(&m, masked_params, 4, "masked_patch: mask token, class token, projection");
    modules_free(&m);

    static const char *const word_patch_names[] = {"word_patch", NULL};
    if (!modules_ok(&m, modules_build(&m, small_image, word_patch_names))) return;
    for (int r = 0; r < 2 * (G_TEXT + G_PATCHES + 1); r++)
        src[r] = r % (G_TEXT + G_PATCHES + 1) < G_TEXT ? r % 7 : 0;
    m.batch = (tp_model_batch){.batch_size = 2, .seq_length = G_TEXT + G_PATCHES + 1, .src = src, .seg = seg,
                               .pixels = pixels, .pixel_width = G_IMAGE};
    static const char *const word_patch_params[] = {"embedding.word_patch.language_embedding.embedding.weight",
                                                    "embedding.word_patch.vision_embedding.cls_emb",
                                                    "embedding.word_patch.vision_embedding.projection.weight",
                                                    "embedding.word_patch.vision_embedding.projection.bias"};
    gradcheck(&m, word_patch_params, 4, "word_patch: word table, class token, projection");
    modules_free(&m);
}

static void check_word_patch_refused(void)
{
    static modules m;
    static const char *const names[] = {"word_patch", NULL};
    m.hp = (tp_model_config){.vocab_size = 7, .emb_size = G_EMB, .hidden_size = G_EMB, .max_seq_length = G_PATCHES + 1,
                             .vocab_row_multiple = 1};
    int built = modules_build(&m, small_image, names) == 0;
    const char *message = "module.json: key 'max_seq_length': 7 rows, but the image has 6 patches + the class token "
                          "after at least 1 other row(s)";
    CHECK_MSG(!built && strstr(tp_last_error(), message), "expected '%s', got '%s'", message,
              built ? "success" : tp_last_error());
    modules_free(&m);
}

/* ---- the models/ configs' sizes ----------------------------------------------------------------- */

/* Parameters of the model of path (built with vocab) whose names start with one of prefixes (NULL: all but
 * the targets'); -1 when it does not build. */
static int64_t config_parameters(const char *path, int64_t vocab, const char *const *prefixes)
{
    tp_config *config = tp_config_load(path);
    tp_model model;
    int built = config && tp_model_build(&model, config, vocab) == 0;
    CHECK_MSG(built && tp_config_check_unused(config) == 0, "%s: %s", path, tp_last_error());
    int64_t count = built ? 0 : -1;
    for (int64_t i = 0; built && i < model.params.count; i++) {
        const tp_param *param = model.params.items[i];
        int counted = !prefixes && strncmp(param->name, "target.", 7);
        for (int p = 0; prefixes && prefixes[p]; p++)
            counted |= !strncmp(param->name, prefixes[p], strlen(prefixes[p]));
        if (counted) count += tp_param_logical_numel(param);
    }
    if (built) tp_model_free(&model);
    tp_config_free(config);
    return count;
}

static void check_config_sizes(const tp_st_file *fixture)
{
    const char *beit = tp_st_metadata(fixture, "parameters.beit.base-16");
    const char *vilt = tp_st_metadata(fixture, "parameters.vilt.shared");
    CHECK_MSG(beit && vilt, "%s: parameter count metadata missing (written by " GENERATOR ")", FIXTURE);
    if (!beit || !vilt) return;
    int64_t key_biases = 12 * 768;
    int64_t tp_beit = config_parameters("models/beit/base-16_config.json", 8192, NULL);
    CHECK_MSG(tp_beit == atoll(beit) + key_biases, "BEiT base-16: %lld parameters besides the target's, BeitModel %s + "
              "%lld key biases", (long long)tp_beit, beit, (long long)key_biases);
    fprintf(stderr, "  models/beit/base-16_config.json: %lld parameters besides the target's (BeitModel: %s + %lld)\n",
            (long long)tp_beit, beit, (long long)key_biases);
    static const char *const shared[] = {"embedding.word_patch.", "encoder.transformer.", NULL};
    int64_t tp_vilt = config_parameters("models/vilt/base_config.json", 30522, shared), projection_bias = 768;
    CHECK_MSG(tp_vilt == atoll(vilt) - projection_bias,
              "ViLT base: %lld parameters in word_patch and the layers, ViltModel %s - %lld", (long long)tp_vilt, vilt,
              (long long)projection_bias);
    fprintf(stderr, "  models/vilt/base_config.json: %lld parameters in word_patch and the layers "
            "(ViltModel: %s - %lld)\n", (long long)tp_vilt, vilt, (long long)projection_bias);
}

/* word_patch makes a whole model's input: no stream of a two-stream model has it. */
static void check_word_patch_not_in_stream(void)
{
    tp_config *config = tp_config_load("models/clip/tiny_config.json");
    tp_model model;
    CHECK_MSG(config && tp_config_set(config, "stream_1.embedding", "[\"word_patch\", \"pos\"]") == 0, "%s",
              tp_last_error());
    int built = config && tp_model_build(&model, config, 48) == 0;
    const char *message =
        "tiny_config.json (stream_1): key 'embedding': 'word_patch' is not an embedding a stream can have";
    CHECK_MSG(!built && strstr(tp_last_error(), message), "expected '%s', got '%s'", message,
              built ? "success" : tp_last_error());
    if (built) tp_model_free(&model);
    tp_config_free(config);
}

int main(void)
{
    tp_st_file *fixture = tp_st_open(FIXTURE);
    CHECK_MSG(fixture != NULL, "%s (written by " GENERATOR ")", tp_last_error());
    if (fixture) {
        check_beit(fixture);
        check_vilt(fixture);
        check_config_sizes(fixture);
        tp_st_close(fixture);
    }
    check_gradients();
    check_word_patch_refused();
    check_word_patch_not_in_stream();
    return tp_test_finish("test_beit_vilt");
}
