/* Internal to tokenizers/: the vocabulary every kind keeps (id -> token in
 * tp_tokenizer.tokens, and an open-addressing hash index from token to id), the loader
 * of one-token-per-line vocabulary files, and the UTF-8 decoder the kinds share.
 *
 * Every kind's impl struct starts with a tp_vocab_index, so tp_vocab_find and
 * tp_tokenizer_token_id work on any tokenizer. */
#ifndef TP_VOCAB_H
#define TP_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizers/tokenizer.h"

struct cJSON;

typedef struct tp_vocab_index {
    uint64_t *slot_hashes;
    int32_t *slot_ids;     /* -1 = empty slot */
    uint64_t slot_mask;    /* slot count - 1 (a power of two, at least twice the vocabulary) */
    int32_t *token_bytes;  /* id -> strlen(tokens[id]) */
    int64_t longest_token_chars; /* code points in the longest token: bounds WordPiece's search */
    int do_lower_case;     /* bert */
    int keep_unassigned;   /* bert: keep category Cn, as Hugging Face's fast tokenizer (hf kind) */
    char *storage;         /* a vocabulary file's bytes, that tokens[id] point into */
    struct tp_vocab_chunk *chunks; /* copies made by tp_vocab_store */
} tp_vocab_index;

/* A tokenizer with vocab_size empty token slots, every special id -1, and an impl of
 * impl_size zeroed bytes (at least sizeof(tp_vocab_index): the index comes first)
 * holding the index's empty tables. */
tp_tokenizer *tp_vocab_tokenizer_new(int64_t vocab_size, size_t impl_size);

/* Stores token (len bytes, NUL-terminated, in the index's storage) as tokens[id] and
 * indexes it.  Returns -1, or the id of an earlier identical token (then nothing changes). */
int32_t tp_vocab_add(tp_tokenizer *tok, int32_t id, const char *token, size_t len);

/* A copy of text[0..len) and a NUL that lives as long as the tokenizer. */
char *tp_vocab_store(tp_tokenizer *tok, const char *text, size_t len);

/* The largest id of a JSON object {token: id, ...} at `key` of file `path`, -1 if it is
 * empty; fails unless every id is an integer in [0, INT32_MAX) and below the number of tokens. */
int tp_vocab_json_max_id(const struct cJSON *object, const char *path, const char *key, int64_t *max_id);
/* Adds the tokens of such an object (ids below vocab_size); errors name path and key. */
int tp_vocab_add_json_object(tp_tokenizer *tok, const struct cJSON *object, const char *path, const char *key);
/* Fails, naming path and the first id, unless every id below vocab_size has its token. */
int tp_vocab_check_complete(const tp_tokenizer *tok, const char *path);

/* Id of the token prefix + text[0..len) (prefix is "" or "##"), -1 if absent. */
int32_t tp_vocab_find(const tp_tokenizer *tok, const char *prefix, size_t prefix_len, const char *text, size_t len);

/* Frees the index, the token storage, tokens, impl and tok: the destroy op of kinds whose
 * impl holds nothing else (the others free their own state first, then call it). */
void tp_vocab_tokenizer_destroy(tp_tokenizer *tok);

/* Reads a vocabulary file (one token per line, id = line number, "\r\n" accepted) into a
 * new tokenizer whose impl has impl_size bytes; NULL with the file and line on failure. */
tp_tokenizer *tp_vocab_load_lines(const char *path, size_t impl_size);

/* pad/unk/cls/sep/mask ids from the tokens [PAD] [UNK] [CLS] [SEP] [MASK]. */
void tp_vocab_set_bert_special_ids(tp_tokenizer *tok);

/* item is a JSON number holding an integer in [low, high): stores it in *out. */
int tp_vocab_json_integer(const struct cJSON *item, int64_t low, int64_t high, int64_t *out);

/* Reads path as JSON; NULL with "path: line L, column C: ..." on failure. */
struct cJSON *tp_vocab_read_json(const char *path);

/* Unicode's White_Space property: what \s matches in the regexes of tiktoken and Hugging
 * Face, and Rust's char::is_whitespace. */
static inline int tp_unicode_white_space(int32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Byte offset of the first invalid UTF-8 sequence (or NUL byte) in text, -1 if none. */
int64_t tp_utf8_invalid_offset(const char *text, size_t len);

/* The length (need continuation bytes) and allowed second-byte range (RFC 3629, table 3-7)
 * of a sequence led by `lead`; 0 when lead cannot start one. */
static inline int tp_utf8_lead(unsigned lead, int *need, unsigned *low, unsigned *high, int32_t *value)
{
    *low = 0x80, *high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        *need = 1, *value = (int32_t)(lead & 0x1F);
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        *need = 2, *value = (int32_t)(lead & 0x0F);
        if (lead == 0xE0) *low = 0xA0;
        if (lead == 0xED) *high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        *need = 3, *value = (int32_t)(lead & 0x07);
        if (lead == 0xF0) *low = 0x90;
        if (lead == 0xF4) *high = 0x8F;
    } else {
        return 0;
    }
    return 1;
}

/* Decodes one UTF-8 sequence at text[0..len) (len >= 1) into *code_point and returns its
 * length in bytes.  An invalid or truncated sequence, an overlong form or a surrogate
 * gives -1 after storing U+FFFD: the caller skips one byte, so a valid character right
 * after a broken one is never swallowed. */
static inline int tp_utf8_decode(const unsigned char *text, size_t len, int32_t *code_point)
{
    unsigned lead = text[0], low, high;
    *code_point = 0xFFFD;
    if (lead < 0x80) {
        *code_point = (int32_t)lead;
        return 1;
    }
    int need;
    int32_t value;
    if (!tp_utf8_lead(lead, &need, &low, &high, &value) || (size_t)need >= len) return -1;
    for (int i = 1; i <= need; i++) {
        unsigned byte = text[i];
        if (byte < (i == 1 ? low : 0x80) || byte > (i == 1 ? high : 0xBF)) return -1;
        value = (value << 6) | (int32_t)(byte & 0x3F);
    }
    *code_point = value;
    return need + 1;
}

/* Bytes that the invalid sequence at text[0..len) spans where Python's
 * decode(errors="replace") puts one U+FFFD: the longest prefix of a well-formed sequence
 * (Unicode's "maximal subpart"), at least 1. */
static inline int tp_utf8_invalid_length(const unsigned char *text, size_t len)
{
    unsigned low, high;
    int need;
    int32_t value;
    if (!tp_utf8_lead(text[0], &need, &low, &high, &value)) return 1;
    int i = 1;
    while (i <= need && (size_t)i < len && text[i] >= (i == 1 ? low : 0x80) && text[i] <= (i == 1 ? high : 0xBF)) i++;
    return i;
}

#endif
