/* Internal to tokenizers/: tokens matched verbatim in the raw text before a kind's own
 * pre-tokenisation (GPT-2's <|endoftext|>, Hugging Face's added tokens), as Hugging Face's
 * AddedVocabulary does: at each position the longest added token that starts there wins;
 * lstrip / rstrip also take the whitespace (Unicode White_Space) before / after it. */
#ifndef TP_ADDED_TOKENS_H
#define TP_ADDED_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizers/tokenizer.h"

typedef struct tp_added_token {
    const char *text; /* borrowed: points into the tokenizer's token storage */
    size_t len;
    int32_t id;
    bool lstrip, rstrip;
} tp_added_token;

typedef struct tp_added_tokens {
    tp_added_token *tokens;
    int64_t count;
    bool starts_with[256]; /* first bytes of the tokens: most positions are rejected at once */
} tp_added_tokens;

void tp_added_tokens_add(tp_added_tokens *added, const char *text, size_t len, int32_t id, bool lstrip, bool rstrip);
void tp_added_tokens_free(tp_added_tokens *added);

/* Encodes text: the added tokens' ids, and encode_segment's ids for the text between them
 * (skipped when empty).  Returns the first failure of encode_segment. */
typedef int (*tp_segment_encoder)(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out);
int tp_added_tokens_encode(const tp_added_tokens *added, const tp_tokenizer *tok, const char *text, size_t len,
                           tp_segment_encoder encode_segment, tp_ids *out);

#endif
