/* Encoder-decoder generation (core/generate_seq2seq.h) against transformers' generate, with the
 * random tiny T5, T5 v1.1 and BART fixtures (tests/fixtures/{t5,t5_v1_1,bart}/):
 * tests/reference/gen_seq2seq_generate.py stores in tests/fixtures/seq2seq_generate.json the ids
 * transformers generates (24 new tokens at most) for 5 sources per model, each model as saved and
 * with its eos logit row scaled by 2.5 (hypotheses then end at different lengths), under greedy,
 * beam (4 beams), beam_early (early_stopping, length_penalty 0.6, no_repeat_ngram_size 2) and
 * beam_never (3 beams, "never", length_penalty 1.5, repetition_penalty 1.3) and beam_min (2 beams,
 * min_length 8) -- BART with its
 * forced_eos_token_id:
 *   - every sequence generated with the caches is identical to transformers';
 *   - the first two sources of every case (one with TP_TEST_QUICK) give the same ids by full
 *     recomputation (no cache);
 *   - the cached decoder's logits for 2 rows, reordered halfway, stay within 1e-5 (of the largest
 *     magnitude) of the whole model run on each row's prefix, for T5 (relative positions) and BART
 *     (learned positions, post-LN);
 *   - the options are read from generation_config.json; a model without a decoder is refused. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/generate_seq2seq.h"
#include "core/hf.h"
#include "core/model.h"
#include "support/check.h"

#define EXPECTED "tests/fixtures/seq2seq_generate.json"

typedef struct loaded {
    tp_config *config;
    tp_model model;
} loaded;

static int load(const char *dir, loaded *out)
{
    int64_t vocab_size = 0;
    out->config = tp_hf_config(dir);
    if (!out->config || tp_config_int(out->config, "vocab_size", 0, 1, INT32_MAX, &vocab_size) < 0 ||
        tp_model_build(&out->model, out->config, vocab_size) < 0 || tp_config_check_unused(out->config) < 0)
        return -1;
    tp_model_allocate(&out->model, &tp_cpu_backend, 3);
    return tp_hf_load(dir, &out->model, NULL);
}

static void unload(loaded *l)
{
    tp_model_free(&l->model);
    tp_config_free(l->config);
}

/* As the generator does: the lm head's eos row (the shared embedding's when tied) times scale. */
static void scale_eos_row(tp_model *model, int32_t eos, float scale)
{
    tp_param *head = tp_params_find(&model->params, "target.lm.output_layer.weight");
    if (!head) head = tp_params_find(&model->params, "embedding.word.embedding.weight");
    int64_t hidden = head->tensor.shape[1];
    for (int64_t i = 0; i < hidden; i++) head->tensor.data[eos * hidden + i] *= scale;
}

static int32_t *json_ids(const cJSON *list, int64_t *n)
{
    *n = cJSON_GetArraySize(list);
    int32_t *ids = tp_xmalloc((size_t)(*n > 0 ? *n : 1) * sizeof *ids);
    for (int64_t i = 0; i < *n; i++) ids[i] = (int32_t)cJSON_GetArrayItem(list, (int)i)->valuedouble;
    return ids;
}

static void apply_setting(const cJSON *options, tp_seq2seq_options *o)
{
    const cJSON *item = NULL;
    cJSON_ArrayForEach(item, options)
    {
        if (!strcmp(item->string, "num_beams")) o->num_beams = (int64_t)item->valuedouble;
        else if (!strcmp(item->string, "length_penalty")) o->length_penalty = item->valuedouble;
        else if (!strcmp(item->string, "no_repeat_ngram_size")) o->no_repeat_ngram_size = (int64_t)item->valuedouble;
        else if (!strcmp(item->string, "repetition_penalty")) o->sampling.repetition_penalty = item->valuedouble;
        else if (!strcmp(item->string, "min_length")) o->min_length = (int64_t)item->valuedouble;
        else if (!strcmp(item->string, "early_stopping")) o->early_stopping = cJSON_IsString(item) ? -1 : cJSON_IsTrue(item);
        else CHECK_MSG(0, "unknown setting '%s' in " EXPECTED, item->string);
    }
}

static int same_ids(const int32_t *a, int64_t a_count, const int32_t *b, int64_t b_count)
{
    return a_count == b_count && !memcmp(a, b, (size_t)a_count * sizeof *a);
}

static void check_case(const cJSON *c, int64_t max_new_tokens, int *sequences)
{
    const char *name = cJSON_GetObjectItem(c, "model")->valuestring;
    const char *setting = cJSON_GetObjectItem(c, "setting")->valuestring;
    double eos_scale = cJSON_GetObjectItem(c, "eos_scale")->valuedouble;
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", name);
    loaded l;
    int status = load(dir, &l);
    CHECK_MSG(status == 0, "%s: %s", dir, tp_last_error());
    tp_seq2seq_options o = tp_seq2seq_default_options();
    CHECK_MSG(tp_seq2seq_options_from_hf(dir, &o) == 0, "%s", tp_last_error());
    if (status < 0) return;
    scale_eos_row(&l.model, o.eos_id, (float)eos_scale);
    apply_setting(cJSON_GetObjectItem(c, "options"), &o);
    o.max_new_tokens = max_new_tokens;
    tp_seq2seq_decoder *decoder = tp_seq2seq_decoder_create(&l.model, o.num_beams);
    CHECK_MSG(decoder != NULL, "%s", tp_last_error());
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    const cJSON *sources = cJSON_GetObjectItem(c, "sources"), *outputs = cJSON_GetObjectItem(c, "outputs");
    int32_t *got = tp_xmalloc((size_t)max_new_tokens * sizeof *got);
    /* TP_TEST_QUICK (the sanitizer run): the full recomputation for the first source only. */
    const char *quick = getenv("TP_TEST_QUICK");
    int full_checks = quick && *quick && strcmp(quick, "0") ? 1 : 2;
    for (int s = 0; s < cJSON_GetArraySize(sources) && decoder; s++) {
        int64_t src_length = 0, want_count = 0, count = -1;
        int32_t *src = json_ids(cJSON_GetArrayItem(sources, s), &src_length);
        int32_t *want = json_ids(cJSON_GetArrayItem(outputs, s), &want_count);
        tp_tensor *memory = tp_seq2seq_encode(&l.model, &ctx, src, src_length);
        CHECK_MSG(tp_seq2seq_generate(decoder, memory, NULL, &o, got, &count) == 0, "%s", tp_last_error());
        CHECK_MSG(same_ids(got, count, want, want_count), "%s x%g %s source %d: %lld ids, the first %d (want %lld, %d)",
                  name, eos_scale, setting, s, (long long)count, count > 0 ? got[0] : -1, (long long)want_count,
                  want_count > 0 ? want[0] : -1);
        (*sequences)++;
        if (s < full_checks) {
            CHECK_MSG(tp_seq2seq_generate_full(&l.model, &ctx, src, src_length, &o, got, &count) == 0, "%s",
                      tp_last_error());
            CHECK_MSG(same_ids(got, count, want, want_count), "%s x%g %s source %d without the cache", name, eos_scale,
                      setting, s);
        }
        free(src);
        free(want);
    }
    free(got);
    tp_ctx_free(&ctx);
    tp_seq2seq_decoder_free(decoder);
    unload(&l);
}

/* The whole model on 2 rows' prefixes (the same source) -> each row's last logits. */
static void full_logits(tp_model *model, tp_ctx *ctx, const int32_t *src, int64_t src_length, const int32_t *rows,
                        int64_t length, int64_t stride, float *logits)
{
    int32_t src2[2 * 16], seg[2 * 16], tgt[2 * 16];
    for (int r = 0; r < 2; r++)
        for (int64_t i = 0; i < src_length; i++) {
            src2[r * src_length + i] = src[i];
            seg[r * src_length + i] = 1;
        }
    for (int r = 0; r < 2; r++) memcpy(tgt + r * length, rows + r * stride, (size_t)length * sizeof *tgt);
    tp_ctx_reset(ctx);
    tp_batch host = {.batch_size = 2, .seq_length = src_length, .src = src2, .seg = seg};
    tp_model_batch in = tp_model_batch_upload(ctx, &host);
    in.tgt_seq_length = length;
    in.tgt_src = tp_ids_upload(ctx, tgt, 2 * length);
    tp_model_output out;
    CHECK(tp_model_forward(model, ctx, &in, &out) == 0);
    const tp_tensor *all = out.results[0].logits;
    int64_t vocab = model->hp.vocab_size;
    for (int r = 0; r < 2; r++)
        memcpy(logits + r * vocab, all->data + (r * length + length - 1) * tp_cols(all), (size_t)vocab * sizeof *logits);
}

static void check_cached_logits(const char *dir)
{
    enum { STEPS = 12, SWAP_AT = 6 };
    loaded l;
    int status = load(dir, &l);
    CHECK_MSG(status == 0, "%s: %s", dir, tp_last_error());
    if (status < 0) return;
    int64_t vocab = l.model.hp.vocab_size;
    const int32_t src[7] = {5, 17, 40, 3, 88, 61, 9};
    int32_t rows[2][STEPS];
    for (int i = 0; i < STEPS; i++) {
        rows[0][i] = (int32_t)(3 + (i * 37) % 90);
        rows[1][i] = (int32_t)(3 + (i * 53 + 11) % 90);
    }
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    tp_seq2seq_decoder *decoder = tp_seq2seq_decoder_create(&l.model, 2);
    CHECK_MSG(decoder != NULL, "%s", tp_last_error());
    float *cached = tp_xmalloc((size_t)(2 * vocab) * sizeof *cached), *full = tp_xmalloc((size_t)(2 * vocab) * sizeof *full);
    tp_tensor *memory = tp_seq2seq_encode(&l.model, &ctx, src, 7);
    CHECK(tp_seq2seq_decoder_start(decoder, memory, NULL) == 0);
    double worst = 0, largest = 0;
    for (int step = 0; step < STEPS; step++) {
        if (step == SWAP_AT) { /* the rows trade caches, and their sequences with them */
            const int32_t swap[2] = {1, 0};
            tp_seq2seq_decoder_reorder(decoder, swap);
            for (int i = 0; i < STEPS; i++) {
                int32_t t = rows[0][i];
                rows[0][i] = rows[1][i];
                rows[1][i] = t;
            }
        }
        const int32_t ids[2] = {rows[0][step], rows[1][step]};
        CHECK(tp_seq2seq_decoder_step(decoder, ids, cached) == 0);
        full_logits(&l.model, &ctx, src, 7, &rows[0][0], step + 1, STEPS, full);
        for (int64_t i = 0; i < 2 * vocab; i++) {
            worst = fmax(worst, fabs((double)cached[i] - full[i]));
            largest = fmax(largest, fabs((double)full[i]));
        }
    }
    CHECK_MSG(worst <= 1e-5 * largest, "%s: cached logits differ by %g (largest %g)", dir, worst, largest);
    printf("%s: cached vs full logits over %d steps: max difference %.3g (largest %.3g)\n", dir, STEPS, worst, largest);
    free(cached);
    free(full);
    tp_seq2seq_decoder_free(decoder);
    tp_ctx_free(&ctx);
    unload(&l);
}

static void check_refusals(void)
{
    loaded l;
    CHECK(load("tests/fixtures/gpt2", &l) == 0);
    CHECK(tp_seq2seq_decoder_create(&l.model, 1) == NULL);
    CHECK_MSG(strstr(tp_last_error(), "decoder") != NULL, "%s", tp_last_error());
    unload(&l);
    tp_seq2seq_options o = tp_seq2seq_default_options();
    CHECK(tp_seq2seq_options_from_hf("tests/fixtures/bart", &o) == 0);
    CHECK(o.decoder_start_id == 2 && o.eos_id == 2 && o.pad_id == 1 && o.forced_eos_id == 2 && o.forced_bos_id == -1);
}

int main(void)
{
    char *text = tp_read_file(EXPECTED, NULL);
    CHECK_MSG(text != NULL, "%s (tests/reference/gen_seq2seq_generate.py writes it)", EXPECTED);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    int sequences = 0;
    if (root) {
        int64_t max_new_tokens = (int64_t)cJSON_GetObjectItem(root, "max_new_tokens")->valuedouble;
        const cJSON *c = NULL;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) check_case(c, max_new_tokens, &sequences);
        printf("%d sequences identical to transformers' generate\n", sequences);
        CHECK(sequences == 150);
    }
    cJSON_Delete(root);
    check_cached_logits("tests/fixtures/t5");
    check_cached_logits("tests/fixtures/bart");
    check_refusals();
    return tp_test_finish("test_generate_seq2seq");
}
