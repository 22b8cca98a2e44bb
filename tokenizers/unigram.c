/* The Unigram pipeline of a Hugging Face tokenizer.json, id for id as `tokenizers` (0.20):
 *
 * 1. Normalizers, in order: Precompiled (SentencePiece's compiled character map: a
 *    darts-clone trie over UTF-8 bytes and a blob of replacements, applied per extended
 *    grapheme cluster as the spm_precompiled crate does), Strip, Replace (a literal, or the
 *    regex " {2,}" that the SentencePiece converters emit), NFC, NFD, NFKC, NFKD; Sequence.
 * 2. Metaspace: spaces become the replacement character (U+2581 "▁"), which is put in front
 *    of a segment that does not start with it (prepend_scheme "always"; "never" too), and
 *    (split) each piece of the text starts at a replacement character.
 * 3. Unigram: the Viterbi segmentation of each piece over byte positions (character
 *    boundaries only) maximising the sum of piece scores; a character no piece covers is
 *    unknown with score min_score - 10, consecutive unknowns fuse into one; a result that is
 *    not a piece becomes its <0xXX> byte pieces (byte_fallback) or unk_id.  Ties keep the
 *    shorter piece found first, as the reference's trie walk does.
 *
 * Segments are the text between added tokens (added_tokens.h); invalid UTF-8 counts as U+FFFD. */
#include "tokenizers/unigram.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "tokenizers/darts.h"
#include "tokenizers/hf_json.h"
#include "tokenizers/vocab.h"

enum { MAX_NORMALIZERS = 16 };
static const double unknown_penalty = 10.0; /* the reference's K_UNK_PENALTY */

typedef enum normalizer_type {
    NORM_PRECOMPILED,
    NORM_STRIP,
    NORM_REPLACE,
    NORM_REPLACE_SPACE_RUNS, /* Replace with the regex " {2,}" */
    NORM_UNICODE,            /* NFC, NFD, NFKC or NFKD: utf8proc options */
} normalizer_type;

typedef struct normalizer {
    normalizer_type type;
    bool strip_left, strip_right;
    const char *pattern, *content; /* in the vocabulary's storage */
    size_t pattern_len, content_len;
    int unicode_options;
} normalizer;

/* SentencePiece's precompiled character map. */
typedef struct charsmap {
    uint32_t *units; /* darts-clone double array */
    int64_t unit_count;
    char *replacements; /* NUL-separated UTF-8 strings, NUL-terminated as a whole */
    size_t replacements_len;
} charsmap;

typedef struct tp_unigram {
    tp_vocab_index vocab; /* first: see vocab.h */
    double *scores;
    int64_t piece_count; /* the model's pieces are ids [0, piece_count); added tokens follow */
    int32_t unk_id;      /* -1: none */
    bool byte_fallback;
    int32_t byte_ids[256]; /* byte_fallback: the ids of <0x00> ... <0xFF> */
    double min_score;
    int64_t longest_piece_bytes;
    normalizer normalizers[MAX_NORMALIZERS];
    int normalizer_count;
    charsmap charsmap;
    bool metaspace, prepend, split;
    char replacement[4];
    size_t replacement_len;
    tp_added_tokens added;
} tp_unigram;

/* ---- byte strings ---- */

typedef struct byte_string {
    char *data;
    size_t len, capacity;
} byte_string;

static void append(byte_string *s, const char *bytes, size_t len)
{
    if (s->len + len + 1 > s->capacity) {
        size_t capacity = s->capacity ? s->capacity : 256;
        while (capacity < s->len + len + 1) capacity *= 2;
        s->data = tp_xrealloc(s->data, capacity);
        s->capacity = capacity;
    }
    memcpy(s->data + s->len, bytes, len);
    s->len += len;
    s->data[s->len] = '\0';
}

static void append_char(byte_string *s, int32_t c)
{
    char utf8[4];
    append(s, utf8, (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)utf8));
}

/* Length of the UTF-8 character at text[0] (every string here is valid UTF-8: the input is
 * sanitised and every piece, replacement and content read from the file is checked). */
static size_t char_bytes(const char *text)
{
    unsigned lead = (unsigned char)text[0];
    return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

static int32_t decode_valid(const char *text, size_t len)
{
    int32_t c;
    tp_utf8_decode((const unsigned char *)text, len, &c);
    return c;
}

/* ---- the precompiled character map ---- */

static int base64_value(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Standard base64 with '=' padding; NULL on a character outside the alphabet. */
static unsigned char *base64_decode(const char *text, size_t *size)
{
    size_t len = strlen(text);
    unsigned char *out = tp_xmalloc(len / 4 * 3 + 3);
    uint32_t bits = 0;
    int pending = 0;
    *size = 0;
    for (size_t i = 0; i < len && text[i] != '='; i++) {
        int value = base64_value((unsigned char)text[i]);
        if (value < 0) {
            free(out);
            return NULL;
        }
        bits = bits << 6 | (uint32_t)value;
        pending += 6;
        if (pending >= 8) {
            pending -= 8;
            out[(*size)++] = (unsigned char)(bits >> pending);
        }
    }
    return out;
}

static int read_charsmap(charsmap *map, const char *base64, const char *path, const char *key)
{
    size_t size;
    unsigned char *blob = base64_decode(base64, &size);
    if (!blob) return tp_hf_fail(path, key, "invalid base64");
    uint32_t trie_bytes;
    if (!tp_charsmap_holds_trie(blob, size, &trie_bytes)) {
        free(blob);
        return tp_hf_fail(path, key, "a %zu-byte charsmap cannot hold its %u-byte trie", size, trie_bytes);
    }
    map->unit_count = trie_bytes / 4;
    map->units = tp_xmalloc((size_t)map->unit_count * sizeof *map->units + 1);
    for (int64_t i = 0; i < map->unit_count; i++) map->units[i] = tp_read_le32(blob + 4 + 4 * i);
    map->replacements_len = size - 4 - trie_bytes;
    map->replacements = tp_xmalloc(map->replacements_len + 1);
    memcpy(map->replacements, blob + 4 + trie_bytes, map->replacements_len);
    map->replacements[map->replacements_len] = '\0';
    free(blob);
    for (size_t pos = 0; pos < map->replacements_len;) {
        int32_t c;
        int step = tp_utf8_decode((const unsigned char *)map->replacements + pos, map->replacements_len - pos, &c);
        if (step < 0) return tp_hf_fail(path, key, "invalid UTF-8 in the replacements at byte %zu", pos);
        pos += (size_t)step;
    }
    return 0;
}

/* The replacement of the shortest key that prefixes key[0..len) (the first result of the
 * trie's common prefix search), NULL if none. */
static const char *charsmap_lookup(const charsmap *map, const char *key, size_t len)
{
    if (map->unit_count == 0) return NULL;
    uint64_t pos = tp_darts_offset(map->units[0]);
    for (size_t i = 0; i < len && key[i]; i++) {
        unsigned char byte = (unsigned char)key[i];
        pos ^= byte;
        if (pos >= (uint64_t)map->unit_count || tp_darts_label(map->units[pos]) != byte) return NULL;
        uint32_t unit = map->units[pos];
        pos ^= tp_darts_offset(unit);
        if (pos >= (uint64_t)map->unit_count) return NULL;
        if (tp_darts_has_leaf(unit)) {
            uint32_t at = tp_darts_value(map->units[pos]);
            return at < map->replacements_len ? map->replacements + at : NULL;
        }
    }
    return NULL;
}

/* The reference's order: a grapheme cluster shorter than 6 bytes is looked up whole; otherwise,
 * or when it has no entry, each of its characters is. */
static void precompiled_grapheme(const charsmap *map, const char *text, size_t len, byte_string *out)
{
    const char *replacement = len < 6 ? charsmap_lookup(map, text, len) : NULL;
    if (replacement) {
        append(out, replacement, strlen(replacement));
        return;
    }
    for (size_t pos = 0; pos < len;) {
        size_t step = char_bytes(text + pos);
        replacement = charsmap_lookup(map, text + pos, step);
        if (replacement)
            append(out, replacement, strlen(replacement));
        else
            append(out, text + pos, step);
        pos += step;
    }
}

static void apply_precompiled(const charsmap *map, const byte_string *in, byte_string *out)
{
    utf8proc_int32_t state = 0;
    size_t start = 0;
    int32_t previous = 0;
    for (size_t pos = 0; pos < in->len;) {
        size_t step = char_bytes(in->data + pos);
        int32_t c = decode_valid(in->data + pos, in->len - pos);
        if (pos > 0 && utf8proc_grapheme_break_stateful(previous, c, &state)) {
            precompiled_grapheme(map, in->data + start, pos - start, out);
            start = pos;
        }
        previous = c;
        pos += step;
    }
    if (in->len > start) precompiled_grapheme(map, in->data + start, in->len - start, out);
}

/* ---- the other normalizers ---- */

static void apply_strip(const normalizer *n, const byte_string *in, byte_string *out)
{
    size_t start = 0, end = in->len;
    while (n->strip_left && start < end && tp_unicode_white_space(decode_valid(in->data + start, end - start)))
        start += char_bytes(in->data + start);
    if (n->strip_right) {
        size_t content_end = start;
        for (size_t pos = start; pos < end; pos += char_bytes(in->data + pos))
            if (!tp_unicode_white_space(decode_valid(in->data + pos, end - pos))) content_end = pos + char_bytes(in->data + pos);
        end = content_end;
    }
    append(out, in->data + start, end - start);
}

static void apply_replace(const normalizer *n, const byte_string *in, byte_string *out)
{
    for (size_t pos = 0; pos < in->len;) {
        if (n->type == NORM_REPLACE_SPACE_RUNS && in->data[pos] == ' ' && pos + 1 < in->len && in->data[pos + 1] == ' ') {
            while (pos < in->len && in->data[pos] == ' ') pos++;
            append(out, n->content, n->content_len);
        } else if (n->type == NORM_REPLACE && n->pattern_len && in->len - pos >= n->pattern_len &&
                   memcmp(in->data + pos, n->pattern, n->pattern_len) == 0) {
            append(out, n->content, n->content_len);
            pos += n->pattern_len;
        } else {
            append(out, in->data + pos, 1);
            pos++;
        }
    }
}

static void apply_unicode(int options, const byte_string *in, byte_string *out)
{
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t len = utf8proc_map((const utf8proc_uint8_t *)in->data, (utf8proc_ssize_t)in->len, &mapped, options);
    if (len >= 0) append(out, (const char *)mapped, (size_t)len);
    else append(out, in->data, in->len); /* only on invalid input, which sanitising rules out */
    free(mapped);
}

static void apply_normalizer(const tp_unigram *model, const normalizer *n, const byte_string *in, byte_string *out)
{
    out->len = 0;
    append(out, "", 0);
    switch (n->type) {
    case NORM_PRECOMPILED:
        apply_precompiled(&model->charsmap, in, out);
        return;
    case NORM_STRIP:
        apply_strip(n, in, out);
        return;
    case NORM_REPLACE:
    case NORM_REPLACE_SPACE_RUNS:
        apply_replace(n, in, out);
        return;
    case NORM_UNICODE:
        apply_unicode(n->unicode_options, in, out);
        return;
    }
}

/* ---- Viterbi ---- */

typedef struct lattice_node {
    double score;
    int64_t start; /* -1: not reached */
    int32_t id;
} lattice_node;

/* Model piece id of text[0..len), -1 if none (added tokens are not pieces). */
static int32_t piece_id(const tp_tokenizer *tok, const char *text, size_t len)
{
    const tp_unigram *model = tok->impl;
    int32_t id = tp_vocab_find(tok, "", 0, text, len);
    return id < model->piece_count ? id : -1;
}

static void relax(lattice_node *node, double score, int64_t start, int32_t id)
{
    if (node->start < 0 || score > node->score) *node = (lattice_node){score, start, id};
}

/* The ids of one result string of the segmentation. */
static int push_result(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    const tp_unigram *model = tok->impl;
    int32_t id = piece_id(tok, text, len);
    if (id >= 0) {
        tp_ids_push(out, id);
        return 0;
    }
    bool all_bytes = model->byte_fallback;
    for (size_t i = 0; all_bytes && i < len; i++) all_bytes = model->byte_ids[(unsigned char)text[i]] >= 0;
    if (all_bytes) {
        for (size_t i = 0; i < len; i++) tp_ids_push(out, model->byte_ids[(unsigned char)text[i]]);
        return 0;
    }
    if (model->unk_id < 0)
        return tp_fail("%s: the Unigram model has no unk_id, and '%.*s' is no piece", tok->source_path, (int)len, text);
    tp_ids_push(out, model->unk_id);
    return 0;
}

static int viterbi(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    const tp_unigram *model = tok->impl;
    lattice_node *nodes = tp_xmalloc((len + 1) * sizeof *nodes);
    for (size_t i = 0; i <= len; i++) nodes[i] = (lattice_node){0, -1, -1};
    nodes[0].start = 0;
    double unknown_score = model->min_score - unknown_penalty;
    for (size_t start = 0; start < len;) {
        size_t first_char = char_bytes(text + start);
        bool single_char_piece = false;
        for (size_t end = start + first_char; end <= len && (int64_t)(end - start) <= model->longest_piece_bytes;
             end += end < len ? char_bytes(text + end) : 1) {
            int32_t id = piece_id(tok, text + start, end - start);
            if (id < 0) continue;
            relax(&nodes[end], nodes[start].score + model->scores[id], (int64_t)start, id);
            single_char_piece |= end - start == first_char;
        }
        if (!single_char_piece)
            relax(&nodes[start + first_char], nodes[start].score + unknown_score, (int64_t)start, model->unk_id);
        start += first_char;
    }
    /* Back from the end: the pieces in reverse, runs of unk_id fused (as the reference, a piece
     * whose id is unk_id fuses too). */
    int64_t result_count = 0;
    size_t *bounds = tp_xmalloc((len + 1) * sizeof *bounds);
    bounds[result_count++] = len;
    for (size_t end = len; end > 0;) {
        size_t start = (size_t)nodes[end].start;
        bool fuse = nodes[end].id == model->unk_id && start > 0 && nodes[start].id == model->unk_id;
        if (!fuse) bounds[result_count++] = start;
        end = start;
    }
    int status = 0;
    for (int64_t r = result_count - 1; r > 0 && status == 0; r--)
        status = push_result(tok, text + bounds[r], bounds[r - 1] - bounds[r], out);
    free(bounds);
    free(nodes);
    return status;
}

/* ---- encoding ---- */

/* Metaspace: the pieces of s (spaces replaced, maybe prefixed), each encoded. */
static int encode_metaspace(const tp_tokenizer *tok, const byte_string *in, byte_string *scratch, tp_ids *out)
{
    const tp_unigram *model = tok->impl;
    scratch->len = 0;
    append(scratch, "", 0);
    /* Prepended unless the text starts with the replacement, or with a space that becomes one. */
    if (model->prepend && in->len && in->data[0] != ' ' &&
        (in->len < model->replacement_len || memcmp(in->data, model->replacement, model->replacement_len) != 0))
        append(scratch, model->replacement, model->replacement_len);
    for (size_t pos = 0; pos < in->len; pos++) {
        if (in->data[pos] == ' ')
            append(scratch, model->replacement, model->replacement_len);
        else
            append(scratch, in->data + pos, 1);
    }
    if (!model->split) return scratch->len ? viterbi(tok, scratch->data, scratch->len, out) : 0;
    size_t start = 0;
    for (size_t pos = 1; pos <= scratch->len; pos++) {
        bool at_replacement = pos < scratch->len && scratch->len - pos >= model->replacement_len &&
                              memcmp(scratch->data + pos, model->replacement, model->replacement_len) == 0;
        if (pos < scratch->len && !at_replacement) continue;
        if (viterbi(tok, scratch->data + start, pos - start, out) != 0) return -1;
        start = pos;
    }
    return 0;
}

static int encode_segment(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    const tp_unigram *model = tok->impl;
    byte_string current = {0}, next = {0};
    append(&current, "", 0);
    const unsigned char *bytes = (const unsigned char *)text;
    for (size_t pos = 0; pos < len;) {
        int32_t c;
        int step = tp_utf8_decode(bytes + pos, len - pos, &c);
        append_char(&current, c);
        pos += step > 0 ? (size_t)step : (size_t)tp_utf8_invalid_length(bytes + pos, len - pos);
    }
    for (int k = 0; k < model->normalizer_count; k++) {
        apply_normalizer(model, &model->normalizers[k], &current, &next);
        byte_string swap = current;
        current = next;
        next = swap;
    }
    int status = 0;
    if (model->metaspace)
        status = encode_metaspace(tok, &current, &next, out);
    else if (current.len)
        status = viterbi(tok, current.data, current.len, out);
    free(current.data);
    free(next.data);
    return status;
}

static int unigram_encode(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    const tp_unigram *model = tok->impl;
    return tp_added_tokens_encode(&model->added, tok, text, len, encode_segment, out);
}

/* ---- reading tokenizer.json ---- */

/* The score as Hugging Face's tokenizers reads it: serde_json without its float_roundtrip
 * feature computes (double)significand * or / 10^exponent, which is 1 ULP off the correctly
 * rounded value for about a fifth of the scores, and ties between segmentations (runs of one
 * letter) are decided by such ULPs.  cJSON keeps only the correctly rounded value; the file's
 * literal is recovered as its shortest round-trip form, which is what serde_json writes. */
static double serde_json_score(double value)
{
    char text[32];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*e", digits - 1, value);
        if (strtod(text, NULL) == value) break;
    }
    uint64_t significand = 0;
    int digit_count = 0;
    const char *p = text + (text[0] == '-');
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') significand = significand * 10 + (uint64_t)(*p - '0'), digit_count++;
    int exponent = atoi(p + 1) - (digit_count - 1);
    double result = (double)significand;
    while (exponent < -308) {
        result /= 1e308;
        exponent += 308;
    }
    char power[16];
    snprintf(power, sizeof power, "1e%d", exponent < 0 ? -exponent : exponent);
    double ten_power = strtod(power, NULL);
    result = exponent >= 0 ? result * ten_power : result / ten_power;
    return value < 0 ? -result : result;
}

static int read_pieces(tp_tokenizer *tok, const cJSON *pieces, const char *path)
{
    tp_unigram *model = tok->impl;
    int64_t id = 0;
    for (const cJSON *item = pieces ? pieces->child : NULL; item; item = item->next, id++) {
        char key[64];
        snprintf(key, sizeof key, "model.vocab[%lld]", (long long)id);
        const cJSON *piece = cJSON_GetArrayItem(item, 0), *score = cJSON_GetArrayItem(item, 1);
        if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 2 || !cJSON_IsString(piece) || !cJSON_IsNumber(score))
            return tp_hf_fail(path, key, "expected [piece, score]");
        size_t len = strlen(piece->valuestring);
        if (len == 0 || tp_utf8_invalid_offset(piece->valuestring, len) >= 0)
            return tp_hf_fail(path, key, "the piece is empty or not valid UTF-8");
        int32_t earlier = tp_vocab_add(tok, (int32_t)id, tp_vocab_store(tok, piece->valuestring, len), len);
        if (earlier >= 0) return tp_hf_fail(path, key, "piece '%s' repeats model.vocab[%d]", piece->valuestring, earlier);
        model->scores[id] = serde_json_score(score->valuedouble);
        if (id == 0 || model->scores[id] < model->min_score) model->min_score = model->scores[id];
        if ((int64_t)len > model->longest_piece_bytes) model->longest_piece_bytes = (int64_t)len;
    }
    return 0;
}

static int read_model(tp_tokenizer *tok, const cJSON *root, const char *path)
{
    tp_unigram *model = tok->impl;
    const cJSON *json = tp_hf_member(root, "model");
    const cJSON *pieces = tp_hf_member(json, "vocab"), *unk = tp_hf_member(json, "unk_id");
    if (!cJSON_IsArray(pieces) || cJSON_GetArraySize(pieces) == 0)
        return tp_hf_fail(path, "model.vocab", "expected a non-empty array of [piece, score]");
    model->piece_count = cJSON_GetArraySize(pieces);
    if (read_pieces(tok, pieces, path) != 0) return -1;
    model->unk_id = -1;
    int64_t unk_id;
    if (unk && !cJSON_IsNull(unk)) {
        if (!tp_vocab_json_integer(unk, 0, model->piece_count, &unk_id))
            return tp_hf_fail(path, "model.unk_id", "expected null or a piece id below %lld", (long long)model->piece_count);
        model->unk_id = (int32_t)unk_id;
    }
    return tp_hf_bool(json, "byte_fallback", path, "model.byte_fallback", false, &model->byte_fallback);
}

static int read_replace(tp_tokenizer *tok, normalizer *n, const cJSON *json, const char *path, const char *key)
{
    char pattern_key[160], content_key[160];
    snprintf(pattern_key, sizeof pattern_key, "%s.pattern", key);
    snprintf(content_key, sizeof content_key, "%s.content", key);
    const cJSON *pattern = tp_hf_member(json, "pattern");
    const char *literal = NULL, *regex = NULL, *content;
    if (tp_hf_string(json, "content", path, content_key, NULL, &content) != 0) return -1;
    if (tp_hf_string(pattern, "String", path, pattern_key, "", &literal) != 0 ||
        tp_hf_string(pattern, "Regex", path, pattern_key, "", &regex) != 0)
        return -1;
    if (tp_utf8_invalid_offset(content, strlen(content)) >= 0 || tp_utf8_invalid_offset(literal, strlen(literal)) >= 0)
        return tp_hf_fail(path, key, "invalid UTF-8 in the pattern or the content");
    n->content = tp_vocab_store(tok, content, strlen(content));
    n->content_len = strlen(content);
    if (*regex) {
        if (strcmp(regex, " {2,}") != 0)
            return tp_hf_fail(path, pattern_key, "unsupported regex '%s' (tp knows only \" {2,}\")", regex);
        n->type = NORM_REPLACE_SPACE_RUNS;
        return 0;
    }
    n->type = NORM_REPLACE;
    n->pattern = tp_vocab_store(tok, literal, strlen(literal));
    n->pattern_len = strlen(literal);
    return 0;
}

static int read_normalizer(tp_tokenizer *tok, const cJSON *json, const char *path, const char *key)
{
    tp_unigram *model = tok->impl;
    if (!json || cJSON_IsNull(json)) return 0;
    const char *type;
    char type_key[160];
    snprintf(type_key, sizeof type_key, "%s.type", key);
    if (tp_hf_string(json, "type", path, type_key, NULL, &type) != 0) return -1;
    if (strcmp(type, "Sequence") == 0) {
        int64_t index = 0;
        for (const cJSON *item = tp_hf_member(json, "normalizers") ? tp_hf_member(json, "normalizers")->child : NULL;
             item; item = item->next, index++) {
            char item_key[160];
            snprintf(item_key, sizeof item_key, "%s.normalizers[%lld]", key, (long long)index);
            if (read_normalizer(tok, item, path, item_key) != 0) return -1;
        }
        return 0;
    }
    if (model->normalizer_count == MAX_NORMALIZERS) return tp_hf_fail(path, key, "more than %d normalizers", MAX_NORMALIZERS);
    normalizer *n = &model->normalizers[model->normalizer_count++];
    static const struct {
        const char *name;
        int options;
    } unicode_forms[] = {
        {"NFC", UTF8PROC_STABLE | UTF8PROC_COMPOSE},
        {"NFD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE},
        {"NFKC", UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT},
        {"NFKD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT},
    };
    for (size_t f = 0; f < sizeof unicode_forms / sizeof unicode_forms[0]; f++)
        if (strcmp(type, unicode_forms[f].name) == 0) {
            *n = (normalizer){.type = NORM_UNICODE, .unicode_options = unicode_forms[f].options};
            return 0;
        }
    if (strcmp(type, "Strip") == 0) {
        n->type = NORM_STRIP;
        return tp_hf_bool(json, "strip_left", path, key, false, &n->strip_left) != 0 ||
                       tp_hf_bool(json, "strip_right", path, key, false, &n->strip_right) != 0
                   ? -1
                   : 0;
    }
    if (strcmp(type, "Replace") == 0) return read_replace(tok, n, json, path, key);
    if (strcmp(type, "Precompiled") == 0) {
        const char *base64;
        char map_key[160];
        snprintf(map_key, sizeof map_key, "%s.precompiled_charsmap", key);
        if (model->charsmap.units) return tp_hf_fail(path, key, "a second Precompiled normalizer");
        n->type = NORM_PRECOMPILED;
        return tp_hf_string(json, "precompiled_charsmap", path, map_key, NULL, &base64) != 0
                   ? -1
                   : read_charsmap(&model->charsmap, base64, path, map_key);
    }
    return tp_hf_fail(path, type_key,
                      "unsupported normalizer '%s' for a Unigram model (tp knows Sequence, Precompiled, Strip, "
                      "Replace, NFC, NFD, NFKC, NFKD)",
                      type);
}

static int read_metaspace(tp_unigram *model, const cJSON *json, const char *path, const char *key)
{
    const char *replacement, *scheme;
    bool add_prefix_space;
    if (tp_hf_string(json, "replacement", path, key, "\xe2\x96\x81", &replacement) != 0 ||
        tp_hf_bool(json, "add_prefix_space", path, key, true, &add_prefix_space) != 0 ||
        tp_hf_string(json, "prepend_scheme", path, key, add_prefix_space ? "always" : "never", &scheme) != 0 ||
        tp_hf_bool(json, "split", path, key, true, &model->split) != 0)
        return -1;
    size_t len = strlen(replacement);
    if (len == 0 || len > 4 || (int64_t)len != (int64_t)char_bytes(replacement) ||
        tp_utf8_invalid_offset(replacement, len) >= 0)
        return tp_hf_fail(path, key, "the replacement '%s' is not one character", replacement);
    if (strcmp(scheme, "always") != 0 && strcmp(scheme, "never") != 0)
        return tp_hf_fail(path, key, "unsupported prepend_scheme '%s' (tp knows always and never)", scheme);
    memcpy(model->replacement, replacement, len);
    model->replacement_len = len;
    model->prepend = strcmp(scheme, "always") == 0;
    model->metaspace = true;
    return 0;
}

static int read_pre_tokenizer(tp_unigram *model, const cJSON *root, const char *path)
{
    const cJSON *json = tp_hf_member(root, "pre_tokenizer");
    if (!json || cJSON_IsNull(json)) return 0;
    const char *type;
    if (tp_hf_string(json, "type", path, "pre_tokenizer.type", NULL, &type) != 0) return -1;
    const cJSON *items = tp_hf_member(json, "pretokenizers");
    if (strcmp(type, "Sequence") == 0 && cJSON_GetArraySize(items) == 1) {
        json = items->child;
        if (tp_hf_string(json, "type", path, "pre_tokenizer.pretokenizers[0].type", NULL, &type) != 0) return -1;
    }
    if (strcmp(type, "Metaspace") == 0) return read_metaspace(model, json, path, "pre_tokenizer");
    return tp_hf_fail(path, "pre_tokenizer.type",
                      "unsupported pre-tokenizer '%s' for a Unigram model (tp knows Metaspace)", type);
}

int tp_unigram_read(tp_tokenizer *tok, const cJSON *root, const char *path)
{
    if (read_model(tok, root, path) != 0) return -1;
    if (read_normalizer(tok, tp_hf_member(root, "normalizer"), path, "normalizer") != 0) return -1;
    return read_pre_tokenizer(tok->impl, root, path);
}

/* ---- creation ---- */

void tp_unigram_destroy(tp_tokenizer *tok)
{
    tp_unigram *model = tok->impl;
    free(model->scores);
    free(model->charsmap.units);
    free(model->charsmap.replacements);
    tp_added_tokens_free(&model->added);
    tp_vocab_tokenizer_destroy(tok);
}

static const tp_tokenizer_ops unigram_ops = {
    .encode = unigram_encode,
    .destroy = tp_unigram_destroy,
};

tp_tokenizer *tp_unigram_new(int64_t vocab_size)
{
    tp_tokenizer *tok = tp_vocab_tokenizer_new(vocab_size, sizeof(tp_unigram));
    tp_unigram *model = tok->impl;
    model->scores = tp_xcalloc((size_t)vocab_size, sizeof *model->scores);
    model->unk_id = -1;
    return tok;
}

tp_added_tokens *tp_unigram_added_tokens(tp_tokenizer *tok) { return &((tp_unigram *)tok->impl)->added; }

int tp_unigram_finish(tp_tokenizer *tok, const char *path)
{
    tp_unigram *model = tok->impl;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        model->byte_ids[b] = piece_id(tok, name, 6);
        if (model->byte_fallback && model->byte_ids[b] < 0)
            return tp_hf_fail(path, "model.byte_fallback", "true, but the pieces lack %s", name);
    }
    tok->unk_id = model->unk_id;
    tok->ops = &unigram_ops;
    return 0;
}
