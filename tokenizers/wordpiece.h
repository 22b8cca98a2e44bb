/* Internal to tokenizers/: the vocabulary index that tokenizer.c builds behind
 * tp_tokenizer.impl, the UTF-8 decoder both files use, and the "bert" kind
 * (BasicTokenizer + WordPiece) that wordpiece.c implements. */
#ifndef TP_WORDPIECE_H
#define TP_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizers/tokenizer.h"

/* Open-addressing hash table from token string to id (tp_tokenizer.impl). */
typedef struct tp_vocab_index {
    uint64_t *slot_hashes;
    int32_t *slot_ids;     /* -1 = empty slot */
    uint64_t slot_mask;    /* slot count - 1 (a power of two, at least twice the vocabulary) */
    int32_t *token_bytes;  /* id -> strlen(tokens[id]) */
    int64_t longest_token_chars; /* code points in the longest token: bounds WordPiece's search */
    int do_lower_case;
} tp_vocab_index;

/* Id of the token prefix + text[0..len) (prefix is "" or "##"), -1 if absent. */
int32_t tp_vocab_find(const tp_tokenizer *tok, const char *prefix, size_t prefix_len, const char *text, size_t len);

/* Frees everything tp_tokenizer_create allocated (tokens, index, the struct). */
void tp_vocab_tokenizer_destroy(tp_tokenizer *tok);

/* Installs the bert kind's ops; -1 (naming vocab_path) when the vocabulary lacks [UNK]. */
int tp_wordpiece_init(tp_tokenizer *tok, const char *vocab_path);

/* Decodes one UTF-8 sequence at text[0..len) (len >= 1) into *code_point and returns its
 * length in bytes.  An invalid or truncated sequence, an overlong form or a surrogate
 * gives -1 after storing U+FFFD: the caller skips one byte, so a valid character right
 * after a broken one is never swallowed. */
static inline int tp_utf8_decode(const unsigned char *text, size_t len, int32_t *code_point)
{
    unsigned lead = text[0];
    *code_point = 0xFFFD;
    if (lead < 0x80) {
        *code_point = (int32_t)lead;
        return 1;
    }
    int need;
    unsigned low = 0x80, high = 0xBF; /* allowed range of the second byte (RFC 3629, table 3-7) */
    int32_t value;
    if (lead >= 0xC2 && lead <= 0xDF) {
        need = 1, value = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        need = 2, value = lead & 0x0F;
        if (lead == 0xE0) low = 0xA0;
        if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        need = 3, value = lead & 0x07;
        if (lead == 0xF0) low = 0x90;
        if (lead == 0xF4) high = 0x8F;
    } else {
        return -1;
    }
    if ((size_t)need >= len) return -1;
    for (int i = 1; i <= need; i++) {
        unsigned byte = text[i];
        if (byte < (i == 1 ? low : 0x80) || byte > (i == 1 ? high : 0xBF)) return -1;
        value = (value << 6) | (int32_t)(byte & 0x3F);
    }
    *code_point = value;
    return need + 1;
}

#endif
