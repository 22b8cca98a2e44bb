/* The "bert" tokenizer: Hugging Face's slow BertTokenizer (transformers'
 * BasicTokenizer + WordpieceTokenizer), reproduced id for id.
 *
 * For each character of the UTF-8 input (an invalid byte counts as U+FFFD):
 *   - an exact occurrence of a special token ([PAD] [UNK] [CLS] [SEP] [MASK]) gives its id,
 *     as HF's added-token splitting does before anything else;
 *   - NUL, U+FFFD and control/format/unassigned/private-use characters (category C*)
 *     are dropped, except \t \n \r, which are whitespace;
 *   - whitespace (space, \t \n \r, Zs, and Zl/Zp, which Python's str.split() also
 *     splits on) ends the current word;
 *   - a CJK ideograph is a word of its own;
 *   - anything else joins the current word, lower-cased like Python's str.lower()
 *     when do_lower_case is set.
 * Each word is then normalised (lower-case mode: NFD, then Mn characters dropped;
 * cased mode: NFC), split before and after every punctuation character, and each
 * piece goes through greedy longest-match-first WordPiece ("##" marks a
 * continuation); a piece longer than 100 code points, or one that cannot be
 * covered by the vocabulary, becomes [UNK].
 *
 * Encode keeps no state in the tokenizer: each call has its own scratch
 * buffers, so concurrent calls on one tokenizer are safe. */
#include "tokenizers/wordpiece.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"

enum { MAX_PIECE_CHARS = 100 }; /* HF's max_input_chars_per_word */

typedef struct code_points {
    int32_t *data;
    int64_t count, capacity;
} code_points;

static void reserve(code_points *buffer, int64_t extra)
{
    if (buffer->count + extra <= buffer->capacity) return;
    int64_t capacity = buffer->capacity ? buffer->capacity : 64;
    while (capacity < buffer->count + extra) capacity *= 2;
    buffer->data = tp_xrealloc(buffer->data, (size_t)capacity * sizeof *buffer->data);
    buffer->capacity = capacity;
}

static void push(code_points *buffer, int32_t code_point)
{
    reserve(buffer, 1);
    buffer->data[buffer->count++] = code_point;
}

/* The special tokens of the vocabulary, matched verbatim in the raw text. */
typedef struct special_tokens {
    const char *text[5];
    size_t len[5];
    int32_t id[5];
    int count;
    bool starts_with[256]; /* first bytes of the special tokens */
} special_tokens;

/* One encode call's state. */
typedef struct encoder {
    const tp_tokenizer *tok;
    const tp_vocab_index *index;
    tp_ids *out;
    code_points word;       /* cleaned (and lower-cased) characters of the current word */
    bool word_is_ascii;     /* ASCII words skip normalisation */
    code_points normalized; /* the current word after NFD (+ dropping Mn) or NFC */
} encoder;

/* ---- character classes ---- */

typedef enum char_class { CHAR_DROP, CHAR_SPACE, CHAR_CJK, CHAR_WORD } char_class;

static char_class ascii_class(int32_t c)
{
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return CHAR_SPACE;
    if (c < 0x20 || c == 0x7F) return CHAR_DROP;
    return CHAR_WORD;
}

/* BERT's "Chinese character": the CJK Unified Ideographs blocks and their extensions
 * and compatibility blocks (not Hangul, Hiragana or Katakana). */
static bool is_cjk(int32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* keep_unassigned: category Cn is a word character (Hugging Face's fast, Rust BertNormalizer),
 * not dropped (the slow, Python BertTokenizer). */
static char_class classify(int32_t c, bool keep_unassigned)
{
    if (c < 0x80) return ascii_class(c);
    if (c == 0xFFFD) return CHAR_DROP;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_CN:
        return keep_unassigned ? CHAR_WORD : CHAR_DROP;
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
        return CHAR_DROP;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
        return CHAR_SPACE;
    default:
        return is_cjk(c) ? CHAR_CJK : CHAR_WORD;
    }
}

/* All non-alphanumeric ASCII counts as punctuation (so "$", "^", "`" split too), plus category P*. */
static bool is_punctuation(int32_t c)
{
    if (c < 0x80)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    utf8proc_category_t category = utf8proc_category(c);
    return category >= UTF8PROC_CATEGORY_PC && category <= UTF8PROC_CATEGORY_PO;
}

static int combining_class(int32_t c) { return c < 0x80 ? 0 : utf8proc_get_property(c)->combining_class; }

/* ---- normalisation ---- */

/* Python's str.lower(): utf8proc's simple mapping, except U+0130, the one character
 * whose full lower-case mapping (SpecialCasing.txt) has two code points. */
static void append_lowered(code_points *word, int32_t c)
{
    if (c < 0x80) {
        push(word, c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    } else if (c == 0x130) {
        push(word, 'i');
        push(word, 0x307);
    } else {
        push(word, utf8proc_tolower(c));
    }
}

static void append_decomposed(code_points *buffer, int32_t c)
{
    int unused_boundclass = 0;
    for (int64_t room = 8;; ) {
        reserve(buffer, room);
        utf8proc_ssize_t written = utf8proc_decompose_char(c, buffer->data + buffer->count, (utf8proc_ssize_t)room,
                                                           UTF8PROC_DECOMPOSE, &unused_boundclass);
        if (written <= room) {
            buffer->count += written;
            return;
        }
        room = written;
    }
}

/* Canonical ordering: a stable sort of each run of non-starters by combining class. */
static void canonical_order(int32_t *chars, int64_t count)
{
    for (int64_t i = 1; i < count; i++) {
        int32_t c = chars[i];
        int c_class = combining_class(c);
        if (c_class == 0) continue;
        int64_t j = i;
        for (; j > 0 && combining_class(chars[j - 1]) > c_class; j--) chars[j] = chars[j - 1];
        chars[j] = c;
    }
}

/* enc->word -> enc->normalized: NFD then drop Mn (lower-case mode, HF's
 * strip_accents), or NFC (cased mode). */
static void normalize_word(encoder *enc)
{
    code_points *out = &enc->normalized;
    out->count = 0;
    for (int64_t i = 0; i < enc->word.count; i++) {
        int32_t c = enc->word.data[i];
        if (c < 0x80)
            push(out, c);
        else
            append_decomposed(out, c);
    }
    canonical_order(out->data, out->count);
    if (enc->index->do_lower_case) {
        int64_t kept = 0;
        for (int64_t i = 0; i < out->count; i++)
            if (out->data[i] < 0x80 || utf8proc_category(out->data[i]) != UTF8PROC_CATEGORY_MN)
                out->data[kept++] = out->data[i];
        out->count = kept;
    } else {
        out->count = utf8proc_normalize_utf32(out->data, out->count, UTF8PROC_COMPOSE | UTF8PROC_STABLE);
    }
}

/* ---- WordPiece ---- */

static void wordpiece(encoder *enc, const int32_t *chars, int64_t count)
{
    if (count == 0) return;
    if (count > MAX_PIECE_CHARS) {
        tp_ids_push(enc->out, enc->tok->unk_id);
        return;
    }
    char bytes[MAX_PIECE_CHARS * 4];
    size_t offsets[MAX_PIECE_CHARS + 1];
    offsets[0] = 0;
    for (int64_t i = 0; i < count; i++)
        offsets[i + 1] = offsets[i] + (size_t)utf8proc_encode_char(chars[i], (utf8proc_uint8_t *)bytes + offsets[i]);

    int64_t first_output = enc->out->count;
    for (int64_t start = 0; start < count;) {
        int64_t end = count < start + enc->index->longest_token_chars ? count : start + enc->index->longest_token_chars;
        int32_t id;
        while ((id = tp_vocab_find(enc->tok, "##", start > 0 ? 2 : 0, bytes + offsets[start],
                                   offsets[end] - offsets[start])) < 0 &&
               end > start + 1)
            end--;
        if (id < 0) { /* no piece of the vocabulary starts here: the whole piece is unknown */
            enc->out->count = first_output;
            tp_ids_push(enc->out, enc->tok->unk_id);
            return;
        }
        tp_ids_push(enc->out, id);
        start = end;
    }
}

static void split_on_punctuation(encoder *enc, const int32_t *chars, int64_t count)
{
    int64_t start = 0;
    for (int64_t i = 0; i < count; i++) {
        if (!is_punctuation(chars[i])) continue;
        wordpiece(enc, chars + start, i - start);
        wordpiece(enc, chars + i, 1);
        start = i + 1;
    }
    wordpiece(enc, chars + start, count - start);
}

static void flush_word(encoder *enc)
{
    if (enc->word.count == 0) return;
    if (enc->word_is_ascii) {
        split_on_punctuation(enc, enc->word.data, enc->word.count);
    } else {
        normalize_word(enc);
        split_on_punctuation(enc, enc->normalized.data, enc->normalized.count);
    }
    enc->word.count = 0;
    enc->word_is_ascii = true;
}

static void add_char(encoder *enc, int32_t c)
{
    switch (classify(c, enc->index->keep_unassigned)) {
    case CHAR_DROP:
        return;
    case CHAR_SPACE:
        flush_word(enc);
        return;
    case CHAR_CJK:
        flush_word(enc);
        push(&enc->word, c);
        enc->word_is_ascii = false;
        flush_word(enc);
        return;
    case CHAR_WORD:
        if (enc->index->do_lower_case)
            append_lowered(&enc->word, c);
        else
            push(&enc->word, c);
        if (c >= 0x80) enc->word_is_ascii = false;
        return;
    }
}

/* ---- special tokens ---- */

static void collect_special_tokens(const tp_tokenizer *tok, special_tokens *specials)
{
    const int32_t ids[5] = {tok->pad_id, tok->unk_id, tok->cls_id, tok->sep_id, tok->mask_id};
    memset(specials, 0, sizeof *specials);
    for (int k = 0; k < 5; k++) {
        if (ids[k] < 0) continue;
        const char *text = tok->tokens[ids[k]];
        specials->text[specials->count] = text;
        specials->len[specials->count] = strlen(text);
        specials->id[specials->count] = ids[k];
        specials->starts_with[(unsigned char)text[0]] = true;
        specials->count++;
    }
}

/* Id of the longest special token at text[0..), -1 if none; *len_out gets its length. */
static int32_t match_special(const special_tokens *specials, const char *text, size_t len, size_t *len_out)
{
    int32_t id = -1;
    *len_out = 0;
    for (int k = 0; k < specials->count; k++) {
        if (specials->len[k] > len || specials->len[k] <= *len_out) continue;
        if (memcmp(text, specials->text[k], specials->len[k]) != 0) continue;
        id = specials->id[k];
        *len_out = specials->len[k];
    }
    return id;
}

int tp_wordpiece_encode(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    encoder enc = {.tok = tok, .index = tok->impl, .out = out, .word_is_ascii = true};
    special_tokens specials;
    collect_special_tokens(tok, &specials);
    const unsigned char *bytes = (const unsigned char *)text;
    for (size_t pos = 0; pos < len;) {
        size_t special_len;
        int32_t special_id;
        if (specials.starts_with[bytes[pos]] &&
            (special_id = match_special(&specials, text + pos, len - pos, &special_len)) >= 0) {
            flush_word(&enc);
            tp_ids_push(out, special_id);
            pos += special_len;
            continue;
        }
        int32_t c;
        int step = tp_utf8_decode(bytes + pos, len - pos, &c);
        pos += step > 0 ? (size_t)step : 1;
        add_char(&enc, c);
    }
    flush_word(&enc);
    free(enc.word.data);
    free(enc.normalized.data);
    return 0;
}

static const tp_tokenizer_ops wordpiece_ops = {
    .encode = tp_wordpiece_encode,
    .destroy = tp_vocab_tokenizer_destroy,
};

int tp_wordpiece_init(tp_tokenizer *tok, const char *vocab_path)
{
    if (tok->unk_id < 0) return tp_fail("%s: the bert tokenizer needs an [UNK] token in its vocabulary", vocab_path);
    tok->ops = &wordpiece_ops;
    return 0;
}
