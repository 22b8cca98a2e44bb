/* The patch embedding (modules/embeddings/patch.c) against a direct convolution written here in
 * double (no im2col): a 2-channel 7 x 9 image with 3-pixel patches (a 2 x 3 grid: the last image
 * row is dropped, as torch's Conv2d drops it), two images per batch; then central finite
 * differences for the projection weight, its bias and the class token, and the config errors. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/model.h"
#include "support/check.h"
#include "support/gradcheck.h"

enum { CHANNELS = 2, HEIGHT = 7, WIDTH = 9, PATCH = 3, GRID_ROWS = 2, GRID_COLS = 3, EMB = 5, BATCH = 2 };
enum { SEQ = GRID_ROWS * GRID_COLS + 1, IMAGE = CHANNELS * HEIGHT * WIDTH };

static const tp_backend *const backend = &tp_cpu_backend;

static const tp_embedding_type *patch_type(void)
{
    for (const tp_embedding_type *const *type = tp_embedding_registry; *type; type++)
        if (!strcmp((*type)->name, "patch")) return *type;
    return NULL;
}

typedef struct fixture {
    tp_params params;
    void *module;
    float pixels[BATCH * IMAGE];
    int32_t seg[BATCH * SEQ];
} fixture;

/* The module built from a config text with max_seq_length rows; NULL module + tp_fail on an error. */
static void *build(fixture *f, const char *config_text, int64_t max_seq_length)
{
    tp_config *config = tp_config_parse("patch.json", config_text);
    tp_model_config hp = {.emb_size = EMB, .hidden_size = EMB, .max_seq_length = max_seq_length};
    tp_build build = {.config = config, .hp = &hp, .params = &f->params};
    tp_params_init(&f->params);
    void *module = patch_type()->create(&build, "embedding.patch");
    tp_config_free(config);
    return module;
}

static tp_model_batch model_batch(fixture *f)
{
    return (tp_model_batch){.batch_size = BATCH, .seq_length = SEQ, .seg = f->seg, .pixels = f->pixels,
                            .pixel_width = IMAGE};
}

static tp_tensor *forward_fn(tp_ctx *ctx, tp_tensor *const *inputs, void *user)
{
    (void)inputs; /* the module's own parameters: the same tensors */
    fixture *f = user;
    tp_model_batch batch = model_batch(f);
    return patch_type()->forward(f->module, ctx, &batch);
}

static const float *param(const fixture *f, const char *name)
{
    return tp_params_find(&f->params, name)->tensor.data;
}

/* out[b, t, e] by the convolution's definition. */
static void reference(const fixture *f, double *out)
{
    const float *weight = param(f, "embedding.patch.projection.weight");
    const float *bias = param(f, "embedding.patch.projection.bias");
    const float *token = param(f, "embedding.patch.cls_emb");
    for (int b = 0; b < BATCH; b++)
        for (int t = 0; t < SEQ; t++)
            for (int e = 0; e < EMB; e++) {
                double sum = t == 0 ? token[e] : bias[e];
                int gy = (t - 1) / GRID_COLS, gx = (t - 1) % GRID_COLS;
                for (int c = 0; c < CHANNELS && t > 0; c++)
                    for (int y = 0; y < PATCH; y++)
                        for (int x = 0; x < PATCH; x++)
                            sum += (double)weight[((e * CHANNELS + c) * PATCH + y) * PATCH + x] *
                                   f->pixels[b * IMAGE + (c * HEIGHT + gy * PATCH + y) * WIDTH + gx * PATCH + x];
                out[(b * SEQ + t) * EMB + e] = sum;
            }
}

static void check_forward_and_gradients(void)
{
    static fixture f;
    f.module = build(&f, "{\"image_height\": 7, \"image_width\": 9, \"patch_size\": 3, \"channels_num\": 2}", SEQ);
    CHECK_MSG(f.module != NULL, "%s", tp_last_error());
    if (!f.module) return;
    tp_params_allocate(&f.params, backend);
    tp_params_initialize(&f.params, 5);
    for (int i = 0; i < BATCH * IMAGE; i++) f.pixels[i] = (float)((i * 37 % 101) / 50.0 - 1.0);
    for (int i = 0; i < BATCH * SEQ; i++) f.seg[i] = 1;

    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    static double expected[BATCH * SEQ * EMB];
    tp_tensor *out = forward_fn(&ctx, NULL, &f);
    CHECK(out->ndim == 2 && out->shape[0] == BATCH * SEQ && out->shape[1] == EMB);
    reference(&f, expected);
    CHECK(tp_forward_ok(out->data, expected, BATCH * SEQ * EMB, "patch embedding vs convolution"));

    tp_tensor *inputs[3] = {&tp_params_find(&f.params, "embedding.patch.projection.weight")->tensor,
                            &tp_params_find(&f.params, "embedding.patch.projection.bias")->tensor,
                            &tp_params_find(&f.params, "embedding.patch.cls_emb")->tensor};
    tp_gradcheck_options options = {.step = TP_GRADIENT_STEP, .max_elements = 0, .seed = 3};
    tp_gradcheck_result r = tp_gradcheck(&ctx, forward_fn, &f, inputs, 3, &options);
    CHECK(r.checked == EMB * CHANNELS * PATCH * PATCH + 2 * EMB);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "patch embedding: weight, bias, class token"));
    tp_ctx_free(&ctx);
    free(f.module);
    tp_params_free(&f.params);
}

static void check_refused(const char *config_text, int64_t max_seq_length, const char *message)
{
    static fixture f;
    void *module = build(&f, config_text, max_seq_length);
    CHECK_MSG(module == NULL && strstr(tp_last_error(), message), "expected '%s', got '%s'", message,
              module ? "success" : tp_last_error());
    free(module);
    tp_params_free(&f.params);
}

int main(void)
{
    CHECK(patch_type() != NULL);
    if (!patch_type()) return tp_test_finish("test_patch_embedding");
    check_forward_and_gradients();
    check_refused("{\"image_height\": 7, \"image_width\": 9, \"patch_size\": 8}", 100,
                  "patch.json: key 'patch_size': 8 is larger than the 7 x 9 image");
    check_refused("{\"image_height\": 7, \"image_width\": 9, \"patch_size\": 3}", 6,
                  "patch.json: key 'max_seq_length': 6 rows, but the image has 6 patches + the class token");
    check_refused("{\"image_height\": 0}", 100, "image_height");
    return tp_test_finish("test_patch_embedding");
}
