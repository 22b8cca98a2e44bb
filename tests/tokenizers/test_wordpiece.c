/* The bert tokenizer against Hugging Face's slow BertTokenizer: the ids that
 * tests/reference/make_wordpiece_fixture.py stored for every line of a real
 * text sample (uncased and cased) and for byte-level inputs, plus the
 * vocabulary's error messages, token lookup and unknown kinds. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fileio.h"
#include "support/check.h"
#include "support/scratch.h"
#include "tokenizers/tokenizer.h"

#define VOCAB "data/vocab/bert-base-uncased-vocab.txt"
#define FIXTURES "tests/fixtures/wordpiece/"

/* A file split into lines at '\n' (the bytes stay in one buffer). */
typedef struct lines {
    char *data;
    char **start;
    size_t *len;
    int64_t count;
} lines;

static int read_lines(const char *path, lines *out)
{
    size_t size;
    memset(out, 0, sizeof *out);
    out->data = tp_read_file(path, &size);
    if (!out->data) return -1;
    int64_t capacity = 1024;
    out->start = malloc((size_t)capacity * sizeof *out->start);
    out->len = malloc((size_t)capacity * sizeof *out->len);
    for (char *p = out->data; p < out->data + size;) {
        char *newline = memchr(p, '\n', (size_t)(out->data + size - p));
        char *end = newline ? newline : out->data + size;
        if (out->count == capacity) {
            capacity *= 2;
            out->start = realloc(out->start, (size_t)capacity * sizeof *out->start);
            out->len = realloc(out->len, (size_t)capacity * sizeof *out->len);
        }
        out->start[out->count] = p;
        out->len[out->count++] = (size_t)(end - p);
        p = end + 1;
    }
    return 0;
}

static void free_lines(lines *l)
{
    free(l->data);
    free(l->start);
    free(l->len);
}

static void parse_ids(const char *text, size_t len, tp_ids *out)
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

static const char *token_text(const tp_tokenizer *tok, const tp_ids *ids, int64_t i)
{
    return i < ids->count ? tok->tokens[ids->ids[i]] : "(end)";
}

/* Compares one line's ids; prints the first difference with its tokens. */
static int same_ids(const tp_tokenizer *tok, const char *label, int64_t line, const char *text, size_t len,
                    const tp_ids *expected, const tp_ids *actual)
{
    int64_t i = 0;
    while (i < expected->count && i < actual->count && expected->ids[i] == actual->ids[i]) i++;
    if (i == expected->count && i == actual->count) return 1;
    fprintf(stderr, "%s: line %lld, token %lld: expected %d '%s', got %d '%s' (expected %lld ids, got %lld)\n",
            label, (long long)line, (long long)i, i < expected->count ? expected->ids[i] : -1,
            token_text(tok, expected, i), i < actual->count ? actual->ids[i] : -1, token_text(tok, actual, i),
            (long long)expected->count, (long long)actual->count);
    fprintf(stderr, "  text: %.*s\n", (int)(len < 300 ? len : 300), text);
    return 0;
}

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static tp_tokenizer *open_bert(const char *vocab_path, int do_lower_case)
{
    tp_tokenizer_options options = {.kind = "bert", .vocab_path = vocab_path, .do_lower_case = do_lower_case};
    return tp_tokenizer_create(&options);
}

/* Every line of sample.txt encoded once serially (timed) and once in parallel on the
 * same tokenizer; both must equal the reference ids. */
static void check_sample(const tp_tokenizer *tok, const char *ids_path)
{
    lines text, expected_lines;
    CHECK_MSG(read_lines(FIXTURES "sample.txt", &text) == 0, "%s", tp_last_error());
    CHECK_MSG(read_lines(ids_path, &expected_lines) == 0, "%s", tp_last_error());
    CHECK_MSG(text.count == expected_lines.count, "%s: %lld lines, sample.txt %lld", ids_path,
              (long long)expected_lines.count, (long long)text.count);
    int64_t count = text.count < expected_lines.count ? text.count : expected_lines.count;

    tp_ids *serial = calloc((size_t)count, sizeof *serial);
    double start = seconds_now();
    size_t bytes = 0;
    for (int64_t i = 0; i < count; i++) {
        tp_tokenizer_encode(tok, text.start[i], text.len[i], &serial[i]);
        bytes += text.len[i];
    }
    double elapsed = seconds_now() - start;
    fprintf(stderr, "%s: encoded %zu bytes in %.3f s\n", ids_path, bytes, elapsed);
    CHECK_MSG(elapsed < 1.0, "encoding the sample took %.3f s", elapsed);

    int64_t mismatches = 0;
    tp_ids expected = {0};
    for (int64_t i = 0; i < count; i++) {
        parse_ids(expected_lines.start[i], expected_lines.len[i], &expected);
        if (!same_ids(tok, ids_path, i + 1, text.start[i], text.len[i], &expected, &serial[i]) && ++mismatches >= 5)
            break;
    }
    CHECK_MSG(mismatches == 0, "%s: lines differ from Hugging Face's ids", ids_path);

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
    free_lines(&text);
    free_lines(&expected_lines);
}

static int hex_value(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

/* byte_cases.txt: "<input in hex>\t<ids>" per line. */
static void check_byte_cases(const tp_tokenizer *tok)
{
    lines cases;
    CHECK_MSG(read_lines(FIXTURES "byte_cases.txt", &cases) == 0, "%s", tp_last_error());
    tp_ids expected = {0}, actual = {0};
    for (int64_t i = 0; i < cases.count; i++) {
        const char *tab = memchr(cases.start[i], '\t', cases.len[i]);
        CHECK_MSG(tab != NULL, "byte_cases.txt: line %lld: no tab", (long long)i + 1);
        if (!tab) continue;
        size_t input_len = (size_t)(tab - cases.start[i]) / 2;
        char *input = malloc(input_len + 1);
        for (size_t b = 0; b < input_len; b++)
            input[b] = (char)(hex_value(cases.start[i][2 * b]) * 16 + hex_value(cases.start[i][2 * b + 1]));
        parse_ids(tab + 1, cases.len[i] - (size_t)(tab + 1 - cases.start[i]), &expected);
        tp_ids_clear(&actual);
        tp_tokenizer_encode(tok, input, input_len, &actual);
        CHECK(same_ids(tok, "byte_cases.txt", i + 1, cases.start[i], (size_t)(tab - cases.start[i]), &expected,
                       &actual));
        free(input);
    }
    tp_ids_free(&expected);
    tp_ids_free(&actual);
    free_lines(&cases);
}

static void check_token_ids(const tp_tokenizer *tok)
{
    CHECK(tok->vocab_size == 30522);
    /* bert-base-uncased's special ids, as its Hugging Face config lists them. */
    CHECK(tok->pad_id == 0 && tok->unk_id == 100 && tok->cls_id == 101 && tok->sep_id == 102 && tok->mask_id == 103);
    int64_t wrong = 0;
    for (int64_t id = 0; id < tok->vocab_size; id++) wrong += tp_tokenizer_token_id(tok, tok->tokens[id]) != id;
    CHECK_MSG(wrong == 0, "%lld tokens do not map back to their line", (long long)wrong);
    CHECK(tp_tokenizer_token_id(tok, "notatokenanywhere") == -1);
    CHECK(tp_tokenizer_token_id(tok, "") == -1);
    CHECK(tp_tokenizer_token_id(tok, "[cls]") == -1);
}

/* ---- vocabulary errors, on small files written here ---- */

/* Creating a tokenizer from `content` fails with a message holding each of the fragments. */
static void check_vocab_error(const char *name, const char *content, size_t len, const char *fragment1,
                              const char *fragment2)
{
    const char *path = tp_scratch_write(name, content, len);
    tp_tokenizer *tok = open_bert(path, 1);
    CHECK_MSG(tok == NULL, "%s: accepted", name);
    tp_tokenizer_free(tok);
    const char *message = tp_last_error();
    CHECK_MSG(strstr(message, path) && strstr(message, fragment1) && (!fragment2 || strstr(message, fragment2)),
              "%s: message '%s' lacks '%s' / '%s'", name, message, fragment1, fragment2 ? fragment2 : "");
}

static void check_vocab_errors(void)
{
    static const char invalid[] = "[UNK]\na\nb\xc3\x28\n";
    static const char duplicate[] = "[UNK]\nhello\nworld\nhello\n";
    check_vocab_error("empty.txt", "", 0, "empty vocabulary", NULL);
    check_vocab_error("invalid.txt", invalid, sizeof invalid - 1, "line 3", "invalid UTF-8");
    check_vocab_error("duplicate.txt", duplicate, sizeof duplicate - 1, "line 4: duplicate token 'hello'",
                      "first at line 2");
    check_vocab_error("blank_line.txt", "[UNK]\n\nx\n", 9, "line 2: empty token", NULL);
    check_vocab_error("nul.txt", "[UNK]\na\0b\n", 10, "line 2", "invalid UTF-8");
    check_vocab_error("no_unk.txt", "[PAD]\nhello\n", 12, "[UNK]", NULL);

    const char *missing = "/nonexistent/dir/vocab.txt";
    CHECK(open_bert(missing, 1) == NULL);
    CHECK_MSG(strstr(tp_last_error(), missing) != NULL, "%s", tp_last_error());

    /* CRLF line ends and a last line without one. */
    static const char crlf[] = "[PAD]\r\n[UNK]\r\nhello\r\n##s\r\nworld";
    tp_tokenizer *tok = open_bert(tp_scratch_write("crlf.txt", crlf, sizeof crlf - 1), 1);
    CHECK_MSG(tok != NULL, "%s", tp_last_error());
    if (tok) {
        CHECK(tok->vocab_size == 5 && tok->pad_id == 0 && tok->unk_id == 1 && tok->cls_id == -1);
        CHECK(tp_tokenizer_token_id(tok, "hello") == 2 && tp_tokenizer_token_id(tok, "world") == 4);
        CHECK(strcmp(tok->tokens[3], "##s") == 0);
        tp_tokenizer_free(tok);
    }
}

static void check_unknown_kind(void)
{
    tp_tokenizer_options options = {.kind = "gpt9", .vocab_path = VOCAB, .do_lower_case = 1};
    CHECK(tp_tokenizer_create(&options) == NULL);
    CHECK_MSG(strstr(tp_last_error(), "unknown tokenizer kind 'gpt9' (known: bert)") != NULL, "%s",
              tp_last_error());
}

int main(void)
{
    tp_scratch_init("wordpiece");
    check_vocab_errors();
    check_unknown_kind();
    if (access(VOCAB, R_OK) != 0) {
        fprintf(stderr, "%s is missing: run scripts/fetch_data.sh first\n", VOCAB);
        CHECK(!"the bert-base-uncased vocabulary is present");
        return tp_test_finish("test_wordpiece");
    }
    tp_tokenizer *uncased = open_bert(VOCAB, 1);
    tp_tokenizer *cased = open_bert(VOCAB, 0);
    CHECK_MSG(uncased && cased, "%s", tp_last_error());
    if (uncased && cased) {
        check_token_ids(uncased);
        check_sample(uncased, FIXTURES "sample.ids");
        check_sample(cased, FIXTURES "sample.cased.ids");
        check_byte_cases(uncased);
    }
    tp_tokenizer_free(uncased);
    tp_tokenizer_free(cased);
    return tp_test_finish("test_wordpiece");
}
