/* Greedy and beam search over the speech encoder against transformers: the random-init
 * Speech2TextForConditionalGeneration of tests/fixtures/s2t/ (tests/reference/gen_s2t.py), loaded
 * through tp's Hugging Face map, decodes each fixture utterance alone (23 frames, and the second
 * utterance's 17 real frames) with core/generate_seq2seq.h's search on tp_s2t_encode's encoder output
 * (core/preprocess_s2t.h), and every sequence equals model.generate(num_beams=..., length_penalty=...,
 * early_stopping=..., no_repeat_ngram_size=..., max_new_tokens=12) token for token
 * (generate.safetensors; 6 searches x 2 utterances, one ending with the eos), the search settings as
 * the generator names them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/generate_seq2seq.h"
#include "core/preprocess_s2t.h"
#include "support/check.h"
#include "support/fixture.h"

#define GENERATOR "tests/reference/gen_s2t.py"
#define DIR "tests/fixtures/s2t"
#define MAX_NEW 12

typedef struct search {
    const char *name;
    int64_t num_beams;
    double length_penalty;
    int early_stopping;
    int64_t no_repeat_ngram_size; /* the random model repeats one id: 2 makes the searches choose among others */
} search;

static const search searches[] = {{"greedy", 1, 1.0, 0, 0},
                                  {"beams4", 4, 1.0, 0, 0},
                                  {"greedy_ngram2", 1, 1.0, 0, 2},
                                  {"beams4_ngram2", 4, 1.0, 0, 2},
                                  {"beams3_lp0.5_early_ngram2", 3, 0.5, 1, 2},
                                  {"beams5_lp2_ngram2", 5, 2.0, 0, 2}};

/* One search over one utterance against transformers' sequence (its start id first). */
static void check_search(tp_model *model, tp_ctx *ctx, const tp_s2t_set *utterance, const tp_s2t_geometry *geometry,
                         const tp_st_file *expected, int u, const search *s)
{
    char name[64];
    int64_t want_count = 0, count = 0;
    snprintf(name, sizeof name, "u%d.%s", u, s->name);
    int32_t *want = tp_fixture_ids(expected, GENERATOR, name, &want_count);
    tp_seq2seq_options options = tp_seq2seq_default_options();
    CHECK_MSG(tp_seq2seq_options_from_hf(DIR, &options) == 0, "%s", tp_last_error());
    options.num_beams = s->num_beams;
    options.length_penalty = s->length_penalty;
    options.early_stopping = s->early_stopping;
    options.no_repeat_ngram_size = s->no_repeat_ngram_size;
    options.max_new_tokens = MAX_NEW;
    int32_t generated[MAX_NEW];
    tp_seq2seq_decoder *decoder = tp_seq2seq_decoder_create(model, s->num_beams);
    tp_tensor *memory = tp_s2t_encode(model, ctx, utterance, 0, geometry);
    int status = decoder && memory ? tp_seq2seq_generate(decoder, memory, NULL, &options, generated, &count) : -1;
    CHECK_MSG(status == 0, "%s: %s", name, tp_last_error());
    int same = status == 0 && want_count == count + 1 && want[0] == options.decoder_start_id;
    for (int64_t i = 0; same && i < count; i++) same = generated[i] == want[i + 1];
    fprintf(stderr, "  %s: %lld ids%s\n", name, (long long)count, same ? ", as transformers" : "");
    CHECK_MSG(same, "%s: %lld ids differ from transformers' %lld (start id included)", name, (long long)count,
              (long long)want_count);
    tp_seq2seq_decoder_free(decoder);
    free(want);
}

int main(void)
{
    tp_config *config = NULL;
    tp_model model;
    tp_st_file *expected = tp_fixture_open_model(DIR, "test_s2t_generate", &config, &model);
    tp_st_file *generate = tp_st_open(DIR "/generate.safetensors");
    CHECK_MSG(generate != NULL, "%s (run %s)", tp_last_error(), GENERATOR);
    tp_s2t_geometry geometry;
    CHECK_MSG(tp_s2t_geometry_of(config, &geometry) == 0 && geometry.layers == 2 && geometry.kernels[1] == 3, "%s",
              tp_last_error());
    int64_t feature_count = 0;
    float *features = tp_fixture_floats(expected, GENERATOR, "input_features", &feature_count);
    CHECK(feature_count == 2 * 23 * 12);
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    const int64_t real_frames[2] = {23, 17};
    for (int u = 0; generate && u < 2; u++) {
        tp_s2t_utterance item = {NULL, real_frames[u], features + u * 23 * 12};
        tp_s2t_set utterance = {.count = 1, .feature_size = 12, .items = &item};
        for (size_t s = 0; s < sizeof searches / sizeof *searches; s++)
            check_search(&model, &ctx, &utterance, &geometry, generate, u, &searches[s]);
    }
    free(features);
    tp_ctx_free(&ctx);
    if (generate) tp_st_close(generate);
    tp_st_close(expected);
    tp_model_free(&model);
    tp_config_free(config);
    return tp_test_finish("test_s2t_generate");
}
