/* TencentPretrain's CharTokenizer and SpaceTokenizer (tencentpretrain/utils/tokenizers.py),
 * with its vocabulary lookup (a token not in the vocabulary becomes [UNK]):
 *
 *   char:  [vocab.get(t, UNK) for t in list(text.strip())]       one token per code point
 *   space: [vocab.get(t, UNK) for t in text.strip().split(" ")]  split at each U+0020
 *
 * Python's semantics are kept exactly: strip() removes what str.isspace() calls white space
 * (which, unlike Unicode's White_Space, includes U+001C..U+001F); split(" ") makes an empty
 * token (so [UNK]) between two adjacent spaces, and a text that strips to nothing gives one
 * [UNK] with space and nothing with char.  No special tokens are recognised in the text.
 * Invalid UTF-8 counts as U+FFFD, one per maximal invalid subpart (Python's errors="replace"). */
#include "tokenizers/char_space.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "tokenizers/vocab.h"

/* Python's str.isspace(): bidirectional class WS, B or S, or category Zs. */
static bool python_space(int32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* text as valid UTF-8 (U+FFFD for invalid sequences) without leading and trailing white space. */
static char *stripped_copy(const char *text, size_t len, size_t *out_len)
{
    char *out = tp_xmalloc(3 * len + 1);
    size_t at = 0, content_end = 0;
    const unsigned char *bytes = (const unsigned char *)text;
    for (size_t pos = 0; pos < len;) {
        int32_t c;
        int step = tp_utf8_decode(bytes + pos, len - pos, &c);
        pos += step > 0 ? (size_t)step : (size_t)tp_utf8_invalid_length(bytes + pos, len - pos);
        if (python_space(c) && at == 0) continue;
        at += (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)out + at);
        if (!python_space(c)) content_end = at;
    }
    *out_len = content_end;
    return out;
}

static void push_token(const tp_tokenizer *tok, const char *token, size_t len, tp_ids *out)
{
    int32_t id = tp_vocab_find(tok, "", 0, token, len);
    tp_ids_push(out, id >= 0 ? id : tok->unk_id);
}

static int char_encode(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    size_t clean_len;
    char *clean = stripped_copy(text, len, &clean_len);
    for (size_t pos = 0; pos < clean_len;) {
        int32_t c;
        size_t step = (size_t)tp_utf8_decode((const unsigned char *)clean + pos, clean_len - pos, &c);
        push_token(tok, clean + pos, step, out);
        pos += step;
    }
    free(clean);
    return 0;
}

static int space_encode(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    size_t clean_len;
    char *clean = stripped_copy(text, len, &clean_len);
    for (size_t start = 0;;) {
        const char *space = memchr(clean + start, ' ', clean_len - start);
        size_t end = space ? (size_t)(space - clean) : clean_len;
        push_token(tok, clean + start, end - start, out);
        if (!space) break;
        start = end + 1;
    }
    free(clean);
    return 0;
}

static const tp_tokenizer_ops char_ops = {.encode = char_encode, .destroy = tp_vocab_tokenizer_destroy};
static const tp_tokenizer_ops space_ops = {.encode = space_encode, .destroy = tp_vocab_tokenizer_destroy};

static tp_tokenizer *create(const tp_tokenizer_options *options, const tp_tokenizer_ops *ops)
{
    if (!options->vocab_path) {
        tp_fail("tokenizer '%s': no vocabulary file given (vocab_path)", options->kind);
        return NULL;
    }
    tp_tokenizer *tok = tp_vocab_load_lines(options->vocab_path, sizeof(tp_vocab_index));
    if (!tok) return NULL;
    tp_vocab_set_bert_special_ids(tok);
    if (tok->unk_id < 0) {
        tp_fail("%s: the %s tokenizer needs an [UNK] token in its vocabulary", options->vocab_path, options->kind);
        tp_vocab_tokenizer_destroy(tok);
        return NULL;
    }
    tok->ops = ops;
    return tok;
}

tp_tokenizer *tp_char_create(const tp_tokenizer_options *options) { return create(options, &char_ops); }
tp_tokenizer *tp_space_create(const tp_tokenizer_options *options) { return create(options, &space_ops); }
