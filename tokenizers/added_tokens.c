/* Added tokens matched in the raw text (see added_tokens.h). */
#include "tokenizers/added_tokens.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizers/vocab.h"

void tp_added_tokens_add(tp_added_tokens *added, const char *text, size_t len, int32_t id, bool lstrip, bool rstrip)
{
    if (len == 0) return; /* an empty token never matches */
    added->tokens = tp_xrealloc(added->tokens, (size_t)(added->count + 1) * sizeof *added->tokens);
    added->tokens[added->count++] = (tp_added_token){text, len, id, lstrip, rstrip};
    added->starts_with[(unsigned char)text[0]] = true;
}

void tp_added_tokens_free(tp_added_tokens *added)
{
    free(added->tokens);
    memset(added, 0, sizeof *added);
}

/* The longest added token at text[0..len), NULL if none. */
static const tp_added_token *match_at(const tp_added_tokens *added, const char *text, size_t len)
{
    const tp_added_token *best = NULL;
    if (!added->starts_with[(unsigned char)text[0]]) return NULL;
    for (int64_t k = 0; k < added->count; k++) {
        const tp_added_token *token = &added->tokens[k];
        if (token->len <= len && (!best || token->len > best->len) && memcmp(text, token->text, token->len) == 0)
            best = token;
    }
    return best;
}

/* Start of the White_Space run that ends at text[end] (the text before it is valid UTF-8 or not:
 * only whole characters that decode as white space count). */
static size_t white_space_start(const char *text, size_t start, size_t end)
{
    while (end > start) {
        size_t char_start = end - 1;
        while (char_start > start && ((unsigned char)text[char_start] & 0xC0) == 0x80 && end - char_start < 4)
            char_start--;
        int32_t c;
        if (tp_utf8_decode((const unsigned char *)text + char_start, end - char_start, &c) != (int)(end - char_start) ||
            !tp_unicode_white_space(c))
            break;
        end = char_start;
    }
    return end;
}

static size_t white_space_end(const char *text, size_t pos, size_t len)
{
    while (pos < len) {
        int32_t c;
        int step = tp_utf8_decode((const unsigned char *)text + pos, len - pos, &c);
        if (step < 0 || !tp_unicode_white_space(c)) break;
        pos += (size_t)step;
    }
    return pos;
}

int tp_added_tokens_encode(const tp_added_tokens *added, const tp_tokenizer *tok, const char *text, size_t len,
                           tp_segment_encoder encode_segment, tp_ids *out)
{
    size_t segment_start = 0;
    for (size_t pos = 0; pos < len;) {
        const tp_added_token *token = added->count ? match_at(added, text + pos, len - pos) : NULL;
        if (!token) {
            pos++;
            continue;
        }
        size_t segment_end = token->lstrip ? white_space_start(text, segment_start, pos) : pos;
        if (segment_end > segment_start && encode_segment(tok, text + segment_start, segment_end - segment_start, out) != 0)
            return -1;
        tp_ids_push(out, token->id);
        pos += token->len;
        if (token->rstrip) pos = white_space_end(text, pos, len);
        segment_start = pos;
    }
    if (len > segment_start) return encode_segment(tok, text + segment_start, len - segment_start, out);
    return 0;
}
