/* core/audio and core/fft: WAV reading against Python's wave module, Kaldi filter banks against
 * torchaudio.compliance.kaldi.fbank on real recordings (the Asterisk prompts that
 * scripts/fetch_data.sh puts in data/media/asterisk, 8 kHz) and a 16 kHz chirp, CMVN against
 * fairseq's formula in numpy, the FFT against the DFT's definition, FLAC and stereo through a
 * libsndfile round trip, SpecAugment's determinism and bounds, and bad audio files.
 *
 * References: tests/reference/make_media_fixture.py -> tests/fixtures/media/{fbank,cmvn}.safetensors.
 * Only statistics of the recordings' features are committed (the audio is CC-BY-SA): per setting
 * the frame count, every frame's mean, every bin's mean and standard deviation over frames, and
 * three whole frames. */
#include "core/audio.h"
#include "core/error.h"
#include "core/fft.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "support/fixture.h"
#include "support/scratch.h"

#include <math.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/media"
#define ASTERISK "data/media/asterisk"
/* The bar for fbank parity with torchaudio (absolute, on log mel energies). */
#define FBANK_TOLERANCE 1e-3
/* On a float64 waveform torchaudio computes in double after its float32 mel banks, as tp does;
 * 4 of the 250 weights at 8 kHz differ in their last bits (torch's float32 log), 1.5e-5 relative. */
#define FLOAT64_TOLERANCE 5e-5
/* ascending-2tone.wav is two pure synthetic tones, not speech: bins far below the tones' power
 * hold only window leakage, where torch's float32 rounding shows (its own float32 and float64
 * results differ by 4.2e-3 there; tp is within 3.8e-6 of the float64 ones). */
#define TONE_TOLERANCE 5e-3

static const char *const recordings[] = {"activated.wav", "agent-alreadyon.wav", "auth-incorrect.wav",
                                         "ascending-2tone.wav", "beep.wav", "digits/5.wav", "letters/z.wav",
                                         "silence/1.wav", "demo-congrats.wav", "chirp16k.wav"};

static double worst_fbank_error, worst_float64_error;

#define fixture(file, ...) tp_fixture_tensor(file, "tests/reference/make_media_fixture.py", __VA_ARGS__)

static const char *recording_path(const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", strcmp(name, "chirp16k.wav") == 0 ? FIXTURES : ASTERISK, name);
    return path;
}

/* ---- FFT against the definition ---- */

static void test_fft(void)
{
    static const int64_t sizes[] = {4, 8, 64, 256, 512};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int64_t n = sizes[s];
        tp_fft_plan plan;
        CHECK(tp_fft_plan_init(&plan, n) == 0);
        double *x = tp_xmalloc(sizeof(double) * n), *spectrum = tp_xmalloc(sizeof(double) * (n + 2));
        for (int64_t t = 0; t < n; t++) x[t] = tp_uniform(5, 77, (uint64_t)(n * 1000 + t)) * 2.0 - 1.0;
        tp_fft_real(&plan, x, spectrum);
        double worst = 0.0, scale = 0.0;
        for (int64_t k = 0; k <= n / 2; k++) {
            long double re = 0.0, im = 0.0;
            for (int64_t t = 0; t < n; t++) {
                long double angle = -2.0L * 3.14159265358979323846264338327950288L * (long double)((k * t) % n) / n;
                re += x[t] * cosl(angle);
                im += x[t] * sinl(angle);
            }
            worst = fmax(worst, fmax(fabs(spectrum[2 * k] - (double)re), fabs(spectrum[2 * k + 1] - (double)im)));
            scale = fmax(scale, sqrt((double)(re * re + im * im)));
        }
        CHECK_MSG(worst <= 1e-12 * scale, "n = %lld: max error %.3g (scale %.3g)", (long long)n, worst, scale);
        free(x);
        free(spectrum);
        tp_fft_plan_free(&plan);
    }
    tp_fft_plan plan;
    CHECK(tp_fft_plan_init(&plan, 200) == -1 && strcmp(tp_last_error(), "FFT length 200 is not a power of two >= 4") == 0);
}

/* ---- reading and fbank against the fixtures ---- */

static uint64_t int16_checksum(const float *samples, int64_t count)
{
    uint64_t sum = 0;
    for (int64_t i = 0; i < count; i++) {
        long value = lrintf(samples[i] * 32768.0f);
        sum += (uint64_t)(value & 0xFFFF) * (uint64_t)(i + 1);
    }
    return sum;
}

static double max_abs_difference(const float *actual, const float *expected, int64_t n)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)actual[i] - expected[i]));
    return worst;
}

static void check_fbank(const tp_st_file *file, const char *name, const char *setting, const tp_audio *audio,
                        const tp_fbank_options *options, double tolerance)
{
    char key[256];
    snprintf(key, sizeof key, "%s/%s", name, setting);
    int64_t frames = tp_fbank_frame_count(audio->count, options), dim = tp_fbank_dim(options);
    CHECK_MSG(frames == *(const int64_t *)fixture(file, "%s/frames", key)->data, "%s: %lld frames", key,
              (long long)frames);
    if (frames == 0 || frames != *(const int64_t *)fixture(file, "%s/frames", key)->data) return;
    float *features = tp_xmalloc(sizeof(float) * (size_t)(frames * dim));
    CHECK_MSG(tp_fbank(audio->samples, audio->count, options, features) == 0, "%s", tp_last_error());
    float *frame_means = tp_xcalloc((size_t)frames, sizeof(float));
    float *bin_means = tp_xcalloc((size_t)dim, sizeof(float)), *bin_stds = tp_xcalloc((size_t)dim, sizeof(float));
    for (int64_t f = 0; f < frames; f++) {
        double sum = 0.0;
        for (int64_t j = 0; j < dim; j++) sum += features[f * dim + j];
        frame_means[f] = (float)(sum / dim);
    }
    for (int64_t j = 0; j < dim; j++) {
        double sum = 0.0, squares = 0.0;
        for (int64_t f = 0; f < frames; f++) sum += features[f * dim + j];
        double mean = sum / frames;
        for (int64_t f = 0; f < frames; f++) squares += (features[f * dim + j] - mean) * (features[f * dim + j] - mean);
        bin_means[j] = (float)mean;
        bin_stds[j] = (float)sqrt(squares / frames);
    }
    const float *picked = fixture(file, "%s/picked", key)->data;
    const int64_t rows[3] = {0, frames / 2, frames - 1};
    double errors[4] = {0.0};
    for (int r = 0; r < 3; r++)
        errors[0] = fmax(errors[0], max_abs_difference(features + rows[r] * dim, picked + r * dim, dim));
    errors[1] = max_abs_difference(frame_means, fixture(file, "%s/frame_means", key)->data, frames);
    errors[2] = max_abs_difference(bin_means, fixture(file, "%s/bin_means", key)->data, dim);
    errors[3] = max_abs_difference(bin_stds, fixture(file, "%s/bin_stds", key)->data, dim);
    for (int e = 0; e < 4; e++) {
        static const char *const what[] = {"whole frames", "frame means", "bin means", "bin stds"};
        CHECK_MSG(errors[e] <= tolerance, "%s: %s differ from torchaudio's by %.3g", key, what[e], errors[e]);
        if (tolerance == FBANK_TOLERANCE) worst_fbank_error = fmax(worst_fbank_error, errors[e]);
        if (tolerance == FLOAT64_TOLERANCE) worst_float64_error = fmax(worst_float64_error, errors[e]);
    }
    if (getenv("TP_TEST_VERBOSE"))
        fprintf(stderr, "%s: %lld frames, max |tp - torchaudio|: frames %.2g, frame means %.2g, bin means %.2g, stds %.2g\n",
                key, (long long)frames, errors[0], errors[1], errors[2], errors[3]);
    free(features);
    free(frame_means);
    free(bin_means);
    free(bin_stds);
}

static void test_recordings(const tp_st_file *file)
{
    for (size_t i = 0; i < sizeof recordings / sizeof *recordings; i++) {
        const char *name = recordings[i];
        tp_audio audio;
        int status = tp_audio_read(recording_path(name), &audio);
        CHECK_MSG(status == 0, "%s", tp_last_error());
        if (status != 0) continue;
        const int64_t *count_rate = fixture(file, "%s/samples", name)->data;
        CHECK_MSG(audio.count == count_rate[0] && audio.sample_rate == count_rate[1], "%s: %lld samples at %d Hz", name,
                  (long long)audio.count, audio.sample_rate);
        CHECK_MSG(int16_checksum(audio.samples, audio.count) == *(const uint64_t *)fixture(file, "%s/checksum", name)->data,
                  "%s: samples differ from Python's wave module's (another package version?)", name);
        tp_fbank_options mel80 = tp_fbank_defaults(audio.sample_rate);
        tp_fbank_options mel40_energy = mel80, mel23 = mel80;
        mel40_energy.num_mel_bins = 40;
        mel40_energy.use_energy = 1;
        mel23.num_mel_bins = 23;
        /* Kaldi and TencentPretrain's s2t scale the samples back to 16-bit integers. */
        for (int64_t s = 0; s < audio.count; s++) audio.samples[s] *= 32768.0f;
        double tolerance = strcmp(name, "ascending-2tone.wav") == 0 ? TONE_TOLERANCE : FBANK_TOLERANCE;
        check_fbank(file, name, "mel80", &audio, &mel80, tolerance);
        check_fbank(file, name, "mel40_energy", &audio, &mel40_energy, tolerance);
        check_fbank(file, name, "mel23_defaults", &audio, &mel23, tolerance);
        check_fbank(file, name, "mel80_float64", &audio, &mel80, FLOAT64_TOLERANCE);
        tp_audio_free(&audio);
    }
    fprintf(stderr, "fbank: max |tp - torchaudio| on the recordings: %.3g (float32 waveform, tolerance %g), %.3g "
            "(float64, tolerance %g)\n", worst_fbank_error, FBANK_TOLERANCE, worst_float64_error, FLOAT64_TOLERANCE);
}

/* ---- FLAC and stereo through libsndfile ---- */

static const char *write_sound(const char *name, int format, int channels, const short *interleaved, sf_count_t frames)
{
    const char *path = tp_scratch_path(name);
    SF_INFO info = {.samplerate = 16000, .channels = channels, .format = format};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    if (!sf || sf_writef_short(sf, interleaved, frames) != frames) {
        fprintf(stderr, "%s: cannot write: %s\n", path, sf_strerror(sf));
        exit(1);
    }
    sf_close(sf);
    return path;
}

static void test_flac_and_stereo(void)
{
    enum { FRAMES = 5000 };
    short *stereo = tp_xmalloc(sizeof(short) * 2 * FRAMES);
    for (int i = 0; i < FRAMES; i++) {
        stereo[2 * i] = (short)(20000.0 * sin(i * 0.05));
        stereo[2 * i + 1] = (short)(i % 200 * 100 - 10000);
    }
    const char *paths[] = {write_sound("stereo.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 2, stereo, FRAMES),
                           write_sound("stereo.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 2, stereo, FRAMES)};
    for (int p = 0; p < 2; p++) {
        tp_audio audio;
        int status = tp_audio_read(paths[p], &audio);
        CHECK_MSG(status == 0, "%s", tp_last_error());
        if (status != 0) continue;
        CHECK(audio.count == FRAMES && audio.sample_rate == 16000);
        double worst = 0.0;
        for (int i = 0; i < FRAMES && audio.count == FRAMES; i++)
            worst = fmax(worst, fabs(audio.samples[i] - (stereo[2 * i] + stereo[2 * i + 1]) / 65536.0));
        CHECK_MSG(worst <= 1e-7, "%s: mono differs from the channels' mean by %.3g", paths[p], worst);
        tp_audio_free(&audio);
    }
    /* A FLAC cut short: the stream ends before its header's frame count. */
    size_t size = 0;
    char *flac = tp_read_file(paths[0], &size);
    if (flac) {
        tp_audio audio;
        int status = tp_audio_read(tp_scratch_write("cut.flac", flac, size * 2 / 3), &audio);
        CHECK(status == -1 && strncmp(tp_last_error(), tp_scratch_path("cut.flac"), strlen(tp_scratch_path("cut.flac"))) == 0);
        free(flac);
    }
    free(stereo);
}

/* ---- CMVN ---- */

static void test_cmvn(const tp_st_file *file)
{
    const tp_st_tensor *input = fixture(file, "input");
    int64_t frames = input->shape[0], dim = input->shape[1];
    float *x = tp_xmalloc(sizeof(float) * (size_t)input->numel);
    memcpy(x, input->data, sizeof(float) * (size_t)input->numel);
    tp_cmvn(x, frames, dim, 1, 0);
    double means_error = max_abs_difference(x, fixture(file, "means_only")->data, input->numel);
    memcpy(x, input->data, sizeof(float) * (size_t)input->numel);
    tp_cmvn(x, frames, dim, 1, 1);
    double full_error = max_abs_difference(x, fixture(file, "normalised")->data, input->numel);
    /* Both are float32 roundings of the same double computation: at most an ulp or two apart. */
    CHECK_MSG(means_error <= 2e-6 && full_error <= 2e-6, "CMVN: max error %.3g (means), %.3g (variance)", means_error,
              full_error);
    free(x);
}

/* ---- SpecAugment ---- */

static void test_specaugment(void)
{
    enum { FRAMES = 120, DIM = 80 };
    tp_specaugment_options options = {.freq_masks = 2, .freq_width = 27, .time_masks = 2, .time_width = 40,
                                      .time_fraction = 1.0, .mask_value = -99.0f};
    float *base = tp_xmalloc(sizeof(float) * FRAMES * DIM), *a = tp_xmalloc(sizeof(float) * FRAMES * DIM);
    float *b = tp_xmalloc(sizeof(float) * FRAMES * DIM);
    for (int i = 0; i < FRAMES * DIM; i++) base[i] = tp_uniform(1, 2, (uint64_t)i);
    int changed_by_index = 0;
    for (uint64_t index = 0; index < 50; index++) {
        memcpy(a, base, sizeof(float) * FRAMES * DIM);
        memcpy(b, base, sizeof(float) * FRAMES * DIM);
        CHECK(tp_specaugment(a, FRAMES, DIM, &options, 42, 6, index) == 0);
        CHECK(tp_specaugment(b, FRAMES, DIM, &options, 42, 6, index) == 0);
        CHECK(memcmp(a, b, sizeof(float) * FRAMES * DIM) == 0); /* same (seed, stream, index): same masks */
        memcpy(b, base, sizeof(float) * FRAMES * DIM);
        CHECK(tp_specaugment(b, FRAMES, DIM, &options, 42, 6, index + 1000) == 0);
        changed_by_index += memcmp(a, b, sizeof(float) * FRAMES * DIM) != 0;
        /* A value is either untouched or the mask value; masked columns (all frames) and rows (all
         * bins) stay within the bounds: at most 2 bands of 26 bins and 2 runs of 39 frames. */
        int full_columns = 0, full_rows = 0, other_values = 0;
        for (int j = 0; j < DIM; j++) {
            int masked = 0;
            for (int f = 0; f < FRAMES; f++) masked += a[f * DIM + j] == -99.0f;
            full_columns += masked == FRAMES;
        }
        for (int f = 0; f < FRAMES; f++) {
            int masked = 0;
            for (int j = 0; j < DIM; j++) {
                other_values += a[f * DIM + j] != -99.0f && a[f * DIM + j] != base[f * DIM + j];
                masked += a[f * DIM + j] == -99.0f;
            }
            full_rows += masked == DIM;
        }
        CHECK(other_values == 0 && full_columns <= 2 * 26 && full_rows <= 2 * 39);
    }
    CHECK(changed_by_index >= 45);
    /* Time masks never exceed floor(frames * time_fraction) - 1 frames; fewer bins than the band
     * width: nothing is masked (fairseq returns early). */
    options = (tp_specaugment_options){.time_masks = 1, .time_width = 100, .time_fraction = 0.05, .mask_value = -99.0f};
    for (uint64_t index = 0; index < 50; index++) {
        memcpy(a, base, sizeof(float) * FRAMES * DIM);
        CHECK(tp_specaugment(a, FRAMES, DIM, &options, 42, 6, index) == 0);
        int masked_rows = 0;
        for (int f = 0; f < FRAMES; f++) masked_rows += a[f * DIM] == -99.0f;
        CHECK(masked_rows <= 5);
    }
    options = (tp_specaugment_options){.freq_masks = 1, .freq_width = 81, .time_masks = 3, .time_width = 10,
                                       .time_fraction = 1.0, .mask_with_mean = 1};
    memcpy(a, base, sizeof(float) * FRAMES * DIM);
    CHECK(tp_specaugment(a, FRAMES, DIM, &options, 42, 6, 0) == 0 && memcmp(a, base, sizeof(float) * FRAMES * DIM) == 0);
    options.freq_width = 0;
    CHECK(tp_specaugment(a, FRAMES, DIM, &options, 42, 6, 0) == -1);
    free(base);
    free(a);
    free(b);
}

/* ---- bad inputs ---- */

static int read_audio_bytes(const char *name, const void *data, size_t bytes)
{
    tp_audio audio;
    int status = tp_audio_read(tp_scratch_write(name, data, bytes), &audio);
    if (status == 0) tp_audio_free(&audio);
    return status;
}

static int failed_naming(int status, const char *path)
{
    if (status == -1 && strncmp(tp_last_error(), path, strlen(path)) == 0 && tp_last_error()[strlen(path)] == ':')
        return 1;
    fprintf(stderr, "  status %d, message: %s\n", status, status ? tp_last_error() : "-");
    return 0;
}

static void test_bad_audio(void)
{
    size_t size = 0;
    char *wav = tp_read_file(ASTERISK "/activated.wav", &size);
    CHECK_MSG(wav != NULL, "%s", tp_last_error());
    if (!wav) return;
    size_t lengths[] = {0, 4, 12, 20, 40, 44, 45, 1000, size / 2, size - 1};
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++)
        CHECK_MSG(failed_naming(read_audio_bytes("cut.wav", wav, lengths[i]), tp_scratch_path("cut.wav")),
                  "activated.wav cut to %zu bytes", lengths[i]);
    char expected[512];
    snprintf(expected, sizeof expected, "%s: WAV data chunk at byte 36 promises %zu bytes, the file ends at byte %zu",
             tp_scratch_path("half.wav"), size - 44, size / 2);
    CHECK(read_audio_bytes("half.wav", wav, size / 2) == -1 && strcmp(tp_last_error(), expected) == 0);
    /* fuzz_wav's hang: a LIST chunk claiming 4 GiB before the samples (libsndfile spun on it). */
    char list[48];
    memcpy(list, wav, 36);
    memcpy(list + 36, "LIST\xff\xff\xff\xff", 8);
    memset(list + 44, 0xff, 4);
    snprintf(expected, sizeof expected, "%s: WAV LIST chunk at byte 36 promises 4294967295 bytes, the file ends at byte 48",
             tp_scratch_path("list.wav"));
    CHECK(read_audio_bytes("list.wav", list, sizeof list) == -1 && strcmp(tp_last_error(), expected) == 0);
    /* The same after the samples (fuzz_wav, tests/fuzz/corpus/wav/list-after-data-hang.wav); a LIST chunk
     * that fits there is read as before. */
    char *tail = tp_xmalloc(size + 12);
    memcpy(tail, wav, size);
    memcpy(tail + size, "LIST\x04\0\0\0INFO", 12);
    CHECK_MSG(read_audio_bytes("tail.wav", tail, size + 12) == 0, "%s", tp_last_error());
    memcpy(tail + size + 4, "\xff\xff\xff\xff", 4);
    snprintf(expected, sizeof expected,
             "%s: WAV LIST chunk at byte %zu promises 4294967295 bytes, the file ends at byte %zu",
             tp_scratch_path("tail.wav"), size, size + 12);
    CHECK(read_audio_bytes("tail.wav", tail, size + 12) == -1 && strcmp(tp_last_error(), expected) == 0);
    free(tail);
    memcpy(wav + 8, "AVI ", 4); /* a RIFF file that is not a WAVE */
    CHECK(failed_naming(read_audio_bytes("avi.wav", wav, size), tp_scratch_path("avi.wav")));
    free(wav);
    /* A float WAV holding a NaN. */
    const float with_nan[4] = {0.1f, NAN, 0.2f, 0.3f};
    SF_INFO info = {.samplerate = 8000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *sf = sf_open(tp_scratch_path("nan.wav"), SFM_WRITE, &info);
    CHECK(sf && sf_writef_float(sf, with_nan, 4) == 4);
    if (sf) sf_close(sf);
    char nan_message[512];
    snprintf(nan_message, sizeof nan_message, "%s: sample 1 is not a finite number", tp_scratch_path("nan.wav"));
    tp_audio audio;
    CHECK(tp_audio_read(tp_scratch_path("nan.wav"), &audio) == -1 && strcmp(tp_last_error(), nan_message) == 0);
    CHECK(failed_naming(tp_audio_read(tp_scratch_dir(), &audio), tp_scratch_dir()));
    CHECK(failed_naming(tp_audio_read(tp_scratch_path("missing.wav"), &audio), tp_scratch_path("missing.wav")));
    CHECK(failed_naming(read_audio_bytes("text.wav", "hello, world\n", 13), tp_scratch_path("text.wav")));
}

int main(void)
{
    tp_scratch_init("audio");
    tp_st_file *fbank = tp_st_open(FIXTURES "/fbank.safetensors");
    tp_st_file *cmvn = tp_st_open(FIXTURES "/cmvn.safetensors");
    CHECK_MSG(fbank && cmvn, "%s", tp_last_error());
    if (!fbank || !cmvn) return tp_test_finish("test_audio");
    test_fft();
    test_recordings(fbank);
    test_flac_and_stereo();
    test_cmvn(cmvn);
    test_specaugment();
    test_bad_audio();
    tp_st_close(fbank);
    tp_st_close(cmvn);
    return tp_test_finish("test_audio");
}
