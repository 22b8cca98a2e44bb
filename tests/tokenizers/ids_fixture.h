/* Shared by the tokenizer tests: reading a reference library's ids (one line of
 * space-separated ids per line of a text, plain or gzip-compressed) and comparing a
 * tokenizer's ids with them, reporting the first differing id with its tokens and text.
 * Header-only: each test is one translation unit. */
#ifndef TP_TEST_IDS_FIXTURE_H
#define TP_TEST_IDS_FIXTURE_H

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/fileio.h"
#include "support/check.h"
#include "tokenizers/tokenizer.h"

/* A file split into lines at '\n' (the bytes stay in one buffer). */
typedef struct fixture_lines {
    char *data;
    char **start;
    size_t *len;
    int64_t count;
} fixture_lines;

static inline void fixture_split_lines(char *data, size_t size, fixture_lines *out)
{
    memset(out, 0, sizeof *out);
    out->data = data;
    int64_t capacity = 1024;
    out->start = malloc((size_t)capacity * sizeof *out->start);
    out->len = malloc((size_t)capacity * sizeof *out->len);
    for (char *p = data; p < data + size;) {
        char *newline = memchr(p, '\n', (size_t)(data + size - p));
        char *end = newline ? newline : data + size;
        if (out->count == capacity) {
            capacity *= 2;
            out->start = realloc(out->start, (size_t)capacity * sizeof *out->start);
            out->len = realloc(out->len, (size_t)capacity * sizeof *out->len);
        }
        out->start[out->count] = p;
        out->len[out->count++] = (size_t)(end - p);
        p = end + 1;
    }
}

/* Reads path (gunzipped through gzip -dc when it ends in .gz); -1 with tp_last_error() set. */
static inline int fixture_read_lines(const char *path, fixture_lines *out)
{
    size_t size, path_len = strlen(path);
    char *data;
    if (path_len > 3 && strcmp(path + path_len - 3, ".gz") == 0) {
        char command[4096];
        snprintf(command, sizeof command, "gzip -dc '%s'", path);
        FILE *pipe = popen(command, "r");
        if (!pipe) return tp_fail("%s: cannot run gzip -dc", path);
        size_t capacity = 1 << 20;
        data = malloc(capacity);
        size = 0;
        for (size_t got; (got = fread(data + size, 1, capacity - size, pipe)) > 0;) {
            size += got;
            if (size == capacity) data = realloc(data, capacity *= 2);
        }
        if (pclose(pipe) != 0) {
            free(data);
            return tp_fail("%s: gzip -dc failed", path);
        }
    } else if (!(data = tp_read_file(path, &size))) {
        return -1;
    }
    fixture_split_lines(data, size, out);
    return 0;
}

static inline void fixture_free_lines(fixture_lines *lines)
{
    free(lines->data);
    free(lines->start);
    free(lines->len);
}

static inline void fixture_parse_ids(const char *text, size_t len, tp_ids *out)
{
    tp_ids_clear(out);
    const char *end = text + len;
    while (text < end) {
        char *next;
        long id = strtol(text, &next, 10);
        if (next == text) break;
        tp_ids_push(out, (int32_t)id);
        text = next;
    }
}

static inline const char *fixture_token(const tp_tokenizer *tok, const tp_ids *ids, int64_t i)
{
    if (i >= ids->count) return "(end)";
    return ids->ids[i] >= 0 && ids->ids[i] < tok->vocab_size ? tok->tokens[ids->ids[i]] : "(out of range)";
}

/* Compares one line's ids; prints the first difference with its tokens and the text. */
static inline int fixture_same_ids(const tp_tokenizer *tok, const char *label, int64_t line, const char *text, size_t len,
                            const tp_ids *expected, const tp_ids *actual)
{
    int64_t i = 0;
    while (i < expected->count && i < actual->count && expected->ids[i] == actual->ids[i]) i++;
    if (i == expected->count && i == actual->count) return 1;
    fprintf(stderr, "%s: line %lld, token %lld: expected %d '%s', got %d '%s' (expected %lld ids, got %lld)\n", label,
            (long long)line, (long long)i, i < expected->count ? expected->ids[i] : -1,
            fixture_token(tok, expected, i), i < actual->count ? actual->ids[i] : -1, fixture_token(tok, actual, i),
            (long long)expected->count, (long long)actual->count);
    fprintf(stderr, "  text: %.*s\n", (int)(len < 300 ? len : 300), text);
    return 0;
}

static inline double fixture_seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* Every line of text_path encoded once serially (timed: under max_seconds) and once in parallel
 * on the same tokenizer; both must equal the ids in ids_path, line by line.  At most 5
 * differing lines are printed. */
static inline void fixture_check_sample(const tp_tokenizer *tok, const char *text_path, const char *ids_path,
                                 double max_seconds)
{
    fixture_lines text, expected_lines;
    CHECK_MSG(fixture_read_lines(text_path, &text) == 0, "%s", tp_last_error());
    CHECK_MSG(fixture_read_lines(ids_path, &expected_lines) == 0, "%s", tp_last_error());
    CHECK_MSG(text.count == expected_lines.count, "%s: %lld lines, %s %lld", ids_path,
              (long long)expected_lines.count, text_path, (long long)text.count);
    int64_t count = text.count < expected_lines.count ? text.count : expected_lines.count;

    tp_ids *serial = calloc((size_t)count + 1, sizeof *serial);
    double start = fixture_seconds_now();
    size_t bytes = 0;
    int64_t failures = 0;
    for (int64_t i = 0; i < count; i++) {
        failures += tp_tokenizer_encode(tok, text.start[i], text.len[i], &serial[i]) != 0;
        bytes += text.len[i];
    }
    double elapsed = fixture_seconds_now() - start;
    fprintf(stderr, "%s: encoded %zu bytes in %.3f s (%.1f MB/s)\n", ids_path, bytes, elapsed,
            1e-6 * (double)bytes / elapsed);
    CHECK_MSG(failures == 0, "%lld lines failed to encode: %s", (long long)failures, tp_last_error());
    CHECK_MSG(elapsed < max_seconds, "encoding the sample took %.3f s", elapsed);

    int64_t mismatches = 0, ids_total = 0;
    tp_ids expected = {0};
    for (int64_t i = 0; i < count; i++) {
        fixture_parse_ids(expected_lines.start[i], expected_lines.len[i], &expected);
        ids_total += expected.count;
        if (!fixture_same_ids(tok, ids_path, i + 1, text.start[i], text.len[i], &expected, &serial[i]) &&
            ++mismatches >= 5)
            break;
    }
    CHECK_MSG(mismatches == 0, "%s: lines differ from the reference's ids", ids_path);
    fprintf(stderr, "%s: %lld lines, %lld ids compared\n", ids_path, (long long)count, (long long)ids_total);

    int64_t parallel_mismatches = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(+ : parallel_mismatches)
    for (int64_t i = 0; i < count; i++) {
        tp_ids ids = {0};
        tp_tokenizer_encode(tok, text.start[i], text.len[i], &ids);
        parallel_mismatches += ids.count != serial[i].count ||
                               (ids.count && memcmp(ids.ids, serial[i].ids, (size_t)ids.count * sizeof *ids.ids));
        tp_ids_free(&ids);
    }
    CHECK_MSG(parallel_mismatches == 0, "%lld lines differ when encoded on %d threads",
              (long long)parallel_mismatches, omp_get_max_threads());

    for (int64_t i = 0; i < count; i++) tp_ids_free(&serial[i]);
    free(serial);
    tp_ids_free(&expected);
    fixture_free_lines(&text);
    fixture_free_lines(&expected_lines);
}

static inline int fixture_hex_value(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

/* path: "<input in hex><TAB><ids>" per line. */
static inline void fixture_check_hex_cases(const tp_tokenizer *tok, const char *path)
{
    fixture_lines cases;
    CHECK_MSG(fixture_read_lines(path, &cases) == 0, "%s", tp_last_error());
    tp_ids expected = {0}, actual = {0};
    for (int64_t i = 0; i < cases.count; i++) {
        const char *tab = memchr(cases.start[i], '\t', cases.len[i]);
        CHECK_MSG(tab != NULL, "%s: line %lld: no tab", path, (long long)i + 1);
        if (!tab) continue;
        size_t input_len = (size_t)(tab - cases.start[i]) / 2;
        char *input = malloc(input_len + 1);
        for (size_t b = 0; b < input_len; b++)
            input[b] = (char)(fixture_hex_value(cases.start[i][2 * b]) * 16 + fixture_hex_value(cases.start[i][2 * b + 1]));
        fixture_parse_ids(tab + 1, cases.len[i] - (size_t)(tab + 1 - cases.start[i]), &expected);
        tp_ids_clear(&actual);
        CHECK_MSG(tp_tokenizer_encode(tok, input, input_len, &actual) == 0, "%s", tp_last_error());
        CHECK(fixture_same_ids(tok, path, i + 1, cases.start[i], (size_t)(tab - cases.start[i]), &expected, &actual));
        free(input);
    }
    tp_ids_free(&expected);
    tp_ids_free(&actual);
    fixture_free_lines(&cases);
}

#endif
