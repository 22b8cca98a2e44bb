/* Label smoothing: tp_uniform_cross_entropy's forward against a double-precision sum and its
 * backward against central finite differences (rows with target -1 skipped, logits wider than the
 * classes as padded vocabularies are); then the lm target with `label_smoothing` (modules/targets/lm.c)
 * against torch -- loss and gradient -- from tests/fixtures/label_smoothing.json
 * (tests/reference/gen_label_smoothing.py: TencentPretrain's LmTarget formula, equal to
 * torch's cross_entropy(label_smoothing = eps V / (V - 1))). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/model.h"
#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"
#include "support/scratch.h"

static const tp_backend *const backend = &tp_cpu_backend;
static const tp_gradcheck_options fd_options = {.step = 1e-2, .max_elements = 0, .seed = 3};

enum { ROWS = 6, CLASSES = 9, WIDTH = 12 };
static const int32_t targets[ROWS] = {3, -1, 0, 8, -1, 5};

static tp_tensor *uniform_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    (void)user;
    return tp_uniform_cross_entropy(ctx, in[0], targets, CLASSES);
}

static void test_uniform_cross_entropy(void)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    const int64_t shape[2] = {ROWS, WIDTH};
    tp_tensor *logits = tp_test_tensor(backend, 2, shape, 17, 0, 2);
    double expected = 0;
    for (int r = 0; r < ROWS; r++) {
        if (targets[r] < 0) continue;
        double sum = 0, mean = 0;
        for (int c = 0; c < CLASSES; c++) sum += exp(logits->data[r * WIDTH + c]), mean += logits->data[r * WIDTH + c];
        expected += log(sum) - mean / CLASSES;
    }
    tp_tensor *loss = tp_uniform_cross_entropy(&ctx, logits, targets, CLASSES);
    CHECK_MSG(fabs(loss->data[0] - expected) < 1e-5 * fabs(expected), "uniform cross-entropy %g, expected %g",
              loss->data[0], expected);
    tp_gradcheck_result r = tp_gradcheck(&ctx, uniform_fn, NULL, &logits, 1, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "uniform_cross_entropy"));
    CHECK(r.checked == ROWS * WIDTH); /* padding columns and unscored rows included: their gradient is 0 */
    tp_test_tensor_free(backend, logits);
    tp_ctx_free(&ctx);
}

/* A model whose lm target sees the fixture's logits: hidden_size = vocab, the output layer the identity. */
static const char *write_model_config(double label_smoothing, int64_t vocab)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"emb_size\": %lld, \"hidden_size\": %lld, \"feedforward_size\": 4, \"heads_num\": 1, \"layers_num\": "
             "1, \"max_seq_length\": 16, \"dropout\": 0.0, \"embedding\": [\"word\"], \"encoder\": \"transformer\", "
             "\"target\": [\"lm\"], \"label_smoothing\": %g}",
             (long long)vocab, (long long)vocab, label_smoothing);
    return tp_scratch_write("lm_config.json", text, strlen(text));
}

static void check_fixture_case(const cJSON *c, int64_t rows, int64_t vocab)
{
    double eps = cJSON_GetObjectItem(c, "label_smoothing")->valuedouble;
    tp_config *config = tp_config_load(write_model_config(eps, vocab));
    tp_model model = {0};
    CHECK_MSG(config && tp_model_build(&model, config, vocab) == 0, "%s", tp_last_error());
    if (!config) return;
    tp_model_allocate(&model, backend, 1);
    tp_param *weight = NULL;
    for (int64_t i = 0; i < model.params.count; i++)
        if (strstr(model.params.items[i]->name, "output_layer.weight")) weight = model.params.items[i];
    CHECK(weight != NULL);
    int64_t width = weight ? weight->tensor.shape[0] : 0; /* padded vocabulary rows */
    for (int64_t i = 0; weight && i < width; i++)
        for (int64_t j = 0; j < vocab; j++) weight->tensor.data[i * vocab + j] = i == j;

    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 20);
    ctx.record = 1;
    const int64_t shape[2] = {rows, vocab};
    tp_tensor *hidden = tp_test_tensor(backend, 2, shape, 1, 0, 1);
    int32_t tags[64];
    for (int64_t r = 0; r < rows; r++) {
        tags[r] = (int32_t)cJSON_GetArrayItem(cJSON_GetObjectItem(c, "targets"), (int)r)->valuedouble;
        for (int64_t v = 0; v < vocab; v++)
            hidden->data[r * vocab + v] =
                (float)cJSON_GetArrayItem(cJSON_GetObjectItem(c, "logits"), (int)(r * vocab + v))->valuedouble;
    }
    tp_model_batch batch = {.batch_size = rows, .seq_length = 1, .tags = tags};
    tp_target_result result = {0};
    CHECK(weight && model.target_types[0]->forward(model.targets[0], &ctx, hidden, &batch, &result) == 0);
    double want = cJSON_GetObjectItem(c, "loss")->valuedouble;
    CHECK_MSG(result.loss && fabs(result.loss->data[0] - want) < 1e-5, "label_smoothing %g: loss %g, torch %g", eps,
              result.loss ? result.loss->data[0] : NAN, want);
    if (result.loss) tp_backward(&ctx, result.loss);
    double worst = 0;
    for (int64_t i = 0; hidden->grad && i < rows * vocab; i++) {
        double g = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "grad"), (int)i)->valuedouble;
        worst = fmax(worst, fabs(hidden->grad[i] - g));
    }
    CHECK_MSG(hidden->grad && worst < 1e-6, "label_smoothing %g: gradient off by %g from torch's", eps, worst);
    tp_test_tensor_free(backend, hidden);
    tp_ctx_free(&ctx);
    tp_model_free(&model);
    tp_config_free(config);
}

static void test_lm_target_against_torch(void)
{
    size_t bytes = 0;
    char *text = tp_read_file("tests/fixtures/label_smoothing.json", &bytes);
    CHECK_MSG(text != NULL, "%s", tp_last_error());
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!root) return;
    int64_t rows = cJSON_GetObjectItem(root, "rows")->valueint, vocab = cJSON_GetObjectItem(root, "vocab")->valueint;
    const cJSON *c;
    int cases = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) check_fixture_case(c, rows, vocab), cases++;
    CHECK(cases == 2);
    cJSON_Delete(root);
}

int main(void)
{
    tp_scratch_init("label_smoothing");
    test_uniform_cross_entropy();
    test_lm_target_against_torch();
    return tp_test_finish("test_ops_label_smoothing");
}
