/* The `vit` data processor: see preprocess_vit.h. */
#include "preprocess_vit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "image.h"

enum { MESSAGE_CAP = 1024 };

/* ---- one image into the set ------------------------------------------------------------------ */

/* PIL's Image.convert("L") from RGB: ITU-R 601-2 luma in 16-bit fixed point, rounded. */
static uint8_t luma(const uint8_t *rgb)
{
    return (uint8_t)((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}

/* A decoded RGB image at the set's size and channel count into out (height x width x channels). */
static int store_image(const tp_image_set *set, const tp_image *decoded, uint8_t *out)
{
    tp_image resized = {0};
    const tp_image *image = decoded;
    if (decoded->width != set->width || decoded->height != set->height) {
        if (tp_image_resize(decoded, set->width, set->height, TP_RESAMPLE_BILINEAR, &resized) < 0) return -1;
        image = &resized;
    }
    int64_t pixels = set->width * set->height;
    if (set->channels == 3)
        memcpy(out, image->rgb, (size_t)(pixels * 3));
    else
        for (int64_t i = 0; i < pixels; i++) out[i] = luma(image->rgb + 3 * i);
    tp_image_free(&resized);
    return 0;
}

/* ---- label<TAB>path lists -------------------------------------------------------------------- */

typedef struct list_entry {
    int64_t line;
    int32_t label;
    const char *image_path; /* inside the list's buffer */
} list_entry;

static int parse_label(const char *path, int64_t line, const char *text, int64_t num_labels, int32_t *label)
{
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (!*text || *end || errno || value < 0 || value > INT32_MAX || text[0] == '+' || text[0] == '-')
        return tp_fail("%s: line %" PRId64 ": label '%s' is not a class id (0, 1, ...)", path, line, text);
    if (num_labels > 0 && value >= num_labels)
        return tp_fail("%s: line %" PRId64 ": label %lld is not below the %" PRId64 " classes", path, line, value,
                       num_labels);
    *label = (int32_t)value;
    return 0;
}

/* Splits the list in place into entries (label, path; a header line may name them in the other order). */
static int parse_list(const char *path, char *text, int64_t num_labels, list_entry **entries, int64_t *count)
{
    int64_t capacity = 256, line = 0;
    int label_column = 0;
    *count = 0;
    *entries = tp_xmalloc((size_t)capacity * sizeof **entries);
    for (char *next = text; next && *next;) {
        char *start = next, *newline = strchr(start, '\n');
        next = newline ? newline + 1 : NULL;
        if (newline) *newline = '\0';
        size_t length = strlen(start);
        if (length && start[length - 1] == '\r') start[--length] = '\0';
        line++;
        if (!length) continue;
        char *tab = strchr(start, '\t');
        if (!tab || strchr(tab + 1, '\t'))
            return tp_fail("%s: line %" PRId64 ": expected 2 tab-separated columns (label, path)", path, line);
        *tab = '\0';
        char *fields[2] = {start, tab + 1};
        if (line == 1 && ((!strcmp(fields[0], "label") && !strcmp(fields[1], "path")) ||
                          (!strcmp(fields[0], "path") && !strcmp(fields[1], "label")))) {
            label_column = !strcmp(fields[1], "label");
            continue;
        }
        if (*count == capacity) *entries = tp_xrealloc(*entries, (size_t)(capacity *= 2) * sizeof **entries);
        list_entry *entry = &(*entries)[(*count)++];
        entry->line = line;
        entry->image_path = fields[!label_column];
        if (!*entry->image_path) return tp_fail("%s: line %" PRId64 ": empty path", path, line);
        if (parse_label(path, line, fields[label_column], num_labels, &entry->label) < 0) return -1;
    }
    if (*count == 0) return tp_fail("%s: no images listed", path);
    return 0;
}

/* Decodes every entry in parallel into set->pixels; per entry, ok[i] or its message. */
static void decode_entries(tp_image_set *set, const list_entry *entries, uint8_t *ok, char **messages)
{
    int64_t image_bytes = set->height * set->width * set->channels;
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < set->count; i++) {
        tp_image decoded = {0};
        ok[i] = tp_image_read(entries[i].image_path, &decoded) == 0 &&
                store_image(set, &decoded, set->pixels + i * image_bytes) == 0;
        if (!ok[i]) messages[i] = tp_xstrdup(tp_last_error()); /* per-thread: carry it out */
        tp_image_free(&decoded);
    }
}

/* Keeps the decoded entries (in order), or fails naming the first bad one. */
static int keep_decoded(tp_image_set *set, const list_entry *entries, const uint8_t *ok, char **messages,
                        int skip_bad_images)
{
    int64_t image_bytes = set->height * set->width * set->channels, kept = 0;
    for (int64_t i = 0; i < set->count; i++) {
        if (!ok[i] && !skip_bad_images)
            return tp_fail("%s: line %" PRId64 ": %s", set->path, entries[i].line, messages[i]);
        if (!ok[i]) continue;
        if (kept != i) memmove(set->pixels + kept * image_bytes, set->pixels + i * image_bytes, (size_t)image_bytes);
        set->labels[kept++] = entries[i].label;
    }
    set->skipped = set->count - kept;
    set->count = kept;
    if (kept == 0) return tp_fail("%s: none of the %" PRId64 " images could be decoded", set->path, set->skipped);
    return 0;
}

static int read_list(tp_image_set *set, const tp_image_set_options *options)
{
    char *text = tp_read_file(set->path, NULL);
    if (!text) return -1;
    list_entry *entries = NULL;
    int64_t count = 0;
    int status = parse_list(set->path, text, options->num_labels, &entries, &count);
    if (status == 0) {
        set->count = count;
        set->pixels = tp_xmalloc((size_t)(count * set->height * set->width * set->channels));
        set->labels = tp_xmalloc((size_t)count * sizeof *set->labels);
        uint8_t *ok = tp_xcalloc((size_t)count, 1);
        char **messages = tp_xcalloc((size_t)count, sizeof *messages);
        decode_entries(set, entries, ok, messages);
        status = keep_decoded(set, entries, ok, messages, options->skip_bad_images);
        for (int64_t i = 0; i < count; i++) free(messages[i]);
        free(messages);
        free(ok);
    }
    free(entries);
    free(text);
    return status;
}

/* ---- IDX pairs ------------------------------------------------------------------------------- */

/* The labels file of an images file: "-images-idx3-" -> "-labels-idx1-" in its name. */
static char *idx_labels_path(const char *images_path)
{
    static const char images[] = "-images-idx3-", labels[] = "-labels-idx1-";
    const char *base = strrchr(images_path, '/'), *at = strstr(base ? base : images_path, images);
    if (!at) {
        tp_fail("%s: an IDX images file whose name lacks '%s' (the labels file is found by replacing it with '%s')",
                images_path, images, labels);
        return NULL;
    }
    char *path = tp_xstrdup(images_path);
    memcpy(path + (at - images_path), labels, sizeof labels - 1);
    return path;
}

static int check_idx_pair(const char *images_path, const tp_idx *images, const char *labels_path,
                          const tp_idx *labels, int64_t num_labels)
{
    if (images->ndim != 3)
        return tp_fail("%s: IDX images must have 3 dimensions (count, height, width), this has %d", images_path,
                       images->ndim);
    if (labels->ndim != 1 || labels->dims[0] != images->dims[0])
        return tp_fail("%s: expected %" PRId64 " labels (one per image of %s)", labels_path, images->dims[0],
                       images_path);
    for (int64_t i = 0; i < labels->count; i++)
        if (num_labels > 0 && labels->data[i] >= num_labels)
            return tp_fail("%s: label %u of image %" PRId64 " is not below the %" PRId64 " classes", labels_path,
                           labels->data[i], i, num_labels);
    return 0;
}

/* Gray IDX image i into the set: copied when the size and channel count match, else through RGB. */
static int store_gray(tp_image_set *set, const tp_idx *images, int64_t i)
{
    int64_t height = images->dims[1], width = images->dims[2], plane = height * width;
    const uint8_t *gray = images->data + i * plane;
    uint8_t *out = set->pixels + i * set->height * set->width * set->channels;
    if (set->channels == 1 && height == set->height && width == set->width) {
        memcpy(out, gray, (size_t)plane);
        return 0;
    }
    tp_image rgb = {width, height, tp_xmalloc((size_t)(plane * 3))};
    for (int64_t p = 0; p < plane * 3; p++) rgb.rgb[p] = gray[p / 3];
    int status = store_image(set, &rgb, out);
    tp_image_free(&rgb);
    return status;
}

static int read_idx_pair(tp_image_set *set, const tp_image_set_options *options)
{
    char *labels_path = idx_labels_path(set->path);
    if (!labels_path) return -1;
    tp_idx images = {0}, labels = {0};
    int status = tp_idx_read(set->path, &images);
    if (status == 0) status = tp_idx_read(labels_path, &labels);
    if (status == 0) status = check_idx_pair(set->path, &images, labels_path, &labels, options->num_labels);
    if (status == 0) {
        set->count = images.dims[0];
        set->pixels = tp_xmalloc((size_t)(set->count * set->height * set->width * set->channels));
        set->labels = tp_xmalloc((size_t)set->count * sizeof *set->labels);
        for (int64_t i = 0; i < set->count && status == 0; i++) {
            set->labels[i] = labels.data[i];
            status = store_gray(set, &images, i);
        }
    }
    tp_idx_free(&images);
    tp_idx_free(&labels);
    free(labels_path);
    return status;
}

/* ---- the set --------------------------------------------------------------------------------- */

/* IDX files start with two zero bytes, gzip files with 1f 8b; lists are text. */
static int is_idx_file(const char *path, int *is_idx)
{
    unsigned char first[2] = {0, 0};
    FILE *file = fopen(path, "rb");
    if (!file) return tp_fail("%s: %s", path, strerror(errno));
    size_t got = fread(first, 1, 2, file);
    fclose(file);
    *is_idx = got == 2 && ((first[0] == 0 && first[1] == 0) || (first[0] == 0x1f && first[1] == 0x8b));
    return 0;
}

int tp_image_set_read(const char *path, const tp_image_set_options *options, tp_image_set *out)
{
    memset(out, 0, sizeof *out);
    if (options->channels != 1 && options->channels != 3)
        return tp_fail("%s: images have 1 or 3 channels, the model wants %" PRId64, path, options->channels);
    out->path = tp_xstrdup(path);
    out->channels = options->channels;
    out->height = options->height;
    out->width = options->width;
    int is_idx = 0;
    int status = is_idx_file(path, &is_idx);
    if (status == 0) status = is_idx ? read_idx_pair(out, options) : read_list(out, options);
    for (int64_t i = 0; status == 0 && i < out->count; i++)
        if (out->labels[i] >= out->num_labels) out->num_labels = out->labels[i] + 1;
    if (status == 0 && options->num_labels > 0) out->num_labels = options->num_labels;
    if (status != 0) tp_image_set_free(out);
    return status;
}

void tp_image_set_free(tp_image_set *set)
{
    free(set->path);
    free(set->pixels);
    free(set->labels);
    memset(set, 0, sizeof *set);
}

void tp_image_set_normalize(const tp_image_set *set, int64_t index, float *chw)
{
    static const float half[3] = {0.5f, 0.5f, 0.5f};
    int64_t plane = set->height * set->width;
    const uint8_t *pixels = set->pixels + index * plane * set->channels;
    if (set->channels == 3) {
        tp_image image = {set->width, set->height, (uint8_t *)pixels};
        tp_image_normalize_chw(&image, half, half, chw);
        return;
    }
    for (int64_t i = 0; i < plane; i++) chw[i] = ((float)(pixels[i] * (1.0 / 255.0)) - half[0]) / half[0];
}
