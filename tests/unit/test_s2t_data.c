/* core/preprocess_s2t against Hugging Face's Speech2TextFeatureExtractor (transformers 4.46.3 with
 * torchaudio 0.13.1's Kaldi fbank, 80 bins, utterance CMVN): tests/fixtures/media/s2t/, written by
 * tests/reference/make_s2t_features_fixture.py (a synthetic 8 kHz WAV and its features).  Every
 * feature within 5e-4 (measured: 2.4e-5);
 * the list's errors name the list and line, bad speech keys the key; skip_bad_audio leaves out and
 * counts unreadable audio (not malformed lines); run_speech2text.py's header
 * (either column order) and lists without transcripts are read; the subsampled lengths are transformers'
 * _get_feat_extract_output_lengths.  And the whole path learns: a tiny speech-to-text model trained
 * on the fixture's batch (tp_s2t_fill_batch, 80 AdamW steps) cuts its loss tenfold and then decodes
 * the transcript greedily (tp_s2t_encode + core/generate_seq2seq.h) word for word (WER 0). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/audio.h"
#include "core/config.h"
#include "core/error.h"
#include "core/generate_seq2seq.h"
#include "core/metrics.h"
#include "core/model.h"
#include "core/optim.h"
#include "core/preprocess_s2t.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "support/scratch.h"

#define DIR "tests/fixtures/media/s2t"

/* The default features (80 filter banks, CMVN with means and variances), as a model config
 * without the keys gives them. */
static tp_s2t_geometry default_geometry(void)
{
    tp_s2t_geometry geometry;
    tp_config *config = tp_config_parse("defaults", "{}");
    CHECK(config && tp_s2t_geometry_of(config, &geometry) == 0 && geometry.mel_bins == 80 && geometry.cmvn &&
          geometry.cmvn_means && geometry.cmvn_vars && !geometry.augment);
    tp_config_free(config);
    return geometry;
}

static tp_s2t_geometry defaults; /* default_geometry(), set by main */
static const tp_s2t_read_options with_text = {.allow_no_text = 0};

static void check_features(void)
{
    tp_s2t_set set;
    int status = tp_s2t_read(DIR "/list.tsv", &defaults, &with_text, &set);
    CHECK_MSG(status == 0, "%s", tp_last_error());
    tp_st_file *file = tp_st_open(DIR "/features.safetensors");
    CHECK_MSG(file != NULL, "%s (run tests/reference/make_s2t_features_fixture.py)", tp_last_error());
    const tp_st_tensor *want = file ? tp_st_find(file, "features") : NULL;
    if (status == 0 && want) {
        CHECK(set.count == 1 && !strcmp(set.items[0].text, "a gliding vowel"));
        CHECK_MSG(set.items[0].frames == want->shape[0] && want->shape[1] == 80, "%lld frames, transformers %lld",
                  (long long)set.items[0].frames, (long long)want->shape[0]);
        double worst = 0;
        const float *expected = want->data;
        for (int64_t i = 0; set.items[0].frames == want->shape[0] && i < want->numel; i++)
            worst = fmax(worst, fabs((double)set.items[0].features[i] - expected[i]));
        fprintf(stderr, "  features [%lld, 80]: max |tp - transformers| %.2g\n", (long long)want->shape[0], worst);
        CHECK_MSG(worst <= 5e-4, "features differ by %.3g", worst);
        tp_s2t_set_free(&set);
    }
    if (file) tp_st_close(file);
}

static void expect_error(const char *name, const char *contents, const char *message)
{
    tp_s2t_set set;
    const char *path = tp_scratch_write(name, contents, strlen(contents));
    int allow_no_text = strstr(name, "no_text") != NULL;
    tp_s2t_read_options options = {.allow_no_text = allow_no_text};
    CHECK_MSG(tp_s2t_read(path, &defaults, &options, &set) < 0, "%s: accepted", name);
    CHECK_MSG(strstr(tp_last_error(), message) != NULL, "%s: '%s' lacks '%s'", name, tp_last_error(), message);
}

/* skip_bad_audio: a missing, a corrupt and a too short file are left out and counted, the first one's
 * message kept; the good lines keep their transcripts in order; malformed lines still fail, and so
 * does a list with no readable audio. */
static void check_skipped(const char *short_wav)
{
    const tp_s2t_read_options skip = {.skip_bad_audio = 1};
    char list[1024];
    snprintf(list, sizeof list,
             "one\t" DIR "/glide.wav\nmissing\t" DIR "/absent.wav\ncorrupt\t" DIR "/list.tsv\nshort\t%s\n"
             "two\t" DIR "/glide.wav\n", short_wav);
    const char *path = tp_scratch_write("skip.tsv", list, strlen(list));
    tp_s2t_set set;
    CHECK_MSG(tp_s2t_read(path, &defaults, &skip, &set) == 0, "%s", tp_last_error());
    CHECK_MSG(set.count == 2 && set.skipped == 3 && !strcmp(set.items[0].text, "one") &&
                  !strcmp(set.items[1].text, "two") && set.items[1].frames == 48,
              "%lld kept, %lld skipped", (long long)set.count, (long long)set.skipped);
    char expected[512];
    snprintf(expected, sizeof expected, "%s: line 2: " DIR "/absent.wav: No such file or directory", path);
    CHECK_MSG(set.first_skipped && !strcmp(set.first_skipped, expected), "first skipped: %s", set.first_skipped);
    tp_s2t_set_free(&set);
    CHECK(tp_s2t_read(path, &defaults, &with_text, &set) < 0 && strstr(tp_last_error(), "skip.tsv: line 2: "));

    const char *malformed_list = "one\t" DIR "/glide.wav\nno tab\n", *unreadable_list = "missing\t" DIR "/absent.wav\n";
    const char *malformed = tp_scratch_write("skip_malformed.tsv", malformed_list, strlen(malformed_list));
    CHECK(tp_s2t_read(malformed, &defaults, &skip, &set) < 0 && strstr(tp_last_error(), "line 2: no tab"));
    const char *unreadable = tp_scratch_write("skip_none.tsv", unreadable_list, strlen(unreadable_list));
    CHECK(tp_s2t_read(unreadable, &defaults, &skip, &set) < 0);
    snprintf(expected, sizeof expected,
             "%s: none of the 1 utterances' audio could be read (the first: %s: line 1: " DIR
             "/absent.wav: No such file or directory)", unreadable, unreadable);
    CHECK_MSG(!strcmp(tp_last_error(), expected), "%s", tp_last_error());
}

static void check_errors(void)
{
    expect_error("no_tab.tsv", "fine\t" DIR "/glide.wav\nno tab here\n", "no_tab.tsv: line 2: no tab");
    expect_error("empty_text.tsv", "\n\t" DIR "/glide.wav\n", "empty_text.tsv: line 2: empty transcript");
    expect_error("missing.tsv", "text\t" DIR "/absent.wav\n", "missing.tsv: line 1: " DIR "/absent.wav");
    expect_error("corrupt.tsv", "fine\t" DIR "/glide.wav\nbad\t" DIR "/list.tsv\n", "corrupt.tsv: line 2: " DIR "/list.tsv");
    expect_error("fields.tsv", "a\tb\t" DIR "/glide.wav\n", "fields.tsv: line 1: 3 tab-separated fields");
    expect_error("header.tsv", "text\twav_path\n" DIR "/glide.wav\n", "header.tsv: line 2: 1 tab-separated fields");
    expect_error("mixed_no_text.tsv", DIR "/glide.wav\nfine\t" DIR "/glide.wav\n",
                 "mixed_no_text.tsv: line 2: a transcript, unlike the lines before");
    expect_error("empty.tsv", "\n\n", "empty.tsv: no utterances");
    /* 100 samples: less than one 200-sample frame at 8 kHz */
    unsigned char wav[44 + 200] = "RIFF";
    const unsigned char header[40] = {0xec, 0, 0, 0, 'W', 'A', 'V', 'E', 'f', 'm', 't', ' ', 16, 0, 0, 0, 1, 0, 1, 0,
                                      0x40, 0x1f, 0, 0, 0x80, 0x3e, 0, 0, 2, 0, 16, 0, 'd', 'a', 't', 'a', 200, 0, 0, 0};
    memcpy(wav + 4, header, sizeof header);
    const char *short_wav = tp_scratch_write("short.wav", wav, sizeof wav);
    char list[512];
    snprintf(list, sizeof list, "short\t%s\n", short_wav);
    expect_error("short.tsv", list, "shorter than one 25 ms frame");
    check_skipped(short_wav);
}

/* The list formats: run_speech2text.py's header in either order, `path` lines for transcription. */
static void check_formats(void)
{
    static const char *const lists[][2] = {
        {"header.tsv", "text\twav_path\na gliding vowel\t" DIR "/glide.wav\n"},
        {"swapped.tsv", "wav_path\ttext\n" DIR "/glide.wav\ta gliding vowel\r\n"},
        {"paths.tsv", DIR "/glide.wav\n\n" DIR "/glide.wav\n"},
        {"path_header.tsv", "wav_path\n" DIR "/glide.wav\n"}};
    for (int l = 0; l < 4; l++) {
        tp_s2t_set set;
        const char *path = tp_scratch_write(lists[l][0], lists[l][1], strlen(lists[l][1]));
        int has_text = l < 2;
        tp_s2t_read_options options = {.allow_no_text = !has_text};
        CHECK_MSG(tp_s2t_read(path, &defaults, &options, &set) == 0, "%s: %s", lists[l][0], tp_last_error());
        CHECK_MSG(set.count == (l == 2 ? 2 : 1) && set.has_text == has_text && set.items[0].frames == 48 &&
                      (has_text ? !strcmp(set.items[0].text, "a gliding vowel") : set.items[0].text == NULL),
                  "%s: %lld utterances", lists[l][0], (long long)set.count);
        tp_s2t_set_free(&set);
    }
    tp_s2t_set set;
    const char *path = tp_scratch_write("needs_text.tsv", lists[2][1], strlen(lists[2][1]));
    CHECK(tp_s2t_read(path, &defaults, &with_text, &set) < 0 &&
          strstr(tp_last_error(), "needs_text.tsv: line 1: no tab"));
}

/* Characters as ids: 0 padding, 1 start, 2 end, 3 space, 4 + letter. */
#define VOCAB 30
static int64_t encode(const char *text, int32_t *ids)
{
    int64_t n = 0;
    ids[n++] = 1;
    for (const char *c = text; *c; c++) ids[n++] = *c == ' ' ? 3 : 4 + (*c - 'a');
    ids[n++] = 2;
    return n;
}

static const char tiny_config[] =
    "{\"emb_size\": 32, \"hidden_size\": 32, \"feedforward_size\": 64, \"heads_num\": 4, \"layers_num\": 2,"
    " \"decoder_layers_num\": 1, \"max_seq_length\": 64, \"dropout\": 0.0, \"hidden_act\": \"relu\","
    " \"embedding\": [\"speech\", \"fairseq_sinusoidalpos\"], \"tgt_embedding\": [\"word\", \"fairseq_sinusoidalpos\"],"
    " \"position_offset\": 2, \"scale_embedding\": true, \"remove_embedding_layernorm\": true,"
    " \"encoder\": \"transformer\", \"decoder\": \"transformer\", \"mask\": \"fully_visible\","
    " \"layernorm_positioning\": \"pre\", \"layernorm\": \"normal_torch\", \"layernorm_eps\": 1e-5,"
    " \"target\": [\"lm\"], \"tie_weights\": true, \"conv_layers_num\": 2, \"conv_channels\": 32,"
    " \"audio_feature_size\": 80, \"conv_kernel_sizes\": [5, 5]}";

static double train_step(tp_model *model, tp_ctx *ctx, const tp_batch *batch, float *moments, int64_t step)
{
    const tp_adamw_options adamw = {0.9, 0.999, 1e-8, 1, TP_ADAMW_TORCH};
    const tp_param_segment all = {0, model->params.total, 0.0, 1.0, 0};
    tp_ctx_reset(ctx);
    ctx->record = ctx->training = 1;
    tp_model_batch in = tp_model_batch_upload(ctx, batch);
    tp_model_output out;
    CHECK(tp_model_forward(model, ctx, &in, &out) == 0);
    float loss = out.loss->data[0];
    tp_backward(ctx, out.loss);
    tp_adamw_step(&adamw, 3e-3, step, model->params.data, model->params.grad, moments, moments + model->params.total,
                  &all, 1);
    tp_params_zero_grad(&model->params);
    return loss;
}

/* The characters of ids (as encode writes them). */
static void decode(const int32_t *ids, int64_t n, char *text)
{
    for (int64_t i = 0; i < n; i++) text[i] = ids[i] == 3 ? ' ' : ids[i] >= 4 ? (char)('a' + ids[i] - 4) : '?';
    text[n] = '\0';
}

static void check_learning(void)
{
    tp_s2t_set set;
    if (tp_s2t_read(DIR "/list.tsv", &defaults, &with_text, &set) < 0) return; /* reported by check_features */
    tp_config *config = tp_config_parse("tiny s2t", tiny_config);
    tp_model model;
    CHECK_MSG(config && tp_model_build(&model, config, VOCAB) == 0 && tp_config_check_unused(config) == 0, "%s",
              tp_last_error());
    tp_model_allocate(&model, &tp_cpu_backend, 7);
    int32_t ids[64], tgt_src[40], tags[40]; /* one decoder row, padded */
    const int64_t indices[2] = {0, 0};
    const tp_s2t_geometry geometry = defaults; /* 80 filter banks, two kernels of 5 */
    int64_t length = encode(set.items[0].text, ids);
    for (int64_t t = 0; t < 40; t++) {
        tgt_src[t] = t < length - 1 ? ids[t] : 0;
        tags[t] = t < length - 1 ? ids[t + 1] : -1;
    }
    tp_batch batch;
    tp_s2t_fill_batch(&set, indices, 2, tgt_src, tags, 40, &geometry, &batch);
    CHECK(batch.seq_length == 12 && batch.tgt_seq_length == length - 1 && batch.tags[0] == ids[1] &&
          batch.tgt_src[length - 1 + 0] == ids[0] && batch.real_tokens == 24);
    float *moments = tp_xcalloc((size_t)(2 * model.params.total), sizeof *moments);
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    double first = train_step(&model, &ctx, &batch, moments, 1), last = first;
    for (int64_t step = 2; step <= 80; step++) last = train_step(&model, &ctx, &batch, moments, step);
    int32_t generated[32];
    char decoded[33];
    tp_seq2seq_options options = tp_seq2seq_default_options();
    options.max_new_tokens = 32, options.decoder_start_id = 1, options.eos_id = 2, options.pad_id = 0;
    tp_seq2seq_decoder *decoder = tp_seq2seq_decoder_create(&model, 1);
    tp_tensor *memory = tp_s2t_encode(&model, &ctx, &set, 0, &geometry);
    int64_t n = 0;
    CHECK_MSG(decoder && memory && tp_seq2seq_generate(decoder, memory, NULL, &options, generated, &n) == 0, "%s",
              tp_last_error());
    if (n > 0 && generated[n - 1] == 2) n--; /* the eos */
    tp_seq2seq_decoder_free(decoder);
    decode(generated, n > 0 ? n : 0, decoded);
    tp_wer_counts wer = {0, 0};
    tp_wer_add(&wer, set.items[0].text, decoded);
    fprintf(stderr, "  tiny model: loss %.3f -> %.4f in 80 steps; decodes \"%s\" (WER %.2f)\n", first, last, decoded,
            tp_wer(&wer));
    CHECK_MSG(last < first / 10, "loss %.4f -> %.4f", first, last);
    CHECK_MSG(tp_wer(&wer) == 0.0, "decoded \"%s\" for \"%s\"", decoded, set.items[0].text);
    free(moments);
    tp_ctx_free(&ctx);
    tp_batch_free(&batch);
    tp_model_free(&model);
    tp_config_free(config);
    tp_s2t_set_free(&set);
}

/* The speech embedding's keys: wrong ones are refused naming the key. */
static void check_config_errors(void)
{
    static const struct {
        const char *from, *to, *message;
    } cases[] = {{"\"conv_kernel_sizes\": [5, 5]", "\"conv_kernel_sizes\": [5]", "'conv_kernel_sizes': 1 kernel sizes"},
                 {"\"conv_kernel_sizes\": [5, 5]", "\"conv_kernel_sizes\": 5", "'conv_kernel_sizes': expected a list"},
                 {"\"conv_kernel_sizes\": [5, 5]", "\"conv_kernel_sizes\": [5, 0]", "'conv_kernel_sizes[1]': value 0"},
                 {"\"conv_channels\": 32", "\"conv_channels\": 33", "'conv_channels': 33 is odd"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char text[sizeof tiny_config + 16];
        const char *at = strstr(tiny_config, cases[c].from);
        CHECK(at != NULL);
        if (!at) continue;
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - tiny_config), tiny_config, cases[c].to, at + strlen(cases[c].from));
        tp_config *config = tp_config_parse("bad s2t", text);
        tp_model model;
        CHECK_MSG(config && tp_model_build(&model, config, VOCAB) < 0, "%s: accepted", cases[c].to);
        CHECK_MSG(strstr(tp_last_error(), cases[c].message) != NULL, "'%s' lacks '%s'", tp_last_error(), cases[c].message);
        tp_config_free(config);
    }
}

/* A model config's data-side keys: geometry_of's result, or its error containing `message`. */
static int geometry_of(const char *json, tp_s2t_geometry *geometry, const char *message)
{
    tp_config *config = tp_config_parse("model", json);
    int status = config ? tp_s2t_geometry_of(config, geometry) : -1;
    if (status == 0) status = tp_config_check_unused(config);
    if (message) CHECK_MSG(status < 0 && strstr(tp_last_error(), message), "%s: '%s'", json, status < 0 ? tp_last_error() : "accepted");
    else CHECK_MSG(status == 0, "%s: %s", json, tp_last_error());
    tp_config_free(config);
    return status;
}

/* TencentPretrain's specaugment and audio_preprocess keys: read, defaults, refusals. */
static void check_data_keys(void)
{
    tp_s2t_geometry g;
    if (geometry_of("{\"specaugment\": {\"freq_mask_F\": 27, \"freq_mask_N\": 2, \"time_mask_N\": 2, "
                    "\"time_mask_T\": 100, \"time_mask_p\": 0.5, \"time_wrap_W\": 0}, "
                    "\"audio_preprocess\": [\"ceptral_normalize\", \"normalize_means\"]}", &g, NULL) == 0)
        CHECK(g.augment && g.specaugment.freq_masks == 2 && g.specaugment.freq_width == 27 &&
              g.specaugment.time_masks == 2 && g.specaugment.time_width == 100 && g.specaugment.time_fraction == 0.5 &&
              g.specaugment.mask_with_mean && g.cmvn && g.cmvn_means && !g.cmvn_vars);
    if (geometry_of("{\"specaugment\": {\"freq_mask_F\": 0, \"freq_mask_N\": 0, \"time_mask_N\": 1, "
                    "\"time_mask_T\": 4, \"time_mask_p\": 1, \"mask_value\": -2.5}, \"audio_preprocess\": []}", &g,
                    NULL) == 0)
        CHECK(!g.specaugment.mask_with_mean && g.specaugment.mask_value == -2.5f && !g.cmvn);
    static const char *const bad[][2] = {
        {"{\"specaugment\": {\"freq_mask_F\": 27, \"freq_mask_N\": 2, \"time_mask_N\": 2, \"time_mask_T\": 100}}",
         "'specaugment.time_mask_p': missing"},
        {"{\"specaugment\": {\"freq_mask_F\": 27, \"freq_mask_N\": 2, \"time_mask_N\": 2, \"time_mask_T\": 100, "
         "\"time_mask_p\": 1.5}}", "'specaugment.time_mask_p'"},
        {"{\"specaugment\": {\"freq_mask_F\": 27, \"freq_mask_N\": 2, \"time_mask_N\": 2, \"time_mask_T\": 100, "
         "\"time_mask_p\": 1, \"time_warp_W\": 5}}", "'specaugment.time_warp_W'"},
        {"{\"specaugment\": {\"freq_mask_F\": 0, \"freq_mask_N\": 2, \"time_mask_N\": 2, \"time_mask_T\": 100, "
         "\"time_mask_p\": 1}}", "'specaugment.freq_mask_F': 0, but freq_mask_N 2"},
        {"{\"specaugment\": {\"freq_mask_F\": 27, \"freq_mask_N\": 2, \"time_mask_N\": 2, \"time_mask_T\": 100, "
         "\"time_mask_p\": 1, \"freq_mask_n\": 1}}", "'specaugment.freq_mask_n'"},
        {"{\"specaugment\": true}", "'specaugment.freq_mask_N'"},
        {"{\"audio_preprocess\": [\"normalise_means\"]}", "unknown step \"normalise_means\""}};
    for (size_t c = 0; c < sizeof bad / sizeof *bad; c++) geometry_of(bad[c][0], &g, bad[c][1]);
}

/* audio_preprocess on the fixture's utterance: no CMVN keeps the filter banks (not centred), means
 * only centres each column without scaling it, both give unit variances. */
static void check_audio_preprocess(void)
{
    static const char *const configs[3] = {"{\"audio_preprocess\": []}",
                                           "{\"audio_preprocess\": [\"ceptral_normalize\", \"normalize_means\"]}",
                                           "{}"};
    double largest_mean[3] = {0}, smallest_var[3] = {1e30, 1e30, 1e30}, largest_var[3] = {0};
    for (int c = 0; c < 3; c++) {
        tp_s2t_geometry g;
        tp_s2t_set set;
        if (geometry_of(configs[c], &g, NULL) < 0 || tp_s2t_read(DIR "/list.tsv", &g, &with_text, &set) < 0) continue;
        const tp_s2t_utterance *u = &set.items[0];
        for (int64_t j = 0; j < 80; j++) {
            double sum = 0, squares = 0;
            for (int64_t f = 0; f < u->frames; f++) sum += u->features[f * 80 + j], squares += (double)u->features[f * 80 + j] * u->features[f * 80 + j];
            double mean = sum / (double)u->frames, var = squares / (double)u->frames - mean * mean;
            largest_mean[c] = fmax(largest_mean[c], fabs(mean));
            smallest_var[c] = fmin(smallest_var[c], var), largest_var[c] = fmax(largest_var[c], var);
        }
        tp_s2t_set_free(&set);
    }
    CHECK_MSG(largest_mean[0] > 1.0, "no CMVN: column means up to %g", largest_mean[0]);
    CHECK_MSG(largest_mean[1] < 1e-4 && largest_var[1] > 1.5, "means only: |mean| <= %g, variances up to %g",
              largest_mean[1], largest_var[1]);
    CHECK_MSG(largest_mean[2] < 1e-4 && fabs(smallest_var[2] - 1) < 1e-3 && fabs(largest_var[2] - 1) < 1e-3,
              "CMVN: |mean| <= %g, variances %g..%g", largest_mean[2], smallest_var[2], largest_var[2]);
}

/* Three utterances of 30, 17 and 9 frames in one batch: each row's masks are tp_specaugment's on
 * that utterance alone at index epoch * count + example, the padding after it stays zero, and the
 * next epoch draws other masks. */
static void check_specaugment(void)
{
    enum { DIM = 40, COUNT = 3 };
    const int64_t frames[COUNT] = {30, 17, 9}, indices[COUNT] = {2, 0, 1};
    tp_s2t_utterance items[COUNT];
    tp_s2t_set set = {.count = COUNT, .feature_size = DIM, .items = items};
    for (int u = 0; u < COUNT; u++) {
        items[u] = (tp_s2t_utterance){.frames = frames[u], .features = tp_xmalloc((size_t)(frames[u] * DIM) * sizeof(float))};
        for (int64_t i = 0; i < frames[u] * DIM; i++) items[u].features[i] = 1.0f + (float)(i % 7) + (float)u;
    }
    tp_s2t_geometry geometry;
    if (geometry_of("{\"audio_feature_size\": 40, \"specaugment\": {\"freq_mask_F\": 8, \"freq_mask_N\": 2, "
                    "\"time_mask_N\": 2, \"time_mask_T\": 6, \"time_mask_p\": 1.0, \"mask_value\": 0}}",
                    &geometry, NULL) < 0)
        return;
    float *first_epoch = tp_xmalloc((size_t)(COUNT * 30 * DIM) * sizeof(float));
    for (int64_t epoch = 0; epoch < 2; epoch++) {
        tp_batch batch;
        const int32_t tgt_src[COUNT] = {0, 0, 0}; /* one decoder column each, no labels */
        tp_s2t_fill_batch(&set, indices, COUNT, tgt_src, NULL, 1, &geometry, &batch);
        tp_s2t_augment_batch(&set, indices, COUNT, 7, epoch, &geometry, &batch);
        int64_t masked = 0, differing = 0;
        for (int r = 0; r < COUNT; r++) {
            const tp_s2t_utterance *u = &items[indices[r]];
            float want[30 * DIM];
            memcpy(want, u->features, (size_t)(u->frames * DIM) * sizeof(float));
            tp_specaugment(want, u->frames, DIM, &geometry.specaugment, 7, TP_STREAM_SPECAUGMENT,
                           (uint64_t)(epoch * COUNT + indices[r]));
            const float *row = batch.audio + r * 30 * DIM;
            CHECK_MSG(memcmp(row, want, (size_t)(u->frames * DIM) * sizeof(float)) == 0, "row %d epoch %lld", r,
                      (long long)epoch);
            for (int64_t i = 0; i < u->frames * DIM; i++) masked += row[i] == 0.0f;
            for (int64_t i = u->frames * DIM; i < 30 * DIM; i++) CHECK(row[i] == 0.0f);
        }
        if (epoch == 0) memcpy(first_epoch, batch.audio, (size_t)(COUNT * 30 * DIM) * sizeof(float));
        else
            for (int64_t i = 0; i < COUNT * 30 * DIM; i++) differing += first_epoch[i] != batch.audio[i];
        CHECK_MSG(masked > 0, "epoch %lld masked nothing", (long long)epoch);
        CHECK_MSG(epoch == 0 || differing > 0, "epoch 1 drew epoch 0's masks");
        tp_batch_free(&batch);
    }
    free(first_epoch);
    for (int u = 0; u < COUNT; u++) free(items[u].features);
}

int main(void)
{
    tp_scratch_init("s2t_data");
    omp_set_num_threads(1); /* tensors of a few thousand values: threads only add waiting on a busy machine */
    defaults = default_geometry();
    check_features();
    check_errors();
    check_config_errors();
    check_formats();
    check_learning();
    check_data_keys();
    check_audio_preprocess();
    check_specaugment();
    const int64_t kernels[2] = {5, 5};
    /* transformers: for each layer, length = (length - 1) // 2 + 1 */
    CHECK(tp_s2t_subsampled_frames(23, kernels, 2) == 6 && tp_s2t_subsampled_frames(48, kernels, 2) == 12);
    CHECK(tp_s2t_subsampled_frames(1, kernels, 2) == 1 && tp_s2t_subsampled_frames(1000, kernels, 2) == 250);
    return tp_test_finish("test_s2t_data");
}
