/* GPT-2's byte-level BPE, id for id as tiktoken and Hugging Face's GPT2TokenizerFast.
 *
 * 1. Pre-tokenisation: GPT-2's regex
 *      's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *    by hand: each character is a letter (L*), a number (N*), white space (White_Space)
 *    or other, and piece_end() tries the alternatives in the regex's order.
 * 2. Each piece's UTF-8 bytes become the tokens of single bytes (GPT-2's bytes_to_unicode
 *    characters), which merge pairwise, lowest merge rank first and leftmost first among
 *    equal ranks, until no adjacent pair has a merge: a min-heap of candidate pairs over a
 *    linked list of symbols, entries checked when popped (Hugging Face's Word::merge_all).
 * 3. The ids of a piece are cached (a lock-free direct-mapped table: a slot is filled once
 *    and never replaced), so common words skip step 2.
 *
 * Invalid UTF-8 decodes as U+FFFD (one per maximal invalid subpart, as Python's decoder) and
 * is encoded as its bytes EF BF BD: the ids equal the reference's on
 * bytes.decode("utf-8", errors="replace").  Encode keeps its scratch
 * buffers per call; concurrent calls on one tokenizer are safe. */
#include "tokenizers/bpe.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/fileio.h"
#include "tokenizers/vocab.h"

enum { CACHE_SLOTS = 1 << 16, CACHE_MAX_BYTES = 64 };

typedef struct cache_entry {
    uint64_t hash;
    int32_t bytes, id_count;
    int32_t *ids; /* points into the same allocation, after the text */
    char text[];
} cache_entry;

/* (left id, right id) -> rank and merged id, open addressing. */
typedef struct merge_table {
    uint64_t *keys; /* ((uint64_t)left << 32 | right) + 1; 0 = empty slot */
    int32_t *ranks, *results;
    uint64_t mask;
    int64_t count;
} merge_table;

typedef struct tp_bpe {
    tp_vocab_index vocab; /* first: see vocab.h */
    merge_table merges;
    int32_t byte_ids[256]; /* id of each byte's token */
    int32_t byte_chars[256]; /* GPT-2's bytes_to_unicode */
    tp_added_tokens added;
    tp_bpe_settings settings;
    _Atomic(cache_entry *) *cache;
} tp_bpe;

/* ---- merges ---- */

static uint64_t mix(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    return key ^ (key >> 33);
}

static uint64_t merge_key(int32_t left, int32_t right) { return ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1; }

/* Slot of the pair, or of the empty slot where it would go. */
static uint64_t merge_slot(const merge_table *table, uint64_t key)
{
    uint64_t slot = mix(key) & table->mask;
    while (table->keys[slot] && table->keys[slot] != key) slot = (slot + 1) & table->mask;
    return slot;
}

static bool merge_find(const merge_table *table, int32_t left, int32_t right, int32_t *rank, int32_t *result)
{
    uint64_t slot = merge_slot(table, merge_key(left, right));
    if (!table->keys[slot]) return false;
    *rank = table->ranks[slot];
    *result = table->results[slot];
    return true;
}

int tp_bpe_add_merge(tp_tokenizer *tok, const char *where, const char *left, size_t left_len, const char *right,
                     size_t right_len)
{
    tp_bpe *bpe = tok->impl;
    int32_t left_id = tp_vocab_find(tok, "", 0, left, left_len);
    int32_t right_id = tp_vocab_find(tok, "", 0, right, right_len);
    int32_t merged_id = tp_vocab_find(tok, left, left_len, right, right_len);
    if (left_id < 0 || right_id < 0)
        return tp_fail("%s: merge '%.*s %.*s': token '%.*s' is not in the vocabulary", where, (int)left_len, left,
                       (int)right_len, right, (int)(left_id < 0 ? left_len : right_len), left_id < 0 ? left : right);
    if (merged_id < 0)
        return tp_fail("%s: merge '%.*s %.*s': the merged token '%.*s%.*s' is not in the vocabulary", where,
                       (int)left_len, left, (int)right_len, right, (int)left_len, left, (int)right_len, right);
    merge_table *table = &bpe->merges;
    if ((uint64_t)table->count * 2 >= table->mask) return tp_fail("%s: more merges than announced", where);
    uint64_t key = merge_key(left_id, right_id);
    uint64_t slot = merge_slot(table, key);
    /* A repeated merge takes its last rank, as in GPT-2's encoder.py and Hugging Face. */
    table->keys[slot] = key;
    table->ranks[slot] = (int32_t)table->count++;
    table->results[slot] = merged_id;
    return 0;
}

/* ---- pre-tokenisation ---- */

enum { CLASS_LETTER, CLASS_NUMBER, CLASS_SPACE, CLASS_OTHER };

static uint8_t char_class(int32_t c)
{
    if (tp_unicode_white_space(c)) return CLASS_SPACE;
    if (c < 0x80) {
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return CLASS_LETTER;
        return c >= '0' && c <= '9' ? CLASS_NUMBER : CLASS_OTHER;
    }
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return CLASS_LETTER;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return CLASS_NUMBER;
    default:
        return CLASS_OTHER;
    }
}

/* End (in characters) of the regex match that starts at character i of chars[0..n). */
static int64_t piece_end(const int32_t *chars, const uint8_t *classes, int64_t n, int64_t i)
{
    if (chars[i] == '\'' && i + 1 < n) { /* 's 't 'm 'd 're 've 'll (case-sensitive) */
        int32_t a = chars[i + 1], b = i + 2 < n ? chars[i + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    /* " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional U+0020, then a run of one class. */
    int64_t start = i + (chars[i] == ' ' && i + 1 < n && classes[i + 1] != CLASS_SPACE);
    if (classes[start] != CLASS_SPACE) {
        int64_t end = start + 1;
        while (end < n && classes[end] == classes[start]) end++;
        return end;
    }
    /* "\s+(?!\S)": white space up to the end, or all but the last before a non-space;
     * "\s+": a single white space character before a non-space. */
    int64_t end = i + 1;
    while (end < n && classes[end] == CLASS_SPACE) end++;
    return end == n || end - i == 1 ? end : end - 1;
}

/* ---- merging ---- */

typedef struct symbol {
    int32_t id, prev, next; /* prev/next: -1 at the ends */
    bool merged_away;
} symbol;

typedef struct candidate {
    int32_t rank, pos, result;
} candidate;

/* One encode call's buffers. */
typedef struct scratch {
    int32_t *chars;
    uint8_t *classes;
    int64_t *offsets; /* byte offset of each character in text, and the end */
    char *text;       /* the segment as valid UTF-8 (U+FFFD for invalid bytes) */
    int64_t char_capacity, text_capacity;
    symbol *symbols;
    candidate *heap;
    int64_t symbol_capacity, heap_count, heap_capacity;
    char *level_text; /* ignore_merges: the piece as byte-level characters */
    int64_t level_capacity;
} scratch;

static void *grow(void *buffer, int64_t *capacity, int64_t needed, size_t item_size)
{
    if (needed <= *capacity) return buffer;
    int64_t new_capacity = *capacity ? *capacity : 64;
    while (new_capacity < needed) new_capacity *= 2;
    *capacity = new_capacity;
    return tp_xrealloc(buffer, (size_t)new_capacity * item_size);
}

static bool candidate_before(const candidate *a, const candidate *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(scratch *s, candidate item)
{
    s->heap = grow(s->heap, &s->heap_capacity, s->heap_count + 1, sizeof *s->heap);
    int64_t at = s->heap_count++;
    while (at > 0 && candidate_before(&item, &s->heap[(at - 1) / 2])) {
        s->heap[at] = s->heap[(at - 1) / 2];
        at = (at - 1) / 2;
    }
    s->heap[at] = item;
}

static candidate heap_pop(scratch *s)
{
    candidate top = s->heap[0], last = s->heap[--s->heap_count];
    int64_t at = 0;
    for (;;) {
        int64_t child = 2 * at + 1;
        if (child >= s->heap_count) break;
        if (child + 1 < s->heap_count && candidate_before(&s->heap[child + 1], &s->heap[child])) child++;
        if (!candidate_before(&s->heap[child], &last)) break;
        s->heap[at] = s->heap[child];
        at = child;
    }
    if (s->heap_count) s->heap[at] = last;
    return top;
}

static void push_pair(const tp_bpe *bpe, scratch *s, int32_t pos)
{
    int32_t next = s->symbols[pos].next, rank, result;
    if (next >= 0 && merge_find(&bpe->merges, s->symbols[pos].id, s->symbols[next].id, &rank, &result))
        heap_push(s, (candidate){rank, pos, result});
}

/* Merges the byte tokens of bytes[0..n) and appends the resulting ids. */
static void merge_bytes(const tp_bpe *bpe, scratch *s, const unsigned char *bytes, int64_t n, tp_ids *out)
{
    s->symbols = grow(s->symbols, &s->symbol_capacity, n, sizeof *s->symbols);
    for (int64_t i = 0; i < n; i++)
        s->symbols[i] = (symbol){bpe->byte_ids[bytes[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, false};
    s->heap_count = 0;
    for (int32_t i = 0; i + 1 < n; i++) push_pair(bpe, s, i);
    while (s->heap_count) {
        candidate top = heap_pop(s);
        symbol *left = &s->symbols[top.pos];
        if (left->merged_away || left->next < 0) continue;
        symbol *right = &s->symbols[left->next];
        int32_t rank, result;
        /* Stale entry: one side was merged since it was pushed. */
        if (!merge_find(&bpe->merges, left->id, right->id, &rank, &result) || result != top.result) continue;
        left->id = result;
        right->merged_away = true;
        left->next = right->next;
        if (right->next >= 0) s->symbols[right->next].prev = top.pos;
        if (left->prev >= 0) push_pair(bpe, s, left->prev);
        push_pair(bpe, s, top.pos);
    }
    for (int32_t i = 0; i >= 0; i = s->symbols[i].next) tp_ids_push(out, s->symbols[i].id);
}

/* ---- cache ---- */

static uint64_t hash_text(const char *text, int64_t len)
{
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (int64_t i = 0; i < len; i++) hash = (hash ^ (unsigned char)text[i]) * 0x100000001b3ULL;
    return hash;
}

static bool cache_lookup(const tp_bpe *bpe, uint64_t hash, const char *text, int64_t len, tp_ids *out)
{
    cache_entry *entry = atomic_load_explicit(&bpe->cache[hash & (CACHE_SLOTS - 1)], memory_order_acquire);
    if (!entry || entry->hash != hash || entry->bytes != len || memcmp(entry->text, text, (size_t)len) != 0)
        return false;
    for (int32_t i = 0; i < entry->id_count; i++) tp_ids_push(out, entry->ids[i]);
    return true;
}

static void cache_store(tp_bpe *bpe, uint64_t hash, const char *text, int64_t len, const int32_t *ids,
                        int64_t id_count)
{
    _Atomic(cache_entry *) *slot = &bpe->cache[hash & (CACHE_SLOTS - 1)];
    if (atomic_load_explicit(slot, memory_order_relaxed)) return;
    size_t ids_at = (sizeof(cache_entry) + (size_t)len + sizeof(int32_t) - 1) / sizeof(int32_t) * sizeof(int32_t);
    cache_entry *entry = tp_xmalloc(ids_at + (size_t)id_count * sizeof(int32_t));
    entry->hash = hash;
    entry->bytes = (int32_t)len;
    entry->id_count = (int32_t)id_count;
    entry->ids = (int32_t *)((char *)entry + ids_at);
    memcpy(entry->text, text, (size_t)len);
    memcpy(entry->ids, ids, (size_t)id_count * sizeof(int32_t));
    cache_entry *empty = NULL;
    if (!atomic_compare_exchange_strong_explicit(slot, &empty, entry, memory_order_release, memory_order_relaxed))
        free(entry); /* another thread filled the slot first */
}

/* ---- encoding ---- */

/* The piece as byte-level characters, looked up whole (ignore_merges); -1 if absent. */
static int32_t whole_piece_id(const tp_tokenizer *tok, scratch *s, const unsigned char *bytes, int64_t n)
{
    const tp_bpe *bpe = tok->impl;
    s->level_text = grow(s->level_text, &s->level_capacity, 2 * n, 1);
    int64_t len = 0;
    for (int64_t i = 0; i < n; i++)
        len += utf8proc_encode_char(bpe->byte_chars[bytes[i]], (utf8proc_uint8_t *)s->level_text + len);
    return tp_vocab_find(tok, "", 0, s->level_text, (size_t)len);
}

static void encode_piece(const tp_tokenizer *tok, scratch *s, const char *piece, int64_t len, tp_ids *out)
{
    tp_bpe *bpe = tok->impl;
    if (bpe->settings.ignore_merges) {
        int32_t id = whole_piece_id(tok, s, (const unsigned char *)piece, len);
        if (id >= 0) {
            tp_ids_push(out, id);
            return;
        }
    }
    bool cacheable = len <= CACHE_MAX_BYTES;
    uint64_t hash = cacheable ? hash_text(piece, len) : 0;
    if (cacheable && cache_lookup(bpe, hash, piece, len, out)) return;
    int64_t first = out->count;
    merge_bytes(bpe, s, (const unsigned char *)piece, len, out);
    if (cacheable) cache_store(bpe, hash, piece, len, out->ids + first, out->count - first);
}

/* s->chars/classes/offsets/text <- text[0..len) decoded (with the prefix space if asked). */
static int64_t decode_segment(const tp_bpe *bpe, scratch *s, const char *text, size_t len)
{
    bool prefix = bpe->settings.add_prefix_space && (len == 0 || text[0] != ' ');
    int64_t chars = (int64_t)len + prefix;
    s->chars = grow(s->chars, &s->char_capacity, chars, sizeof *s->chars);
    s->classes = tp_xrealloc(s->classes, (size_t)s->char_capacity);
    s->offsets = tp_xrealloc(s->offsets, (size_t)(s->char_capacity + 1) * sizeof *s->offsets);
    s->text = grow(s->text, &s->text_capacity, 3 * chars, 1);
    int64_t n = 0, at = 0;
    if (prefix) {
        s->chars[n] = ' ', s->classes[n] = CLASS_SPACE, s->offsets[n++] = at;
        s->text[at++] = ' ';
    }
    const unsigned char *bytes = (const unsigned char *)text;
    for (size_t pos = 0; pos < len;) {
        int32_t c;
        int step = tp_utf8_decode(bytes + pos, len - pos, &c);
        s->chars[n] = c;
        s->classes[n] = char_class(c);
        s->offsets[n++] = at;
        at += utf8proc_encode_char(c, (utf8proc_uint8_t *)s->text + at);
        pos += step > 0 ? (size_t)step : (size_t)tp_utf8_invalid_length(bytes + pos, len - pos);
    }
    s->offsets[n] = at;
    return n;
}

static int encode_segment(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    scratch s = {0};
    int64_t n = decode_segment(tok->impl, &s, text, len);
    for (int64_t i = 0; i < n;) {
        int64_t end = piece_end(s.chars, s.classes, n, i);
        encode_piece(tok, &s, s.text + s.offsets[i], s.offsets[end] - s.offsets[i], out);
        i = end;
    }
    free(s.chars);
    free(s.classes);
    free(s.offsets);
    free(s.text);
    free(s.symbols);
    free(s.heap);
    free(s.level_text);
    return 0;
}

static int bpe_encode(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    const tp_bpe *bpe = tok->impl;
    if (bpe->added.count) return tp_added_tokens_encode(&bpe->added, tok, text, len, encode_segment, out);
    return len ? encode_segment(tok, text, len, out) : 0;
}

/* ---- creation ---- */

void tp_bpe_destroy(tp_tokenizer *tok)
{
    tp_bpe *bpe = tok->impl;
    for (int64_t slot = 0; bpe->cache && slot < CACHE_SLOTS; slot++) free(atomic_load(&bpe->cache[slot]));
    free(bpe->cache);
    free(bpe->merges.keys);
    free(bpe->merges.ranks);
    free(bpe->merges.results);
    tp_added_tokens_free(&bpe->added);
    tp_vocab_tokenizer_destroy(tok);
}

static const tp_tokenizer_ops bpe_ops = {
    .encode = bpe_encode,
    .destroy = tp_bpe_destroy,
};

tp_tokenizer *tp_bpe_new(int64_t vocab_size, int64_t merge_count)
{
    tp_tokenizer *tok = tp_vocab_tokenizer_new(vocab_size, sizeof(tp_bpe));
    tp_bpe *bpe = tok->impl;
    uint64_t slots = 16;
    while (slots < 2 * (uint64_t)merge_count + 2) slots *= 2;
    bpe->merges.mask = slots - 1;
    bpe->merges.keys = tp_xcalloc(slots, sizeof *bpe->merges.keys);
    bpe->merges.ranks = tp_xmalloc(slots * sizeof *bpe->merges.ranks);
    bpe->merges.results = tp_xmalloc(slots * sizeof *bpe->merges.results);
    return tok;
}

tp_added_tokens *tp_bpe_added_tokens(tp_tokenizer *tok) { return &((tp_bpe *)tok->impl)->added; }

/* GPT-2's bytes_to_unicode(): printable bytes stand for themselves, the others for U+0100 on. */
static void fill_byte_chars(int32_t *byte_chars)
{
    int32_t next = 256;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_chars[b] = printable ? b : next++;
    }
}

int tp_bpe_finish(tp_tokenizer *tok, const char *path, tp_bpe_settings settings)
{
    tp_bpe *bpe = tok->impl;
    fill_byte_chars(bpe->byte_chars);
    for (int b = 0; b < 256; b++) {
        char utf8[4];
        int len = (int)utf8proc_encode_char(bpe->byte_chars[b], (utf8proc_uint8_t *)utf8);
        bpe->byte_ids[b] = tp_vocab_find(tok, "", 0, utf8, (size_t)len);
        if (bpe->byte_ids[b] < 0)
            return tp_fail("%s: the vocabulary lacks the byte-level token '%.*s' of byte 0x%02X", path, len, utf8, b);
    }
    bpe->settings = settings;
    bpe->cache = tp_xcalloc(CACHE_SLOTS, sizeof *bpe->cache);
    tok->ops = &bpe_ops;
    return 0;
}

/* ---- the bpe kind: vocab.json + merges.txt ---- */

static int64_t count_merge_lines(const char *text, size_t size)
{
    int64_t lines = 0;
    for (const char *p = text; p < text + size; p++) lines += *p == '\n';
    return lines + 1;
}

/* merges.txt: "left right" per line in rank order, after an optional "#version" first line. */
static int read_merges(tp_tokenizer *tok, const char *path, char *text, size_t size)
{
    int64_t line_number = 0;
    for (char *line = text; line < text + size;) {
        char *newline = memchr(line, '\n', (size_t)(text + size - line));
        char *end = newline ? newline : text + size;
        char *next = newline ? newline + 1 : text + size;
        line_number++;
        if (end > line && end[-1] == '\r') end--;
        if (line_number == 1 && strncmp(line, "#version", 8) == 0) {
            line = next;
            continue;
        }
        int64_t fields = 0;
        char *space = NULL;
        for (char *p = line; p < end; p++)
            if (*p == ' ') fields++, space = space ? space : p;
        if (fields != 1 || space == line || space + 1 == end) {
            int64_t found = end == line ? 0 : fields + 1;
            return tp_fail("%s: line %lld: expected two tokens separated by one space, found %lld field%s", path,
                           (long long)line_number, (long long)found, found == 1 ? "" : "s");
        }
        char where[64];
        snprintf(where, sizeof where, "line %lld", (long long)line_number);
        if (tp_bpe_add_merge(tok, where, line, (size_t)(space - line), space + 1, (size_t)(end - space - 1)) != 0)
            return tp_fail_context("%s", path);
        line = next;
    }
    return 0;
}

static tp_tokenizer *load_vocab_json(const char *path, int64_t merge_count)
{
    cJSON *root = tp_vocab_read_json(path);
    if (!root) return NULL;
    int64_t max_id;
    tp_tokenizer *tok = NULL;
    if (tp_vocab_json_max_id(root, path, "(top level)", &max_id) == 0) {
        if (max_id < 0) {
            tp_fail("%s: empty vocabulary", path);
        } else {
            tok = tp_bpe_new(max_id + 1, merge_count);
            if (tp_vocab_add_json_object(tok, root, path, "(top level)") != 0 || tp_vocab_check_complete(tok, path) != 0) {
                tp_bpe_destroy(tok);
                tok = NULL;
            }
        }
    }
    cJSON_Delete(root);
    return tok;
}

tp_tokenizer *tp_bpe_create(const tp_tokenizer_options *options)
{
    if (!options->vocab_path || !options->merges_path) {
        tp_fail("tokenizer '%s': needs vocab_path (vocab.json) and merges_path (merges.txt)", options->kind);
        return NULL;
    }
    size_t merges_size;
    char *merges = tp_read_file(options->merges_path, &merges_size);
    if (!merges) return NULL;
    tp_tokenizer *tok = load_vocab_json(options->vocab_path, count_merge_lines(merges, merges_size));
    if (tok && read_merges(tok, options->merges_path, merges, merges_size) != 0) {
        tp_bpe_destroy(tok);
        tok = NULL;
    }
    free(merges);
    if (!tok) return NULL;
    tok->source_path = tp_vocab_store(tok, options->vocab_path, strlen(options->vocab_path));
    tok->bos_id = tok->eos_id = tp_tokenizer_token_id(tok, "<|endoftext|>");
    if (options->special_tokens_in_text && tok->eos_id >= 0)
        tp_added_tokens_add(tp_bpe_added_tokens(tok), tok->tokens[tok->eos_id], strlen(tok->tokens[tok->eos_id]),
                            tok->eos_id, false, false);
    if (tp_bpe_finish(tok, options->vocab_path, (tp_bpe_settings){0}) != 0) {
        tp_bpe_destroy(tok);
        return NULL;
    }
    return tok;
}
