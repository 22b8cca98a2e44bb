/* The `vit`, `clip` and `vilt` data processors' images: see preprocess_vit.h. */
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

/* CLIPImageProcessor's resize and crop for the set's size: the short side to the larger of its sides. */
static int clip_resize_crop(const tp_image_set *set, const tp_image *decoded, tp_image *out)
{
    tp_image_processor clip = tp_image_processor_clip;
    clip.shortest_edge = set->width > set->height ? set->width : set->height;
    clip.crop_width = set->width;
    clip.crop_height = set->height;
    return tp_image_resize_crop(decoded, &clip, out);
}

/* A decoded RGB image at the set's size and channel count into out (height x width x channels). */
static int store_image(const tp_image_set *set, const tp_image *decoded, uint8_t *out)
{
    tp_image resized = {0};
    const tp_image *image = decoded;
    if (set->processor == TP_IMAGE_SET_CLIP) {
        if (clip_resize_crop(set, decoded, &resized) < 0) return -1;
        image = &resized;
    } else if (decoded->width != set->width || decoded->height != set->height) {
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

/* ---- label<TAB>path and text<TAB>path lists ------------------------------------------------- */

typedef struct list_entry {
    int64_t line;
    int32_t label;
    const char *image_path, *text; /* inside the list's buffer; text: clip lists only */
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

/* A first line naming the columns `name` and `path`, in either order: *name_column is name's. */
static int is_header(char *const fields[2], const char *name, int *name_column)
{
    for (int c = 0; c < 2; c++)
        if (!strcmp(fields[c], name) && !strcmp(fields[!c], "path")) {
            *name_column = c;
            return 1;
        }
    return 0;
}

/* Splits the list in place into entries (vit: label, path; clip: text, path; a header line may name
 * them in the other order). */
static int parse_list(const char *path, char *text, const tp_image_set_options *options, list_entry **entries,
                      int64_t *count)
{
    int64_t capacity = 256, line = 0;
    int name_column = 0, captions = tp_image_set_has_texts(options->processor);
    const char *name = captions ? "text" : "label";
    *count = 0;
    *entries = tp_xmalloc((size_t)capacity * sizeof **entries);
    for (char *cursor = text, *start; (start = tp_next_line(&cursor, &line));) {
        if (!*start) continue;
        char *tab = strchr(start, '\t');
        if (!tab || strchr(tab + 1, '\t'))
            return tp_fail("%s: line %" PRId64 ": expected 2 tab-separated columns (%s, path)", path, line, name);
        *tab = '\0';
        char *fields[2] = {start, tab + 1};
        if (line == 1 && is_header(fields, name, &name_column)) continue;
        if (*count == capacity) *entries = tp_xrealloc(*entries, (size_t)(capacity *= 2) * sizeof **entries);
        list_entry *entry = &(*entries)[(*count)++];
        entry->line = line;
        entry->image_path = fields[!name_column];
        entry->text = captions ? fields[name_column] : NULL;
        entry->label = 0;
        if (!*entry->image_path) return tp_fail("%s: line %" PRId64 ": empty path", path, line);
        if (captions && !*entry->text) return tp_fail("%s: line %" PRId64 ": empty text", path, line);
        if (!captions && parse_label(path, line, fields[name_column], options->num_labels, &entry->label) < 0)
            return -1;
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

/* Keeps the decoded entries (in order) with their labels and texts, or fails naming the first bad one. */
static int keep_decoded(tp_image_set *set, const list_entry *entries, const uint8_t *ok, char **messages,
                        int skip_bad_images)
{
    int64_t image_bytes = set->height * set->width * set->channels, kept = 0;
    for (int64_t i = 0; i < set->count; i++) {
        if (!ok[i] && !skip_bad_images)
            return tp_fail("%s: line %" PRId64 ": %s", set->path, entries[i].line, messages[i]);
        if (!ok[i]) continue;
        if (kept != i) memmove(set->pixels + kept * image_bytes, set->pixels + i * image_bytes, (size_t)image_bytes);
        if (set->captions) set->captions[kept] = tp_xstrdup(entries[i].text);
        set->lines[kept] = entries[i].line;
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
    int status = parse_list(set->path, text, options, &entries, &count);
    if (status == 0) {
        set->count = count;
        set->pixels = tp_xmalloc((size_t)(count * set->height * set->width * set->channels));
        set->labels = tp_xmalloc((size_t)count * sizeof *set->labels);
        set->lines = tp_xmalloc((size_t)count * sizeof *set->lines);
        if (tp_image_set_has_texts(set->processor)) set->captions = tp_xcalloc((size_t)count, sizeof *set->captions);
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

enum { VERSION_LABELS = 1, VERSION_TEXTS = 2, PIXELS_UINT8_HWC = 1, HEADER_BYTES = 128, MAX_TEXT_LENGTH = 65535 };
static const char predecoded_magic[8] = {'T', 'P', 'I', 'M', 'A', 'G', 'E', 'S'};

/* The 128-byte header exactly as stored (the host must be little-endian). */
typedef struct predecoded_header {
    char magic[8];
    uint32_t version, pixel_type;
    uint64_t count, channels, height, width, num_labels;
    uint64_t labels_pos, pixels_pos, file_size;
    uint32_t processor, text_seq_length; /* version 2 (image-text pairs) only, else 0 */
    uint64_t vocab_size, token_count, text_offsets_pos, tokens_pos;
    uint8_t padding[8];
} predecoded_header;
_Static_assert(sizeof(predecoded_header) == HEADER_BYTES, "the header is 128 bytes");

static uint64_t align64(uint64_t offset) { return (offset + 63) & ~(uint64_t)63; }

/* Where the sections after the pixels start and where the file ends, from the header's counts
 * (pixels_end: the end of the pixels, which must fit the file before this is called). */
static void text_layout(predecoded_header *h, uint64_t pixels_end)
{
    h->text_offsets_pos = h->version == VERSION_TEXTS ? align64(pixels_end) : 0;
    h->tokens_pos = h->version == VERSION_TEXTS ? align64(h->text_offsets_pos + 8 * (h->count + 1)) : 0;
    h->file_size = h->version == VERSION_TEXTS ? h->tokens_pos + 4 * h->token_count : pixels_end;
}

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
    int texts = tp_image_set_has_texts(set->processor);
    if (texts && set->texts.count != set->count)
        return tp_fail("%s: the image-text pairs' texts are not tokenized", path);
    uint64_t image_bytes = (uint64_t)(set->channels * set->height * set->width);
    predecoded_header header = {.version = texts ? VERSION_TEXTS : VERSION_LABELS,
                                .pixel_type = PIXELS_UINT8_HWC,
                                .count = (uint64_t)set->count,
                                .channels = (uint64_t)set->channels,
                                .height = (uint64_t)set->height,
                                .width = (uint64_t)set->width,
                                .num_labels = (uint64_t)set->num_labels,
                                .labels_pos = HEADER_BYTES};
    memcpy(header.magic, predecoded_magic, sizeof header.magic);
    if (texts) {
        header.processor = (uint32_t)set->processor;
        header.text_seq_length = (uint32_t)set->texts.longest;
        header.vocab_size = (uint64_t)set->vocab_size;
        header.token_count = (uint64_t)set->texts.token_count;
    }
    header.pixels_pos = align64(header.labels_pos + 4 * header.count);
    text_layout(&header, header.pixels_pos + header.count * image_bytes);
    tp_atomic_file file;
    if (tp_atomic_open(&file, path) < 0) return -1;
    if (write_section(&file, 0, &header, sizeof header) < 0 ||
        write_section(&file, header.labels_pos, set->labels, 4 * header.count) < 0 ||
        write_section(&file, header.pixels_pos, set->pixels, header.count * image_bytes) < 0 ||
        (texts && (write_section(&file, header.text_offsets_pos, set->texts.offsets, 8 * (header.count + 1)) < 0 ||
                   write_section(&file, header.tokens_pos, set->texts.ids, 4 * header.token_count) < 0))) {
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

#define CHECK_FIELD(field, name, low, high)                                                                         \
    check_field(path, name, offsetof(predecoded_header, field), h->field, low, high)

/* Version 2's fields; the offsets are the layout's (text_layout). */
static int check_text_fields(const char *path, const predecoded_header *h, const predecoded_header *expected,
                             uint64_t real_size)
{
    return CHECK_FIELD(processor, "processor", TP_IMAGE_SET_CLIP, TP_IMAGE_SET_VILT) < 0 ||
                   CHECK_FIELD(text_seq_length, "text_seq_length", 1, MAX_TEXT_LENGTH) < 0 ||
                   CHECK_FIELD(vocab_size, "vocab_size", 1, INT32_MAX) < 0 ||
                   CHECK_FIELD(token_count, "token_count", h->count, real_size) < 0 ||
                   CHECK_FIELD(num_labels, "num_labels", 1, 1) < 0 ||
                   CHECK_FIELD(text_offsets_pos, "text_offsets_pos", expected->text_offsets_pos,
                               expected->text_offsets_pos) < 0 ||
                   CHECK_FIELD(tokens_pos, "tokens_pos", expected->tokens_pos, expected->tokens_pos) < 0
               ? -1
               : 0;
}

/* The file's geometry and processor are the model's. */
static int check_model(const char *path, const predecoded_header *h, const tp_image_set_options *options)
{
    static const char *const kinds[] = {"labelled images of the vit processor",
                                        "image-text pairs of the clip processor",
                                        "image-text pairs of the vilt processor"};
    int processor = h->version == VERSION_TEXTS ? (int)h->processor : TP_IMAGE_SET_VIT;
    if (processor != options->processor)
        return tp_fail("%s: holds %s; this model reads %s (run tp-preprocess with --data_processor %s)", path,
                       kinds[processor], kinds[options->processor], tp_image_set_processor_name(options->processor));
    if ((int64_t)h->channels != options->channels || (int64_t)h->height != options->height ||
        (int64_t)h->width != options->width)
        return tp_fail("%s: images of %" PRIu64 " x %" PRIu64 " x %" PRIu64 " (channels x height x width), the model "
                       "takes %" PRId64 " x %" PRId64 " x %" PRId64 " (run tp-preprocess with this model's config)",
                       path, h->channels, h->height, h->width, options->channels, options->height, options->width);
    return 0;
}

/* Everything the header promises fits the file and the model. */
static int check_header(const char *path, const predecoded_header *h, uint64_t real_size,
                        const tp_image_set_options *options)
{
    if (h->version != VERSION_LABELS && h->version != VERSION_TEXTS)
        return tp_fail("%s: pre-decoded image file version %u at byte 8 is not supported (1 or 2)", path, h->version);
    if (h->pixel_type != PIXELS_UINT8_HWC)
        return tp_fail("%s: pixel type %u at byte 12 is not supported (1: uint8 HWC)", path, h->pixel_type);
    if (CHECK_FIELD(count, "image count", 1, real_size) < 0 || CHECK_FIELD(channels, "channels", 1, 3) < 0 ||
        CHECK_FIELD(height, "height", 1, 1 << 16) < 0 || CHECK_FIELD(width, "width", 1, 1 << 16) < 0 ||
        CHECK_FIELD(num_labels, "num_labels", 1, INT32_MAX) < 0 ||
        CHECK_FIELD(labels_pos, "labels_pos", HEADER_BYTES, HEADER_BYTES) < 0)
        return -1;
    predecoded_header expected = *h;
    expected.pixels_pos = align64(h->labels_pos + 4 * h->count);
    uint64_t image_bytes = h->channels * h->height * h->width;
    if (CHECK_FIELD(pixels_pos, "pixels_pos", expected.pixels_pos, expected.pixels_pos) < 0) return -1;
    /* Compared by division first: a count the file cannot hold must not overflow the products. */
    int pixels_fit = real_size >= h->pixels_pos && (real_size - h->pixels_pos) / image_bytes >= h->count;
    if (pixels_fit) text_layout(&expected, h->pixels_pos + h->count * image_bytes);
    if (pixels_fit && h->version == VERSION_TEXTS && check_text_fields(path, h, &expected, real_size) < 0) return -1;
    if (!pixels_fit || h->file_size != real_size || expected.file_size != real_size)
        return tp_fail("%s: the file has %" PRIu64 " bytes, its header (file_size at byte %zu: %" PRIu64
                       ") and %" PRIu64 " images of %" PRIu64 " bytes from byte %" PRIu64 "%s promise %s",
                       path, real_size, offsetof(predecoded_header, file_size), h->file_size, h->count, image_bytes,
                       h->pixels_pos, h->version == VERSION_TEXTS ? " with their texts" : "",
                       h->file_size != real_size ? "another size" : "another layout");
    return check_model(path, h, options);
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

/* Version 2's texts: offsets from 0 to token_count, each text 1 .. text_seq_length ids below vocab_size. */
static int read_texts(tp_image_set *set, FILE *file, const predecoded_header *h)
{
    tp_id_lists *texts = &set->texts;
    texts->count = set->count;
    texts->token_count = (int64_t)h->token_count;
    texts->offsets = tp_xmalloc((size_t)(h->count + 1) * sizeof *texts->offsets);
    texts->ids = tp_xmalloc((size_t)h->token_count * sizeof *texts->ids);
    set->vocab_size = (int64_t)h->vocab_size;
    if (read_exactly(file, set->path, h->text_offsets_pos, texts->offsets, 8 * (h->count + 1)) < 0 ||
        read_exactly(file, set->path, h->tokens_pos, texts->ids, 4 * h->token_count) < 0)
        return -1;
    const int64_t *offsets = texts->offsets;
    for (int64_t i = 0; i <= texts->count; i++) {
        /* unsigned: offsets out of order wrap to a length far above text_seq_length */
        uint64_t length = i ? (uint64_t)offsets[i] - (uint64_t)offsets[i - 1] : 0;
        uint64_t at = h->text_offsets_pos + 8 * (uint64_t)i;
        if (i == 0 && offsets[0] != 0)
            return tp_fail("%s: text offset %" PRId64 " at byte %" PRIu64 " is not 0", set->path, offsets[0], at);
        if (i > 0 && (length < 1 || length > h->text_seq_length))
            return tp_fail("%s: text offset %" PRId64 " at byte %" PRIu64 " gives image %" PRId64 " a text of %" PRId64
                           " ids, not 1 to text_seq_length %u", set->path, offsets[i], at, i - 1, (int64_t)length,
                           h->text_seq_length);
        if (i == texts->count && offsets[i] != texts->token_count)
            return tp_fail("%s: the last text offset %" PRId64 " at byte %" PRIu64 " is not token_count %" PRId64,
                           set->path, offsets[i], at, texts->token_count);
        if ((int64_t)length > texts->longest) texts->longest = (int64_t)length;
    }
    for (int64_t t = 0; t < texts->token_count; t++)
        if (texts->ids[t] < 0 || texts->ids[t] >= set->vocab_size)
            return tp_fail("%s: token id %d at byte %" PRIu64 " is not below vocab_size %" PRId64, set->path,
                           texts->ids[t], h->tokens_pos + 4 * (uint64_t)t, set->vocab_size);
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
    if (header.version == VERSION_TEXTS && read_texts(set, file, &header) < 0) return -1;
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

int tp_image_set_is_predecoded(const char *path)
{
    enum source_kind kind;
    return source_kind(path, &kind) < 0 ? -1 : kind == SOURCE_PREDECODED;
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
                   tp_config_int(model_config, "channels_num", 3, 1, 1024, &options->channels) < 0 ||
                   tp_image_augment_read(model_config, &options->augment) < 0
               ? -1
               : 0;
}

int tp_image_set_read(const char *path, const tp_image_set_options *options, tp_image_set *out)
{
    memset(out, 0, sizeof *out);
    if (options->channels != 1 && options->channels != 3)
        return tp_fail("%s: images have 1 or 3 channels, the model wants %" PRId64, path, options->channels);
    if (options->processor == TP_IMAGE_SET_CLIP && options->channels != 3)
        return tp_fail("%s: the clip processor's images have 3 channels (CLIP's mean and std), the model wants "
                       "%" PRId64, path, options->channels);
    out->path = tp_xstrdup(path);
    out->processor = options->processor;
    out->channels = options->channels;
    out->height = options->height;
    out->width = options->width;
    enum source_kind kind = SOURCE_LIST;
    int status = source_kind(path, &kind);
    if (status == 0 && kind == SOURCE_IDX && tp_image_set_has_texts(options->processor))
        status = tp_fail("%s: an IDX file holds labelled images; the %s processor reads text<TAB>path lines", path,
                         tp_image_set_processor_name(options->processor));
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

void tp_id_lists_free(tp_id_lists *lists)
{
    free(lists->offsets);
    free(lists->ids);
    memset(lists, 0, sizeof *lists);
}

void tp_image_set_free(tp_image_set *set)
{
    for (int64_t i = 0; set->captions && i < set->count; i++) free(set->captions[i]);
    free(set->captions);
    tp_id_lists_free(&set->texts);
    free(set->path);
    free(set->pixels);
    free(set->labels);
    free(set->lines);
    memset(set, 0, sizeof *set);
}

void tp_image_set_normalize(const tp_image_set *set, int64_t index, float *chw)
{
    tp_image_set_normalize_pixels(set, set->pixels + index * set->height * set->width * set->channels, chw);
}

void tp_image_set_normalize_pixels(const tp_image_set *set, const uint8_t *pixels, float *chw)
{
    const tp_image_processor *processor =
        set->processor == TP_IMAGE_SET_CLIP ? &tp_image_processor_clip : &tp_image_processor_vit;
    int64_t plane = set->height * set->width;
    if (set->channels == 3) {
        tp_image image = {set->width, set->height, (uint8_t *)pixels};
        tp_image_normalize_chw(&image, processor->mean, processor->std, chw);
        return;
    }
    for (int64_t i = 0; i < plane; i++)
        chw[i] = ((float)(pixels[i] * (1.0 / 255.0)) - processor->mean[0]) / processor->std[0];
}

int tp_image_set_has_texts(int processor) { return processor != TP_IMAGE_SET_VIT; }

const char *tp_image_set_processor_name(int processor)
{
    static const char *const names[] = {"vit", "clip", "vilt"};
    return names[processor];
}

/* ---- image_preprocess's augmentations (core/image_augment.h) ------------------------------ */

/* The window of the stored image (channels 1 or 3, HWC) resized to the whole height x width into out. */
static void crop_resize(const uint8_t *stored, int64_t channels, int64_t height, int64_t width, tp_crop_window window,
                        uint8_t *out)
{
    tp_image crop = {window.width, window.height, tp_xmalloc((size_t)(window.width * window.height * 3))}, resized = {0};
    for (int64_t y = 0; y < window.height; y++)
        for (int64_t x = 0; x < window.width; x++)
            for (int64_t c = 0; c < 3; c++) /* gray replicated: PIL resizes the channels alike */
                crop.rgb[(y * window.width + x) * 3 + c] =
                    stored[((window.top + y) * width + window.left + x) * channels + (channels == 3 ? c : 0)];
    /* cannot fail: both sizes are positive and within the stored image's */
    if (tp_image_resize(&crop, width, height, TP_RESAMPLE_BILINEAR, &resized) == 0)
        for (int64_t i = 0; i < height * width; i++)
            for (int64_t c = 0; c < channels; c++) out[i * channels + c] = resized.rgb[i * 3 + c];
    tp_image_free(&resized);
    tp_image_free(&crop);
}

static void mirror(uint8_t *pixels, int64_t channels, int64_t height, int64_t width)
{
    for (int64_t y = 0; y < height; y++)
        for (int64_t x = 0; x < width / 2; x++)
            for (int64_t c = 0; c < channels; c++) {
                uint8_t *left = pixels + (y * width + x) * channels + c;
                uint8_t *right = pixels + (y * width + width - 1 - x) * channels + c;
                uint8_t kept = *left;
                *left = *right;
                *right = kept;
            }
}

void tp_image_set_augment(const tp_image_set *set, int64_t index, const tp_image_augment *augment, tp_rng *rng,
                          float *chw)
{
    int64_t channels = set->channels, height = set->height, width = set->width, bytes = channels * height * width;
    const uint8_t *stored = set->pixels + index * bytes;
    uint8_t *pixels = tp_xmalloc((size_t)bytes);
    memcpy(pixels, stored, (size_t)bytes);
    if (augment->crop)
        crop_resize(stored, channels, height, width, tp_random_resized_crop_window(height, width, rng), pixels);
    if (augment->horizontal_flip && tp_rng_uniform(rng) < 0.5) mirror(pixels, channels, height, width);
    tp_image_set_normalize_pixels(set, pixels, chw);
    free(pixels);
}
