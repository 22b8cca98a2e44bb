/* Audio for tp's data path: WAV / FLAC reading, Kaldi-compatible filter-bank features,
 * utterance-level cepstral mean and variance normalisation, and SpecAugment.  docs/media.md.
 *
 * Failures return -1 with one message naming the file (tp_fail), e.g.
 *   "data/x.wav: WAV data chunk at byte 44 promises 64000 bytes, the file ends at byte 30044" */
#ifndef TP_AUDIO_H
#define TP_AUDIO_H

#include <stdint.h>

/* Mono samples at the file's own rate (no resampling).  Integer PCM is scaled to [-1, 1) by
 * 2^(bits-1), as torchaudio.load and libsndfile do (16-bit: s / 32768); several channels are
 * averaged. */
typedef struct tp_audio {
    int64_t count;     /* samples */
    int sample_rate;   /* Hz */
    float *samples;
} tp_audio;

/* Any format libsndfile reads (WAV, FLAC, ...).  A WAV whose data chunk runs past the end of the
 * file, and a stream that ends before the frame count its header gives, are errors. */
int tp_audio_read(const char *path, tp_audio *audio);
void tp_audio_free(tp_audio *audio);

/* torchaudio.compliance.kaldi.fbank's options, with its defaults (tp_fbank_defaults) except
 * num_mel_bins (80 here, 23 there).  Always: snip_edges, no dither, no VTLN, log of the power
 * spectrum, energy (when used) in column 0. */
typedef enum tp_window { TP_WINDOW_POVEY, TP_WINDOW_HANNING, TP_WINDOW_HAMMING, TP_WINDOW_RECTANGULAR } tp_window;

typedef struct tp_fbank_options {
    double sample_frequency;  /* Hz */
    double frame_length_ms;   /* 25 */
    double frame_shift_ms;    /* 10 */
    int num_mel_bins;         /* 80 */
    double low_freq;          /* 20 Hz */
    double high_freq;         /* 0: the Nyquist frequency; < 0: that far below it */
    double preemphasis;       /* 0.97 */
    int remove_dc_offset;     /* 1 */
    tp_window window;         /* POVEY: Hann (symmetric) to the power 0.85 */
    int round_to_power_of_two; /* 1: the FFT length is the frame length rounded up to 2^k */
    int use_energy;           /* 0; 1: log frame energy in column 0 */
    int raw_energy;           /* 1: energy before pre-emphasis and window */
    double energy_floor;      /* 1.0: the log energy is at least log(energy_floor) (0: no floor) */
} tp_fbank_options;

tp_fbank_options tp_fbank_defaults(double sample_frequency);

/* Frames for `count` samples: 1 + (count - frame) / shift, 0 when shorter than one frame. */
int64_t tp_fbank_frame_count(int64_t count, const tp_fbank_options *options);
/* Columns per frame: num_mel_bins, + 1 with use_energy. */
int64_t tp_fbank_dim(const tp_fbank_options *options);
/* features: frame_count x dim floats, row-major.  -1 for options no filter bank can have (a
 * frame shorter than 2 samples, low_freq >= high_freq, ...). */
int tp_fbank(const float *samples, int64_t count, const tp_fbank_options *options, float *features);

/* Utterance CMVN (fairseq's UtteranceCMVN, TencentPretrain's utterance_cmvn): per column, with
 * subtract_mean subtract the mean over frames; with normalize_variance divide by
 * sqrt(max(var, 1e-10)), var = mean of squares - mean^2 (of the column as given).  In place, in
 * double. */
void tp_cmvn(float *features, int64_t frames, int64_t dim, int subtract_mean, int normalize_variance);

/* SpecAugment's masking as fairseq's SpecAugmentTransform does it (no time warping): freq_masks
 * times a band of width f in [0, freq_width) starting at f0 in [0, dim - f); then time_masks times
 * t in [0, T) frames from t0 in [0, frames - t), T = min(time_width, floor(frames * time_fraction));
 * masked values become the utterance's mean (mask_with_mean) or mask_value.  Nothing happens when
 * dim < freq_width (fairseq returns early), no time masks when T < 1.  The draws come from
 * tp's RNG at (seed, stream, index * 2^16 + k), so one utterance's masks depend on nothing but
 * (seed, stream, index); data loaders pass stream TP_STREAM_SPECAUGMENT (core/rng.h). */
typedef struct tp_specaugment_options {
    int freq_masks, freq_width;
    int time_masks, time_width;
    double time_fraction;
    int mask_with_mean;
    float mask_value;
} tp_specaugment_options;

int tp_specaugment(float *features, int64_t frames, int64_t dim, const tp_specaugment_options *options, uint64_t seed,
                   uint64_t stream, uint64_t index);

#endif
