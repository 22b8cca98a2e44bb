/* Strict JSON configuration reading (see config.h).
 *
 * A strict syntax check runs first (exact line and column for every error,
 * and no NUL bytes, lax numbers, raw control characters or \u0000, which cJSON
 * would take); then cJSON builds the tree; then a walk over the tree refuses
 * invalid UTF-8, duplicate keys and numbers that overflow a double.
 *
 * Every object member reachable from the root through objects is indexed in
 * one hash map keyed by (object, name), so a key path is found in O(length)
 * and each entry carries the marks tp_config_check_unused looks at.  Names
 * asked for but absent get an entry too (item NULL): they are the candidates
 * for "did you mean".  No item is freed before tp_config_free -- a value
 * replaced by tp_config_set moves to a graveyard -- so the map's pointers and
 * every string handed out stay valid for the life of the config. */
#include "config.h"

#include "error.h"
#include "fileio.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    MARK_USED = 1,      /* read or ignored: the key and everything inside it is accepted */
    MARK_CONTAINER = 2, /* a key inside it was asked for: its members are checked one by one */
};

typedef struct key_entry {
    const cJSON *owner; /* the object that holds the key */
    const char *name;   /* NULL: free slot */
    cJSON *item;        /* NULL: asked for but absent */
    uint32_t hash;      /* low bits of key_hash: probes compare it before touching name */
    unsigned marks;
} key_entry;

typedef struct key_map {
    key_entry *slots;
    size_t capacity; /* a power of two, or 0 before the first insert */
    size_t count;
} key_map;

typedef struct pointer_list {
    void **items;
    size_t count, capacity;
} pointer_list;

struct tp_config {
    char *name;
    cJSON *root;
    key_map keys;
    pointer_list graveyard; /* cJSON values replaced by tp_config_set */
    pointer_list owned;     /* malloc'd names of absent keys and string lists handed out */
};

/* A key path under construction, innermost link last; only rendered into text for a message. */
typedef struct key_link {
    const struct key_link *parent;
    const char *name; /* NULL: an array item */
    int64_t index;
} key_link;

typedef struct text_buffer {
    char *data;
    size_t length, capacity;
} text_buffer;

static const size_t NUMBER_TEXT_LIMIT = 63; /* cJSON copies at most this many characters of a number */
static const size_t EXCERPT_BYTES = 20;
static const size_t DESCRIBED_STRING_BYTES = 40;
enum { SUGGEST_MAX_NAME = 64, SUGGEST_MAX_DISTANCE = 2 };

/* ---- small containers ---- */

static void pointer_list_push(pointer_list *list, void *item)
{
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? 2 * list->capacity : 8;
        list->items = tp_xrealloc(list->items, list->capacity * sizeof *list->items);
    }
    list->items[list->count++] = item;
}

static void text_append(text_buffer *buffer, const char *bytes, size_t count)
{
    if (buffer->length + count + 1 > buffer->capacity) {
        buffer->capacity = 2 * (buffer->length + count + 1);
        buffer->data = tp_xrealloc(buffer->data, buffer->capacity);
    }
    memcpy(buffer->data + buffer->length, bytes, count);
    buffer->length += count;
    buffer->data[buffer->length] = '\0';
}

static void text_appendf(text_buffer *buffer, const char *fmt, ...) TP_PRINTF(2, 3);
static void text_appendf(text_buffer *buffer, const char *fmt, ...)
{
    char piece[64];
    va_list args;
    va_start(args, fmt);
    int count = vsnprintf(piece, sizeof piece, fmt, args);
    va_end(args);
    text_append(buffer, piece, (size_t)count < sizeof piece ? (size_t)count : sizeof piece - 1);
}

static uint64_t key_hash(const cJSON *owner, const char *name, size_t length)
{
    uint64_t hash = 1469598103934665603ull ^ ((uint64_t)(uintptr_t)owner * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < length; i++) {
        hash ^= (unsigned char)name[i];
        hash *= 1099511628211ull;
    }
    /* FNV's low bits, which pick the slot, depend only on low input bits: mix (murmur3's finaliser) */
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccdull;
    hash ^= hash >> 33;
    hash *= 0xc4ceb9fe1a85ec53ull;
    return hash ^ (hash >> 33);
}

/* name[0..length) need not be NUL-terminated (a component of a dotted path). */
static key_entry *map_find(const key_map *map, const cJSON *owner, const char *name, size_t length)
{
    if (!map->capacity) return NULL;
    size_t mask = map->capacity - 1;
    uint32_t hash = (uint32_t)key_hash(owner, name, length);
    for (size_t slot = hash & mask;; slot = (slot + 1) & mask) {
        key_entry *entry = &map->slots[slot];
        if (!entry->name) return NULL;
        if (entry->hash == hash && entry->owner == owner && strncmp(entry->name, name, length) == 0 &&
            entry->name[length] == '\0')
            return entry;
    }
}

/* Capacities stay below 2^32 slots, so the stored 32 hash bits are enough to pick one. */
static key_entry *map_place(key_map *map, key_entry entry)
{
    size_t mask = map->capacity - 1;
    size_t slot = entry.hash & mask;
    while (map->slots[slot].name) slot = (slot + 1) & mask;
    map->slots[slot] = entry;
    return &map->slots[slot];
}

/* Adds (owner, name), which must be absent; name must outlive the map. */
static key_entry *map_add(key_map *map, const cJSON *owner, const char *name, cJSON *item)
{
    if (2 * (map->count + 1) > map->capacity) {
        key_entry *old_slots = map->slots;
        size_t old_capacity = map->capacity;
        map->capacity = old_capacity ? 2 * old_capacity : 16;
        map->slots = tp_xcalloc(map->capacity, sizeof *map->slots);
        for (size_t i = 0; i < old_capacity; i++)
            if (old_slots[i].name) map_place(map, old_slots[i]);
        free(old_slots);
    }
    map->count++;
    return map_place(map, (key_entry){owner, name, item, (uint32_t)key_hash(owner, name, strlen(name)), 0});
}

/* ---- text helpers ---- */

static int is_json_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_number_char(unsigned char c) { return is_digit(c) || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E'; }
static int is_continuation_byte(unsigned char c) { return (c & 0xC0) == 0x80; }

static int has_utf8_bom(const char *text, size_t length) { return length >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0; }

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int valid_utf8(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        unsigned char c = *s;
        int extra = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
        if (extra < 0) return 0;
        for (int i = 1; i <= extra; i++)
            if (!is_continuation_byte(s[i])) return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
            (c == 0xF4 && s[1] > 0x8F))
            return 0;
        s += 1 + extra;
    }
    return 1;
}

/* The shortest %g form that reads back as the same double. */
static void format_number(double value, char *out, size_t size)
{
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(out, size, "%.*g", precision, value);
        if (strtod(out, NULL) == value) break;
    }
    /* %g writes 10 as "1e+01": whole numbers read better written out. */
    if (strchr(out, 'e') && value == floor(value) && fabs(value) < 1e15) snprintf(out, size, "%.0f", value);
}

/* "a string (\"12\")", "1.5", "true", "a list", ... for "got ..." in messages. */
static void describe(const cJSON *item, char *out, size_t size)
{
    if (cJSON_IsString(item)) {
        size_t length = strlen(item->valuestring), shown = length;
        if (shown > DESCRIBED_STRING_BYTES) {
            shown = DESCRIBED_STRING_BYTES;
            while (shown > 0 && is_continuation_byte((unsigned char)item->valuestring[shown])) shown--;
        }
        snprintf(out, size, "a string (\"%.*s%s\")", (int)shown, item->valuestring, shown < length ? "..." : "");
    } else if (cJSON_IsNumber(item)) {
        format_number(item->valuedouble, out, size);
    } else {
        snprintf(out, size, "%s",
                 cJSON_IsTrue(item) ? "true" : cJSON_IsFalse(item) ? "false" : cJSON_IsNull(item) ? "null"
                 : cJSON_IsArray(item) ? "a list" : "an object");
    }
}

/* ---- parse errors with line and column ---- */

static int fail_at(const char *name, const char *text, size_t offset, const char *fmt, ...) TP_PRINTF(4, 5);
static int fail_at(const char *name, const char *text, size_t offset, const char *fmt, ...)
{
    int64_t line = 1, column = 1;
    for (size_t i = 0; i < offset; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            line++;
            column = 1;
        } else if (!is_continuation_byte(c)) { /* columns count characters, not bytes */
            column++;
        }
    }
    char problem[256];
    va_list args;
    va_start(args, fmt);
    vsnprintf(problem, sizeof problem, fmt, args);
    va_end(args);
    return tp_fail("%s: line %" PRId64 ", column %" PRId64 ": %s", name, line, column, problem);
}

/* A few characters from offset, up to the end of the line, cut at a character boundary. */
static void excerpt(const char *text, size_t length, size_t offset, char *out, size_t size)
{
    size_t count = 0;
    while (offset + count < length && count + 1 < size && count < EXCERPT_BYTES &&
           (unsigned char)text[offset + count] >= 0x20)
        count++;
    while (count > 0 && offset + count < length && is_continuation_byte((unsigned char)text[offset + count])) count--;
    memcpy(out, text + offset, count);
    out[count] = '\0';
}

/* A strict JSON syntax check run before cJSON sees the text: cJSON takes 007, 1.,
 * raw control characters in strings, any byte below 0x21 as white space, and turns
 * \u0000 or a \u with bad hex digits into a NUL that silently ends the string; and
 * the offset it reports is not always where the error is.  Text that passes here
 * is text cJSON parses. */
typedef struct json_scan {
    const char *name, *text;
    size_t length, at;
} json_scan;

static int scan_fail_near(const json_scan *scan, const char *what)
{
    if (scan->at >= scan->length) return fail_at(scan->name, scan->text, scan->length, "unexpected end of file");
    char near[32];
    excerpt(scan->text, scan->length, scan->at, near, sizeof near);
    if (!near[0])
        return fail_at(scan->name, scan->text, scan->at, "invalid character 0x%02x", (unsigned char)scan->text[scan->at]);
    return fail_at(scan->name, scan->text, scan->at, "%s near '%s'", what, near);
}

static void skip_space(json_scan *scan)
{
    while (scan->at < scan->length && is_json_space((unsigned char)scan->text[scan->at])) scan->at++;
}

static int is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* The value of four hex digits at text, or UINT_MAX.  Stops at the first non-hex
 * character, so the NUL after the text ends it without reading further. */
static unsigned hex4(const char *text)
{
    unsigned value = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = (unsigned char)text[k];
        if (!is_hex(c)) return UINT_MAX;
        value = 16 * value + (unsigned)(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return value;
}

/* \uXXXX at text[*at] -- or a surrogate pair \uD8xx\uDCxx, as cJSON requires -- but not \u0000. */
static int scan_unicode_escape(json_scan *scan, size_t *at)
{
    const char *escape = scan->text + *at;
    unsigned first = hex4(escape + 2), second = UINT_MAX;
    if (first >= 0xD800 && first <= 0xDBFF && escape[6] == '\\' && escape[7] == 'u') second = hex4(escape + 8);
    int pair = second >= 0xDC00 && second <= 0xDFFF;
    if (first == UINT_MAX || (first >= 0xD800 && first <= 0xDFFF && !pair)) {
        scan->at = *at;
        return scan_fail_near(scan, "invalid escape sequence");
    }
    if (first == 0) return fail_at(scan->name, scan->text, *at, "\\u0000 in a string (NUL is not allowed)");
    *at += pair ? 12 : 6;
    return 0;
}

/* The string whose opening quote is at scan->at. */
static int scan_string(json_scan *scan)
{
    const char *text = scan->text;
    size_t start = scan->at;
    size_t i = start + 1;
    while (i < scan->length && text[i] != '"') {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20)
            return fail_at(scan->name, text, i, "control character 0x%02x in a string (write it as an escape, e.g. \\n)", c);
        if (c != '\\') {
            i++;
            continue;
        }
        if (text[i + 1] == 'u') {
            if (scan_unicode_escape(scan, &i) != 0) return -1;
        } else if (text[i + 1] != '\0' && strchr("\"\\/bfnrt", text[i + 1])) {
            i += 2;
        } else {
            scan->at = i;
            return scan_fail_near(scan, "invalid escape sequence");
        }
    }
    if (i >= scan->length) return fail_at(scan->name, text, start, "unterminated string");
    scan->at = i + 1;
    return 0;
}

static size_t skip_digits(const char *text, size_t i)
{
    while (is_digit((unsigned char)text[i])) i++;
    return i;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at scan->at. */
static int scan_number(json_scan *scan)
{
    const char *text = scan->text;
    size_t i = scan->at;
    if (text[i] == '-') i++;
    int valid = is_digit((unsigned char)text[i]);
    i = text[i] == '0' ? i + 1 : skip_digits(text, i);
    if (valid && text[i] == '.') {
        valid = is_digit((unsigned char)text[++i]);
        i = skip_digits(text, i);
    }
    if (valid && (text[i] == 'e' || text[i] == 'E')) {
        if (text[++i] == '+' || text[i] == '-') i++;
        valid = is_digit((unsigned char)text[i]);
        i = skip_digits(text, i);
    }
    if (!valid || is_number_char((unsigned char)text[i])) return scan_fail_near(scan, "invalid JSON number");
    if (i - scan->at > NUMBER_TEXT_LIMIT)
        return fail_at(scan->name, text, scan->at, "number longer than %zu characters", NUMBER_TEXT_LIMIT);
    scan->at = i;
    return 0;
}

/* A key string, then ':'. */
static int scan_key(json_scan *scan)
{
    skip_space(scan);
    if (scan->at >= scan->length || scan->text[scan->at] != '"') return scan_fail_near(scan, "expected a key in quotes");
    if (scan_string(scan) != 0) return -1;
    skip_space(scan);
    if (scan->at >= scan->length || scan->text[scan->at] != ':') return scan_fail_near(scan, "expected ':'");
    scan->at++;
    return 0;
}

/* One scalar, or the opening of a container (pushed on stack).  *opened tells which. */
static int scan_value_start(json_scan *scan, char *stack, int *depth, int *opened)
{
    skip_space(scan);
    const char *rest = scan->text + scan->at;
    *opened = 0;
    if (scan->at >= scan->length) return scan_fail_near(scan, "");
    if (*rest == '"') return scan_string(scan);
    if (*rest == '-' || is_digit((unsigned char)*rest)) return scan_number(scan);
    static const char *const literals[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t length = strlen(literals[i]);
        if (strncmp(rest, literals[i], length) == 0 && !is_number_char((unsigned char)rest[length]) &&
            !(rest[length] >= 'a' && rest[length] <= 'z')) {
            scan->at += length;
            return 0;
        }
    }
    if (*rest != '{' && *rest != '[') return scan_fail_near(scan, "invalid JSON");
    if (*depth == CJSON_NESTING_LIMIT)
        return fail_at(scan->name, scan->text, scan->at, "nested deeper than %d levels", CJSON_NESTING_LIMIT);
    stack[(*depth)++] = *rest;
    scan->at++;
    skip_space(scan);
    if (scan->at < scan->length && scan->text[scan->at] == (*rest == '{' ? '}' : ']')) {
        (*depth)--; /* empty: closed at once */
        scan->at++;
        return 0;
    }
    *opened = 1;
    return *rest == '{' ? scan_key(scan) : 0;
}

static int check_syntax(const char *name, const char *text, size_t length)
{
    json_scan scan = {name, text, length, has_utf8_bom(text, length) ? 3 : 0};
    char stack[CJSON_NESTING_LIMIT];
    int depth = 0;
    for (;;) {
        int opened;
        if (scan_value_start(&scan, stack, &depth, &opened) != 0) return -1;
        if (opened) continue;
        /* after a value: close containers until one continues with ',' */
        for (;;) {
            skip_space(&scan);
            if (depth == 0) return scan.at < length ? scan_fail_near(&scan, "invalid JSON") : 0;
            char open = stack[depth - 1];
            if (scan.at < length && text[scan.at] == (open == '{' ? '}' : ']')) {
                depth--;
                scan.at++;
                continue;
            }
            if (scan.at >= length || text[scan.at] != ',')
                return scan_fail_near(&scan, open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
            scan.at++;
            if (open == '{' && scan_key(&scan) != 0) return -1;
            break;
        }
    }
}

/* Parses text[0..length), which must be followed by a NUL, as strict JSON; NULL + message on failure. */
static cJSON *parse_strict(const char *name, const char *text, size_t length)
{
    const char *nul = memchr(text, '\0', length);
    if (nul) {
        fail_at(name, text, (size_t)(nul - text), "NUL byte in the file");
        return NULL;
    }
    if (check_syntax(name, text, length) != 0) return NULL;
    const char *stop = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, length + 1, &stop, 1); /* + 1: the NUL cJSON checks for */
    if (!root) fail_at(name, text, (size_t)(stop - text), "cJSON could not parse this (out of memory?)");
    return root;
}

/* ---- key paths in messages ---- */

static void render_link(const key_link *link, text_buffer *out)
{
    if (!link) return;
    render_link(link->parent, out);
    if (!link->name) {
        text_appendf(out, "[%" PRId64 "]", link->index);
        return;
    }
    if (out->length) text_append(out, ".", 1);
    if (valid_utf8(link->name)) {
        text_append(out, link->name, strlen(link->name));
        return;
    }
    for (const unsigned char *s = (const unsigned char *)link->name; *s; s++) {
        if (*s < 0x80) text_append(out, (const char *)s, 1);
        else text_appendf(out, "\\x%02x", *s);
    }
}

static int fail_link(const char *file, const key_link *link, const char *problem)
{
    text_buffer path = {0};
    render_link(link, &path);
    tp_fail("%s: key '%s': %s", file, path.data ? path.data : "", problem);
    free(path.data);
    return -1;
}

static int fail_key(const tp_config *cfg, const char *key, const char *fmt, ...) TP_PRINTF(3, 4);
static int fail_key(const tp_config *cfg, const char *key, const char *fmt, ...)
{
    char problem[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(problem, sizeof problem, fmt, args);
    va_end(args);
    return tp_fail("%s: key '%s': %s", cfg->name, key, problem);
}

/* ---- validating and indexing a parsed tree ---- */

static int check_members(const char *file, const cJSON *object, const key_link *link);

static int check_value(const char *file, const cJSON *item, const key_link *link)
{
    if (cJSON_IsString(item) && !valid_utf8(item->valuestring)) return fail_link(file, link, "string is not valid UTF-8");
    if (cJSON_IsNumber(item) && !isfinite(item->valuedouble))
        return fail_link(file, link, "number out of range (overflows a double)");
    if (cJSON_IsObject(item)) return check_members(file, item, link);
    int64_t index = 0;
    for (const cJSON *element = cJSON_IsArray(item) ? item->child : NULL; element; element = element->next) {
        key_link element_link = {link, NULL, index++};
        if (check_value(file, element, &element_link) != 0) return -1;
    }
    return 0;
}

/* Valid key names, no duplicates (JSON allows them; taking either silently would be a trap). */
static int check_members(const char *file, const cJSON *object, const key_link *link)
{
    key_map seen = {0};
    int status = 0;
    for (const cJSON *member = object->child; member && status == 0; member = member->next) {
        key_link member_link = {link, member->string, 0};
        if (!valid_utf8(member->string)) {
            status = fail_link(file, &member_link, "key name is not valid UTF-8");
        } else if (map_find(&seen, NULL, member->string, strlen(member->string))) {
            status = fail_link(file, &member_link, "duplicate key");
        } else {
            map_add(&seen, NULL, member->string, NULL);
            status = check_value(file, member, &member_link);
        }
    }
    free(seen.slots);
    return status;
}

static void index_members(tp_config *cfg, cJSON *object)
{
    for (cJSON *member = object->child; member; member = member->next) {
        key_entry *entry = map_find(&cfg->keys, object, member->string, strlen(member->string));
        if (entry) entry->item = member; /* asked for before tp_config_set created it */
        else map_add(&cfg->keys, object, member->string, member);
        if (cJSON_IsObject(member)) index_members(cfg, member);
    }
}

static int64_t json_depth(const cJSON *item)
{
    int64_t deepest = 0;
    for (const cJSON *child = (cJSON_IsArray(item) || cJSON_IsObject(item)) ? item->child : NULL; child; child = child->next) {
        int64_t depth = json_depth(child);
        if (depth > deepest) deepest = depth;
    }
    return (cJSON_IsArray(item) || cJSON_IsObject(item)) ? deepest + 1 : 0;
}

/* ---- creating and freeing ---- */

static tp_config *config_new(const char *name, cJSON *root)
{
    tp_config *cfg = tp_xcalloc(1, sizeof *cfg);
    cfg->name = tp_xstrdup(name);
    cfg->root = root;
    index_members(cfg, root);
    return cfg;
}

static int is_blank(const char *text, size_t length)
{
    for (size_t i = has_utf8_bom(text, length) ? 3 : 0; i < length; i++)
        if (!is_json_space((unsigned char)text[i])) return 0;
    return 1;
}

static tp_config *config_from_text(const char *name, const char *text, size_t length)
{
    if (is_blank(text, length)) {
        tp_fail("%s: empty file (expected a JSON object)", name);
        return NULL;
    }
    cJSON *root = parse_strict(name, text, length);
    if (!root) return NULL;
    if (!cJSON_IsObject(root)) {
        char got[96];
        describe(root, got, sizeof got);
        tp_fail("%s: expected a JSON object at the top level, got %s", name, got);
        cJSON_Delete(root);
        return NULL;
    }
    if (check_members(name, root, NULL) != 0) {
        cJSON_Delete(root);
        return NULL;
    }
    return config_new(name, root);
}

tp_config *tp_config_load(const char *path)
{
    size_t length = 0;
    char *text = tp_read_file(path, &length);
    if (!text) return NULL;
    tp_config *cfg = config_from_text(path, text, length);
    free(text);
    return cfg;
}

tp_config *tp_config_parse(const char *name, const char *text) { return config_from_text(name, text, strlen(text)); }

tp_config *tp_config_new_empty(const char *name) { return config_new(name, cJSON_CreateObject()); }

void tp_config_free(tp_config *cfg)
{
    if (!cfg) return;
    cJSON_Delete(cfg->root);
    for (size_t i = 0; i < cfg->graveyard.count; i++) cJSON_Delete(cfg->graveyard.items[i]);
    for (size_t i = 0; i < cfg->owned.count; i++) free(cfg->owned.items[i]);
    free(cfg->graveyard.items);
    free(cfg->owned.items);
    free(cfg->keys.slots);
    free(cfg->name);
    free(cfg);
}

const char *tp_config_name(const tp_config *cfg) { return cfg->name; }

/* ---- finding keys ---- */

/* Dotted names with no empty component. */
static int valid_key(const char *key)
{
    if (!key[0] || key[0] == '.') return 0;
    for (const char *c = key; *c; c++)
        if (c[0] == '.' && (c[1] == '.' || c[1] == '\0')) return 0;
    return 1;
}

static char *keep_name(tp_config *cfg, const char *name, size_t length)
{
    char *copy = tp_xmalloc(length + 1);
    memcpy(copy, name, length);
    copy[length] = '\0';
    pointer_list_push(&cfg->owned, copy);
    return copy;
}

static int fail_not_object(const tp_config *cfg, const char *key, size_t prefix_length, const cJSON *item)
{
    char got[96];
    describe(item, got, sizeof got);
    return tp_fail("%s: key '%.*s': expected an object, got %s (needed for '%s')", cfg->name, (int)prefix_length, key,
                   got, key);
}

/* Finds key from the root; *item is NULL when it is absent.  With mark, the key is
 * marked used (present or not: its name is then a "did you mean" candidate) and
 * every object on the way is marked as a container. */
static int walk_key(tp_config *cfg, const char *key, int mark, cJSON **item)
{
    *item = NULL;
    if (!valid_key(key)) return tp_fail("%s: invalid key path '%s'", cfg->name, key);
    const cJSON *object = cfg->root;
    const char *component = key;
    for (;;) {
        size_t length = strcspn(component, ".");
        int last = component[length] == '\0';
        key_entry *entry = map_find(&cfg->keys, object, component, length);
        if (mark && !entry) entry = map_add(&cfg->keys, object, keep_name(cfg, component, length), NULL);
        if (mark) entry->marks |= last ? MARK_USED : MARK_CONTAINER;
        if (!entry || !entry->item) return 0;
        if (last) {
            *item = entry->item;
            return 0;
        }
        if (!cJSON_IsObject(entry->item)) return fail_not_object(cfg, key, (size_t)(component - key) + length, entry->item);
        object = entry->item;
        component += length + 1;
    }
}

int tp_config_has(tp_config *cfg, const char *key)
{
    cJSON *item;
    return walk_key(cfg, key, 0, &item) == 0 && item != NULL;
}

void tp_config_ignore(tp_config *cfg, const char *key)
{
    cJSON *item;
    walk_key(cfg, key, 1, &item); /* a malformed key marks nothing, which is all ignore can do about it */
}

/* ---- getters ---- */

static int fail_type(const tp_config *cfg, const char *key, const char *expected, const cJSON *item)
{
    char got[96];
    describe(item, got, sizeof got);
    return fail_key(cfg, key, "expected %s, got %s", expected, got);
}

/* Exact integers only: a double holds every integer up to 2^53, beyond that a JSON
 * integer may already have been rounded when it was read. */
static int item_to_int(const tp_config *cfg, const char *key, const cJSON *item, int64_t *out)
{
    const double exact_limit = 9007199254740992.0; /* 2^53 */
    if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble)) return fail_type(cfg, key, "an integer", item);
    if (fabs(item->valuedouble) > exact_limit) {
        char got[64];
        format_number(item->valuedouble, got, sizeof got);
        return fail_key(cfg, key, "integer %s too large to be exact (limit: magnitude 2^53)", got);
    }
    *out = (int64_t)item->valuedouble;
    return 0;
}

int tp_config_int(tp_config *cfg, const char *key, int64_t default_value, int64_t min, int64_t max, int64_t *out)
{
    cJSON *item;
    if (walk_key(cfg, key, 1, &item) != 0) return -1;
    int64_t value = default_value;
    if (item) {
        if (item_to_int(cfg, key, item, &value) != 0) return -1;
        if (value < min || value > max)
            return fail_key(cfg, key, "value %" PRId64 " out of range [%" PRId64 ", %" PRId64 "]", value, min, max);
    }
    *out = value;
    return 0;
}

int tp_config_double(tp_config *cfg, const char *key, double default_value, double min, double max, double *out)
{
    cJSON *item;
    if (walk_key(cfg, key, 1, &item) != 0) return -1;
    double value = default_value;
    if (item) {
        if (!cJSON_IsNumber(item)) return fail_type(cfg, key, "a number", item);
        value = item->valuedouble;
        if (!(value >= min && value <= max)) {
            char shown[3][40];
            format_number(value, shown[0], sizeof shown[0]);
            format_number(min, shown[1], sizeof shown[1]);
            format_number(max, shown[2], sizeof shown[2]);
            return fail_key(cfg, key, "value %s out of range [%s, %s]", shown[0], shown[1], shown[2]);
        }
    }
    *out = value;
    return 0;
}

int tp_config_bool(tp_config *cfg, const char *key, int default_value, int *out)
{
    cJSON *item;
    if (walk_key(cfg, key, 1, &item) != 0) return -1;
    if (item && !cJSON_IsBool(item)) return fail_type(cfg, key, "true or false", item);
    *out = item ? cJSON_IsTrue(item) : default_value;
    return 0;
}

int tp_config_string(tp_config *cfg, const char *key, const char *default_value, const char **out)
{
    cJSON *item;
    if (walk_key(cfg, key, 1, &item) != 0) return -1;
    if (item && !cJSON_IsString(item)) return fail_type(cfg, key, "a string", item);
    *out = item ? item->valuestring : default_value;
    return 0;
}

static int choice_index(const char *const *choices, const char *value)
{
    for (int i = 0; choices[i]; i++)
        if (strcmp(choices[i], value) == 0) return i;
    return -1;
}

/* "a, b, c" into buffer (which the caller frees). */
static const char *list_choices(const char *const *choices, text_buffer *buffer)
{
    for (int i = 0; choices[i]; i++) {
        if (i) text_append(buffer, ", ", 2);
        text_append(buffer, choices[i], strlen(choices[i]));
    }
    return buffer->data ? buffer->data : "";
}

int tp_config_enum(tp_config *cfg, const char *key, const char *default_value, const char *const *choices, int *out)
{
    cJSON *item;
    if (walk_key(cfg, key, 1, &item) != 0) return -1;
    const char *value = !item ? default_value : cJSON_IsString(item) ? item->valuestring : NULL;
    int index = value ? choice_index(choices, value) : -1;
    if (index >= 0 || (!item && !default_value)) {
        *out = index;
        return 0;
    }
    text_buffer listed = {0};
    const char *expected = list_choices(choices, &listed);
    if (!item) {
        fail_key(cfg, key, "the default '%s' is not one of: %s", default_value, expected);
    } else if (!value) {
        char got[96];
        describe(item, got, sizeof got);
        fail_key(cfg, key, "expected one of: %s; got %s", expected, got);
    } else {
        fail_key(cfg, key, "unknown value '%s' (expected one of: %s)", value, expected);
    }
    free(listed.data);
    return -1;
}

int tp_config_strings(tp_config *cfg, const char *key, const char *const **out, int *count)
{
    static const char *const no_strings[] = {NULL};
    cJSON *item;
    if (walk_key(cfg, key, 1, &item) != 0) return -1;
    if (!item) {
        *out = no_strings;
        *count = 0;
        return 0;
    }
    if (!cJSON_IsString(item) && !cJSON_IsArray(item)) return fail_type(cfg, key, "a string or a list of strings", item);
    int length = cJSON_IsString(item) ? 1 : cJSON_GetArraySize(item);
    const char **list = tp_xmalloc(((size_t)length + 1) * sizeof *list);
    const cJSON *element = cJSON_IsString(item) ? item : item->child;
    for (int i = 0; i < length; i++, element = element->next) {
        if (!cJSON_IsString(element)) {
            char got[96];
            describe(element, got, sizeof got);
            free(list);
            return tp_fail("%s: key '%s[%d]': expected a string, got %s", cfg->name, key, i, got);
        }
        list[i] = element->valuestring;
    }
    list[length] = NULL;
    pointer_list_push(&cfg->owned, list);
    *out = list;
    *count = length;
    return 0;
}

int tp_config_ints(tp_config *cfg, const char *key, int64_t min, int64_t max, int64_t *out, int capacity, int *count)
{
    cJSON *item;
    *count = 0;
    if (walk_key(cfg, key, 1, &item) != 0) return -1;
    if (!item) return 0;
    if (!cJSON_IsArray(item)) return fail_type(cfg, key, "a list of integers", item);
    int length = cJSON_GetArraySize(item);
    if (length > capacity) return fail_key(cfg, key, "%d values, more than the %d allowed", length, capacity);
    const cJSON *element = item->child;
    for (int i = 0; i < length; i++, element = element->next) {
        char indexed[128];
        snprintf(indexed, sizeof indexed, "%s[%d]", key, i);
        if (item_to_int(cfg, indexed, element, &out[i]) != 0) return -1;
        if (out[i] < min || out[i] > max)
            return fail_key(cfg, indexed, "value %" PRId64 " out of range [%" PRId64 ", %" PRId64 "]", out[i], min, max);
    }
    *count = length;
    return 0;
}

/* ---- command-line overrides ---- */

/* The value of --set key=text: strict JSON if the text is that, else the text as a string. */
static cJSON *value_from_text(const tp_config *cfg, const char *key, const char *text)
{
    cJSON *value = parse_strict(cfg->name, text, strlen(text));
    if (!value) {
        if (!valid_utf8(text)) {
            fail_key(cfg, key, "value is not valid UTF-8");
            return NULL;
        }
        return cJSON_CreateString(text);
    }
    key_link link = {NULL, key, 0};
    if (check_value(cfg->name, value, &link) != 0) {
        cJSON_Delete(value);
        return NULL;
    }
    return value;
}

/* The object that holds key's last component (named in *last_name), creating missing
 * objects on the way; NULL when the path passes through a non-object, which is met
 * before anything is created. */
static cJSON *find_or_create_parent(tp_config *cfg, const char *key, const char **last_name)
{
    cJSON *object = cfg->root;
    const char *component = key;
    for (size_t length = strcspn(component, "."); component[length] == '.'; length = strcspn(component, ".")) {
        key_entry *entry = map_find(&cfg->keys, object, component, length);
        if (entry && entry->item && !cJSON_IsObject(entry->item)) {
            fail_not_object(cfg, key, (size_t)(component - key) + length, entry->item);
            return NULL;
        }
        if (entry && entry->item) {
            object = entry->item;
        } else {
            char *name = keep_name(cfg, component, length);
            cJSON *created = cJSON_CreateObject();
            cJSON_AddItemToObject(object, name, created);
            if (entry) entry->item = created;
            else map_add(&cfg->keys, object, name, created);
            object = created;
        }
        component += length + 1;
    }
    *last_name = component;
    return object;
}

/* Puts value where old was; old goes to the graveyard so that strings handed out stay
 * valid.  (cJSON_InsertItemInArray fails for positions past the first in the packaged
 * cJSON 1.7.15, so the members after old are moved behind value instead.) */
static void replace_member(tp_config *cfg, cJSON *object, cJSON *old, cJSON *value)
{
    cJSON *after = old->next ? old->next : value; /* the first member to move behind value */
    cJSON_DetachItemViaPointer(object, old);
    value->string = old->string; /* the name moves over; the index entry points at it */
    old->string = NULL;
    cJSON_AddItemToArray(object, value); /* keeps value->string: objects are lists of named items */
    while (after != value) {
        cJSON *next = after->next;
        cJSON_DetachItemViaPointer(object, after);
        cJSON_AddItemToArray(object, after);
        after = next;
    }
    pointer_list_push(&cfg->graveyard, old);
}

int tp_config_set(tp_config *cfg, const char *key, const char *value_text)
{
    if (!valid_key(key)) return tp_fail("%s: invalid key path '%s'", cfg->name, key);
    cJSON *value = value_from_text(cfg, key, value_text);
    if (!value) return -1;
    int64_t depth = 1 + json_depth(value); /* the root object, then one level per component */
    for (const char *c = key; *c; c++) depth += *c == '.';
    if (depth > CJSON_NESTING_LIMIT) {
        cJSON_Delete(value);
        return fail_key(cfg, key, "value would nest deeper than %d levels", CJSON_NESTING_LIMIT);
    }
    const char *name;
    cJSON *object = find_or_create_parent(cfg, key, &name);
    if (!object) {
        cJSON_Delete(value);
        return -1;
    }
    key_entry *entry = map_find(&cfg->keys, object, name, strlen(name));
    if (entry && entry->item) {
        replace_member(cfg, object, entry->item, value);
        entry->item = value;
    } else {
        cJSON_AddItemToObject(object, name, value);
        if (entry) entry->item = value;
        else map_add(&cfg->keys, object, value->string, value);
    }
    if (cJSON_IsObject(value)) index_members(cfg, value);
    return 0;
}

/* ---- unknown keys ---- */

/* Optimal-string-alignment distance (swapping two neighbours is one edit).  Long names
 * are not compared: they are not plausible typos of each other and the table is fixed. */
static int edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > SUGGEST_MAX_NAME || m > SUGGEST_MAX_NAME) return INT_MAX;
    int d[SUGGEST_MAX_NAME + 1][SUGGEST_MAX_NAME + 1];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

/* The closest name asked for in the same object, if within SUGGEST_MAX_DISTANCE; NULL if none. */
static const char *suggest(const tp_config *cfg, const cJSON *object, const char *unknown)
{
    const char *best = NULL;
    int best_distance = SUGGEST_MAX_DISTANCE + 1;
    for (size_t i = 0; i < cfg->keys.capacity; i++) {
        const key_entry *entry = &cfg->keys.slots[i];
        if (!entry->name || entry->owner != object || !entry->marks) continue;
        int distance = edit_distance(unknown, entry->name);
        if (distance < best_distance || (distance == best_distance && best && strcmp(entry->name, best) < 0)) {
            best = entry->name;
            best_distance = distance;
        }
    }
    return best;
}

static int fail_unknown(const tp_config *cfg, const cJSON *object, const key_link *link)
{
    const char *suggestion = suggest(cfg, object, link->name);
    if (!suggestion) return fail_link(cfg->name, link, "unknown key");
    key_link suggested = {link->parent, suggestion, 0};
    text_buffer problem = {0}, path = {0};
    render_link(&suggested, &path);
    text_append(&problem, "unknown key (did you mean '", 27);
    text_append(&problem, path.data, path.length);
    text_append(&problem, "'?)", 3);
    fail_link(cfg->name, link, problem.data);
    free(problem.data);
    free(path.data);
    return -1;
}

static int check_unused_members(const tp_config *cfg, const cJSON *object, const key_link *link)
{
    for (const cJSON *member = object->child; member; member = member->next) {
        key_link member_link = {link, member->string, 0};
        const key_entry *entry = map_find(&cfg->keys, object, member->string, strlen(member->string));
        unsigned marks = entry ? entry->marks : 0;
        if (!marks) return fail_unknown(cfg, object, &member_link);
        if (!(marks & MARK_USED) && cJSON_IsObject(member) && check_unused_members(cfg, member, &member_link) != 0)
            return -1;
    }
    return 0;
}

int tp_config_check_unused(tp_config *cfg) { return check_unused_members(cfg, cfg->root, NULL); }

/* ---- writing ---- */

/* The root as JSON text in malloc'd memory (callers free() it, whatever cJSON allocates with). */
static char *print_root(const tp_config *cfg, int pretty)
{
    char *printed = pretty ? cJSON_Print(cfg->root) : cJSON_PrintUnformatted(cfg->root);
    if (!printed) {
        tp_fail("%s: could not format the configuration as JSON", cfg->name);
        return NULL;
    }
    char *text = tp_xstrdup(printed);
    cJSON_free(printed);
    return text;
}

char *tp_config_to_json(const tp_config *cfg) { return print_root(cfg, 0); }

int tp_config_save(const tp_config *cfg, const char *path)
{
    char *text = print_root(cfg, 1);
    if (!text) return -1;
    tp_atomic_file file;
    int status = tp_atomic_open(&file, path);
    if (status == 0) {
        fputs(text, file.fp);
        fputc('\n', file.fp);
        status = tp_atomic_commit(&file); /* reports any write error */
    }
    free(text);
    return status;
}
