/* core/safetensors: reading a file written by the official Python package (fixture + expected
 * contents from tests/reference/make_safetensors_fixture.py), writing byte-identical output for
 * the same tensors, round trips, crash-safe saves, and hostile files each refused with its message. */
#include "core/error.h"
#include "core/fileio.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "support/scratch.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURE_DIR "tests/fixtures/safetensors/"

/* The last error starts with "<path>: " and holds fragment. */
static int error_names(const char *path, const char *fragment)
{
    const char *message = tp_last_error();
    size_t len = strlen(path);
    return strncmp(message, path, len) == 0 && strncmp(message + len, ": ", 2) == 0 && strstr(message, fragment);
}

static size_t hex_decode(const char *hex, unsigned char *out, size_t cap)
{
    size_t bytes = strlen(hex) / 2;
    for (size_t i = 0; i < bytes && i < cap; i++) {
        unsigned value;
        sscanf(hex + 2 * i, "%2x", &value);
        out[i] = (unsigned char)value;
    }
    return bytes;
}

/* ---- the reference file written by the official package ---- */

static cJSON *load_reference(void)
{
    char *text = tp_read_file(FIXTURE_DIR "reference.json", NULL);
    cJSON *reference = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK_MSG(reference != NULL, "%s", tp_last_error());
    return reference;
}

static void check_reference_tensor(const tp_st_file *file, int64_t index, const cJSON *expected)
{
    const char *name = cJSON_GetObjectItem(expected, "name")->valuestring;
    const tp_st_tensor *tensor = tp_st_at(file, index);
    CHECK_MSG(tensor && strcmp(tensor->name, name) == 0, "tensor %lld should be '%s'", (long long)index, name);
    if (!tensor) return;
    CHECK(tp_st_find(file, name) == tensor);
    CHECK_MSG(strcmp(tp_st_dtype_name(tensor->dtype), cJSON_GetObjectItem(expected, "dtype")->valuestring) == 0,
              "%s: dtype %s", name, tp_st_dtype_name(tensor->dtype));
    const cJSON *shape = cJSON_GetObjectItem(expected, "shape");
    int64_t numel = 1;
    CHECK_MSG(tensor->ndim == cJSON_GetArraySize(shape), "%s: ndim %d", name, tensor->ndim);
    for (int d = 0; d < tensor->ndim && d < cJSON_GetArraySize(shape); d++) {
        int64_t dim = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
        CHECK_MSG(tensor->shape[d] == dim, "%s: shape[%d]", name, d);
        numel *= dim;
    }
    CHECK(tensor->numel == numel);
    unsigned char bytes[4096];
    size_t nbytes = hex_decode(cJSON_GetObjectItem(expected, "hex")->valuestring, bytes, sizeof bytes);
    CHECK_MSG(tensor->nbytes == (int64_t)nbytes && nbytes <= sizeof bytes, "%s: %lld bytes", name,
              (long long)tensor->nbytes);
    CHECK_MSG(nbytes == 0 || memcmp(tensor->data, bytes, nbytes) == 0, "%s: bytes differ", name);
}

static void check_reference_values(const tp_st_file *file, const cJSON *values)
{
    const cJSON *list;
    cJSON_ArrayForEach(list, values) {
        const tp_st_tensor *tensor = tp_st_find(file, list->string);
        CHECK_MSG(tensor != NULL, "missing %s", list->string);
        if (!tensor) continue;
        float got[64];
        int count = cJSON_GetArraySize(list);
        CHECK(count <= 64 && tensor->numel == count);
        CHECK_MSG(tp_st_read_f32(file, list->string, tensor->ndim, tensor->shape, got) == 0, "%s", tp_last_error());
        for (int i = 0; i < count && i < 64; i++)
            CHECK_MSG(got[i] == (float)cJSON_GetArrayItem(list, i)->valuedouble, "%s[%d] = %g", list->string, i,
                      got[i]);
    }
}

static void test_read_reference(void)
{
    cJSON *reference = load_reference();
    if (!reference) return;
    tp_st_file *file = tp_st_open(FIXTURE_DIR "reference.safetensors");
    CHECK_MSG(file != NULL, "%s", tp_last_error());
    if (!file) {
        cJSON_Delete(reference);
        return;
    }
    CHECK(strcmp(tp_st_path(file), FIXTURE_DIR "reference.safetensors") == 0);
    const cJSON *tensors = cJSON_GetObjectItem(reference, "tensors");
    CHECK(tp_st_count(file) == cJSON_GetArraySize(tensors) && tp_st_count(file) >= 14);
    int64_t index = 0;
    const cJSON *expected;
    cJSON_ArrayForEach(expected, tensors) check_reference_tensor(file, index++, expected);
    CHECK(tp_st_at(file, -1) == NULL && tp_st_at(file, tp_st_count(file)) == NULL);
    CHECK(tp_st_find(file, "absent") == NULL);
    const cJSON *pair;
    cJSON_ArrayForEach(pair, cJSON_GetObjectItem(reference, "metadata")) {
        const char *value = tp_st_metadata(file, cJSON_GetArrayItem(pair, 0)->valuestring);
        CHECK(value && strcmp(value, cJSON_GetArrayItem(pair, 1)->valuestring) == 0);
    }
    CHECK(tp_st_metadata(file, "absent") == NULL);
    check_reference_values(file, cJSON_GetObjectItem(reference, "values"));
    tp_st_close(file);
    cJSON_Delete(reference);
}

/* Writing the reference's tensors in its order with its metadata order must reproduce the official
 * writer's bytes exactly: same header JSON, same padding, same data layout. */
static void test_write_matches_reference(void)
{
    cJSON *reference = load_reference();
    tp_st_file *file = tp_st_open(FIXTURE_DIR "reference.safetensors");
    CHECK_MSG(file != NULL, "%s", tp_last_error());
    if (!file || !reference) {
        tp_st_close(file);
        cJSON_Delete(reference);
        return;
    }
    tp_st_writer *writer = tp_st_writer_new();
    const cJSON *pair;
    cJSON_ArrayForEach(pair, cJSON_GetObjectItem(reference, "metadata"))
        tp_st_writer_metadata(writer, cJSON_GetArrayItem(pair, 0)->valuestring, cJSON_GetArrayItem(pair, 1)->valuestring);
    for (int64_t i = 0; i < tp_st_count(file); i++) {
        const tp_st_tensor *tensor = tp_st_at(file, i);
        tp_st_writer_add(writer, tensor->name, tensor->dtype, tensor->ndim, tensor->shape, tensor->data);
    }
    const char *out = tp_scratch_path("rewritten.safetensors");
    CHECK_MSG(tp_st_writer_save(writer, out) == 0, "%s", tp_last_error());
    size_t expected_bytes;
    char *expected = tp_read_file(FIXTURE_DIR "reference.safetensors", &expected_bytes);
    CHECK(expected && expected_bytes == (size_t)cJSON_GetObjectItem(reference, "file_bytes")->valuedouble);
    CHECK_MSG(expected && tp_scratch_file_equals(out, expected, expected_bytes), "tp's file differs from the official one");
    free(expected);
    tp_st_writer_free(writer);
    tp_st_close(file);
    cJSON_Delete(reference);
}

/* ---- round trip ---- */

typedef struct sample {
    const char *name;
    tp_st_dtype dtype;
    int ndim;
    int64_t shape[TP_ST_MAX_DIMS];
} sample;

static const sample samples[] = {
    {"encoder.transformer.0.layer_norm.gamma", TP_ST_F32, 2, {3, 5}},
    {"bf16 weights", TP_ST_BF16, 3, {2, 1, 3}},
    {"zero-size", TP_ST_F16, 2, {4, 0}},
    {"scalar", TP_ST_I64, 0, {0}},
    {"eight dims", TP_ST_U8, 8, {1, 2, 1, 2, 1, 2, 1, 3}},
    {"flags", TP_ST_BOOL, 1, {7}},
    {"\xce\xb1\xce\xb2 \"q\" \\ \t", TP_ST_F64, 1, {3}},
    {"u32", TP_ST_U32, 1, {2}},
};
#define SAMPLE_COUNT (int)(sizeof samples / sizeof samples[0])

static void test_round_trip(void)
{
    unsigned char data[SAMPLE_COUNT][512];
    for (int s = 0; s < SAMPLE_COUNT; s++)
        for (int i = 0; i < 512; i++) data[s][i] = (unsigned char)(s * 31 + i * 7 + 1);
    tp_st_writer *writer = tp_st_writer_new();
    for (int s = 0; s < SAMPLE_COUNT; s++)
        tp_st_writer_add(writer, samples[s].name, samples[s].dtype, samples[s].ndim, samples[s].shape, data[s]);
    tp_st_writer_metadata(writer, "format", "pt");
    tp_st_writer_metadata(writer, "step", "1");
    tp_st_writer_metadata(writer, "step", "1200"); /* replaces */
    const char *path = tp_scratch_path("round.safetensors");
    CHECK_MSG(tp_st_writer_save(writer, path) == 0, "%s", tp_last_error());
    tp_st_writer_free(writer);
    CHECK(tp_scratch_count_temp_files(tp_scratch_dir()) == 0);

    size_t bytes;
    unsigned char *raw = (unsigned char *)tp_read_file(path, &bytes);
    CHECK(raw && bytes > 8 && raw[0] % 8 == 0 && raw[7] == 0); /* header padded to 8 bytes */
    free(raw);

    tp_st_file *file = tp_st_open(path);
    CHECK_MSG(file != NULL, "%s", tp_last_error());
    if (!file) return;
    CHECK(tp_st_count(file) == SAMPLE_COUNT);
    for (int s = 0; s < SAMPLE_COUNT && s < tp_st_count(file); s++) {
        const tp_st_tensor *tensor = tp_st_at(file, s);
        int64_t numel = 1;
        for (int d = 0; d < samples[s].ndim; d++) numel *= samples[s].shape[d];
        CHECK_MSG(strcmp(tensor->name, samples[s].name) == 0, "tensor %d is '%s'", s, tensor->name);
        CHECK(tp_st_find(file, samples[s].name) == tensor);
        CHECK(tensor->dtype == samples[s].dtype && tensor->ndim == samples[s].ndim);
        CHECK(memcmp(tensor->shape, samples[s].shape, (size_t)samples[s].ndim * sizeof(int64_t)) == 0);
        CHECK(tensor->numel == numel && tensor->nbytes == numel * (int64_t)tp_st_dtype_size(samples[s].dtype));
        CHECK(memcmp(tensor->data, data[s], (size_t)tensor->nbytes) == 0);
    }
    CHECK(strcmp(tp_st_metadata(file, "format"), "pt") == 0);
    CHECK(strcmp(tp_st_metadata(file, "step"), "1200") == 0);
    tp_st_close(file);
}

static void test_read_f32_mismatch(void)
{
    float values[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3}, flat[1] = {6};
    tp_st_writer *writer = tp_st_writer_new();
    tp_st_writer_add(writer, "w", TP_ST_F32, 2, shape, values);
    tp_st_writer_add(writer, "h", TP_ST_F16, 1, flat, values);
    const char *path = tp_scratch_path("f32.safetensors");
    CHECK(tp_st_writer_save(writer, path) == 0);
    tp_st_writer_free(writer);
    tp_st_file *file = tp_st_open(path);
    if (!file) return;
    float got[6] = {0};
    CHECK(tp_st_read_f32(file, "w", 2, shape, got) == 0 && memcmp(got, values, sizeof got) == 0);
    CHECK(tp_st_read_f32(file, "w", 1, flat, got) == -1);
    CHECK_MSG(error_names(path, "tensor 'w': expected F32 [6], found F32 [2, 3]"), "%s", tp_last_error());
    CHECK(tp_st_read_f32(file, "h", 1, flat, got) == -1);
    CHECK_MSG(error_names(path, "tensor 'h': expected F32 [6], found F16 [6]"), "%s", tp_last_error());
    CHECK(tp_st_read_f32(file, "nope", 1, flat, got) == -1);
    CHECK_MSG(error_names(path, "tensor 'nope': not found"), "%s", tp_last_error());
    tp_st_close(file);
}

/* ---- failing saves ---- */

static void test_failed_saves_leave_no_trace(void)
{
    static float big[1 << 16];
    int64_t shape[1] = {1 << 16};
    tp_st_writer *writer = tp_st_writer_new();
    tp_st_writer_add(writer, "big", TP_ST_F32, 1, shape, big);

    const char *missing = tp_scratch_path("no_such_dir/model.safetensors");
    CHECK(tp_st_writer_save(writer, missing) == -1);
    CHECK_MSG(error_names(missing, "No such file or directory"), "%s", tp_last_error());

    const char *existing = tp_scratch_path("existing.safetensors");
    CHECK(tp_write_file_atomic(existing, "old contents", 12) == 0);
    tp_scratch_limit_file_size(8192); /* the disk "fills up" halfway through the data */
    int status = tp_st_writer_save(writer, existing);
    tp_scratch_restore_file_size();
    CHECK(status == -1);
    CHECK_MSG(error_names(existing, "File too large"), "%s", tp_last_error());
    CHECK(tp_scratch_file_equals(existing, "old contents", 12));

    const char *dir = tp_scratch_path("a_directory.safetensors");
    CHECK(mkdir(dir, 0777) == 0);
    CHECK(tp_st_writer_save(writer, dir) == -1); /* the rename fails */
    CHECK_MSG(error_names(dir, "Is a directory"), "%s", tp_last_error());
    CHECK(tp_scratch_count_temp_files(tp_scratch_dir()) == 0);
    tp_st_writer_free(writer);
}

static void expect_save_refused(tp_st_writer *writer, const char *fragment)
{
    const char *path = tp_scratch_path("refused.safetensors");
    CHECK(tp_st_writer_save(writer, path) == -1);
    CHECK_MSG(error_names(path, fragment), "expected '%s', got '%s'", fragment, tp_last_error());
    CHECK(access(path, F_OK) != 0 && tp_scratch_count_temp_files(tp_scratch_dir()) == 0);
    tp_st_writer_free(writer);
}

static void test_writer_refuses_bad_tensors(void)
{
    float value = 1;
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, negative[2] = {2, -3}, one[1] = {1};
    tp_st_writer *writer = tp_st_writer_new();
    tp_st_writer_add(writer, "deep", TP_ST_F32, 9, nine, &value);
    expect_save_refused(writer, "tensor 'deep': 9 dimensions, expected 0 to 8");
    writer = tp_st_writer_new();
    tp_st_writer_add(writer, "neg", TP_ST_F32, 2, negative, &value);
    expect_save_refused(writer, "tensor 'neg': negative dimension 1 (-3)");
    writer = tp_st_writer_new();
    tp_st_writer_add(writer, "twice", TP_ST_F32, 1, one, &value);
    tp_st_writer_add(writer, "other", TP_ST_F32, 1, one, &value);
    tp_st_writer_add(writer, "twice", TP_ST_F32, 1, one, &value);
    expect_save_refused(writer, "tensor 'twice': duplicate name");
    writer = tp_st_writer_new();
    tp_st_writer_add(writer, "__metadata__", TP_ST_F32, 1, one, &value);
    expect_save_refused(writer, "tensor '__metadata__': name is reserved");
    writer = tp_st_writer_new();
    tp_st_writer_metadata(writer, "bad\xff", "x");
    expect_save_refused(writer, "not valid UTF-8");
}

/* ---- hostile files ---- */

/* Writes the 8-byte little-endian length field, header and data_bytes bytes of data. */
static const char *write_hostile(uint64_t length_field, const char *header, size_t header_bytes, size_t data_bytes)
{
    const char *path = tp_scratch_path("hostile.safetensors");
    FILE *fp = fopen(path, "wb");
    for (int i = 0; i < 8; i++) fputc((int)(length_field >> (8 * i) & 0xff), fp);
    fwrite(header, 1, header_bytes, fp);
    for (size_t i = 0; i < data_bytes; i++) fputc(0x5a, fp);
    fclose(fp);
    return path;
}

static void expect_refused(const char *label, const char *path, const char *fragment)
{
    tp_st_file *file = tp_st_open(path);
    CHECK_MSG(file == NULL, "%s: accepted", label);
    tp_st_close(file);
    CHECK_MSG(error_names(path, fragment), "%s: expected '%s', got '%s'", label, fragment, tp_last_error());
}

typedef struct hostile_case {
    const char *label;
    const char *header;
    size_t data_bytes;
    const char *fragment;
} hostile_case;

#define T(name, dtype, shape, offsets) "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}"

#define HOLE_HEADER "{" T("a", "F32", "[1]", "[0,4]") "," T("b", "F32", "[1]", "[8,12]") "}"

static const hostile_case hostile_headers[] = {
    {"not JSON", "{\"a\": ", 0, "header is not valid JSON"},
    {"array header", "[1, 2]", 0, "offset 8: header is not a JSON object"},
    {"trailing garbage", "{} x", 0, "offset 11: unexpected bytes after the header's JSON object"},
    {"invalid UTF-8", "{\"\xff\":1}", 0, "offset 10: header is not valid UTF-8"},
    {"entry not object", "{\"t\":3}", 0, "tensor 't': entry is not a JSON object"},
    {"unknown dtype", "{" T("t", "F8", "[1]", "[0,1]") "}", 1, "tensor 't': unknown dtype 'F8'"},
    {"dtype not string", "{\"t\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     "tensor 't': 'dtype' is missing or not a string"},
    {"negative dimension", "{" T("t", "F32", "[2,-1]", "[0,0]") "}", 0, "tensor 't': negative dimension 1 (-1)"},
    {"fractional dimension", "{" T("t", "F32", "[1.5]", "[0,4]") "}", 4, "tensor 't': shape[0] is not an integer"},
    {"string dimension", "{" T("t", "F32", "[\"2\"]", "[0,8]") "}", 8, "tensor 't': shape[0] is not a number"},
    {"dimension beyond 2^53", "{" T("t", "U8", "[9007199254740994]", "[0,0]") "}", 0,
     "tensor 't': shape[0] is beyond 2^53"},
    {"too many dimensions", "{" T("t", "U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") "}", 1,
     "tensor 't': more than 8 dimensions"},
    {"element count overflow", "{" T("t", "U8", "[4294967296,4294967296]", "[0,0]") "}", 0,
     "tensor 't': element count of the shape overflows int64"},
    {"byte size overflow", "{" T("t", "F64", "[9007199254740992,256]", "[0,0]") "}", 0,
     "tensor 't': byte size (2305843009213693952 elements of F64) overflows int64"},
    {"shape not array", "{" T("t", "F32", "3", "[0,12]") "}", 12, "tensor 't': 'shape' is missing or not an array"},
    {"size mismatch", "{" T("t", "F32", "[2,3]", "[0,20]") "}", 20,
     "tensor 't': data_offsets [0, 20] span 20 bytes but F32 [2, 3] needs 24"},
    {"begin > end", "{" T("t", "F32", "[1]", "[8,4]") "}", 8, "tensor 't': data_offsets begin 8 > end 4"},
    {"negative offset", "{" T("t", "F32", "[1]", "[-4,0]") "}", 4, "tensor 't': data_offsets[0] is negative"},
    {"three offsets", "{" T("t", "F32", "[1]", "[0,4,8]") "}", 8,
     "tensor 't': 'data_offsets' is missing or not an array of two integers"},
    {"end past data", "{" T("t", "F32", "[2]", "[0,8]") "}", 4,
     "tensor 't': data_offsets end 8 is past the end of the data section (4 bytes; file truncated?)"},
    {"overlap", "{" T("a", "F32", "[2]", "[0,8]") "," T("b", "F32", "[2]", "[4,12]") "}", 12,
     "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]"},
    {"overlap inside", "{" T("a", "U8", "[8]", "[0,8]") "," T("z", "U8", "[0]", "[3,3]") "}", 8,
     "tensor 'z': data_offsets [3, 3] overlap tensor 'a' [0, 8]"},
    {"duplicate names", "{" T("a", "F32", "[1]", "[0,4]") "," T("a", "F32", "[1]", "[4,8]") "}", 8,
     "tensor 'a': duplicate name"},
    {"hole", HOLE_HEADER, 12, "4 bytes before tensor 'b' belong to no tensor"},
    {"trailing data", "{" T("a", "F32", "[1]", "[0,4]") "}", 6, "2 bytes after the last tensor belong to no tensor"},
    {"metadata value not string", "{\"__metadata__\":{\"k\":1}}", 0, "metadata 'k': value is not a string"},
    {"metadata not object", "{\"__metadata__\":[\"k\"]}", 0, "'__metadata__' is not a JSON object"},
    {"metadata twice", "{\"__metadata__\":{}," T("__metadata__", "U8", "[0]", "[0,0]") "}", 0,
     "'__metadata__' appears twice in the header"},
    {"metadata duplicate key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "metadata 'k': duplicate key"},
};

static void test_hostile_headers(void)
{
    for (size_t i = 0; i < sizeof hostile_headers / sizeof hostile_headers[0]; i++) {
        const hostile_case *c = &hostile_headers[i];
        size_t header_bytes = strlen(c->header);
        expect_refused(c->label, write_hostile(header_bytes, c->header, header_bytes, c->data_bytes), c->fragment);
    }
    /* the hole's offset counts from the start of the file: length field, header, 4 bytes of 'a' */
    char fragment[128];
    snprintf(fragment, sizeof fragment, "offset %zu: 4 bytes before", 8 + strlen(HOLE_HEADER) + 4);
    expect_refused("hole offset", write_hostile(strlen(HOLE_HEADER), HOLE_HEADER, strlen(HOLE_HEADER), 12), fragment);
}

static void test_hostile_lengths(void)
{
    const char *path = write_hostile(0, "", 0, 0);
    CHECK(truncate(path, 3) == 0);
    expect_refused("3-byte file", path, "offset 0: file has 3 bytes, fewer than the 8-byte header length");
    CHECK(truncate(path, 0) == 0);
    expect_refused("empty file", path, "offset 0: file has 0 bytes");
    expect_refused("header length past the file", write_hostile(1000, "{}", 2, 0),
                   "offset 0: header length 1000 exceeds the 2 bytes after it");
    expect_refused("absurd header length", write_hostile(UINT64_MAX, "{}", 2, 0),
                   "offset 0: header length 18446744073709551615 exceeds the 2 bytes after it");
    expect_refused("NUL byte", write_hostile(8, "{\"a\0b\":1}", 8, 0),
                   "offset 11: header is not valid UTF-8 (or holds a NUL byte)");
    expect_refused("empty header", write_hostile(0, "", 0, 0), "offset 8: header is not valid JSON");
    expect_refused("directory", tp_scratch_dir(), "not a regular file");
    expect_refused("missing file", tp_scratch_path("missing.safetensors"), "No such file or directory");
}

/* A valid file cut short anywhere in its data is refused; one cut inside its header too. */
static void test_truncated_data(void)
{
    float values[8] = {0};
    int64_t shape[1] = {8};
    tp_st_writer *writer = tp_st_writer_new();
    tp_st_writer_add(writer, "a", TP_ST_F32, 1, shape, values);
    tp_st_writer_add(writer, "b", TP_ST_F32, 1, shape, values);
    const char *path = tp_scratch_path("cut.safetensors");
    CHECK(tp_st_writer_save(writer, path) == 0);
    tp_st_writer_free(writer);
    struct stat info;
    CHECK(stat(path, &info) == 0);
    CHECK(truncate(path, info.st_size - 3) == 0);
    expect_refused("data cut by 3 bytes", path, "tensor 'b': data_offsets end 64 is past the end of the data section (61 bytes");
    CHECK(truncate(path, info.st_size - 64 - 10) == 0);
    expect_refused("cut inside the header", path, "exceeds the");
}

static void test_valid_edge_cases(void)
{
    const char *headers[] = {
        "{}",
        "{}      ", /* padding */
        "{\"__metadata__\":{}}",
        "{" T("a", "U8", "[0]", "[0,0]") "," T("b", "U8", "[2]", "[0,2]") "," T("c", "U8", "[0,5]", "[2,2]") "}",
        "{" T("b", "U8", "[2]", "[0,2]") "," T("a", "U8", "[1e0]", "[2,3]") "}",
    };
    const size_t data_bytes[] = {0, 0, 0, 2, 3};
    const int64_t counts[] = {0, 0, 0, 3, 2};
    for (int i = 0; i < 5; i++) {
        tp_st_file *file = tp_st_open(write_hostile(strlen(headers[i]), headers[i], strlen(headers[i]), data_bytes[i]));
        CHECK_MSG(file && tp_st_count(file) == counts[i], "header %d: %s", i, file ? "wrong count" : tp_last_error());
        tp_st_close(file);
    }
}

int main(void)
{
    tp_scratch_init("safetensors");
    test_read_reference();
    test_write_matches_reference();
    test_round_trip();
    test_read_f32_mismatch();
    test_failed_saves_leave_no_trace();
    test_writer_refuses_bad_tensors();
    test_hostile_headers();
    test_hostile_lengths();
    test_truncated_data();
    test_valid_edge_cases();
    return tp_test_finish("test_safetensors");
}
