/* tp-infer --dump against transformers: the Hugging Face sequence classifiers of
 * tests/fixtures/hf_families (random init, written by tests/reference/make_hf_families_fixture.py
 * with transformers' logits for a batch of token ids) run through the tp-infer program
 * ($TP_BUILD_DIR/tp-infer, set by ctest) with those ids as --inputs_path.  For BERT, RoBERTa and
 * ALBERT the dump must hold the same input_ids and seg, hidden states [N, seq, hidden], and
 * target.cls.logits within 1e-4 (of the largest magnitude) of transformers' cls_logits; the
 * predictions TSV must hold the argmax of those logits.  A bare encoder (all-MiniLM-L6-v2, fetched by
 * scripts/fetch_data.sh; no head, no task) dumps only its hidden states: their first rows must equal
 * sentence-transformers' CLS hidden states of tests/fixtures/minilm within 1e-4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "support/scratch.h"

#define FIXTURES "tests/fixtures/hf_families"
#define TOLERANCE 1e-4

typedef struct infer_case {
    const char *name;
    const char *tokenizer; /* tp-infer options for the vocabulary (only its size matters with ids) */
    int64_t hidden;
} infer_case;

/* ALBERT's fixture has no tokenizer files and RoBERTa's toy vocab.json lacks GPT-2's byte tokens:
 * any 40-token vocabulary will do for ids. */
static const infer_case cases[] = {
    {"bert_cls", "", 16},
    {"roberta_cls", "--vocab_path " FIXTURES "/bert_cls/vocab.txt", 16},
    {"albert_cls", "--vocab_path " FIXTURES "/bert_cls/vocab.txt", 16},
};

static const tp_st_tensor *find(const tp_st_file *file, const char *name)
{
    const tp_st_tensor *t = tp_st_find(file, name);
    CHECK_MSG(t != NULL, "%s: no tensor '%s'", tp_st_path(file), name);
    return t;
}

static int same_tensor(const tp_st_tensor *a, const tp_st_tensor *b)
{
    return a && b && a->dtype == b->dtype && a->ndim == b->ndim && a->nbytes == b->nbytes &&
           memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0 &&
           memcmp(a->data, b->data, (size_t)a->nbytes) == 0;
}

/* The predictions TSV: a header, then the argmax of each row of the reference logits. */
static void check_predictions(const char *name, const char *path, const tp_st_tensor *logits)
{
    char *text = tp_read_file(path, NULL);
    CHECK_MSG(text != NULL, "%s: %s", name, tp_last_error());
    if (!text) return;
    int64_t rows = logits->shape[0], classes = logits->shape[1];
    const float *values = logits->data;
    char *line = strtok(text, "\n");
    CHECK_MSG(line && !strcmp(line, "label"), "%s: header '%s'", name, line ? line : "");
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        for (int64_t c = 1; c < classes; c++)
            if (values[r * classes + c] > values[r * classes + best]) best = c;
        line = strtok(NULL, "\n");
        CHECK_MSG(line && strtoll(line, NULL, 10) == best, "%s: row %lld: predicted '%s', transformers' argmax %lld",
                  name, (long long)r, line ? line : "(none)", (long long)best);
    }
    CHECK_MSG(strtok(NULL, "\n") == NULL, "%s: more prediction lines than examples", name);
    free(text);
}

static void check_case(const char *program, const infer_case *c)
{
    char expected_path[256], command[2048];
    const char *dump = tp_scratch_path("dump.safetensors"), *predictions = tp_scratch_path("predictions.tsv");
    snprintf(expected_path, sizeof expected_path, FIXTURES "/expected/%s.safetensors", c->name);
    snprintf(command, sizeof command,
             "%s --hf_model_dir " FIXTURES "/%s --inputs_path %s --dump %s --prediction_path %s %s --batch_size 2",
             program, c->name, expected_path, dump, predictions, c->tokenizer);
    int status = system(command);
    CHECK_MSG(status == 0, "%s: tp-infer exited with %d: %s", c->name, status, command);
    if (status != 0) return;
    tp_st_file *expected = tp_st_open(expected_path), *actual = tp_st_open(dump);
    CHECK_MSG(expected && actual, "%s: %s", c->name, tp_last_error());
    if (expected && actual) {
        CHECK_MSG(same_tensor(find(actual, "input_ids"), find(expected, "input_ids")), "%s: input_ids differ", c->name);
        CHECK_MSG(same_tensor(find(actual, "seg"), find(expected, "seg")), "%s: seg differ", c->name);
        const tp_st_tensor *ids = find(expected, "input_ids"), *hidden = find(actual, "hidden");
        CHECK_MSG(hidden && hidden->dtype == TP_ST_F32 && hidden->ndim == 3 && hidden->shape[0] == ids->shape[0] &&
                      hidden->shape[1] == ids->shape[1] && hidden->shape[2] == c->hidden,
                  "%s: hidden is not float32 [N, seq, %lld]", c->name, (long long)c->hidden);
        const tp_st_tensor *want = find(expected, "cls_logits"), *got = find(actual, "target.cls.logits");
        if (want && got) {
            CHECK_MSG(got->dtype == TP_ST_F32 && got->numel == want->numel && got->ndim == 2 &&
                          got->shape[1] == want->shape[1],
                      "%s: target.cls.logits has another shape than transformers' [%lld, %lld]", c->name,
                      (long long)want->shape[0], (long long)want->shape[1]);
            if (got->numel == want->numel) {
                double err = tp_max_normalised_error(got->data, want->data, (long)want->numel);
                CHECK_MSG(err <= TOLERANCE, "%s: logits: normalised error %.3g", c->name, err);
                fprintf(stderr, "  %-12s target.cls.logits vs transformers: normalised error %.2g\n", c->name, err);
            }
            check_predictions(c->name, predictions, want);
        }
    }
    if (expected) tp_st_close(expected);
    if (actual) tp_st_close(actual);
}

/* The MiniLM fixture's 50 sentences (ids + attention mask) as --inputs_path: seg 1 on real tokens
 * (Hugging Face's token type 0), 0 on padding. */
static void check_bare_encoder(const char *program)
{
    const char *inputs = tp_scratch_path("minilm_inputs.safetensors"), *dump = tp_scratch_path("minilm_dump.safetensors");
    tp_st_file *fixture = tp_st_open("tests/fixtures/minilm/expected.safetensors");
    CHECK_MSG(fixture != NULL, "%s", tp_last_error());
    if (!fixture) return;
    const tp_st_tensor *ids = find(fixture, "input_ids"), *mask = find(fixture, "attention_mask"),
                       *cls = find(fixture, "cls_hidden");
    if (ids && mask && cls) {
        tp_st_writer *writer = tp_st_writer_new();
        tp_st_writer_add(writer, "input_ids", TP_ST_I32, 2, ids->shape, ids->data);
        tp_st_writer_add(writer, "seg", TP_ST_I32, 2, mask->shape, mask->data);
        CHECK_MSG(tp_st_writer_save(writer, inputs) == 0, "%s", tp_last_error());
        tp_st_writer_free(writer);
        char command[2048];
        snprintf(command, sizeof command, "%s --hf_model_dir data/models/all-MiniLM-L6-v2 --inputs_path %s --dump %s",
                 program, inputs, dump);
        int status = system(command);
        CHECK_MSG(status == 0, "bare encoder: tp-infer exited with %d: %s", status, command);
        tp_st_file *actual = status == 0 ? tp_st_open(dump) : NULL;
        const tp_st_tensor *hidden = actual ? find(actual, "hidden") : NULL;
        int64_t rows = cls->shape[0], width = cls->shape[1], seq = ids->shape[1];
        CHECK_MSG(hidden && hidden->ndim == 3 && hidden->shape[0] == rows && hidden->shape[1] == seq &&
                      hidden->shape[2] == width,
                  "bare encoder: hidden is not [%lld, %lld, %lld]", (long long)rows, (long long)seq, (long long)width);
        CHECK_MSG(!actual || tp_st_find(actual, "target.cls.logits") == NULL, "bare encoder: a head's logits dumped");
        if (hidden && hidden->shape[0] == rows && hidden->shape[1] == seq && hidden->shape[2] == width) {
            float *first = tp_xmalloc((size_t)(rows * width) * sizeof *first);
            for (int64_t r = 0; r < rows; r++)
                memcpy(first + r * width, (const float *)hidden->data + r * seq * width, (size_t)width * sizeof *first);
            double err = tp_max_normalised_error(first, cls->data, (long)(rows * width));
            CHECK_MSG(err <= TOLERANCE, "bare encoder: CLS hidden states: normalised error %.3g", err);
            fprintf(stderr, "  %-12s CLS hidden vs sentence-transformers: normalised error %.2g\n", "MiniLM", err);
            free(first);
        }
        if (actual) tp_st_close(actual);
    }
    tp_st_close(fixture);
}

int main(void)
{
    const char *build = getenv("TP_BUILD_DIR");
    if (!build) {
        fprintf(stderr, "test_infer_dump: set TP_BUILD_DIR to the build directory (ctest does)\n");
        return 1;
    }
    char program[1024];
    snprintf(program, sizeof program, "%s/tp-infer", build);
    tp_scratch_init("infer_dump");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(program, &cases[i]);
    check_bare_encoder(program);
    return tp_test_finish("test_infer_dump");
}
