#include "preprocess_s2t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "dataset.h"
#include "error.h"
#include "fileio.h"
#include "model.h"
#include "rng.h"

/* The features of one audio file, times 2^15 as Kaldi expects 16-bit sample values. */
static int utterance_features(const char *list_path, int64_t line, const char *path, const tp_s2t_geometry *geometry,
                              tp_s2t_utterance *out)
{
    int64_t mel_bins = geometry->mel_bins;
    tp_audio audio;
    if (tp_audio_read(path, &audio) < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", tp_last_error());
        return tp_fail("%s: line %lld: %s", list_path, (long long)line, why);
    }
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
            if (geometry->cmvn) tp_cmvn(out->features, out->frames, mel_bins, geometry->cmvn_means, geometry->cmvn_vars);
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

/* Where a line's fields are: the column of the transcript (-1: none) and of the path. */
typedef struct list_columns {
    int text, path, count;
} list_columns;

/* The tab-separated fields of line (terminated in place), at most 3. */
static int split_fields(char *line, char **fields)
{
    int count = 0;
    for (char *field = line; field && count < 3; count++) {
        fields[count] = field;
        char *tab = strchr(field, '\t');
        if (tab) *tab = '\0';
        field = tab ? tab + 1 : NULL;
    }
    return count;
}

/* run_speech2text.py's header: fields named text and wav_path (or wav_path alone). */
static int read_header(char *line, list_columns *columns)
{
    char *fields[3];
    int count = split_fields(line, fields);
    *columns = (list_columns){-1, -1, count};
    for (int f = 0; f < count; f++) {
        if (!strcmp(fields[f], "text") && columns->text < 0) columns->text = f;
        else if (!strcmp(fields[f], "wav_path") && columns->path < 0) columns->path = f;
        else return 0;
    }
    return columns->path >= 0;
}

/* One line (terminated in place) into the next item. */
static int read_line(const char *list_path, int64_t line, char *text, const list_columns *header,
                     const tp_s2t_geometry *geometry, const tp_s2t_read_options *options, tp_s2t_set *set)
{
    int allow_no_text = options->allow_no_text;
    char *fields[3];
    int count = split_fields(text, fields);
    list_columns columns = header ? *header : (list_columns){count == 2 ? 0 : -1, count == 2 ? 1 : 0, count};
    if (header && count != columns.count)
        return tp_fail("%s: line %lld: %d tab-separated fields, the header has %d", list_path, (long long)line, count,
                       columns.count);
    if (count > 2)
        return tp_fail("%s: line %lld: %d tab-separated fields (expected text<TAB>path%s)", list_path, (long long)line,
                       count, allow_no_text ? " or path" : "");
    if (columns.text < 0 && !allow_no_text)
        return tp_fail("%s: line %lld: no tab: expected text<TAB>path", list_path, (long long)line);
    const char *transcript = columns.text >= 0 ? fields[columns.text] : NULL;
    if (transcript && !transcript[0]) return tp_fail("%s: line %lld: empty transcript", list_path, (long long)line);
    if (set->count > 0 && !!transcript != set->has_text)
        return tp_fail("%s: line %lld: %s transcript, unlike the lines before", list_path, (long long)line,
                       transcript ? "a" : "no");
    set->has_text = transcript != NULL;
    tp_s2t_utterance *item = &set->items[set->count];
    memset(item, 0, sizeof *item);
    if (utterance_features(list_path, line, fields[columns.path], geometry, item) < 0) {
        if (!options->skip_bad_audio) return -1;
        if (set->skipped++ == 0) set->first_skipped = tp_xstrdup(tp_last_error());
        return 0;
    }
    item->text = transcript ? tp_xstrdup(transcript) : NULL;
    set->count++;
    return 0;
}

int tp_s2t_read(const char *list_path, const tp_s2t_geometry *geometry, const tp_s2t_read_options *options,
                tp_s2t_set *set)
{
    memset(set, 0, sizeof *set);
    set->feature_size = geometry->mel_bins;
    char *contents = tp_read_file(list_path, NULL);
    if (!contents) return -1;
    int64_t lines = 1;
    for (const char *p = contents; *p; p++) lines += *p == '\n';
    set->items = tp_xmalloc((size_t)lines * sizeof *set->items);
    int status = 0, header_seen = 0;
    list_columns header;
    char *cursor = contents;
    for (int64_t line = 1; status == 0 && *cursor; line++) {
        char *end = cursor + strcspn(cursor, "\n");
        char *next = *end ? end + 1 : end;
        *end = '\0';
        if (end > cursor && end[-1] == '\r') end[-1] = '\0';
        if (line == 1 && cursor[0]) {
            char *copy = tp_xstrdup(cursor);
            header_seen = read_header(copy, &header);
            free(copy);
        }
        if (cursor[0] && !(line == 1 && header_seen))
            status = read_line(list_path, line, cursor, header_seen ? &header : NULL, geometry, options, set);
        cursor = next;
    }
    free(contents);
    if (status == 0 && set->count == 0 && set->skipped > 0)
        status = tp_fail("%s: none of the %lld utterances' audio could be read (the first: %s)", list_path,
                         (long long)set->skipped, set->first_skipped);
    else if (status == 0 && set->count == 0)
        status = tp_fail("%s: no utterances", list_path);
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
    free(set->first_skipped);
    memset(set, 0, sizeof *set);
}

/* audio_preprocess: which of utterance CMVN's steps run (TencentPretrain's names; all by default). */
static int read_audio_preprocess(tp_config *config, tp_s2t_geometry *out)
{
    static const char *const names[] = {"ceptral_normalize", "normalize_means", "normalize_vars"};
    const char *const *steps = NULL;
    int count = 0;
    out->cmvn = out->cmvn_means = out->cmvn_vars = 1;
    if (!tp_config_has(config, "audio_preprocess")) return 0;
    if (tp_config_strings(config, "audio_preprocess", &steps, &count) < 0) return -1;
    out->cmvn = out->cmvn_means = out->cmvn_vars = 0;
    for (int i = 0; i < count; i++) {
        int *flags[] = {&out->cmvn, &out->cmvn_means, &out->cmvn_vars}, known = 0;
        for (int k = 0; k < 3; k++)
            if (!strcmp(steps[i], names[k])) *flags[k] = known = 1;
        if (!known)
            return tp_fail("%s: key 'audio_preprocess': unknown step \"%s\" (ceptral_normalize, normalize_means, "
                           "normalize_vars)", tp_config_name(config), steps[i]);
    }
    return 0;
}

/* A required integer key of the specaugment object. */
static int specaugment_int(tp_config *config, const char *name, int64_t max, int *out)
{
    char key[64];
    int64_t value = 0;
    snprintf(key, sizeof key, "specaugment.%s", name);
    if (!tp_config_has(config, key)) return tp_fail("%s: key '%s': missing", tp_config_name(config), key);
    if (tp_config_int(config, key, 0, 0, max, &value) < 0) return -1;
    *out = (int)value;
    return 0;
}

static int read_specaugment(tp_config *config, tp_specaugment_options *o, int *enabled)
{
    const char *file = tp_config_name(config);
    int64_t warp = 0, wrap = 0;
    double mask_value = 0;
    memset(o, 0, sizeof *o);
    if (!(*enabled = tp_config_has(config, "specaugment"))) return 0;
    if (specaugment_int(config, "freq_mask_N", 64, &o->freq_masks) < 0 ||
        specaugment_int(config, "freq_mask_F", 1 << 16, &o->freq_width) < 0 ||
        specaugment_int(config, "time_mask_N", 64, &o->time_masks) < 0 ||
        specaugment_int(config, "time_mask_T", 1 << 20, &o->time_width) < 0)
        return -1;
    if (!tp_config_has(config, "specaugment.time_mask_p"))
        return tp_fail("%s: key 'specaugment.time_mask_p': missing", file);
    if (tp_config_double(config, "specaugment.time_mask_p", 1.0, 0.0, 1.0, &o->time_fraction) < 0 ||
        tp_config_double(config, "specaugment.mask_value", 0.0, -1e30, 1e30, &mask_value) < 0 ||
        tp_config_int(config, "specaugment.time_warp_W", 0, 0, 0, &warp) < 0 ||
        tp_config_int(config, "specaugment.time_wrap_W", 0, 0, 0, &wrap) < 0) /* fairseq's spelling */
        return -1;
    o->mask_with_mean = !tp_config_has(config, "specaugment.mask_value");
    o->mask_value = (float)mask_value;
    if (o->freq_masks > 0 && o->freq_width < 1)
        return tp_fail("%s: key 'specaugment.freq_mask_F': 0, but freq_mask_N %d masks need a width >= 1", file,
                       o->freq_masks);
    if (o->time_masks > 0 && o->time_width < 1)
        return tp_fail("%s: key 'specaugment.time_mask_T': 0, but time_mask_N %d masks need a width >= 1", file,
                       o->time_masks);
    return 0;
}

int tp_s2t_geometry_of(tp_config *model_config, tp_s2t_geometry *out)
{
    int64_t layers = 0;
    int count = 0;
    memset(out, 0, sizeof *out);
    if (tp_config_int(model_config, "audio_feature_size", 80, 1, 1 << 16, &out->mel_bins) < 0 ||
        tp_config_int(model_config, "conv_layers_num", 2, 1, TP_S2T_MAX_CONV, &layers) < 0 ||
        tp_config_ints(model_config, "conv_kernel_sizes", 1, 1023, out->kernels, TP_S2T_MAX_CONV, &count) < 0 ||
        read_audio_preprocess(model_config, out) < 0 || read_specaugment(model_config, &out->specaugment, &out->augment) < 0)
        return -1;
    for (; count == 0 && out->layers < layers; out->layers++) out->kernels[out->layers] = 5;
    if (count) out->layers = count; /* the embedding refuses a count other than conv_layers_num */
    return 0;
}

/* Ids in a decoder row before its padding: tags' real entries (tgt_src's are as many). */
static int64_t target_width(const int32_t *tags, int64_t width)
{
    int64_t n = 0;
    while (n < width && tags[n] >= 0) n++;
    return n;
}

void tp_s2t_fill_batch(const tp_s2t_set *set, const int64_t *indices, int64_t rows, const int32_t *tgt_src,
                       const int32_t *tags, int64_t width, const tp_s2t_geometry *geometry, tp_batch *batch)
{
    int64_t frames = 0, tgt = 1, dim = set->feature_size;
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = indices[r], n = tags ? target_width(tags + i * width, width) : 1;
        if (set->items[i].frames > frames) frames = set->items[i].frames;
        if (n > tgt) tgt = n;
    }
    int64_t seq = tp_s2t_subsampled_frames(frames, geometry->kernels, geometry->layers);
    memset(batch, 0, sizeof *batch);
    batch->batch_size = rows;
    batch->seq_length = seq;
    batch->audio_frames = frames;
    batch->audio_feature_size = dim;
    batch->tgt_seq_length = tgt;
    batch->audio = tp_xcalloc((size_t)(rows * frames * dim), sizeof *batch->audio);
    batch->seg = tp_xcalloc((size_t)(rows * seq), sizeof *batch->seg);
    batch->tgt_src = tp_xmalloc((size_t)(rows * tgt) * sizeof *batch->tgt_src);
    if (tags) batch->tags = tp_xmalloc((size_t)(rows * tgt) * sizeof *batch->tags);
    for (int64_t r = 0; r < rows; r++) {
        const tp_s2t_utterance *u = &set->items[indices[r]];
        memcpy(batch->audio + r * frames * dim, u->features, (size_t)(u->frames * dim) * sizeof *batch->audio);
        int64_t real = tp_s2t_subsampled_frames(u->frames, geometry->kernels, geometry->layers);
        for (int64_t s = 0; s < real; s++) batch->seg[r * seq + s] = 1;
        batch->real_tokens += real;
        memcpy(batch->tgt_src + r * tgt, tgt_src + indices[r] * width, (size_t)tgt * sizeof *batch->tgt_src);
        if (tags) memcpy(batch->tags + r * tgt, tags + indices[r] * width, (size_t)tgt * sizeof *batch->tags);
    }
}

void tp_s2t_augment_batch(const tp_s2t_set *set, const int64_t *indices, int64_t rows, uint64_t seed, int64_t epoch,
                          const tp_s2t_geometry *geometry, tp_batch *batch)
{
    int64_t dim = batch->audio_feature_size, stride = batch->audio_frames * dim;
    for (int64_t r = 0; geometry->augment && r < rows; r++) {
        uint64_t index = (uint64_t)(epoch * set->count + indices[r]);
        /* The options were checked by tp_s2t_geometry_of: this cannot fail. */
        tp_specaugment(batch->audio + r * stride, set->items[indices[r]].frames, dim, &geometry->specaugment, seed,
                       TP_STREAM_SPECAUGMENT, index);
    }
}

tp_tensor *tp_s2t_encode(tp_model *model, tp_ctx *ctx, const tp_s2t_set *set, int64_t index,
                         const tp_s2t_geometry *geometry)
{
    const tp_s2t_utterance *utterance = &set->items[index];
    tp_ctx_reset(ctx);
    ctx->record = ctx->training = 0;
    int64_t seq = tp_s2t_subsampled_frames(utterance->frames, geometry->kernels, geometry->layers);
    int32_t *seg = tp_arena_alloc(&ctx->host_arena, (size_t)seq * sizeof *seg);
    for (int64_t s = 0; s < seq; s++) seg[s] = 1;
    tp_batch batch = {.batch_size = 1, .seq_length = seq, .seg = seg, .audio = utterance->features,
                      .audio_frames = utterance->frames, .audio_feature_size = set->feature_size};
    tp_model_batch uploaded = tp_model_batch_upload(ctx, &batch);
    return tp_model_encode(model, ctx, &uploaded);
}
