/* The tokenizer interface: id arrays, vocabulary loading and its hash index,
 * and creation of a tokenizer kind by name. */
#include "tokenizers/tokenizer.h"
#include "tokenizers/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/fileio.h"
#include "tokenizers/bpe.h"
#include "tokenizers/char_space.h"
#include "tokenizers/hf_json.h"
#include "tokenizers/sentencepiece.h"
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

static int64_t utf8_length(const char *token, size_t len)
{
    int64_t chars = 0;
    for (size_t i = 0; i < len; i++) chars += ((unsigned char)token[i] & 0xC0) != 0x80;
    return chars;
}

int32_t tp_vocab_add(tp_tokenizer *tok, int32_t id, const char *token, size_t len)
{
    tp_vocab_index *index = tok->impl;
    int32_t earlier = tp_vocab_find(tok, "", 0, token, len);
    if (earlier >= 0) return earlier;
    tok->tokens[id] = (char *)token;
    index->token_bytes[id] = (int32_t)len;
    index_insert(index, token, len, id);
    int64_t chars = utf8_length(token, len);
    if (chars > index->longest_token_chars) index->longest_token_chars = chars;
    return -1;
}

tp_tokenizer *tp_vocab_tokenizer_new(int64_t vocab_size, size_t impl_size)
{
    uint64_t slots = 16;
    while (slots < 2 * (uint64_t)vocab_size) slots *= 2;
    tp_vocab_index *index = tp_xcalloc(1, impl_size);
    index->slot_mask = slots - 1;
    index->slot_hashes = tp_xcalloc(slots, sizeof *index->slot_hashes);
    index->slot_ids = tp_xmalloc(slots * sizeof *index->slot_ids);
    memset(index->slot_ids, 0xFF, slots * sizeof *index->slot_ids); /* all -1 */
    index->token_bytes = tp_xcalloc((size_t)vocab_size, sizeof *index->token_bytes);
    tp_tokenizer *tok = tp_xcalloc(1, sizeof *tok);
    tok->impl = index;
    tok->vocab_size = vocab_size;
    tok->tokens = tp_xcalloc((size_t)vocab_size, sizeof *tok->tokens);
    tok->pad_id = tok->unk_id = tok->cls_id = tok->sep_id = tok->mask_id = tok->bos_id = tok->eos_id = -1;
    return tok;
}

/* Storage for copied tokens: chunks of at least 64 KiB, newest first. */
typedef struct tp_vocab_chunk {
    struct tp_vocab_chunk *older;
    size_t used, capacity;
    char bytes[];
} tp_vocab_chunk;

char *tp_vocab_store(tp_tokenizer *tok, const char *text, size_t len)
{
    tp_vocab_index *index = tok->impl;
    tp_vocab_chunk *chunk = index->chunks;
    if (!chunk || chunk->capacity - chunk->used < len + 1) {
        size_t capacity = len + 1 > 65536 ? len + 1 : 65536;
        chunk = tp_xmalloc(sizeof *chunk + capacity);
        chunk->older = index->chunks;
        chunk->used = 0;
        chunk->capacity = capacity;
        index->chunks = chunk;
    }
    char *copy = chunk->bytes + chunk->used;
    memcpy(copy, text, len);
    copy[len] = '\0';
    chunk->used += len + 1;
    return copy;
}

void tp_vocab_tokenizer_destroy(tp_tokenizer *tok)
{
    tp_vocab_index *index = tok->impl;
    for (tp_vocab_chunk *chunk = index->chunks, *older; chunk; chunk = older) {
        older = chunk->older;
        free(chunk);
    }
    free(index->slot_hashes);
    free(index->slot_ids);
    free(index->token_bytes);
    free(index->storage);
    free(index);
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

int64_t tp_utf8_invalid_offset(const char *text, size_t len)
{
    const unsigned char *bytes = (const unsigned char *)text;
    for (size_t pos = 0; pos < len;) {
        int32_t code_point;
        int step = tp_utf8_decode(bytes + pos, len - pos, &code_point);
        if (step < 0 || code_point == 0) return (int64_t)pos;
        pos += (size_t)step;
    }
    return -1;
}

/* Checks one line (the token with id `id`, NUL-terminated in place) and indexes it. */
static int add_line_token(tp_tokenizer *tok, const char *path, int64_t id, char *token, size_t len)
{
    int64_t line = id + 1;
    if (len == 0) return tp_fail("%s: line %lld: empty token", path, (long long)line);
    int64_t bad = tp_utf8_invalid_offset(token, len);
    if (bad >= 0)
        return tp_fail("%s: line %lld: invalid UTF-8 in token at byte %lld", path, (long long)line, (long long)bad);
    int32_t earlier = tp_vocab_add(tok, (int32_t)id, token, len);
    if (earlier >= 0)
        return tp_fail("%s: line %lld: duplicate token '%s' (first at line %lld)", path, (long long)line, token,
                       (long long)earlier + 1);
    return 0;
}

tp_tokenizer *tp_vocab_load_lines(const char *path, size_t impl_size)
{
    size_t size;
    char *data = tp_read_file(path, &size);
    if (!data) return NULL;
    int64_t lines = count_lines(data, size);
    if (lines == 0 || lines > INT32_MAX) {
        free(data);
        if (lines == 0)
            tp_fail("%s: empty vocabulary", path);
        else
            tp_fail("%s: %lld tokens: more than int32 ids can number", path, (long long)lines);
        return NULL;
    }
    tp_tokenizer *tok = tp_vocab_tokenizer_new(lines, impl_size);
    ((tp_vocab_index *)tok->impl)->storage = data;
    tok->source_path = tp_vocab_store(tok, path, strlen(path));
    char *line = data;
    for (int64_t id = 0; id < lines; id++) {
        char *newline = memchr(line, '\n', (size_t)(data + size - line));
        char *end = newline ? newline : data + size;
        if (end > line && end[-1] == '\r') end--;
        *end = '\0';
        if (add_line_token(tok, path, id, line, (size_t)(end - line)) != 0) {
            tp_vocab_tokenizer_destroy(tok);
            return NULL;
        }
        line = newline ? newline + 1 : data + size;
    }
    return tok;
}

cJSON *tp_vocab_read_json(const char *path)
{
    size_t size;
    char *text = tp_read_file(path, &size);
    if (!text) return NULL;
    const char *nul = memchr(text, '\0', size), *stop = nul;
    cJSON *root = nul ? NULL : cJSON_ParseWithLengthOpts(text, size + 1, &stop, 1); /* + 1: the final NUL */
    if (!root) {
        size_t at = stop ? (size_t)(stop - text) : size;
        int64_t line = 1, column = 1;
        for (size_t i = 0; i < at && i < size; i++, column++)
            if (text[i] == '\n') line++, column = 0;
        tp_fail("%s: line %lld, column %lld: invalid JSON%s", path, (long long)line, (long long)column,
                nul ? " (a NUL byte)" : "");
    }
    free(text);
    return root;
}

/* ---- JSON vocabularies ---- */

int tp_vocab_json_integer(const cJSON *item, int64_t low, int64_t high, int64_t *out)
{
    if (!cJSON_IsNumber(item)) return 0;
    double value = item->valuedouble;
    /* Range first: converting an out-of-range double to an integer is undefined. */
    if (!(value >= (double)low && value < (double)high) || value != (double)(int64_t)value) return 0;
    *out = (int64_t)value;
    return 1;
}

int tp_vocab_json_max_id(const cJSON *object, const char *path, const char *key, int64_t *max_id)
{
    if (!cJSON_IsObject(object)) return tp_fail("%s: key '%s': expected an object {token: id, ...}", path, key);
    *max_id = -1;
    int64_t count = 0;
    for (const cJSON *item = object->child; item; item = item->next) {
        int64_t id;
        if (!tp_vocab_json_integer(item, 0, INT32_MAX, &id))
            return tp_fail("%s: key '%s': token '%s': the id is not an integer in [0, %d)", path, key, item->string,
                           INT32_MAX);
        if (id > *max_id) *max_id = id;
        count++;
    }
    /* Ids run from 0 without gaps (tp_vocab_check_complete), so a larger one is refused before
     * the tables it would size are allocated. */
    if (*max_id >= count)
        return tp_fail("%s: key '%s': id %lld is out of range: %lld tokens have ids 0 to %lld", path, key,
                       (long long)*max_id, (long long)count, (long long)count - 1);
    return 0;
}

int tp_vocab_add_json_object(tp_tokenizer *tok, const cJSON *object, const char *path, const char *key)
{
    for (const cJSON *item = object->child; item; item = item->next) {
        const char *token = item->string;
        size_t len = strlen(token);
        int32_t id = (int32_t)item->valuedouble;
        if (len == 0) return tp_fail("%s: key '%s': empty token (id %d)", path, key, id);
        if (tp_utf8_invalid_offset(token, len) >= 0)
            return tp_fail("%s: key '%s': token with id %d: invalid UTF-8", path, key, id);
        if (tok->tokens[id])
            return tp_fail("%s: key '%s': id %d is given to both '%s' and '%s'", path, key, id, tok->tokens[id], token);
        int32_t earlier = tp_vocab_add(tok, id, tp_vocab_store(tok, token, len), len);
        if (earlier >= 0)
            return tp_fail("%s: key '%s': token '%s' appears twice (ids %d and %d)", path, key, token, earlier, id);
    }
    return 0;
}

int tp_vocab_check_complete(const tp_tokenizer *tok, const char *path)
{
    for (int64_t id = 0; id < tok->vocab_size; id++)
        if (!tok->tokens[id])
            return tp_fail("%s: no token has id %lld (ids must run from 0 to %lld without gaps)", path, (long long)id,
                           (long long)tok->vocab_size - 1);
    return 0;
}

void tp_vocab_set_bert_special_ids(tp_tokenizer *tok)
{
    tok->pad_id = tp_tokenizer_token_id(tok, "[PAD]");
    tok->unk_id = tp_tokenizer_token_id(tok, "[UNK]");
    tok->cls_id = tp_tokenizer_token_id(tok, "[CLS]");
    tok->sep_id = tp_tokenizer_token_id(tok, "[SEP]");
    tok->mask_id = tp_tokenizer_token_id(tok, "[MASK]");
}

/* ---- kinds ---- */

static tp_tokenizer *bert_create(const tp_tokenizer_options *options)
{
    if (!options->vocab_path) {
        tp_fail("tokenizer 'bert': no vocabulary file given (vocab_path)");
        return NULL;
    }
    tp_tokenizer *tok = tp_vocab_load_lines(options->vocab_path, sizeof(tp_vocab_index));
    if (!tok) return NULL;
    ((tp_vocab_index *)tok->impl)->do_lower_case = options->do_lower_case;
    tp_vocab_set_bert_special_ids(tok);
    if (tp_wordpiece_init(tok, options->vocab_path) != 0) {
        tp_vocab_tokenizer_destroy(tok);
        return NULL;
    }
    return tok;
}

typedef struct tokenizer_kind {
    const char *name;
    tp_tokenizer *(*create)(const tp_tokenizer_options *options);
} tokenizer_kind;

static const tokenizer_kind tokenizer_kinds[] = {
    {"bert", bert_create},
    {"bpe", tp_bpe_create},
    {"gpt2", tp_bpe_create},
    {"sentencepiece", tp_spm_create},
    {"char", tp_char_create},
    {"space", tp_space_create},
    {"hf", tp_hf_json_create},
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
    return kind ? kind->create(options) : NULL;
}

void tp_tokenizer_free(tp_tokenizer *tok)
{
    if (tok) tok->ops->destroy(tok);
}
