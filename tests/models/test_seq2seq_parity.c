/* T5, T5 v1.1 and BART in tp against transformers: small random-init T5ForConditionalGeneration
 * (relu, tied head), T5 v1.1 (gated-gelu, untied head) and BartForConditionalGeneration saved by
 * transformers (tests/reference/gen_t5_bart.py writes them and their outputs to
 * tests/fixtures/{t5,t5_v1_1,bart}/), loaded through tp's Hugging Face maps:
 *   - logits of 2 x 6 decoder tokens over 2 x 9 encoder tokens (3 of them padding) within 1e-4 of
 *     transformers' largest magnitude;
 *   - the loaded tensors are every tensor of the file but the known copies / zero buffer;
 *   - T5's relative position buckets equal transformers' for distances -200..200 (bidirectional and
 *     causal; 32 buckets / max distance 128 and 8 / 20). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/hf.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "modules/layers/relative_position.h"
#include "support/check.h"
#include "support/fixture.h"

#define GENERATOR "tests/reference/gen_t5_bart.py"
#define TOLERANCE 1e-4

static float *fixture_floats(const tp_st_file *file, const char *name, int64_t *n)
{
    const tp_st_tensor *t = tp_fixture_tensor(file, GENERATOR, "%s", name);
    float *values = tp_xmalloc((size_t)t->numel * sizeof *values);
    memcpy(values, t->data, (size_t)t->numel * sizeof *values);
    *n = t->numel;
    return values;
}

static int32_t *fixture_ids(const tp_st_file *file, const char *name, int64_t *n)
{
    float *values = fixture_floats(file, name, n);
    int32_t *ids = tp_xmalloc((size_t)*n * sizeof *ids);
    for (int64_t i = 0; i < *n; i++) ids[i] = (int32_t)values[i];
    free(values);
    return ids;
}

static int load_model(const char *dir, tp_config **config, tp_model *model)
{
    int64_t vocab_size = 0;
    *config = tp_hf_config(dir);
    if (!*config || tp_config_int(*config, "vocab_size", 0, 1, INT32_MAX, &vocab_size) < 0 ||
        tp_model_build(model, *config, vocab_size) < 0 || tp_config_check_unused(*config) < 0)
        return -1;
    tp_model_allocate(model, &tp_cpu_backend, 3);
    return tp_hf_load(dir, model, NULL);
}

static void check_logits(const char *dir)
{
    char path[512];
    tp_config *config = NULL;
    tp_model model;
    int loaded = load_model(dir, &config, &model);
    CHECK_MSG(loaded == 0, "%s: %s", dir, tp_last_error());
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    tp_st_file *expected = tp_st_open(path);
    CHECK_MSG(expected != NULL, "%s", tp_last_error());
    if (loaded < 0 || !expected) exit(tp_test_finish("test_seq2seq_parity"));
    int64_t src_count = 0, mask_count = 0, tgt_count = 0, logit_count = 0;
    int32_t *src = fixture_ids(expected, "input_ids", &src_count);
    int32_t *seg = fixture_ids(expected, "attention_mask", &mask_count);
    int32_t *tgt = fixture_ids(expected, "decoder_input_ids", &tgt_count);
    float *want = fixture_floats(expected, "logits", &logit_count);
    int64_t vocab = model.hp.vocab_size, batch = 2;
    tp_batch host = {.batch_size = batch, .seq_length = src_count / batch, .src = src, .seg = seg};
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    tp_model_batch in = tp_model_batch_upload(&ctx, &host);
    in.tgt_seq_length = tgt_count / batch;
    in.tgt_src = tp_ids_upload(&ctx, tgt, tgt_count);
    tp_model_output out;
    CHECK(tp_model_forward(&model, &ctx, &in, &out) == 0);
    const tp_tensor *logits = out.results[0].logits;
    CHECK(tp_rows(logits) == tgt_count && logit_count == tgt_count * vocab);
    float *packed = tp_xmalloc((size_t)(tgt_count * vocab) * sizeof *packed);
    for (int64_t r = 0; r < tgt_count; r++)
        memcpy(packed + r * vocab, logits->data + r * tp_cols(logits), (size_t)vocab * sizeof *packed);
    double error = tp_max_normalised_error(packed, want, (long)logit_count);
    fprintf(stderr, "  %s logits [2, 6, %lld]: normalised error %.2g\n", dir, (long long)vocab, error);
    CHECK_MSG(error <= TOLERANCE, "%s logits: normalised error %.3g", dir, error);
    free(packed), free(src), free(seg), free(tgt), free(want);
    tp_ctx_free(&ctx);
    tp_st_close(expected);
    tp_model_free(&model);
    tp_config_free(config);
}

/* Every tensor of the file is placed or a known droppable one (convert's strict report). */
static void check_conversion_report(const char *dir, int64_t dropped)
{
    char out_dir[256];
    snprintf(out_dir, sizeof out_dir, "/tmp/tp_seq2seq_parity_%d", (int)getpid());
    tp_hf_report report;
    int status = tp_hf_convert_from_hf(dir, out_dir, &report);
    CHECK_MSG(status == 0, "%s: %s", dir, tp_last_error());
    CHECK_MSG(report.dropped == dropped, "%s: dropped %lld tensors (%s), expected %lld", dir, (long long)report.dropped,
              report.dropped_names, (long long)dropped);
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", out_dir);
    CHECK(system(command) == 0);
}

static void check_buckets(void)
{
    tp_st_file *file = tp_st_open("tests/fixtures/t5/buckets.safetensors");
    CHECK_MSG(file != NULL, "%s", tp_last_error());
    if (!file) return;
    static const struct {
        const char *name;
        int bidirectional;
        int64_t buckets, max_distance;
    } cases[] = {{"bidirectional_32", 1, 32, 128}, {"causal_32", 0, 32, 128}, {"bidirectional_8", 1, 8, 20},
                 {"causal_8", 0, 8, 20}};
    int64_t n = 0, m = 0;
    float *distance = fixture_floats(file, "distance", &n);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        float *want = fixture_floats(file, cases[c].name, &m);
        int64_t wrong = 0;
        for (int64_t i = 0; i < n && m == n; i++)
            wrong += tp_relative_position_bucket((int64_t)distance[i], cases[c].bidirectional, cases[c].buckets,
                                                 cases[c].max_distance) != (int32_t)want[i];
        CHECK_MSG(m == n && wrong == 0, "buckets %s: %lld of %lld distances differ", cases[c].name, (long long)wrong,
                  (long long)n);
        free(want);
    }
    free(distance);
    tp_st_close(file);
}

int main(void)
{
    check_buckets();
    check_logits("tests/fixtures/t5");
    check_logits("tests/fixtures/t5_v1_1");
    check_logits("tests/fixtures/bart");
    check_conversion_report("tests/fixtures/t5", 0);
    check_conversion_report("tests/fixtures/t5_v1_1", 0);
    check_conversion_report("tests/fixtures/bart", 1);
    return tp_test_finish("test_seq2seq_parity");
}
