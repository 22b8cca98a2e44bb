/* The `vit` data processor: see preprocess_vit.h. */
#include "preprocess_vit.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* ---- pre-decoded files ----------------------------------------------------------------------- */

enum { PREDECODED_VERSION = 1, PIXELS_UINT8_HWC = 1, HEADER_BYTES = 128 };
static const char predecoded_magic[8] = {'T', 'P', 'I', 'M', 'A', 'G', 'E', 'S'};

/* The 128-byte header exactly as stored (the host must be little-endian). */
typedef struct predecoded_header {
    char magic[8];
    uint32_t version, pixel_type;
    uint64_t count, channels, height, width, num_labels;
    uint64_t labels_pos, pixels_pos, file_size;
    uint8_t padding[48];
} predecoded_header;
_Static_assert(sizeof(predecoded_header) == HEADER_BYTES, "the header is 128 bytes");

static uint64_t align64(uint64_t offset) { return (offset + 63) & ~(uint64_t)63; }

static int write_section(tp_atomic_file *file, uint64_t at, const void *data, uint64_t bytes)
{
    static const uint8_t zeros[64] = {0};
    long position = ftell(file->fp);
    if (position < 0 || (uint64_t)position > at) return tp_fail("%s: cannot tell the write position", file->path);
    fwrite(zeros, 1, (size_t)(at - (uint64_t)position), file->fp);
    fwrite(data, 1, (size_t)bytes, file->fp);
    return 0;
}

int tp_image_set_write(const tp_image_set *set, const char *path)
{
    uint64_t image_bytes = (uint64_t)(set->channels * set->height * set->width);
    predecoded_header header = {.version = PREDECODED_VERSION,
                                .pixel_type = PIXELS_UINT8_HWC,
                                .count = (uint64_t)set->count,
                                .channels = (uint64_t)set->channels,
                                .height = (uint64_t)set->height,
                                .width = (uint64_t)set->width,
                                .num_labels = (uint64_t)set->num_labels,
                                .labels_pos = HEADER_BYTES};
    memcpy(header.magic, predecoded_magic, sizeof header.magic);
    header.pixels_pos = align64(header.labels_pos + 4 * header.count);
    header.file_size = header.pixels_pos + header.count * image_bytes;
    tp_atomic_file file;
    if (tp_atomic_open(&file, path) < 0) return -1;
    if (write_section(&file, 0, &header, sizeof header) < 0 ||
        write_section(&file, header.labels_pos, set->labels, 4 * header.count) < 0 ||
        write_section(&file, header.pixels_pos, set->pixels, header.count * image_bytes) < 0) {
        tp_atomic_abort(&file);
        return -1;
    }
    return tp_atomic_commit(&file);
}

/* A header field in [low, high], named by its byte offset. */
static int check_field(const char *path, const char *name, size_t offset, uint64_t value, uint64_t low, uint64_t high)
{
    if (value < low || value > high)
        return tp_fail("%s: %s %" PRIu64 " at byte %zu is outside [%" PRIu64 ", %" PRIu64 "]", path, name, value,
                       offset, low, high);
    return 0;
}

/* Everything the header promises fits the file and the model. */
static int check_header(const char *path, const predecoded_header *h, uint64_t real_size,
                        const tp_image_set_options *options)
{
    if (h->version != PREDECODED_VERSION)
        return tp_fail("%s: pre-decoded image file version %u at byte 8 is not supported (1)", path, h->version);
    if (h->pixel_type != PIXELS_UINT8_HWC)
        return tp_fail("%s: pixel type %u at byte 12 is not supported (1: uint8 HWC)", path, h->pixel_type);
    if (check_field(path, "image count", offsetof(predecoded_header, count), h->count, 1, real_size) < 0 ||
        check_field(path, "channels", offsetof(predecoded_header, channels), h->channels, 1, 3) < 0 ||
        check_field(path, "height", offsetof(predecoded_header, height), h->height, 1, 1 << 16) < 0 ||
        check_field(path, "width", offsetof(predecoded_header, width), h->width, 1, 1 << 16) < 0 ||
        check_field(path, "num_labels", offsetof(predecoded_header, num_labels), h->num_labels, 1, INT32_MAX) < 0 ||
        check_field(path, "labels_pos", offsetof(predecoded_header, labels_pos), h->labels_pos, HEADER_BYTES,
                    HEADER_BYTES) < 0)
        return -1;
    uint64_t pixels_pos = align64(h->labels_pos + 4 * h->count);
    uint64_t image_bytes = h->channels * h->height * h->width;
    if (check_field(path, "pixels_pos", offsetof(predecoded_header, pixels_pos), h->pixels_pos, pixels_pos,
                    pixels_pos) < 0)
        return -1;
    if (h->file_size != real_size || real_size < pixels_pos || (real_size - pixels_pos) / image_bytes != h->count ||
        (real_size - pixels_pos) % image_bytes != 0)
        return tp_fail("%s: the file has %" PRIu64 " bytes, its header (byte 80: %" PRIu64 ") and %" PRIu64
                       " images of %" PRIu64 " bytes from byte %" PRIu64 " promise %s",
                       path, real_size, h->file_size, h->count, image_bytes, pixels_pos,
                       h->file_size != real_size ? "another size" : "another size of pixels");
    if ((int64_t)h->channels != options->channels || (int64_t)h->height != options->height ||
        (int64_t)h->width != options->width)
        return tp_fail("%s: images of %" PRIu64 " x %" PRIu64 " x %" PRIu64 " (channels x height x width), the model "
                       "takes %" PRId64 " x %" PRId64 " x %" PRId64 " (run tp-preprocess with this model's config)",
                       path, h->channels, h->height, h->width, options->channels, options->height, options->width);
    return 0;
}

static int read_exactly(FILE *file, const char *path, uint64_t at, void *out, uint64_t bytes)
{
    if (fseeko(file, (off_t)at, SEEK_SET) != 0 || fread(out, 1, (size_t)bytes, file) != bytes)
        return tp_fail("%s: cannot read %" PRIu64 " bytes at byte %" PRIu64 " (the file changed?)", path, bytes, at);
    return 0;
}

static int check_labels(const tp_image_set *set, uint64_t labels_pos, int64_t bound)
{
    for (int64_t i = 0; i < set->count; i++)
        if (set->labels[i] < 0 || set->labels[i] >= bound)
            return tp_fail("%s: label %d of image %" PRId64 " (byte %" PRIu64 ") is not below the %" PRId64
                           " classes", set->path, set->labels[i], i, labels_pos + 4 * (uint64_t)i, bound);
    return 0;
}

static int read_predecoded(tp_image_set *set, FILE *file, const tp_image_set_options *options)
{
    predecoded_header header;
    struct stat info;
    if (fstat(fileno(file), &info) != 0) return tp_fail("%s: %s", set->path, strerror(errno));
    if ((uint64_t)info.st_size < sizeof header)
        return tp_fail("%s: pre-decoded image file ends at byte %lld, its header needs %d", set->path,
                       (long long)info.st_size, HEADER_BYTES);
    if (read_exactly(file, set->path, 0, &header, sizeof header) < 0 ||
        check_header(set->path, &header, (uint64_t)info.st_size, options) < 0)
        return -1;
    uint64_t image_bytes = header.channels * header.height * header.width;
    set->count = (int64_t)header.count;
    set->labels = tp_xmalloc((size_t)header.count * sizeof *set->labels);
    set->pixels = tp_xmalloc((size_t)(header.count * image_bytes));
    if (read_exactly(file, set->path, header.labels_pos, set->labels, 4 * header.count) < 0 ||
        read_exactly(file, set->path, header.pixels_pos, set->pixels, header.count * image_bytes) < 0)
        return -1;
    int64_t bound = options->num_labels > 0 ? options->num_labels : (int64_t)header.num_labels;
    if (check_labels(set, header.labels_pos, bound) < 0) return -1;
    set->num_labels = (int64_t)header.num_labels;
    return 0;
}

/* ---- the set --------------------------------------------------------------------------------- */

enum source_kind { SOURCE_LIST, SOURCE_IDX, SOURCE_PREDECODED };

/* Pre-decoded files start with their magic, IDX files with two zero bytes, gzip files with 1f 8b;
 * lists are text. */
static int source_kind(const char *path, enum source_kind *kind)
{
    unsigned char first[sizeof predecoded_magic] = {0};
    FILE *file = fopen(path, "rb");
    if (!file) return tp_fail("%s: %s", path, strerror(errno));
    size_t got = fread(first, 1, sizeof first, file);
    fclose(file);
    *kind = SOURCE_LIST;
    if (got == sizeof first && !memcmp(first, predecoded_magic, sizeof first))
        *kind = SOURCE_PREDECODED;
    else if (got >= 2 && ((first[0] == 0 && first[1] == 0) || (first[0] == 0x1f && first[1] == 0x8b)))
        *kind = SOURCE_IDX;
    return 0;
}

static int read_predecoded_file(tp_image_set *set, const tp_image_set_options *options)
{
    FILE *file = fopen(set->path, "rb");
    if (!file) return tp_fail("%s: %s", set->path, strerror(errno));
    int status = read_predecoded(set, file, options);
    fclose(file);
    return status;
}

int tp_image_set_geometry(tp_config *model_config, tp_image_set_options *options, int64_t *patch)
{
    return tp_config_int(model_config, "image_height", 256, 1, 1 << 16, &options->height) < 0 ||
                   tp_config_int(model_config, "image_width", 256, 1, 1 << 16, &options->width) < 0 ||
                   tp_config_int(model_config, "patch_size", 16, 1, 1 << 16, patch) < 0 ||
                   tp_config_int(model_config, "channels_num", 3, 1, 1024, &options->channels) < 0
               ? -1
               : 0;
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
    enum source_kind kind = SOURCE_LIST;
    int status = source_kind(path, &kind);
    if (status == 0)
        status = kind == SOURCE_PREDECODED ? read_predecoded_file(out, options)
                 : kind == SOURCE_IDX      ? read_idx_pair(out, options)
                                           : read_list(out, options);
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
