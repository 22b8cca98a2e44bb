#include "preprocess_s2t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "dataset.h"
#include "error.h"
#include "fileio.h"
#include "model.h"

/* The features of one audio file, times 2^15 as Kaldi expects 16-bit sample values. */
static int utterance_features(const char *list_path, int64_t line, const char *path, int64_t mel_bins,
                              tp_s2t_utterance *out)
{
    tp_audio audio;
    if (tp_audio_read(path, &audio) < 0) return -1;
    for (int64_t i = 0; i < audio.count; i++) audio.samples[i] *= 32768.0f;
    tp_fbank_options options = tp_fbank_defaults(audio.sample_rate);
    options.num_mel_bins = (int)mel_bins;
    out->frames = tp_fbank_frame_count(audio.count, &options);
    int status = 0;
    if (out->frames < 1) {
        status = tp_fail("%s: line %lld: %s: %lld samples, shorter than one %g ms frame", list_path, (long long)line,
                         path, (long long)audio.count, options.frame_length_ms);
    } else {
        out->features = tp_xmalloc((size_t)(out->frames * mel_bins) * sizeof *out->features);
        status = tp_fbank(audio.samples, audio.count, &options, out->features);
        if (status == 0) {
            tp_cmvn(out->features, out->frames, mel_bins, 1);
        } else {
            char why[512];
            snprintf(why, sizeof why, "%s", tp_last_error());
            tp_fail("%s: line %lld: %s: %s", list_path, (long long)line, path, why);
            free(out->features);
            out->features = NULL;
        }
    }
    tp_audio_free(&audio);
    return status;
}

/* One `text<TAB>path` line (terminated in place) into the next item. */
static int read_line(const char *list_path, int64_t line, char *text, int64_t mel_bins, tp_s2t_set *set)
{
    char *tab = strchr(text, '\t');
    if (!tab) return tp_fail("%s: line %lld: no tab: the s2t processor reads text<TAB>path lines", list_path, (long long)line);
    *tab = '\0';
    if (!text[0]) return tp_fail("%s: line %lld: empty transcript", list_path, (long long)line);
    tp_s2t_utterance *item = &set->items[set->count];
    memset(item, 0, sizeof *item);
    if (utterance_features(list_path, line, tab + 1, mel_bins, item) < 0) return -1;
    item->text = tp_xmalloc(strlen(text) + 1);
    strcpy(item->text, text);
    set->count++;
    return 0;
}

int tp_s2t_read(const char *list_path, int64_t mel_bins, tp_s2t_set *set)
{
    memset(set, 0, sizeof *set);
    set->feature_size = mel_bins;
    char *contents = tp_read_file(list_path, NULL);
    if (!contents) return -1;
    int64_t lines = 1;
    for (const char *p = contents; *p; p++) lines += *p == '\n';
    set->items = tp_xmalloc((size_t)lines * sizeof *set->items);
    int status = 0;
    char *cursor = contents;
    for (int64_t line = 1; status == 0 && *cursor; line++) {
        char *end = cursor + strcspn(cursor, "\n");
        char *next = *end ? end + 1 : end;
        *end = '\0';
        if (end > cursor && end[-1] == '\r') end[-1] = '\0';
        if (cursor[0]) status = read_line(list_path, line, cursor, mel_bins, set);
        cursor = next;
    }
    free(contents);
    if (status == 0 && set->count == 0) status = tp_fail("%s: no utterances", list_path);
    if (status < 0) tp_s2t_set_free(set);
    return status;
}

void tp_s2t_set_free(tp_s2t_set *set)
{
    for (int64_t i = 0; set->items && i < set->count; i++) {
        free(set->items[i].text);
        free(set->items[i].features);
    }
    free(set->items);
    memset(set, 0, sizeof *set);
}

void tp_s2t_fill_batch(const tp_s2t_set *set, const int64_t *indices, int64_t rows, const int32_t *const *targets,
                       const int64_t *lengths, const int64_t *kernels, int layers, int32_t pad_id, tp_batch *batch)
{
    int64_t frames = 0, tgt = 0, dim = set->feature_size;
    for (int64_t r = 0; r < rows; r++) {
        if (set->items[indices[r]].frames > frames) frames = set->items[indices[r]].frames;
        if (lengths[r] - 1 > tgt) tgt = lengths[r] - 1;
    }
    int64_t seq = tp_s2t_subsampled_frames(frames, kernels, layers);
    memset(batch, 0, sizeof *batch);
    batch->batch_size = rows;
    batch->seq_length = seq;
    batch->audio_frames = frames;
    batch->audio_feature_size = dim;
    batch->tgt_seq_length = tgt;
    batch->audio = tp_xcalloc((size_t)(rows * frames * dim), sizeof *batch->audio);
    batch->seg = tp_xcalloc((size_t)(rows * seq), sizeof *batch->seg);
    batch->tgt_src = tp_xmalloc((size_t)(rows * tgt) * sizeof *batch->tgt_src);
    batch->tags = tp_xmalloc((size_t)(rows * tgt) * sizeof *batch->tags);
    for (int64_t r = 0; r < rows; r++) {
        const tp_s2t_utterance *u = &set->items[indices[r]];
        memcpy(batch->audio + r * frames * dim, u->features, (size_t)(u->frames * dim) * sizeof *batch->audio);
        int64_t real = tp_s2t_subsampled_frames(u->frames, kernels, layers);
        for (int64_t s = 0; s < real; s++) batch->seg[r * seq + s] = 1;
        for (int64_t t = 0; t < tgt; t++) {
            batch->tgt_src[r * tgt + t] = t < lengths[r] - 1 ? targets[r][t] : pad_id;
            batch->tags[r * tgt + t] = t < lengths[r] - 1 ? targets[r][t + 1] : -1;
        }
    }
}

void tp_s2t_batch_free(tp_batch *batch)
{
    free(batch->audio);
    free(batch->seg);
    free(batch->tgt_src);
    free(batch->tags);
    memset(batch, 0, sizeof *batch);
}

int64_t tp_s2t_greedy(tp_model *model, tp_ctx *ctx, const tp_s2t_set *set, int64_t index, const int64_t *kernels,
                      int layers, int32_t start_id, int32_t end_id, int64_t max_new_tokens, int32_t *out)
{
    const tp_s2t_utterance *utterance = &set->items[index];
    int64_t seq = tp_s2t_subsampled_frames(utterance->frames, kernels, layers), vocab = model->hp.vocab_size;
    int32_t *prefix = tp_xmalloc((size_t)(max_new_tokens + 1) * sizeof *prefix);
    int32_t *seg = tp_xmalloc((size_t)seq * sizeof *seg);
    float *row = tp_xmalloc((size_t)vocab * sizeof *row);
    for (int64_t s = 0; s < seq; s++) seg[s] = 1;
    prefix[0] = start_id;
    int64_t count = 0;
    ctx->record = ctx->training = 0;
    while (count < max_new_tokens) {
        tp_batch batch = {.batch_size = 1, .seq_length = seq, .seg = seg, .audio = utterance->features,
                          .audio_frames = utterance->frames, .audio_feature_size = set->feature_size,
                          .tgt_seq_length = count + 1, .tgt_src = prefix};
        tp_ctx_reset(ctx);
        tp_model_batch in = tp_model_batch_upload(ctx, &batch);
        tp_model_output output;
        if (tp_model_forward(model, ctx, &in, &output) < 0) {
            count = -1;
            break;
        }
        const tp_tensor *logits = output.results[0].logits;
        ctx->backend->download(row, logits->data + count * tp_cols(logits), (size_t)vocab * sizeof *row);
        int32_t best = 0;
        for (int32_t v = 1; v < vocab; v++)
            if (row[v] > row[best]) best = v;
        if (best == end_id) break;
        prefix[++count] = best;
        out[count - 1] = best;
    }
    free(prefix);
    free(seg);
    free(row);
    return count;
}
