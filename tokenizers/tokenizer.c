/* The tokenizer interface: id arrays, vocabulary loading and its hash index,
 * and creation of a tokenizer kind by name. */
#include "tokenizers/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"
#include "tokenizers/wordpiece.h"

void tp_ids_push(tp_ids *ids, int32_t id)
{
    if (ids->count == ids->capacity) {
        ids->capacity = ids->capacity ? 2 * ids->capacity : 256;
        ids->ids = tp_xrealloc(ids->ids, (size_t)ids->capacity * sizeof *ids->ids);
    }
    ids->ids[ids->count++] = id;
}

void tp_ids_clear(tp_ids *ids) { ids->count = 0; }

void tp_ids_free(tp_ids *ids)
{
    free(ids->ids);
    ids->ids = NULL;
    ids->count = ids->capacity = 0;
}

/* ---- vocabulary index ---- */

/* FNV-1a, continued from `hash` so that a prefix and the text hash as one string. */
static uint64_t hash_bytes(uint64_t hash, const char *bytes, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        hash ^= (unsigned char)bytes[i];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

static const uint64_t fnv_offset_basis = 0xcbf29ce484222325ULL;

int32_t tp_vocab_find(const tp_tokenizer *tok, const char *prefix, size_t prefix_len, const char *text, size_t len)
{
    const tp_vocab_index *index = tok->impl;
    uint64_t hash = hash_bytes(hash_bytes(fnv_offset_basis, prefix, prefix_len), text, len);
    for (uint64_t slot = hash & index->slot_mask;; slot = (slot + 1) & index->slot_mask) {
        int32_t id = index->slot_ids[slot];
        if (id < 0) return -1;
        if (index->slot_hashes[slot] == hash && (size_t)index->token_bytes[id] == prefix_len + len &&
            memcmp(tok->tokens[id], prefix, prefix_len) == 0 &&
            memcmp(tok->tokens[id] + prefix_len, text, len) == 0)
            return id;
    }
}

int32_t tp_tokenizer_token_id(const tp_tokenizer *tok, const char *token)
{
    return tp_vocab_find(tok, "", 0, token, strlen(token));
}

static void index_insert(tp_vocab_index *index, const char *token, size_t len, int32_t id)
{
    uint64_t hash = hash_bytes(fnv_offset_basis, token, len);
    uint64_t slot = hash & index->slot_mask;
    while (index->slot_ids[slot] >= 0) slot = (slot + 1) & index->slot_mask;
    index->slot_ids[slot] = id;
    index->slot_hashes[slot] = hash;
}

static tp_vocab_index *index_create(int64_t vocab_size)
{
    uint64_t slots = 16;
    while (slots < 2 * (uint64_t)vocab_size) slots *= 2;
    tp_vocab_index *index = tp_xcalloc(1, sizeof *index);
    index->slot_mask = slots - 1;
    index->slot_hashes = tp_xcalloc(slots, sizeof *index->slot_hashes);
    index->slot_ids = tp_xmalloc(slots * sizeof *index->slot_ids);
    memset(index->slot_ids, 0xFF, slots * sizeof *index->slot_ids); /* all -1 */
    index->token_bytes = tp_xmalloc((size_t)vocab_size * sizeof *index->token_bytes);
    return index;
}

void tp_vocab_tokenizer_destroy(tp_tokenizer *tok)
{
    tp_vocab_index *index = tok->impl;
    if (index) {
        free(index->slot_hashes);
        free(index->slot_ids);
        free(index->token_bytes);
        free(index);
    }
    /* Every token points into one buffer: the vocabulary file, NUL-terminated line by line. */
    if (tok->tokens) free(tok->tokens[0]);
    free(tok->tokens);
    free(tok);
}

/* ---- vocabulary file ---- */

static int64_t count_lines(const char *data, size_t size)
{
    int64_t lines = 0;
    for (const char *p = data; p < data + size; lines++) {
        const char *newline = memchr(p, '\n', (size_t)(data + size - p));
        p = newline ? newline + 1 : data + size;
    }
    return lines;
}

/* Byte offset of the first invalid UTF-8 sequence (or NUL byte) in token, -1 if none. */
static int64_t invalid_utf8_offset(const char *token, size_t len)
{
    const unsigned char *bytes = (const unsigned char *)token;
    for (size_t pos = 0; pos < len;) {
        int32_t code_point;
        int step = tp_utf8_decode(bytes + pos, len - pos, &code_point);
        if (step < 0 || code_point == 0) return (int64_t)pos;
        pos += (size_t)step;
    }
    return -1;
}

static int64_t utf8_length(const char *token, size_t len)
{
    int64_t chars = 0;
    for (size_t i = 0; i < len; i++) chars += ((unsigned char)token[i] & 0xC0) != 0x80;
    return chars;
}

/* Checks one line (the token with id `id`, NUL-terminated in place) and indexes it. */
static int add_token(tp_tokenizer *tok, const char *path, int64_t id, char *token, size_t len)
{
    tp_vocab_index *index = tok->impl;
    int64_t line = id + 1;
    if (len == 0) return tp_fail("%s: line %lld: empty token", path, (long long)line);
    int64_t bad = invalid_utf8_offset(token, len);
    if (bad >= 0)
        return tp_fail("%s: line %lld: invalid UTF-8 in token at byte %lld", path, (long long)line, (long long)bad);
    int32_t earlier = tp_vocab_find(tok, "", 0, token, len);
    if (earlier >= 0)
        return tp_fail("%s: line %lld: duplicate token '%s' (first at line %lld)", path, (long long)line, token,
                       (long long)earlier + 1);
    tok->tokens[id] = token;
    index->token_bytes[id] = (int32_t)len;
    index_insert(index, token, len, (int32_t)id);
    int64_t chars = utf8_length(token, len);
    if (chars > index->longest_token_chars) index->longest_token_chars = chars;
    return 0;
}

/* Reads path (one token per line, id = line number, "\r\n" accepted) into tok->tokens and its index. */
static int load_vocab(tp_tokenizer *tok, const char *path)
{
    size_t size;
    char *data = tp_read_file(path, &size);
    if (!data) return -1;
    int64_t lines = count_lines(data, size);
    if (lines == 0) {
        free(data);
        return tp_fail("%s: empty vocabulary", path);
    }
    if (lines > INT32_MAX) {
        free(data);
        return tp_fail("%s: %lld tokens: more than int32 ids can number", path, (long long)lines);
    }
    tok->vocab_size = lines;
    tok->tokens = tp_xcalloc((size_t)lines, sizeof *tok->tokens);
    tok->tokens[0] = data; /* owns the buffer even if line 1 turns out to be bad */
    tok->impl = index_create(lines);
    char *line = data;
    for (int64_t id = 0; id < lines; id++) {
        char *newline = memchr(line, '\n', (size_t)(data + size - line));
        char *end = newline ? newline : data + size;
        if (end > line && end[-1] == '\r') end--;
        *end = '\0';
        if (add_token(tok, path, id, line, (size_t)(end - line)) != 0) return -1;
        line = newline ? newline + 1 : data + size;
    }
    return 0;
}

static void set_special_ids(tp_tokenizer *tok)
{
    tok->pad_id = tp_tokenizer_token_id(tok, "[PAD]");
    tok->unk_id = tp_tokenizer_token_id(tok, "[UNK]");
    tok->cls_id = tp_tokenizer_token_id(tok, "[CLS]");
    tok->sep_id = tp_tokenizer_token_id(tok, "[SEP]");
    tok->mask_id = tp_tokenizer_token_id(tok, "[MASK]");
}

/* ---- kinds ---- */

typedef struct tokenizer_kind {
    const char *name;
    int (*init)(tp_tokenizer *tok, const char *vocab_path);
} tokenizer_kind;

static const tokenizer_kind tokenizer_kinds[] = {
    {"bert", tp_wordpiece_init},
};
enum { KIND_COUNT = sizeof tokenizer_kinds / sizeof tokenizer_kinds[0] };

static const tokenizer_kind *find_kind(const char *name)
{
    char known[256] = "";
    for (int k = 0; k < KIND_COUNT; k++) {
        if (name && strcmp(name, tokenizer_kinds[k].name) == 0) return &tokenizer_kinds[k];
        size_t used = strlen(known);
        snprintf(known + used, sizeof known - used, "%s%s", k ? ", " : "", tokenizer_kinds[k].name);
    }
    if (name)
        tp_fail("unknown tokenizer kind '%s' (known: %s)", name, known);
    else
        tp_fail("no tokenizer kind given (known: %s)", known);
    return NULL;
}

tp_tokenizer *tp_tokenizer_create(const tp_tokenizer_options *options)
{
    const tokenizer_kind *kind = find_kind(options->kind);
    if (!kind) return NULL;
    if (!options->vocab_path) {
        tp_fail("tokenizer '%s': no vocabulary file given", kind->name);
        return NULL;
    }
    tp_tokenizer *tok = tp_xcalloc(1, sizeof *tok);
    if (load_vocab(tok, options->vocab_path) != 0) {
        tp_vocab_tokenizer_destroy(tok);
        return NULL;
    }
    ((tp_vocab_index *)tok->impl)->do_lower_case = options->do_lower_case;
    set_special_ids(tok);
    if (kind->init(tok, options->vocab_path) != 0) {
        tp_vocab_tokenizer_destroy(tok);
        return NULL;
    }
    return tok;
}

void tp_tokenizer_free(tp_tokenizer *tok)
{
    if (tok) tok->ops->destroy(tok);
}
