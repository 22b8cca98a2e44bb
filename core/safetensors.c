#include "safetensors.h"

#include "error.h"
#include "fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian and tp hands out the mapped bytes without conversion"
#endif

#define LENGTH_BYTES 8
/* The official implementation refuses larger headers; so do we, before parsing anything. */
#define MAX_HEADER_BYTES 100000000
/* JSON numbers are doubles: integers above 2^53 cannot be told apart from their neighbours. */
#define MAX_EXACT_INTEGER 9007199254740992LL
#define METADATA_KEY "__metadata__"

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [TP_ST_F32] = {"F32", 4}, [TP_ST_F16] = {"F16", 2}, [TP_ST_BF16] = {"BF16", 2}, [TP_ST_F64] = {"F64", 8},
    [TP_ST_I64] = {"I64", 8}, [TP_ST_I32] = {"I32", 4}, [TP_ST_I16] = {"I16", 2},   [TP_ST_I8] = {"I8", 1},
    [TP_ST_U8] = {"U8", 1},   [TP_ST_BOOL] = {"BOOL", 1}, [TP_ST_U16] = {"U16", 2}, [TP_ST_U32] = {"U32", 4},
    [TP_ST_U64] = {"U64", 8},
};
#define DTYPE_COUNT ((int)(sizeof dtype_info / sizeof dtype_info[0]))

size_t tp_st_dtype_size(tp_st_dtype dtype) { return (unsigned)dtype < DTYPE_COUNT ? dtype_info[dtype].size : 0; }

const char *tp_st_dtype_name(tp_st_dtype dtype) { return (unsigned)dtype < DTYPE_COUNT ? dtype_info[dtype].name : "?"; }

static int dtype_from_name(const char *name)
{
    for (int dtype = 0; dtype < DTYPE_COUNT; dtype++)
        if (strcmp(dtype_info[dtype].name, name) == 0) return dtype;
    return -1;
}

/* ---- checks shared by the reader and the writer ---- */

/* "<path>: tensor '<name>': <what>"; without a path (the writer learns it only on save) the
 * message starts at "tensor". */
static int fail_tensor(const char *path, const char *name, const char *fmt, ...) TP_PRINTF(3, 4);
static int fail_tensor(const char *path, const char *name, const char *fmt, ...)
{
    char what[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    if (!path) return tp_fail("tensor '%s': %s", name, what);
    return tp_fail("%s: tensor '%s': %s", path, name, what);
}

/* Byte offset of the first invalid UTF-8 sequence or NUL byte (C strings would silently cut a
 * name there), or -1 when the bytes are clean. */
static int64_t bad_utf8_at(const unsigned char *bytes, size_t len)
{
    size_t at = 0;
    while (at < len) {
        utf8proc_int32_t codepoint;
        utf8proc_ssize_t step = utf8proc_iterate(bytes + at, (utf8proc_ssize_t)(len - at), &codepoint);
        if (step <= 0 || codepoint == 0) return (int64_t)at;
        at += (size_t)step;
    }
    return -1;
}

static int64_t bad_utf8_string_at(const char *s) { return bad_utf8_at((const unsigned char *)s, strlen(s)); }

/* Checks a shape and computes its element count and byte size with overflow checks;
 * returns 0, or -1 with a message naming path and the tensor. */
static int check_shape(const char *path, const char *name, tp_st_dtype dtype, int ndim, const int64_t *shape,
                       int64_t *numel_out, int64_t *nbytes_out)
{
    if (ndim < 0 || ndim > TP_ST_MAX_DIMS)
        return fail_tensor(path, name, "%d dimensions, expected 0 to %d", ndim, TP_ST_MAX_DIMS);
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return fail_tensor(path, name, "negative dimension %d (%lld)", d, (long long)shape[d]);
        if (shape[d] > MAX_EXACT_INTEGER)
            return fail_tensor(path, name, "dimension %d (%lld) is larger than 2^53", d, (long long)shape[d]);
        if (__builtin_mul_overflow(numel, shape[d], &numel))
            return fail_tensor(path, name, "element count of the shape overflows int64");
    }
    if (__builtin_mul_overflow(numel, (int64_t)tp_st_dtype_size(dtype), nbytes_out))
        return fail_tensor(path, name, "byte size (%lld elements of %s) overflows int64", (long long)numel,
                           tp_st_dtype_name(dtype));
    *numel_out = numel;
    return 0;
}

/* "[2, 3]" with separator ", " (messages), "[2,3]" with "," (the header, as the official writer). */
static void format_list(char *out, size_t cap, int ndim, const int64_t *shape, const char *separator)
{
    size_t used = (size_t)snprintf(out, cap, "[");
    for (int d = 0; d < ndim && used < cap; d++)
        used += (size_t)snprintf(out + used, cap - used, "%s%lld", d ? separator : "", (long long)shape[d]);
    if (used < cap) snprintf(out + used, cap - used, "]");
}

/* ---- reading ---- */

typedef struct entry {
    tp_st_tensor tensor;
    int64_t begin, end; /* data_offsets: relative to the start of the data section */
    int64_t json_index; /* position in the header, to keep the order of equal offsets stable */
} entry;

struct tp_st_file {
    char *path;
    unsigned char *map;
    size_t map_bytes;
    cJSON *header;         /* owns the tensor names and the metadata strings */
    const cJSON *metadata; /* NULL when the header has none */
    int64_t count;
    entry *entries;                 /* in data order */
    const tp_st_tensor **by_name;   /* sorted by name, for tp_st_find */
};

/* What keeps a JSON value from being an exact integer, or NULL when it is one (stored in *out). */
static const char *integer_problem(const cJSON *value, int64_t *out)
{
    if (!cJSON_IsNumber(value)) return "is not a number";
    double number = value->valuedouble;
    if (!(number >= -(double)MAX_EXACT_INTEGER && number <= (double)MAX_EXACT_INTEGER)) return "is beyond 2^53";
    if (number != (double)(int64_t)number) return "is not an integer";
    *out = (int64_t)number;
    return NULL;
}

static int parse_shape(const char *path, const char *name, const cJSON *shape_json, entry *out)
{
    tp_st_tensor *tensor = &out->tensor;
    if (!cJSON_IsArray(shape_json)) return fail_tensor(path, name, "'shape' is missing or not an array");
    int ndim = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape_json) {
        if (ndim == TP_ST_MAX_DIMS) return fail_tensor(path, name, "more than %d dimensions", TP_ST_MAX_DIMS);
        const char *problem = integer_problem(dim, &tensor->shape[ndim]);
        if (problem) return fail_tensor(path, name, "shape[%d] %s", ndim, problem);
        ndim++;
    }
    tensor->ndim = ndim;
    return check_shape(path, name, tensor->dtype, ndim, tensor->shape, &tensor->numel, &tensor->nbytes);
}

static int parse_offsets(const char *path, const char *name, const cJSON *offsets_json, int64_t data_bytes,
                         entry *out)
{
    if (!cJSON_IsArray(offsets_json) || cJSON_GetArraySize(offsets_json) != 2)
        return fail_tensor(path, name, "'data_offsets' is missing or not an array of two integers");
    int64_t offsets[2];
    for (int i = 0; i < 2; i++) {
        const char *problem = integer_problem(cJSON_GetArrayItem(offsets_json, i), &offsets[i]);
        if (!problem && offsets[i] < 0) problem = "is negative";
        if (problem) return fail_tensor(path, name, "data_offsets[%d] %s", i, problem);
    }
    out->begin = offsets[0];
    out->end = offsets[1];
    if (out->begin > out->end)
        return fail_tensor(path, name, "data_offsets begin %lld > end %lld", (long long)out->begin,
                           (long long)out->end);
    if (out->end - out->begin != out->tensor.nbytes) {
        char shape[TP_ST_MAX_DIMS * 24 + 4];
        format_list(shape, sizeof shape, out->tensor.ndim, out->tensor.shape, ", ");
        return fail_tensor(path, name, "data_offsets [%lld, %lld] span %lld bytes but %s %s needs %lld",
                           (long long)out->begin, (long long)out->end, (long long)(out->end - out->begin),
                           tp_st_dtype_name(out->tensor.dtype), shape, (long long)out->tensor.nbytes);
    }
    if (out->end > data_bytes)
        return fail_tensor(path, name,
                           "data_offsets end %lld is past the end of the data section (%lld bytes; file truncated?)",
                           (long long)out->end, (long long)data_bytes);
    return 0;
}

static int parse_entry(const char *path, const cJSON *item, int64_t data_bytes, entry *out)
{
    const char *name = item->string;
    out->tensor.name = name;
    if (!cJSON_IsObject(item)) return fail_tensor(path, name, "entry is not a JSON object");
    const cJSON *dtype_json = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!cJSON_IsString(dtype_json)) return fail_tensor(path, name, "'dtype' is missing or not a string");
    int dtype = dtype_from_name(dtype_json->valuestring);
    if (dtype < 0) {
        char known[128] = "";
        for (int d = 0; d < DTYPE_COUNT; d++) {
            strcat(known, d ? " " : "");
            strcat(known, dtype_info[d].name);
        }
        return fail_tensor(path, name, "unknown dtype '%s' (known: %s)", dtype_json->valuestring, known);
    }
    out->tensor.dtype = (tp_st_dtype)dtype;
    if (parse_shape(path, name, cJSON_GetObjectItemCaseSensitive(item, "shape"), out) != 0) return -1;
    return parse_offsets(path, name, cJSON_GetObjectItemCaseSensitive(item, "data_offsets"), data_bytes, out);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int compare_tensor_names(const void *a, const void *b)
{
    return strcmp((*(const tp_st_tensor *const *)a)->name, (*(const tp_st_tensor *const *)b)->name);
}

static int compare_entry_offsets(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->json_index < y->json_index ? -1 : x->json_index > y->json_index;
}

static int check_metadata(const char *path, const cJSON *metadata)
{
    if (!cJSON_IsObject(metadata)) return tp_fail("%s: '%s' is not a JSON object", path, METADATA_KEY);
    int64_t count = cJSON_GetArraySize(metadata), i = 0;
    const char **keys = tp_xmalloc((size_t)count * sizeof *keys);
    const cJSON *item;
    int status = 0;
    cJSON_ArrayForEach(item, metadata) {
        keys[i++] = item->string;
        if (!cJSON_IsString(item) && status == 0)
            status = tp_fail("%s: metadata '%s': value is not a string", path, item->string);
    }
    qsort(keys, (size_t)count, sizeof *keys, compare_strings);
    for (i = 1; i < count && status == 0; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) status = tp_fail("%s: metadata '%s': duplicate key", path, keys[i]);
    free(keys);
    return status;
}

/* Reads every tensor entry of the header into file->entries (header order). */
static int parse_entries(tp_st_file *file, int64_t data_bytes)
{
    int64_t count = cJSON_GetArraySize(file->header) - (file->metadata != NULL);
    file->entries = tp_xcalloc((size_t)count + 1, sizeof *file->entries);
    const cJSON *item;
    cJSON_ArrayForEach(item, file->header) {
        if (item == file->metadata) continue;
        if (strcmp(item->string, METADATA_KEY) == 0) /* a second one would pass for a tensor */
            return tp_fail("%s: '%s' appears twice in the header", file->path, METADATA_KEY);
        entry *out = &file->entries[file->count];
        out->json_index = file->count;
        if (parse_entry(file->path, item, data_bytes, out) != 0) return -1;
        file->count++;
    }
    return 0;
}

static int index_names(tp_st_file *file)
{
    file->by_name = tp_xmalloc(((size_t)file->count + 1) * sizeof *file->by_name);
    for (int64_t i = 0; i < file->count; i++) file->by_name[i] = &file->entries[i].tensor;
    qsort(file->by_name, (size_t)file->count, sizeof *file->by_name, compare_tensor_names);
    for (int64_t i = 1; i < file->count; i++)
        if (strcmp(file->by_name[i - 1]->name, file->by_name[i]->name) == 0)
            return fail_tensor(file->path, file->by_name[i]->name, "duplicate name");
    return 0;
}

/* The tensors must tile the data section exactly, as the official implementation requires: an
 * overlap would alias two tensors, a hole or trailing bytes would hide data nobody can name. */
static int check_layout(const tp_st_file *file, int64_t data_start, int64_t data_bytes)
{
    int64_t covered = 0;
    for (int64_t i = 0; i < file->count; i++) {
        const entry *current = &file->entries[i];
        if (current->begin < covered) {
            const entry *previous = &file->entries[i - 1]; /* sorted and tiled so far: it ends at covered */
            return fail_tensor(file->path, current->tensor.name, "data_offsets [%lld, %lld] overlap tensor '%s' [%lld, %lld]",
                               (long long)current->begin, (long long)current->end, previous->tensor.name,
                               (long long)previous->begin, (long long)previous->end);
        }
        if (current->begin > covered)
            return tp_fail("%s: offset %lld: %lld bytes before tensor '%s' belong to no tensor", file->path,
                           (long long)(data_start + covered), (long long)(current->begin - covered),
                           current->tensor.name);
        covered = current->end;
    }
    if (covered != data_bytes)
        return tp_fail("%s: offset %lld: %lld bytes after the last tensor belong to no tensor", file->path,
                       (long long)(data_start + covered), (long long)(data_bytes - covered));
    return 0;
}

/* Parses the JSON header found in the mapping; only whitespace may follow the object (padding). */
static int parse_header(tp_st_file *file, uint64_t header_bytes)
{
    const char *json = (const char *)file->map + LENGTH_BYTES;
    int64_t bad = bad_utf8_at((const unsigned char *)json, header_bytes);
    if (bad >= 0)
        return tp_fail("%s: offset %lld: header is not valid UTF-8 (or holds a NUL byte)", file->path,
                       (long long)(LENGTH_BYTES + bad));
    const char *end = json;
    file->header = cJSON_ParseWithLengthOpts(json, header_bytes, &end, 0);
    if (!file->header)
        return tp_fail("%s: offset %lld: header is not valid JSON", file->path,
                       (long long)(LENGTH_BYTES + (end - json)));
    for (; end < json + header_bytes; end++)
        if (!strchr(" \t\r\n", *end))
            return tp_fail("%s: offset %lld: unexpected bytes after the header's JSON object", file->path,
                           (long long)(LENGTH_BYTES + (end - json)));
    if (!cJSON_IsObject(file->header))
        return tp_fail("%s: offset %d: header is not a JSON object", file->path, LENGTH_BYTES);
    file->metadata = cJSON_GetObjectItemCaseSensitive(file->header, METADATA_KEY);
    return file->metadata ? check_metadata(file->path, file->metadata) : 0;
}

static int validate(tp_st_file *file)
{
    if (file->map_bytes < LENGTH_BYTES)
        return tp_fail("%s: offset 0: file has %zu bytes, fewer than the 8-byte header length", file->path,
                       file->map_bytes);
    uint64_t header_bytes = 0;
    for (int i = LENGTH_BYTES - 1; i >= 0; i--) header_bytes = header_bytes << 8 | file->map[i];
    uint64_t available = file->map_bytes - LENGTH_BYTES;
    if (header_bytes > available)
        return tp_fail("%s: offset 0: header length %llu exceeds the %llu bytes after it", file->path,
                       (unsigned long long)header_bytes, (unsigned long long)available);
    if (header_bytes > MAX_HEADER_BYTES)
        return tp_fail("%s: offset 0: header length %llu exceeds the limit of %d bytes", file->path,
                       (unsigned long long)header_bytes, MAX_HEADER_BYTES);
    int64_t data_start = LENGTH_BYTES + (int64_t)header_bytes;
    int64_t data_bytes = (int64_t)file->map_bytes - data_start;
    if (parse_header(file, header_bytes) != 0 || parse_entries(file, data_bytes) != 0) return -1;
    qsort(file->entries, (size_t)file->count, sizeof *file->entries, compare_entry_offsets);
    if (index_names(file) != 0 || check_layout(file, data_start, data_bytes) != 0) return -1;
    for (int64_t i = 0; i < file->count; i++)
        file->entries[i].tensor.data = file->map + data_start + file->entries[i].begin;
    return 0;
}

static int map_file(tp_st_file *file)
{
    int fd = open(file->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tp_fail("%s: %s", file->path, strerror(errno));
    struct stat info;
    int status = 0;
    if (fstat(fd, &info) != 0)
        status = tp_fail("%s: %s", file->path, strerror(errno));
    else if (!S_ISREG(info.st_mode))
        status = tp_fail("%s: not a regular file", file->path);
    else if (info.st_size >= LENGTH_BYTES) {
        file->map_bytes = (size_t)info.st_size;
        file->map = mmap(NULL, file->map_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
        if (file->map == MAP_FAILED) {
            file->map = NULL;
            status = tp_fail("%s: mmap: %s", file->path, strerror(errno));
        }
    } else
        file->map_bytes = (size_t)info.st_size; /* too short: validate() says so; nothing to map */
    close(fd);
    return status;
}

tp_st_file *tp_st_open(const char *path)
{
    tp_st_file *file = tp_xcalloc(1, sizeof *file);
    file->path = tp_xstrdup(path);
    if (map_file(file) != 0 || validate(file) != 0) {
        tp_st_close(file);
        return NULL;
    }
    return file;
}

void tp_st_close(tp_st_file *file)
{
    if (!file) return;
    if (file->map) munmap(file->map, file->map_bytes);
    cJSON_Delete(file->header);
    free(file->entries);
    free(file->by_name);
    free(file->path);
    free(file);
}

int64_t tp_st_count(const tp_st_file *file) { return file->count; }

const tp_st_tensor *tp_st_at(const tp_st_file *file, int64_t index)
{
    return index >= 0 && index < file->count ? &file->entries[index].tensor : NULL;
}

const tp_st_tensor *tp_st_find(const tp_st_file *file, const char *name)
{
    tp_st_tensor key = {.name = name};
    const tp_st_tensor *key_ptr = &key;
    const tp_st_tensor **found =
        bsearch(&key_ptr, file->by_name, (size_t)file->count, sizeof *file->by_name, compare_tensor_names);
    return found ? *found : NULL;
}

const char *tp_st_metadata(const tp_st_file *file, const char *key)
{
    const cJSON *value = file->metadata ? cJSON_GetObjectItemCaseSensitive(file->metadata, key) : NULL;
    return value ? value->valuestring : NULL;
}

const char *tp_st_path(const tp_st_file *file) { return file->path; }

int tp_st_read_f32(const tp_st_file *file, const char *name, int ndim, const int64_t *shape, float *dst)
{
    const tp_st_tensor *tensor = tp_st_find(file, name);
    if (!tensor) return fail_tensor(file->path, name, "not found");
    int same = tensor->dtype == TP_ST_F32 && tensor->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = tensor->shape[d] == shape[d];
    if (!same) {
        char expected[256], found[256];
        format_list(expected, sizeof expected, ndim, shape, ", ");
        format_list(found, sizeof found, tensor->ndim, tensor->shape, ", ");
        return fail_tensor(file->path, name, "expected F32 %s, found %s %s", expected,
                           tp_st_dtype_name(tensor->dtype), found);
    }
    if (tensor->nbytes) memcpy(dst, tensor->data, (size_t)tensor->nbytes);
    return 0;
}

/* ---- writing ---- */

struct tp_st_writer {
    tp_st_tensor *tensors; /* names are owned copies */
    int64_t count, capacity;
    char **meta_keys, **meta_values;
    int64_t meta_count, meta_capacity;
    char *error; /* the first problem found by add or metadata, reported by save */
};

tp_st_writer *tp_st_writer_new(void) { return tp_xcalloc(1, sizeof(tp_st_writer)); }

static void writer_error(tp_st_writer *writer, const char *message)
{
    if (!writer->error) writer->error = tp_xstrdup(message);
}

void tp_st_writer_add(tp_st_writer *writer, const char *name, tp_st_dtype dtype, int ndim, const int64_t *shape,
                      const void *data)
{
    tp_st_tensor tensor = {.dtype = dtype, .ndim = ndim, .data = data};
    /* Problems are kept (without a path) and reported by save, which knows the path. */
    int bad = 0;
    if ((unsigned)dtype >= DTYPE_COUNT)
        bad = fail_tensor(NULL, name, "unknown dtype %d", (int)dtype);
    else if (strcmp(name, METADATA_KEY) == 0 || bad_utf8_string_at(name) >= 0)
        bad = fail_tensor(NULL, name, "name is reserved or not valid UTF-8");
    else if (check_shape(NULL, name, dtype, ndim, shape, &tensor.numel, &tensor.nbytes) != 0)
        bad = -1;
    else if (!data && tensor.nbytes > 0)
        bad = fail_tensor(NULL, name, "no data");
    if (bad) {
        writer_error(writer, tp_last_error());
        return;
    }
    if (ndim) memcpy(tensor.shape, shape, (size_t)ndim * sizeof *shape);
    tensor.name = tp_xstrdup(name);
    if (writer->count == writer->capacity) {
        writer->capacity = writer->capacity ? 2 * writer->capacity : 16;
        writer->tensors = tp_xrealloc(writer->tensors, (size_t)writer->capacity * sizeof *writer->tensors);
    }
    writer->tensors[writer->count++] = tensor;
}

void tp_st_writer_metadata(tp_st_writer *writer, const char *key, const char *value)
{
    if (bad_utf8_string_at(key) >= 0 || bad_utf8_string_at(value) >= 0) {
        char message[1024];
        snprintf(message, sizeof message, "metadata '%s': key or value is not valid UTF-8", key);
        writer_error(writer, message);
        return;
    }
    for (int64_t i = 0; i < writer->meta_count; i++)
        if (strcmp(writer->meta_keys[i], key) == 0) { /* setting a key again replaces its value */
            free(writer->meta_values[i]);
            writer->meta_values[i] = tp_xstrdup(value);
            return;
        }
    if (writer->meta_count == writer->meta_capacity) {
        writer->meta_capacity = writer->meta_capacity ? 2 * writer->meta_capacity : 8;
        writer->meta_keys = tp_xrealloc(writer->meta_keys, (size_t)writer->meta_capacity * sizeof(char *));
        writer->meta_values = tp_xrealloc(writer->meta_values, (size_t)writer->meta_capacity * sizeof(char *));
    }
    writer->meta_keys[writer->meta_count] = tp_xstrdup(key);
    writer->meta_values[writer->meta_count++] = tp_xstrdup(value);
}

static int check_unique_names(const tp_st_writer *writer, const char *path)
{
    const char **names = tp_xmalloc(((size_t)writer->count + 1) * sizeof *names);
    for (int64_t i = 0; i < writer->count; i++) names[i] = writer->tensors[i].name;
    qsort(names, (size_t)writer->count, sizeof *names, compare_strings);
    int status = 0;
    for (int64_t i = 1; i < writer->count && status == 0; i++)
        if (strcmp(names[i - 1], names[i]) == 0) status = fail_tensor(path, names[i], "duplicate name");
    free(names);
    return status;
}

static cJSON *json_integer_list(int count, const int64_t *values)
{
    char text[TP_ST_MAX_DIMS * 24 + 4];
    format_list(text, sizeof text, count, values, ",");
    return cJSON_CreateRaw(text); /* exact decimal integers: cJSON would print large doubles as 1e+15 */
}

static cJSON *tensor_json(const tp_st_tensor *tensor, int64_t begin)
{
    int64_t offsets[2] = {begin, begin + tensor->nbytes};
    cJSON *item = cJSON_CreateObject();
    if (!cJSON_AddStringToObject(item, "dtype", tp_st_dtype_name(tensor->dtype)) ||
        !cJSON_AddItemToObject(item, "shape", json_integer_list(tensor->ndim, tensor->shape)) ||
        !cJSON_AddItemToObject(item, "data_offsets", json_integer_list(2, offsets))) {
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}

/* The header JSON in the layout the official writer uses: metadata first, then one entry per tensor
 * with dtype, shape, data_offsets; data offsets follow insertion order.  NULL when cJSON ran out of
 * memory (its functions return NULL or false then; printing checks that every item was added). */
static char *build_header(const tp_st_writer *writer)
{
    cJSON *root = cJSON_CreateObject();
    int complete = root != NULL;
    if (writer->meta_count) {
        cJSON *metadata = cJSON_AddObjectToObject(root, METADATA_KEY);
        for (int64_t i = 0; i < writer->meta_count; i++)
            complete &= cJSON_AddStringToObject(metadata, writer->meta_keys[i], writer->meta_values[i]) != NULL;
    }
    int64_t offset = 0;
    for (int64_t i = 0; i < writer->count; i++) {
        complete &= cJSON_AddItemToObject(root, writer->tensors[i].name, tensor_json(&writer->tensors[i], offset));
        offset += writer->tensors[i].nbytes;
    }
    char *text = complete ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

/* The header is padded with spaces to a multiple of 8 bytes so that the data section is aligned. */
static size_t padded_header_bytes(const char *header)
{
    return (strlen(header) + LENGTH_BYTES - 1) / LENGTH_BYTES * LENGTH_BYTES;
}

static void write_contents(const tp_st_writer *writer, const char *header, FILE *fp)
{
    size_t text_bytes = strlen(header), padded_bytes = padded_header_bytes(header);
    unsigned char length[LENGTH_BYTES];
    for (int i = 0; i < LENGTH_BYTES; i++) length[i] = (unsigned char)((uint64_t)padded_bytes >> (8 * i));
    fwrite(length, 1, sizeof length, fp);
    fwrite(header, 1, text_bytes, fp);
    for (size_t i = text_bytes; i < padded_bytes; i++) fputc(' ', fp);
    for (int64_t i = 0; i < writer->count; i++)
        if (writer->tensors[i].nbytes) fwrite(writer->tensors[i].data, 1, (size_t)writer->tensors[i].nbytes, fp);
    /* write errors leave the stream's error flag set; tp_atomic_commit reports them */
}

int tp_st_writer_save(tp_st_writer *writer, const char *path)
{
    if (writer->error) return tp_fail("%s: %s", path, writer->error);
    if (check_unique_names(writer, path) != 0) return -1;
    char *header = build_header(writer);
    if (!header) return tp_fail("%s: out of memory while building the header", path);
    size_t header_bytes = padded_header_bytes(header);
    if (header_bytes > MAX_HEADER_BYTES) {
        free(header);
        return tp_fail("%s: header of %zu bytes exceeds the %d-byte limit of readers", path, header_bytes,
                       MAX_HEADER_BYTES);
    }
    tp_atomic_file out;
    int status = tp_atomic_open(&out, path);
    if (status == 0) {
        write_contents(writer, header, out.fp);
        status = tp_atomic_commit(&out);
    }
    free(header);
    return status;
}

void tp_st_writer_free(tp_st_writer *writer)
{
    if (!writer) return;
    for (int64_t i = 0; i < writer->count; i++) free((char *)writer->tensors[i].name);
    for (int64_t i = 0; i < writer->meta_count; i++) {
        free(writer->meta_keys[i]);
        free(writer->meta_values[i]);
    }
    free(writer->tensors);
    free(writer->meta_keys);
    free(writer->meta_values);
    free(writer->error);
    free(writer);
}
