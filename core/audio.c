#include "audio.h"

#include "error.h"
#include "fft.h"
#include "fileio.h"
#include "rng.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading ---- */

/* More samples than this are refused (2^31: 74 hours at 8 kHz, 12 hours at 48 kHz). */
#define MAX_SAMPLES ((int64_t)1 << 31)

typedef struct memory_file {
    const uint8_t *data;
    sf_count_t size, offset;
} memory_file;

static sf_count_t memory_length(void *user) { return ((memory_file *)user)->size; }

static sf_count_t memory_seek(sf_count_t offset, int whence, void *user)
{
    memory_file *file = user;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? file->offset : file->size;
    sf_count_t target = base + offset;
    if (target < 0 || target > file->size) return -1;
    file->offset = target;
    return target;
}

static sf_count_t memory_read(void *out, sf_count_t count, void *user)
{
    memory_file *file = user;
    if (count > file->size - file->offset) count = file->size - file->offset;
    if (count <= 0) return 0;
    memcpy(out, file->data + file->offset, (size_t)count);
    file->offset += count;
    return count;
}

static sf_count_t memory_write(const void *data, sf_count_t count, void *user) { return 0; }

static sf_count_t memory_tell(void *user) { return ((memory_file *)user)->offset; }

static uint32_t read_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Every chunk of a WAV must fit in the file: libsndfile reads a data chunk that runs past the end
 * as a shorter file, and spins for minutes on an oversized LIST chunk before or after the samples
 * (fuzz_wav, tests/fuzz/corpus/wav/list-after-data-hang.wav). */
static int check_wav_chunks(const char *path, const uint8_t *data, size_t size)
{
    if (size < 12 || memcmp(data, "RIFF", 4) != 0 || memcmp(data + 8, "WAVE", 4) != 0) return 0;
    for (size_t offset = 12; offset + 8 <= size;) {
        uint64_t chunk = read_le32(data + offset + 4);
        if (offset + 8 + chunk > size) {
            char id[5] = {0};
            for (int i = 0; i < 4; i++) id[i] = isprint(data[offset + i]) ? (char)data[offset + i] : '?';
            return tp_fail("%s: WAV %s chunk at byte %zu promises %llu bytes, the file ends at byte %zu", path, id,
                           offset, (unsigned long long)chunk, size);
        }
        offset += 8 + chunk + (chunk & 1);
    }
    return 0; /* a missing fmt or data chunk: libsndfile says so */
}

/* Reads every frame, averaging channels; the buffer grows with the data actually decoded. */
static int read_frames(const char *path, SNDFILE *sf, const SF_INFO *info, tp_audio *audio)
{
    enum { CHUNK = 4096 };
    float *interleaved = tp_xmalloc(sizeof(float) * CHUNK * (size_t)info->channels);
    int64_t capacity = 0;
    for (;;) {
        sf_count_t got = sf_readf_float(sf, interleaved, CHUNK);
        if (got <= 0) break;
        if (audio->count + got > MAX_SAMPLES) {
            free(interleaved);
            return tp_fail("%s: more than %lld samples", path, (long long)MAX_SAMPLES);
        }
        if (audio->count + got > capacity) {
            capacity = capacity * 2 > audio->count + got ? capacity * 2 : audio->count + got;
            audio->samples = tp_xrealloc(audio->samples, sizeof(float) * (size_t)capacity);
        }
        for (sf_count_t f = 0; f < got; f++) {
            double sum = 0.0;
            for (int c = 0; c < info->channels; c++) sum += interleaved[f * info->channels + c];
            if (!isfinite(sum)) { /* float WAVs can hold NaN or infinity */
                free(interleaved);
                return tp_fail("%s: sample %lld is not a finite number", path, (long long)(audio->count + f));
            }
            audio->samples[audio->count + f] = (float)(sum / info->channels);
        }
        audio->count += got;
    }
    free(interleaved);
    if (sf_error(sf) != SF_ERR_NO_ERROR) return tp_fail("%s: %s", path, sf_strerror(sf));
    if (audio->count != info->frames)
        return tp_fail("%s: audio ends after %lld of the %lld frames its header gives", path, (long long)audio->count,
                       (long long)info->frames);
    return 0;
}

int tp_audio_read(const char *path, tp_audio *audio)
{
    memset(audio, 0, sizeof *audio);
    size_t size = 0;
    uint8_t *data = (uint8_t *)tp_read_file(path, &size);
    if (!data) return -1;
    int status = check_wav_chunks(path, data, size);
    if (status == 0) {
        memory_file file = {data, (sf_count_t)size, 0};
        SF_VIRTUAL_IO io = {memory_length, memory_seek, memory_read, memory_write, memory_tell};
        SF_INFO info = {0};
        SNDFILE *sf = sf_open_virtual(&io, SFM_READ, &info, &file);
        if (!sf)
            status = tp_fail("%s: %s", path, sf_strerror(NULL));
        else if (info.channels < 1 || info.samplerate < 1)
            status = tp_fail("%s: %d channels at %d Hz", path, info.channels, info.samplerate);
        else {
            audio->sample_rate = info.samplerate;
            status = read_frames(path, sf, &info, audio);
        }
        if (sf) sf_close(sf);
    }
    free(data);
    if (status != 0) tp_audio_free(audio);
    return status;
}

void tp_audio_free(tp_audio *audio)
{
    free(audio->samples);
    memset(audio, 0, sizeof *audio);
}

/* ---- Kaldi filter banks (torchaudio.compliance.kaldi.fbank) ---- */

tp_fbank_options tp_fbank_defaults(double sample_frequency)
{
    return (tp_fbank_options){
        .sample_frequency = sample_frequency, .frame_length_ms = 25.0, .frame_shift_ms = 10.0,
        .num_mel_bins = 80, .low_freq = 20.0, .high_freq = 0.0, .preemphasis = 0.97,
        .remove_dc_offset = 1, .window = TP_WINDOW_POVEY, .round_to_power_of_two = 1,
        .use_energy = 0, .raw_energy = 1, .energy_floor = 1.0,
    };
}

/* Samples per frame and per shift, truncated as torchaudio does: int(rate * ms * 0.001); 0 for
 * values out of range (NaN included). */
static int64_t samples_in(double rate, double ms)
{
    double samples = rate * ms * 0.001;
    return samples >= 1.0 && samples < 1e12 ? (int64_t)samples : 0;
}

static int64_t frame_samples(const tp_fbank_options *o) { return samples_in(o->sample_frequency, o->frame_length_ms); }
static int64_t shift_samples(const tp_fbank_options *o) { return samples_in(o->sample_frequency, o->frame_shift_ms); }

int64_t tp_fbank_frame_count(int64_t count, const tp_fbank_options *options)
{
    int64_t frame = frame_samples(options), shift = shift_samples(options);
    if (frame < 1 || shift < 1 || count < frame) return 0;
    return 1 + (count - frame) / shift;
}

int64_t tp_fbank_dim(const tp_fbank_options *options) { return options->num_mel_bins + (options->use_energy ? 1 : 0); }

/* a * b rounded to float before any addition: torch runs the product and the sum as two ops,
 * while GCC (-ffp-contract=fast, the GNU C default) would fuse them into one multiply-add. */
static float rounded_product(float a, float b)
{
    volatile float product = a * b;
    return product;
}

/* torch's float32 log agrees with the correctly rounded one (via double) on 126 of the 128 FFT
 * bins at 8 kHz; glibc's logf on 105. */
static float mel_scale(float hz) { return rounded_product(1127.0f, (float)log((double)(1.0f + hz / 700.0f))); }

/* torchaudio's get_mel_banks, step for step in float32 as torch computes it: a weight near a
 * triangle's edge is the small difference of two mel values near 2000, so rounding them
 * differently would move such a weight by 1e-5 of the triangle, far more than 1e-3 in the log when
 * it is a narrow bin's only weight.  weights: num_mel_bins x fft_bins (the Nyquist bin gets 0). */
static void mel_banks(const tp_fbank_options *o, int64_t padded, float *weights)
{
    int64_t fft_bins = padded / 2;
    double nyquist = 0.5 * o->sample_frequency;
    double high = o->high_freq <= 0.0 ? o->high_freq + nyquist : o->high_freq;
    double fft_bin_width = o->sample_frequency / (double)padded;
    double mel_low = 1127.0 * log(1.0 + o->low_freq / 700.0), mel_high = 1127.0 * log(1.0 + high / 700.0);
    double mel_delta = (mel_high - mel_low) / (o->num_mel_bins + 1);
    float low_f = (float)mel_low, delta_f = (float)mel_delta;
    for (int m = 0; m < o->num_mel_bins; m++) {
        float left = low_f + rounded_product((float)m, delta_f);
        float center = low_f + rounded_product((float)m + 1.0f, delta_f);
        float right = low_f + rounded_product((float)m + 2.0f, delta_f);
        for (int64_t k = 0; k < fft_bins; k++) {
            float mel = mel_scale((float)fft_bin_width * (float)k);
            float up = (mel - left) / (center - left), down = (right - mel) / (right - center);
            float w = up < down ? up : down;
            weights[m * fft_bins + k] = w > 0.0f ? w : 0.0f;
        }
    }
}

static void window_function(tp_window window, int64_t size, double *out)
{
    for (int64_t i = 0; i < size; i++) {
        double phase = 2.0 * M_PI * (double)i / (double)(size - 1);
        double hann = 0.5 - 0.5 * cos(phase);
        out[i] = window == TP_WINDOW_POVEY     ? pow(hann, 0.85)
                 : window == TP_WINDOW_HANNING ? hann
                 : window == TP_WINDOW_HAMMING ? 0.54 - 0.46 * cos(phase)
                                               : 1.0;
    }
}

static int check_fbank_options(const tp_fbank_options *o, int64_t frame)
{
    double nyquist = 0.5 * o->sample_frequency;
    double high = o->high_freq <= 0.0 ? o->high_freq + nyquist : o->high_freq;
    if (!(o->sample_frequency > 0.0) || frame < 2 || shift_samples(o) < 1)
        return tp_fail("fbank: a %g ms frame / %g ms shift at %g Hz has fewer than 2 / 1 samples", o->frame_length_ms,
                       o->frame_shift_ms, o->sample_frequency);
    if (o->num_mel_bins < 3) return tp_fail("fbank: num_mel_bins %d (at least 3)", o->num_mel_bins);
    if (!(o->low_freq >= 0.0 && o->low_freq < high && high <= nyquist))
        return tp_fail("fbank: need 0 <= low_freq (%g) < high_freq (%g) <= Nyquist (%g)", o->low_freq, high, nyquist);
    return 0;
}

/* One frame: DC offset, energy, pre-emphasis, window, power spectrum; returns the log energy. */
static double frame_power(const float *samples, int64_t frame, int64_t padded, const tp_fbank_options *o,
                          const double *window, const tp_fft_plan *plan, double *buffer, double *spectrum,
                          double *power)
{
    const double epsilon = FLT_EPSILON; /* torch.finfo(torch.float).eps */
    double mean = 0.0, energy = 0.0;
    for (int64_t i = 0; i < frame; i++) mean += samples[i];
    mean = o->remove_dc_offset ? mean / (double)frame : 0.0;
    for (int64_t i = 0; i < frame; i++) buffer[i] = samples[i] - mean;
    if (o->raw_energy)
        for (int64_t i = 0; i < frame; i++) energy += buffer[i] * buffer[i];
    for (int64_t i = frame - 1; i > 0; i--) buffer[i] -= o->preemphasis * buffer[i - 1];
    buffer[0] -= o->preemphasis * buffer[0];
    for (int64_t i = 0; i < frame; i++) buffer[i] *= window[i];
    if (!o->raw_energy)
        for (int64_t i = 0; i < frame; i++) energy += buffer[i] * buffer[i];
    for (int64_t i = frame; i < padded; i++) buffer[i] = 0.0;
    tp_fft_real(plan, buffer, spectrum);
    for (int64_t k = 0; k < padded / 2; k++)
        power[k] = spectrum[2 * k] * spectrum[2 * k] + spectrum[2 * k + 1] * spectrum[2 * k + 1];
    double log_energy = log(fmax(energy, epsilon));
    if (o->energy_floor > 0.0) log_energy = fmax(log_energy, log(o->energy_floor));
    return log_energy;
}

int tp_fbank(const float *samples, int64_t count, const tp_fbank_options *options, float *features)
{
    int64_t frame = frame_samples(options), shift = shift_samples(options);
    if (check_fbank_options(options, frame) != 0) return -1;
    int64_t frames = tp_fbank_frame_count(count, options), dim = tp_fbank_dim(options);
    if (frames == 0) return 0;
    int64_t padded = frame;
    if (options->round_to_power_of_two)
        for (padded = 4; padded < frame; padded *= 2) {}
    tp_fft_plan plan;
    if (tp_fft_plan_init(&plan, padded) != 0)
        return tp_fail("fbank: a %lld-sample frame needs round_to_power_of_two", (long long)frame);
    int64_t fft_bins = padded / 2;
    float *weights = tp_xmalloc(sizeof(float) * (size_t)(options->num_mel_bins * fft_bins));
    double *window = tp_xmalloc(sizeof(double) * (size_t)frame);
    mel_banks(options, padded, weights);
    window_function(options->window, frame, window);
    /* Each triangle covers a few FFT bins: [first, end) of its non-zero weights. */
    int64_t *support = tp_xmalloc(sizeof(int64_t) * 2 * (size_t)options->num_mel_bins);
    for (int m = 0; m < options->num_mel_bins; m++) {
        const float *w = weights + m * fft_bins;
        int64_t first = 0, end = fft_bins;
        while (first < fft_bins && w[first] == 0.0f) first++;
        while (end > first && w[end - 1] == 0.0f) end--;
        support[2 * m] = first;
        support[2 * m + 1] = end;
    }
#pragma omp parallel if (frames > 64)
    {
        double *buffer = tp_xmalloc(sizeof(double) * (size_t)(padded + (padded + 2) + fft_bins));
        double *spectrum = buffer + padded, *power = spectrum + padded + 2;
#pragma omp for schedule(static)
        for (int64_t f = 0; f < frames; f++) {
            double log_energy = frame_power(samples + f * shift, frame, padded, options, window, &plan, buffer,
                                            spectrum, power);
            float *row = features + f * dim;
            if (options->use_energy) *row++ = (float)log_energy;
            for (int m = 0; m < options->num_mel_bins; m++) {
                const float *w = weights + m * fft_bins;
                double energy = 0.0;
                for (int64_t k = support[2 * m]; k < support[2 * m + 1]; k++) energy += w[k] * power[k];
                row[m] = (float)log(fmax(energy, FLT_EPSILON));
            }
        }
        free(buffer);
    }
    free(weights);
    free(window);
    free(support);
    tp_fft_plan_free(&plan);
    return 0;
}

/* ---- normalisation and augmentation ---- */

void tp_cmvn(float *features, int64_t frames, int64_t dim, int subtract_mean, int normalize_variance)
{
    if (frames <= 0) return;
    for (int64_t j = 0; j < dim; j++) {
        double sum = 0.0, squares = 0.0;
        for (int64_t f = 0; f < frames; f++) {
            double v = features[f * dim + j];
            sum += v;
            squares += v * v;
        }
        double mean = sum / (double)frames;
        double scale = normalize_variance ? 1.0 / sqrt(fmax(squares / (double)frames - mean * mean, 1e-10)) : 1.0;
        double shift = subtract_mean ? mean : 0.0;
        for (int64_t f = 0; f < frames; f++) features[f * dim + j] = (float)((features[f * dim + j] - shift) * scale);
    }
}

int tp_specaugment(float *features, int64_t frames, int64_t dim, const tp_specaugment_options *o, uint64_t seed,
                   uint64_t stream, uint64_t index)
{
    if (o->freq_masks < 0 || o->time_masks < 0 || o->freq_masks + o->time_masks > 16384 ||
        (o->freq_masks > 0 && o->freq_width < 1) || (o->time_masks > 0 && o->time_width < 1))
        return tp_fail("specaugment: %d frequency masks of width < %d, %d time masks of width < %d (widths >= 1, "
                       "at most 16384 masks)", o->freq_masks, o->freq_width, o->time_masks, o->time_width);
    if (frames <= 0 || dim < o->freq_width) return 0;
    float value = o->mask_value;
    if (o->mask_with_mean) {
        double sum = 0.0;
        for (int64_t i = 0; i < frames * dim; i++) sum += features[i];
        value = (float)(sum / (double)(frames * dim));
    }
    tp_rng rng = tp_rng_make(seed, stream, index << 16);
    for (int m = 0; m < o->freq_masks; m++) {
        int64_t width = (int64_t)tp_rng_below(&rng, (uint64_t)o->freq_width);
        int64_t start = (int64_t)tp_rng_below(&rng, (uint64_t)(dim - width));
        for (int64_t f = 0; f < frames; f++)
            for (int64_t j = start; j < start + width; j++) features[f * dim + j] = value;
    }
    int64_t max_time = (int64_t)floor((double)frames * o->time_fraction);
    if (max_time > o->time_width) max_time = o->time_width;
    if (max_time > frames) max_time = frames;
    if (max_time < 1) return 0;
    for (int m = 0; m < o->time_masks; m++) {
        int64_t width = (int64_t)tp_rng_below(&rng, (uint64_t)max_time);
        int64_t start = (int64_t)tp_rng_below(&rng, (uint64_t)(frames - width));
        for (int64_t f = start; f < start + width; f++)
            for (int64_t j = 0; j < dim; j++) features[f * dim + j] = value;
    }
    return 0;
}
