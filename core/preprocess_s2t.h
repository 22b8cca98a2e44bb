/* TencentPretrain's s2t data: a list of `text<TAB>path` lines (one utterance each; the path as
 * given, relative to the working directory as TencentPretrain opens it), read into memory with
 * the features Hugging Face's Speech2TextFeatureExtractor and TencentPretrain compute: Kaldi
 * filter banks of the waveform scaled to 16-bit integers (times 2^15) at the file's own rate
 * (core/audio.h's tp_fbank), then utterance CMVN with variance (tp_cmvn).  docs/media.md. */
#ifndef TP_PREPROCESS_S2T_H
#define TP_PREPROCESS_S2T_H

#include <stdint.h>

typedef struct tp_s2t_utterance {
    char *text;      /* the transcript as written in the list */
    int64_t frames;
    float *features; /* frames x feature_size */
} tp_s2t_utterance;

typedef struct tp_s2t_set {
    int64_t count, feature_size;
    tp_s2t_utterance *items;
} tp_s2t_set;

/* Reads every line of list_path (empty lines skipped) with mel_bins filter banks per frame.  -1 +
 * one message naming the list and line (no tab, an empty transcript, audio shorter than one
 * frame) or the audio file (core/audio.h's errors). */
int tp_s2t_read(const char *list_path, int64_t mel_bins, tp_s2t_set *set);
void tp_s2t_set_free(tp_s2t_set *set);

/* Frames left after the speech embedding's convolutions (stride 2, padding kernel / 2).  Inline:
 * the embedding module (modules/embeddings/speech.c) needs it without the data code. */
static inline int64_t tp_s2t_subsampled_frames(int64_t frames, const int64_t *kernels, int layers)
{
    for (int i = 0; i < layers; i++) frames = (frames + 2 * (kernels[i] / 2) - kernels[i]) / 2 + 1;
    return frames;
}

/* A training batch of `rows` utterances (indices into set) with their target ids (targets[r]:
 * lengths[r] >= 2 ids, the start id first and the end id last), laid out as the speech embedding
 * and the decoder read it (core/dataset.h's tp_batch):
 *   audio [rows, audio_frames (the longest), feature_size], zero frames after each utterance;
 *   seq_length = subsampled audio_frames, seg = 1 on each utterance's subsampled frames;
 *   tgt_src = each target without its last id, pad_id after it; tags = each target without its
 *   first id (the next ids), -1 after it; tgt_seq_length = the longest target - 1.
 * The arrays are allocated here and freed by tp_s2t_batch_free. */
typedef struct tp_batch tp_batch;
void tp_s2t_fill_batch(const tp_s2t_set *set, const int64_t *indices, int64_t rows, const int32_t *const *targets,
                       const int64_t *lengths, const int64_t *kernels, int layers, int32_t pad_id, tp_batch *batch);
void tp_s2t_batch_free(tp_batch *batch);

/* Greedy decoding of utterance `index` of set by a speech-to-text model (inference: no tape), re-running the
 * model on the growing prefix at every step (core/generate_seq2seq.h's cached decoder embeds
 * target tokens through word (+ pos) tables only).  Starting from start_id, appends the argmax of
 * the real vocabulary (the lowest id among ties) until end_id or max_new_tokens ids; writes the
 * ids after start_id, end_id excluded, to out and returns their number (-1 + error when the model
 * fails: not a speech-to-text model with the lm target). */
struct tp_model;
struct tp_ctx;
int64_t tp_s2t_greedy(struct tp_model *model, struct tp_ctx *ctx, const tp_s2t_set *set, int64_t index,
                      const int64_t *kernels, int layers, int32_t start_id, int32_t end_id, int64_t max_new_tokens,
                      int32_t *out);

#endif
