/* TencentPretrain's s2t data: a list of `text<TAB>path` lines (one utterance each; the path as
 * given, relative to the working directory as TencentPretrain opens it), read into memory with
 * the features Hugging Face's Speech2TextFeatureExtractor and TencentPretrain compute: Kaldi
 * filter banks of the waveform scaled to 16-bit integers (times 2^15) at the file's own rate
 * (core/audio.h's tp_fbank), then utterance CMVN with variance (tp_cmvn).  A first line
 * `text<TAB>wav_path` (run_speech2text.py's header, either order) names the columns; lists to
 * transcribe may hold `path` lines only.  docs/media.md. */
#ifndef TP_PREPROCESS_S2T_H
#define TP_PREPROCESS_S2T_H

#include <stdint.h>

#include "audio.h"
#include "config.h"

typedef struct tp_s2t_utterance {
    char *text;      /* the transcript as written in the list; NULL in a list without transcripts */
    int64_t frames;
    float *features; /* frames x feature_size */
} tp_s2t_utterance;

typedef struct tp_s2t_set {
    int64_t count, feature_size;
    int has_text; /* every line has a transcript (else none has) */
    tp_s2t_utterance *items;
    int64_t skipped;     /* lines left out (skip_bad_audio) */
    char *first_skipped; /* the first one's message, NULL when none */
} tp_s2t_set;

/* What a speech model config says about its input (TencentPretrain's keys):
 *   - what the speech embedding reads (modules/embeddings/speech.c, the same defaults):
 *     audio_feature_size filter banks (80) and the convolutions' kernels (conv_kernel_sizes, else
 *     conv_layers_num kernels of 5);
 *   - audio_preprocess: a list of "ceptral_normalize" (utterance CMVN at all), "normalize_means",
 *     "normalize_vars" (TencentPretrain's spelling and default: all three);
 *   - specaugment (absent: no masking), an object of TencentPretrain's / fairseq's keys, all
 *     required: freq_mask_N bands of width < freq_mask_F bins, time_mask_N runs of width <
 *     min(time_mask_T, time_mask_p x frames) frames; optional mask_value (absent: the utterance's
 *     mean) and time_warp_W (or fairseq's spelling time_wrap_W), which must be 0: tp does not
 *     warp.  Applied to training batches only (tp_s2t_augment_batch). */
#define TP_S2T_MAX_CONV 8
typedef struct tp_s2t_geometry {
    int64_t mel_bins, kernels[TP_S2T_MAX_CONV];
    int layers;
    int cmvn, cmvn_means, cmvn_vars;
    int augment;
    tp_specaugment_options specaugment;
} tp_s2t_geometry;
int tp_s2t_geometry_of(tp_config *model_config, tp_s2t_geometry *out);

/* Reads every line of list_path (empty lines skipped) as geometry says: its mel_bins filter banks
 * per frame, normalised as its audio_preprocess says.  -1 + one message naming the list and line
 * (no tab, an empty transcript, a line with a transcript among lines without, audio shorter than
 * one frame, the audio file's own error).
 *   allow_no_text: `path` lines without a transcript are accepted (all or none);
 *   skip_bad_audio: a line whose audio cannot be read or is shorter than one frame is left out and
 *     counted (set->skipped, set->first_skipped) instead; malformed lines still fail, and so does a
 *     list none of whose audio could be read. */
typedef struct tp_s2t_read_options {
    int allow_no_text, skip_bad_audio;
} tp_s2t_read_options;
int tp_s2t_read(const char *list_path, const tp_s2t_geometry *geometry, const tp_s2t_read_options *options,
                tp_s2t_set *set);
void tp_s2t_set_free(tp_s2t_set *set);

/* Frames left after the speech embedding's convolutions (stride 2, padding kernel / 2).  Inline:
 * the embedding module (modules/embeddings/speech.c) needs it without the data code. */
static inline int64_t tp_s2t_subsampled_frames(int64_t frames, const int64_t *kernels, int layers)
{
    for (int i = 0; i < layers; i++) frames = (frames + 2 * (kernels[i] / 2) - kernels[i]) / 2 + 1;
    return frames;
}

/* A batch of `rows` utterances (indices into set), laid out as the speech embedding and the
 * decoder read it (core/dataset.h's tp_batch):
 *   audio [rows, audio_frames (the longest), feature_size], zero frames after each utterance;
 *   seq_length = subsampled audio_frames, seg = 1 on each utterance's subsampled frames;
 *   tgt_src / tags: rows indices[r] of the decoder rows tgt_src and tags ([set->count, width]
 *   each: the target without its last id, padding after it / without its first id, -1 after it;
 *   tags NULL: no labels, one column of tgt_src), cut to the longest target of the batch
 *   (tgt_seq_length).
 * The arrays are allocated here and freed by tp_batch_free (core/dataset.h). */
typedef struct tp_batch tp_batch;
void tp_s2t_fill_batch(const tp_s2t_set *set, const int64_t *indices, int64_t rows, const int32_t *tgt_src,
                       const int32_t *tags, int64_t width, const tp_s2t_geometry *geometry, tp_batch *batch);

/* SpecAugment (geometry->specaugment) on the real frames of each row of a batch from
 * tp_s2t_fill_batch; row r's masks are drawn from (seed, TP_STREAM_SPECAUGMENT, epoch *
 * set->count + indices[r]): an example's masks differ from epoch to epoch and a resumed run
 * draws the same ones.  Nothing when geometry->augment is 0. */
void tp_s2t_augment_batch(const tp_s2t_set *set, const int64_t *indices, int64_t rows, uint64_t seed, int64_t epoch,
                          const tp_s2t_geometry *geometry, tp_batch *batch);

/* The model's speech embedding and encoder on utterance `index` of set alone (inference: no
 * tape) -> memory [subsampled frames, hidden] in ctx (reset first), for core/generate_seq2seq.h's
 * decoder; NULL + error when the model fails. */
struct tp_model;
struct tp_ctx;
struct tp_tensor;
struct tp_tensor *tp_s2t_encode(struct tp_model *model, struct tp_ctx *ctx, const tp_s2t_set *set, int64_t index,
                                const tp_s2t_geometry *geometry);

#endif
