/* Hugging Face BERT, RoBERTa and ALBERT models with their heads, loaded into tp: small random
 * models saved by transformers (tests/reference/make_hf_families_fixture.py writes them and
 * their outputs into tests/fixtures/hf_families/).  For every case:
 *   - tp's logits (MLM at every real token, NSP/SOP, sequence classification) equal
 *     transformers' within 1e-4 of their largest magnitude; for ALBERT's pre-training model also
 *     the loss and the gradients of the shared layer, the factorized embedding and the heads;
 *   - HF -> tp -> HF through tp-convert's library functions gives back every tensor with the same
 *     name, dtype, shape and bytes, and the tokenizer files;
 * and bad inputs are refused with the offending tensor or key named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/hf.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "support/fixture.h"
#include "support/scratch.h"

#define FIXTURES "tests/fixtures/hf_families"
#define TOLERANCE 1e-4

static const char *const cases[] = {"bert_mlm",    "bert_pretraining", "bert_cls",           "roberta_mlm",
                                    "roberta_cls", "albert_mlm",       "albert_pretraining", "albert_cls"};
static const int32_t sp_labels[] = {0, 1, 0};

typedef struct loaded {
    tp_config *config;
    tp_model model;
} loaded;

static int load_case(const char *dir, loaded *out)
{
    int64_t vocab_size = 0;
    out->config = tp_hf_config(dir);
    if (!out->config || tp_config_int(out->config, "vocab_size", 0, 1, INT32_MAX, &vocab_size) < 0 ||
        tp_model_build(&out->model, out->config, vocab_size) < 0 || tp_config_check_unused(out->config) < 0)
        return -1;
    tp_model_allocate(&out->model, &tp_cpu_backend, 3);
    return tp_hf_load(dir, &out->model, NULL);
}

static const tp_st_tensor *expect_tensor(const tp_st_file *file, const char *name)
{
    const tp_st_tensor *t = tp_st_find(file, name);
    if (!t) {
        fprintf(stderr, "%s: no tensor '%s'\n", tp_st_path(file), name);
        exit(1);
    }
    return t;
}

/* rows x classes of tp's logits (cols wide, padded) against the reference's rows. */
static void check_logits(const char *what, const float *actual, int64_t cols, const float *expected, int64_t rows,
                         int64_t classes)
{
    float *packed = tp_xmalloc((size_t)(rows * classes) * sizeof *packed);
    for (int64_t r = 0; r < rows; r++) memcpy(packed + r * classes, actual + r * cols, (size_t)classes * sizeof *packed);
    double err = tp_max_normalised_error(packed, expected, (long)(rows * classes));
    CHECK_MSG(err <= TOLERANCE, "%s: normalised error %.3g", what, err);
    fprintf(stderr, "  %-28s normalised error %.2g\n", what, err);
    free(packed);
}

static void check_gradients(const char *name, const tp_st_file *expected, const tp_model *model)
{
    for (int64_t i = 0; i < tp_st_count(expected); i++) {
        const tp_st_tensor *t = tp_st_at(expected, i);
        if (strncmp(t->name, "grad.", 5)) continue;
        const tp_param *param = tp_params_find(&model->params, t->name + 5);
        CHECK_MSG(param != NULL, "%s: no parameter '%s'", name, t->name + 5);
        if (!param) continue;
        char what[160];
        snprintf(what, sizeof what, "%s", t->name);
        check_logits(what, model->params.grad + param->offset, t->numel, t->data, 1, t->numel);
    }
}

/* Forward (and for cases with gradients, backward) on the fixture's batch. */
static void check_outputs(const char *name, loaded *case_model)
{
    char path[512];
    snprintf(path, sizeof path, FIXTURES "/expected/%s.safetensors", name);
    tp_st_file *expected = tp_st_open(path);
    CHECK_MSG(expected != NULL, "%s", tp_last_error());
    if (!expected) return;
    const tp_st_tensor *ids = expect_tensor(expected, "input_ids"), *seg_t = expect_tensor(expected, "seg");
    int64_t rows = ids->shape[0], cols = ids->shape[1], real = 0;
    const int32_t *src = ids->data, *seg = seg_t->data;
    int32_t *positions = tp_xmalloc((size_t)(rows * cols) * sizeof *positions);
    int32_t *labels = tp_xmalloc((size_t)(rows * cols) * sizeof *labels);
    for (int64_t i = 0; i < rows * cols; i++)
        if (seg[i]) positions[real] = (int32_t)i, labels[real++] = src[i];
    tp_batch batch = {.batch_size = rows, .seq_length = cols, .src = (int32_t *)src, .seg = (int32_t *)seg,
                      .mlm_positions = positions, .mlm_labels = labels, .mlm_count = real,
                      .sp_labels = (int32_t *)sp_labels, .real_tokens = real};
    int with_gradients = tp_st_find(expected, "loss") != NULL;
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    ctx.record = ctx.training = with_gradients;
    tp_model_batch model_batch = tp_model_batch_upload(&ctx, &batch);
    tp_model_output out;
    CHECK(tp_model_forward(&case_model->model, &ctx, &model_batch, &out) == 0);
    for (int i = 0; i < case_model->model.target_count; i++) {
        const tp_target_result *result = &out.results[i];
        char key[64], what[96];
        snprintf(key, sizeof key, "%s_logits", tp_model_target_name(&case_model->model, i));
        snprintf(what, sizeof what, "%s %s", name, key);
        const tp_st_tensor *want = expect_tensor(expected, key);
        if (!strcmp(key, "mlm_logits")) { /* [B, S, V] at the real tokens */
            int64_t vocab = want->shape[2];
            float *rows_wanted = tp_xmalloc((size_t)(real * vocab) * sizeof *rows_wanted);
            for (int64_t r = 0; r < real; r++)
                memcpy(rows_wanted + r * vocab, (const float *)want->data + positions[r] * vocab,
                       (size_t)vocab * sizeof *rows_wanted);
            CHECK(result->classes == vocab);
            check_logits(what, result->logits->data, tp_cols(result->logits), rows_wanted, real, vocab);
            free(rows_wanted);
        } else {
            CHECK(result->classes == want->shape[1]);
            check_logits(what, result->logits->data, tp_cols(result->logits), want->data, rows, want->shape[1]);
        }
    }
    if (with_gradients) {
        double loss = out.loss->data[0], reference = *(const float *)expect_tensor(expected, "loss")->data;
        CHECK_MSG(tp_close(loss, reference, TOLERANCE, 1e-6), "%s loss: tp %.9g, transformers %.9g", name, loss,
                  reference);
        tp_backward(&ctx, out.loss);
        check_gradients(name, expected, &case_model->model);
    }
    tp_ctx_free(&ctx);
    free(positions);
    free(labels);
    tp_st_close(expected);
}

static void check_round_trip(const char *name)
{
    char hf_dir[256], tp_dir[512], back_dir[512], config[600], weights[600], original[600], copy[600];
    tp_hf_report report;
    snprintf(hf_dir, sizeof hf_dir, FIXTURES "/%s", name);
    snprintf(tp_dir, sizeof tp_dir, "%s/%s_tp", tp_scratch_dir(), name);
    snprintf(back_dir, sizeof back_dir, "%s/%s_hf", tp_scratch_dir(), name);
    CHECK_MSG(tp_hf_convert_from_hf(hf_dir, tp_dir, &report) == 0, "%s", tp_last_error());
    CHECK_MSG(report.dropped == 0, "%s: dropped %s", name, report.dropped_names);
    snprintf(config, sizeof config, "%s/model_config.json", tp_dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", tp_dir);
    CHECK_MSG(tp_hf_convert_to_hf(config, weights, NULL, 0, back_dir, &report) == 0, "%s", tp_last_error());
    snprintf(original, sizeof original, "%s/model.safetensors", hf_dir);
    snprintf(copy, sizeof copy, "%s/model.safetensors", back_dir);
    tp_fixture_check_same_tensors(name, original, copy, NULL, 0);
    /* The tokenizer files travel along both ways. */
    static const char *const tokenizer_files[] = {"vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof tokenizer_files[0]; i++) {
        size_t bytes = 0;
        snprintf(original, sizeof original, "%s/%s", hf_dir, tokenizer_files[i]);
        snprintf(copy, sizeof copy, "%s/%s", back_dir, tokenizer_files[i]);
        char *data = access(original, F_OK) == 0 ? tp_read_file(original, &bytes) : NULL;
        if (data) CHECK_MSG(tp_scratch_file_equals(copy, data, bytes), "%s: %s not copied", name, tokenizer_files[i]);
        free(data);
    }
}

/* ---- bad inputs ----------------------------------------------------------------- */

/* src with one tensor given one row less (resize, NULL: none) and one extra F32 tensor (extra, NULL: none). */
static void rewrite(const char *src, const char *dst, const char *const *resize, int resize_count, const char *extra,
                    tp_st_dtype extra_dtype)
{
    static const float zeros[64];
    tp_st_file *file = tp_st_open(src);
    CHECK(file != NULL);
    tp_st_writer *writer = tp_st_writer_new();
    for (int64_t i = 0; i < tp_st_count(file); i++) {
        const tp_st_tensor *t = tp_st_at(file, i);
        int64_t shape[TP_ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        for (int k = 0; k < resize_count; k++)
            if (!strcmp(t->name, resize[k])) shape[0]--;
        tp_st_writer_add(writer, t->name, t->dtype, t->ndim, shape, t->data);
    }
    int64_t extra_shape[1] = {4};
    if (extra) tp_st_writer_add(writer, extra, extra_dtype, 1, extra_shape, zeros);
    tp_st_writer_metadata(writer, "format", "pt");
    CHECK(tp_st_writer_save(writer, dst) == 0);
    tp_st_writer_free(writer);
    tp_st_close(file);
}

static void expect_error(int status, const char *what, const char *needle)
{
    CHECK_MSG(status < 0, "%s: accepted", what);
    CHECK_MSG(strstr(tp_last_error(), needle) != NULL, "%s: error '%s' does not name '%s'", what, tp_last_error(),
              needle);
    fprintf(stderr, "  refused %-30s %s\n", what, tp_last_error());
}

/* An HF directory in the scratch space: bert_cls's config.json (edited: from -> to) and a weights file. */
static const char *scratch_hf_dir(const char *dir_name, const char *from, const char *to)
{
    static char dir[512];
    char path[600];
    snprintf(dir, sizeof dir, "%s/%s", tp_scratch_dir(), dir_name);
    CHECK(tp_mkdirs(dir) == 0);
    char *text = tp_read_file(FIXTURES "/bert_cls/config.json", NULL);
    CHECK(text != NULL);
    char *at = from ? strstr(text, from) : NULL;
    CHECK(!from || at);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *out = fopen(path, "w");
    if (at) fprintf(out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    else fputs(text, out);
    fclose(out);
    free(text);
    return dir;
}

static void check_bad_inputs(void)
{
    tp_hf_report report;
    char path[600], config[600], weights[600];
    const char *tp_dir = tp_scratch_path("bert_cls_tp");
    snprintf(config, sizeof config, "%s/model_config.json", tp_dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", tp_dir);

    /* tp -> HF: weights that do not match the config: the first mismatching tensor is named */
    const char *mismatched[] = {"embedding.layer_norm.weight", "encoder.transformer.1.feed_forward.linear_1.bias"};
    const char *bad_weights = tp_scratch_path("bad_shapes.safetensors");
    rewrite(weights, bad_weights, mismatched, 2, NULL, TP_ST_F32);
    expect_error(tp_hf_convert_to_hf(config, bad_weights, NULL, 0, tp_scratch_path("out_shapes"), &report),
                 "mismatching shapes", "'embedding.layer_norm.weight'");
    rewrite(weights, bad_weights, NULL, 0, "encoder.transformer.9.extra", TP_ST_F32);
    expect_error(tp_hf_convert_to_hf(config, bad_weights, NULL, 0, tp_scratch_path("out_extra"), &report),
                 "unknown tp tensor", "'encoder.transformer.9.extra'");
    CHECK(access(tp_scratch_path("out_shapes"), F_OK) != 0 && access(tp_scratch_path("out_extra"), F_OK) != 0);
    expect_error(tp_hf_convert_to_hf(config, weights, NULL, 0, tp_scratch_path("bert_cls_hf"), &report),
                 "existing output", "already exists");
    expect_error(tp_hf_convert_to_hf("models/bert/tiny_config.json", weights, NULL, 0, tp_scratch_path("out_tiny"),
                                     &report),
                 "TencentPretrain layer norms", "'layernorm'");

    /* HF -> tp */
    expect_error(tp_hf_convert_from_hf(FIXTURES "/no_such_model", tp_scratch_path("out_missing"), &report),
                 "missing directory", "no_such_model/config.json");
    const char *dir = scratch_hf_dir("xlnet", "\"model_type\": \"bert\"", "\"model_type\": \"xlnet\"");
    expect_error(tp_hf_convert_from_hf(dir, tp_scratch_path("out_xlnet"), &report), "unknown model_type", "'xlnet'");
    dir = scratch_hf_dir("token_cls", "BertForSequenceClassification", "BertForTokenClassification");
    expect_error(tp_hf_convert_from_hf(dir, tp_scratch_path("out_token"), &report), "unknown architecture",
                 "BertForTokenClassification");
    dir = scratch_hf_dir("wide", "\"intermediate_size\": 32", "\"intermediate_size\": 33");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rewrite(FIXTURES "/bert_cls/model.safetensors", path, NULL, 0, NULL, TP_ST_F32);
    expect_error(tp_hf_convert_from_hf(dir, tp_scratch_path("out_wide"), &report), "shape mismatch",
                 "'bert.encoder.layer.0.intermediate.dense.weight'");
    dir = scratch_hf_dir("extra", NULL, NULL);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rewrite(FIXTURES "/bert_cls/model.safetensors", path, NULL, 0, "bert.encoder.layer.0.adapter.weight", TP_ST_F32);
    expect_error(tp_hf_convert_from_hf(dir, tp_scratch_path("out_extra_hf"), &report), "unknown HF tensor",
                 "'bert.encoder.layer.0.adapter.weight'");

    /* Known tensors without a place in tp are dropped and reported: an old buffer, NSP's head. */
    dir = scratch_hf_dir("droppable", NULL, NULL);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rewrite(FIXTURES "/bert_cls/model.safetensors", path, NULL, 0, "bert.embeddings.position_ids", TP_ST_I32);
    CHECK_MSG(tp_hf_convert_from_hf(dir, tp_scratch_path("out_dropped"), &report) == 0, "%s", tp_last_error());
    CHECK_MSG(report.dropped == 1 && !strcmp(report.dropped_names, "bert.embeddings.position_ids"),
              "dropped %lld: %s", (long long)report.dropped, report.dropped_names);
}

int main(void)
{
    tp_scratch_init("hf_families");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, FIXTURES "/%s", cases[i]);
        fprintf(stderr, "%s\n", cases[i]);
        loaded case_model = {0};
        int status = load_case(dir, &case_model);
        CHECK_MSG(status == 0, "%s: %s", cases[i], tp_last_error());
        if (status == 0) check_outputs(cases[i], &case_model);
        tp_model_free(&case_model.model);
        if (case_model.config) tp_config_free(case_model.config);
        check_round_trip(cases[i]);
    }
    check_bad_inputs();
    return tp_test_finish("hf_families");
}
