/* Reader of TencentPretrain's fine-tuning TSV files (see tsv.h).  The whole file is read into
 * one buffer that the examples then point into: tabs and line ends become NULs in place. */
#include "core/tsv.h"

#include "core/error.h"
#include "core/fileio.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CLASS_ID_LIMIT bounds ids with the caller's set; COLLECTED_CLASSES_MAX without one, since the
 * collected set is 0..max id and one stray "412174400" must not allocate that many names. */
enum { QUOTE_MAX = 64, LISTED_NAMES_MAX = 8, CLASS_ID_LIMIT = INT32_MAX, COLLECTED_CLASSES_MAX = 65536 };

/* ---- label names -> ids: open addressing over the task's label_names ---------------------- */

typedef struct name_table {
    char ***names;   /* the task's label_names array (it grows as names are collected) */
    int64_t *count;  /* the task's num_labels */
    int64_t names_capacity;
    int64_t *slots;  /* id + 1; 0 = empty */
    int64_t slot_count;
} name_table;

static uint64_t hash_bytes(const char *text, int64_t length)
{
    uint64_t hash = 1469598103934665603ull; /* FNV-1a */
    for (int64_t i = 0; i < length; i++) hash = (hash ^ (unsigned char)text[i]) * 1099511628211ull;
    return hash;
}

/* The slot that holds the name, or the empty slot where it would go. */
static int64_t table_slot(const name_table *table, const char *text, int64_t length)
{
    int64_t slot = (int64_t)(hash_bytes(text, length) & (uint64_t)(table->slot_count - 1));
    for (;;) {
        int64_t id = table->slots[slot] - 1;
        if (id < 0) return slot;
        const char *name = (*table->names)[id];
        if ((int64_t)strlen(name) == length && memcmp(name, text, (size_t)length) == 0) return slot;
        slot = (slot + 1) & (table->slot_count - 1);
    }
}

static void table_rehash(name_table *table)
{
    free(table->slots);
    table->slots = tp_xcalloc((size_t)table->slot_count, sizeof *table->slots);
    for (int64_t id = 0; id < *table->count; id++) {
        const char *name = (*table->names)[id];
        table->slots[table_slot(table, name, (int64_t)strlen(name))] = id + 1;
    }
}

/* Appends a name (not yet in the table) as the next id. */
static int64_t table_add(name_table *table, const char *text, int64_t length)
{
    if (*table->count == table->names_capacity) {
        table->names_capacity = table->names_capacity ? 2 * table->names_capacity : 16;
        *table->names = tp_xrealloc(*table->names, (size_t)table->names_capacity * sizeof(char *));
    }
    char *name = tp_xmalloc((size_t)length + 1);
    memcpy(name, text, (size_t)length);
    name[length] = '\0';
    int64_t id = (*table->count)++;
    (*table->names)[id] = name;
    if (2 * *table->count > table->slot_count) {
        table->slot_count *= 2;
        table_rehash(table);
    } else {
        table->slots[table_slot(table, text, length)] = id + 1;
    }
    return id;
}

static int64_t table_find(const name_table *table, const char *text, int64_t length)
{
    return table->slots[table_slot(table, text, length)] - 1;
}

/* ---- the parse ------------------------------------------------------------------------------ */

typedef struct parser {
    const char *path;
    const tp_tsv_options *options;
    tp_tsv_task *task;
    int64_t line;
    /* header */
    int columns;
    int label_column, text_a_column, text_b_column;
    char *column_list; /* "label, text_a" for messages */
    char **fields;     /* one row's fields */
    /* labels */
    name_table names;
    int names_fixed;   /* the caller gave the names: an unknown one is an error */
    int64_t max_class_id;
    /* growing arrays */
    int64_t examples_capacity, label_ids_count, label_ids_capacity, tokens_count, tokens_capacity;
} parser;

/* Longest prefix of at most QUOTE_MAX bytes that does not cut a UTF-8 sequence. */
static int quote_length(const char *text, int64_t length)
{
    if (length <= QUOTE_MAX) return (int)length;
    int64_t cut = QUOTE_MAX;
    while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80) cut--;
    return (int)cut;
}

static int line_fail(const parser *p, const char *fmt, ...) TP_PRINTF(2, 3);
static int line_fail(const parser *p, const char *fmt, ...)
{
    char message[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    if (p->line == 1) return tp_fail("%s: header: %s", p->path, message);
    return tp_fail("%s: line %" PRId64 ": %s", p->path, p->line, message);
}

/* Offset of the first byte that is not part of valid UTF-8 (NUL counts as invalid), or -1. */
static int64_t invalid_utf8_at(const unsigned char *text, int64_t length)
{
    int64_t i = 0;
    while (i < length) {
        unsigned c = text[i];
        int extra;
        unsigned min;
        if (c == 0) return i;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { extra = 1; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { extra = 2; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { extra = 3; min = 0x10000; }
        else return i;
        if (i + extra >= length) return i; /* truncated sequence */
        unsigned code = c & (0x3F >> extra);
        for (int k = 1; k <= extra; k++) {
            if ((text[i + k] & 0xC0) != 0x80) return i;
            code = (code << 6) | (text[i + k] & 0x3F);
        }
        if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return i;
        i += extra + 1;
    }
    return -1;
}

static int check_utf8(const parser *p, const char *text, int64_t length)
{
    int64_t bad = invalid_utf8_at((const unsigned char *)text, length);
    if (bad < 0) return 0;
    if (text[bad] == '\0') return line_fail(p, "NUL byte at byte %" PRId64, bad + 1);
    return line_fail(p, "invalid UTF-8 at byte %" PRId64, bad + 1);
}

/* Splits a line at tabs in place; returns the number of fields (the first max are stored). */
static int split_tabs(char *line, char **fields, int max)
{
    int count = 0;
    for (char *field = line;; count++) {
        char *tab = strchr(field, '\t');
        if (count < max) fields[count] = field;
        if (!tab) return count + 1;
        *tab = '\0';
        field = tab + 1;
    }
}

static int is_extra_column(const parser *p, const char *name)
{
    for (const char *const *extra = p->options->extra_columns; extra && *extra; extra++)
        if (strcmp(*extra, name) == 0) return 1;
    return 0;
}

static int unknown_column(const parser *p, const char *name)
{
    char expected[512] = "label, text_a, text_b";
    for (const char *const *extra = p->options->extra_columns; extra && *extra; extra++) {
        size_t used = strlen(expected);
        snprintf(expected + used, sizeof expected - used, ", %s", *extra);
    }
    return line_fail(p, "unknown column '%.*s' (expected %s)", quote_length(name, (int64_t)strlen(name)), name,
                     expected);
}

static int assign_column(parser *p, const char *name, int index)
{
    int *column = strcmp(name, "label") == 0    ? &p->label_column
                  : strcmp(name, "text_a") == 0 ? &p->text_a_column
                  : strcmp(name, "text_b") == 0 ? &p->text_b_column
                                                : NULL;
    if (!column) return is_extra_column(p, name) ? 0 : unknown_column(p, name);
    if (*column >= 0) return line_fail(p, "column '%s' appears twice", name);
    *column = index;
    return 0;
}

static int parse_header(parser *p, char *line)
{
    int count = 1;
    for (const char *tab = strchr(line, '\t'); tab; tab = strchr(tab + 1, '\t')) count++;
    char **names = tp_xmalloc((size_t)count * sizeof *names);
    split_tabs(line, names, count);
    p->columns = count;
    p->label_column = p->text_a_column = p->text_b_column = -1;
    size_t list_bytes = 1;
    for (int i = 0; i < count; i++) list_bytes += strlen(names[i]) + 2;
    p->column_list = tp_xcalloc(list_bytes, 1);
    int rc = 0;
    for (int i = 0; i < count && rc == 0; i++) {
        if (names[i][0] == '\0') rc = line_fail(p, "empty column name (column %d)", i + 1);
        else rc = assign_column(p, names[i], i);
        if (i) strcat(p->column_list, ", ");
        strcat(p->column_list, names[i]);
    }
    free(names);
    if (rc) return -1;
    if (p->text_a_column < 0) return line_fail(p, "no text_a column");
    if (p->label_column < 0 && !p->options->allow_missing_label) return line_fail(p, "no label column");
    p->fields = tp_xmalloc((size_t)count * sizeof *p->fields);
    p->task->has_labels = p->label_column >= 0;
    p->task->has_text_b = p->text_b_column >= 0;
    return 0;
}

/* ---- labels ------------------------------------------------------------------------------- */

static void push_label_id(parser *p, int64_t id)
{
    if (p->label_ids_count == p->label_ids_capacity) {
        p->label_ids_capacity = p->label_ids_capacity ? 2 * p->label_ids_capacity : 1024;
        p->task->label_ids = tp_xrealloc(p->task->label_ids, (size_t)p->label_ids_capacity * sizeof(int32_t));
    }
    p->task->label_ids[p->label_ids_count++] = (int32_t)id;
}

/* "positive, negative" or "O, B-PER, ..., I-LOC" (the first few names) for messages. */
static void list_names(const parser *p, char *out, size_t size)
{
    out[0] = '\0';
    for (int64_t i = 0; i < p->task->num_labels && i < LISTED_NAMES_MAX; i++) {
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%.*s", i ? ", " : "", QUOTE_MAX, p->task->label_names[i]);
    }
    if (p->task->num_labels > LISTED_NAMES_MAX) {
        size_t used = strlen(out);
        snprintf(out + used, size - used, ", ... (%" PRId64 " in all)", p->task->num_labels);
    }
}

/* The id of a label name (or tag); collects new names unless the caller fixed the set. */
static int64_t name_id(parser *p, const char *text, int64_t length, const char *what, const char *set)
{
    int64_t id = table_find(&p->names, text, length);
    if (id >= 0) return id;
    if (!p->names_fixed) return table_add(&p->names, text, length);
    char names[1024];
    list_names(p, names, sizeof names);
    line_fail(p, "%s '%.*s' is not in the %s set of the model (%s)", what, quote_length(text, length), text, set,
              names);
    return -1;
}

/* A class id written as decimal digits ("3"), checked against the model's set when given. */
static int64_t class_id(parser *p, const char *text, int64_t length, const char *label)
{
    int64_t id = 0;
    int valid = length > 0;
    for (int64_t i = 0; i < length && valid; i++) {
        valid = text[i] >= '0' && text[i] <= '9';
        id = id * 10 + (text[i] - '0');
        if (id >= CLASS_ID_LIMIT) valid = 0;
    }
    int label_length = quote_length(label, (int64_t)strlen(label));
    if (!valid) {
        if (length == (int64_t)strlen(label))
            return line_fail(p, "label '%.*s' is not a class id (a whole number from 0)", label_length, label);
        return line_fail(p, "label '%.*s': '%.*s' is not a class id (a whole number from 0)", label_length, label,
                         quote_length(text, length), text);
    }
    int64_t limit = p->options->num_labels;
    if (limit > 0 && id >= limit)
        return line_fail(p, "label '%.*s' is not in the label set of the model (0..%" PRId64 ")", label_length, label,
                         limit - 1);
    if (limit == 0 && id >= COLLECTED_CLASSES_MAX)
        return line_fail(p, "label '%.*s': class id above %d without the model's number of labels", label_length,
                         label, COLLECTED_CLASSES_MAX - 1);
    if (id > p->max_class_id) p->max_class_id = id;
    return id;
}

static int compare_int32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int parse_multi_label(parser *p, tp_tsv_example *example, const char *label)
{
    example->first_label = p->label_ids_count;
    for (const char *piece = label;;) {
        const char *comma = strchr(piece, ',');
        int64_t length = comma ? comma - piece : (int64_t)strlen(piece);
        int64_t id = class_id(p, piece, length, label);
        if (id < 0) return -1;
        push_label_id(p, id);
        if (!comma) break;
        piece = comma + 1;
    }
    example->label_count = p->label_ids_count - example->first_label;
    int32_t *ids = p->task->label_ids + example->first_label;
    qsort(ids, (size_t)example->label_count, sizeof *ids, compare_int32);
    for (int64_t i = 1; i < example->label_count; i++)
        if (ids[i] == ids[i - 1])
            return line_fail(p, "label '%.*s' lists class %d twice", quote_length(label, (int64_t)strlen(label)),
                             label, (int)ids[i]);
    return 0;
}

static int parse_regression(parser *p, tp_tsv_example *example, const char *label)
{
    char *end;
    double value = strtod(label, &end);
    int quoted = quote_length(label, (int64_t)strlen(label));
    if (*end != '\0' || end == label || label[0] == ' ' || label[0] == '\t')
        return line_fail(p, "regression label '%.*s' is not a number", quoted, label);
    if (!isfinite(value)) return line_fail(p, "regression label '%.*s' is not a finite number", quoted, label);
    example->value = value;
    return 0;
}

/* Number of space-separated pieces of text; an empty piece is an error (-1). */
static int64_t count_spaced(parser *p, const char *text, const char *column, const char *what)
{
    int64_t count = 0;
    for (const char *piece = text;; count++) {
        const char *space = strchr(piece, ' ');
        if ((space ? space : piece + strlen(piece)) == piece)
            return line_fail(p, "%s has an empty %s %" PRId64 " (a space at an end, or two in a row)", column, what,
                             count + 1);
        if (!space) return count + 1;
        piece = space + 1;
    }
}

static void push_tokens(parser *p, tp_tsv_example *example, const char *text_a)
{
    if (p->tokens_count + example->token_count > p->tokens_capacity) {
        while (p->tokens_count + example->token_count > p->tokens_capacity)
            p->tokens_capacity = p->tokens_capacity ? 2 * p->tokens_capacity : 1024;
        p->task->tokens = tp_xrealloc(p->task->tokens, (size_t)p->tokens_capacity * sizeof(tp_tsv_span));
    }
    for (const char *piece = text_a;;) {
        const char *space = strchr(piece, ' ');
        int64_t length = space ? space - piece : (int64_t)strlen(piece);
        p->task->tokens[p->tokens_count++] = (tp_tsv_span){piece, length};
        if (!space) return;
        piece = space + 1;
    }
}

static int parse_tags(parser *p, tp_tsv_example *example, const char *label)
{
    int64_t tags = count_spaced(p, label, "label", "tag");
    if (tags < 0) return -1;
    if (tags != example->token_count)
        return line_fail(p, "%" PRId64 " tags for %" PRId64 " tokens", tags, example->token_count);
    example->first_label = p->label_ids_count;
    example->label_count = tags;
    for (const char *piece = label;;) {
        const char *space = strchr(piece, ' ');
        int64_t length = space ? space - piece : (int64_t)strlen(piece);
        int64_t id = name_id(p, piece, length, "tag", "tag");
        if (id < 0) return -1;
        push_label_id(p, id);
        if (!space) return 0;
        piece = space + 1;
    }
}

static int parse_label(parser *p, tp_tsv_example *example, const char *label)
{
    if (label[0] == '\0') return line_fail(p, "empty label");
    switch (p->options->kind) {
    case TP_TASK_CLASSIFICATION:
        example->label = p->options->labels_are_names
                             ? name_id(p, label, (int64_t)strlen(label), "label", "label")
                             : class_id(p, label, (int64_t)strlen(label), label);
        return example->label < 0 ? -1 : 0;
    case TP_TASK_MULTI_LABEL: return parse_multi_label(p, example, label);
    case TP_TASK_REGRESSION: return parse_regression(p, example, label);
    case TP_TASK_TAGGING: return parse_tags(p, example, label);
    case TP_TASK_TEXT2TEXT: example->target = label; return 0;
    case TP_TASK_SPEECH2TEXT: break;
    }
    return line_fail(p, "unknown task kind %d", (int)p->options->kind);
}

/* ---- rows ----------------------------------------------------------------------------------- */

static tp_tsv_example *next_example(parser *p)
{
    tp_tsv_task *task = p->task;
    if (task->count == p->examples_capacity) {
        p->examples_capacity = p->examples_capacity ? 2 * p->examples_capacity : 256;
        task->examples = tp_xrealloc(task->examples, (size_t)p->examples_capacity * sizeof *task->examples);
    }
    tp_tsv_example *example = &task->examples[task->count];
    *example = (tp_tsv_example){.line = p->line, .label = -1};
    return example;
}

static int parse_row(parser *p, char *line)
{
    int found = split_tabs(line, p->fields, p->columns);
    if (found != p->columns)
        return line_fail(p, "expected %d column%s (%s), found %d", p->columns, p->columns == 1 ? "" : "s",
                         p->column_list, found);
    tp_tsv_example *example = next_example(p);
    example->text_a = p->fields[p->text_a_column];
    if (example->text_a[0] == '\0') return line_fail(p, "empty text_a");
    if (p->text_b_column >= 0) {
        example->text_b = p->fields[p->text_b_column];
        if (example->text_b[0] == '\0') return line_fail(p, "empty text_b");
    }
    if (p->options->kind == TP_TASK_TAGGING) {
        example->token_count = count_spaced(p, example->text_a, "text_a", "token");
        if (example->token_count < 0) return -1;
        push_tokens(p, example, example->text_a);
    }
    if (p->label_column >= 0 && parse_label(p, example, p->fields[p->label_column]) != 0) return -1;
    p->task->count++;
    return 0;
}

/* Walks the lines: NUL-terminates each in place (dropping a CR before the LF) and parses it. */
static int parse_lines(parser *p, char *text, char *end)
{
    int64_t first_empty_line = 0;
    for (p->line = 1; text < end; p->line++) {
        char *newline = memchr(text, '\n', (size_t)(end - text));
        char *line_end = newline ? newline : end;
        char *next = newline ? newline + 1 : end;
        if (line_end > text && line_end[-1] == '\r') line_end--;
        *line_end = '\0';
        if (check_utf8(p, text, line_end - text) != 0) return -1;
        if (line_end == text) {
            if (p->line == 1) return line_fail(p, "empty header line");
            if (!first_empty_line) first_empty_line = p->line;
        } else if (first_empty_line) {
            p->line = first_empty_line;
            return line_fail(p, "empty line");
        } else if ((p->line == 1 ? parse_header(p, text) : parse_row(p, text)) != 0) {
            return -1;
        }
        text = next;
    }
    if (p->task->count == 0) return tp_fail("%s: no examples after the header", p->path);
    return 0;
}

/* ---- the label set -------------------------------------------------------------------------- */

static char *id_name(int64_t id)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, id);
    return tp_xstrdup(text);
}

static int start_label_set(parser *p)
{
    const tp_tsv_options *options = p->options;
    tp_tsv_task *task = p->task;
    int by_name = options->kind == TP_TASK_TAGGING ||
                  (options->kind == TP_TASK_CLASSIFICATION && options->labels_are_names);
    if (!by_name) return 0;
    p->names = (name_table){.names = &task->label_names, .count = &task->num_labels, .slot_count = 64};
    p->names.slots = tp_xcalloc((size_t)p->names.slot_count, sizeof *p->names.slots);
    if (!options->label_names) return 0;
    p->names_fixed = 1;
    for (int64_t i = 0; i < options->num_labels; i++) {
        const char *name = options->label_names[i];
        int64_t length = (int64_t)strlen(name);
        if (table_find(&p->names, name, length) >= 0)
            return tp_fail("%s: the model's label set names '%.*s' twice", p->path, quote_length(name, length), name);
        table_add(&p->names, name, length);
    }
    if (task->num_labels == 0) return tp_fail("%s: the model's label set is empty", p->path);
    return 0;
}

/* Class ids: the names are "0".."N-1", N from the caller or max id + 1. */
static void finish_label_set(parser *p)
{
    tp_tsv_task *task = p->task;
    if (p->names.slots || task->kind == TP_TASK_REGRESSION || task->kind == TP_TASK_TEXT2TEXT) return;
    task->num_labels = p->options->num_labels > 0 ? p->options->num_labels : p->max_class_id + 1;
    task->label_names = tp_xmalloc((size_t)(task->num_labels > 0 ? task->num_labels : 1) * sizeof(char *));
    for (int64_t id = 0; id < task->num_labels; id++) task->label_names[id] = id_name(id);
}

static int check_options(const char *path, const tp_tsv_options *options)
{
    if (options->kind < TP_TASK_CLASSIFICATION || options->kind > TP_TASK_TEXT2TEXT)
        return tp_fail("%s: unknown task kind %d", path, (int)options->kind);
    if (options->num_labels < 0) return tp_fail("%s: negative number of labels", path);
    if (options->label_names && options->num_labels == 0)
        return tp_fail("%s: label names given without their number", path);
    return 0;
}

tp_tsv_task *tp_tsv_read(const char *path, const tp_tsv_options *options)
{
    if (check_options(path, options) != 0) return NULL;
    size_t size = 0;
    char *buffer = tp_read_file(path, &size);
    if (!buffer) return NULL;
    tp_tsv_task *task = tp_xcalloc(1, sizeof *task);
    task->path = tp_xstrdup(path);
    task->kind = options->kind;
    task->buffer = buffer;
    parser p = {.path = path, .options = options, .task = task, .max_class_id = -1};
    char *text = buffer, *end = buffer + size;
    if (size >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) text += 3; /* byte-order mark */
    int rc = text == end ? tp_fail("%s: empty file (expected a header line such as 'label<TAB>text_a')", path)
                       : start_label_set(&p);
    if (rc == 0) rc = parse_lines(&p, text, end);
    if (rc == 0) finish_label_set(&p);
    free(p.names.slots);
    free(p.column_list);
    free(p.fields);
    if (rc != 0) {
        tp_tsv_free(task);
        return NULL;
    }
    return task;
}

void tp_tsv_free(tp_tsv_task *task)
{
    if (!task) return;
    for (int64_t i = 0; i < task->num_labels; i++) free(task->label_names[i]);
    free(task->label_names);
    free(task->label_ids);
    free(task->tokens);
    free(task->examples);
    free(task->buffer);
    free(task->path);
    free(task);
}

const char *tp_task_kind_name(tp_task_kind kind)
{
    switch (kind) {
    case TP_TASK_CLASSIFICATION: return "classification";
    case TP_TASK_MULTI_LABEL: return "multi-label";
    case TP_TASK_REGRESSION: return "regression";
    case TP_TASK_TAGGING: return "tagging";
    case TP_TASK_TEXT2TEXT: return "text2text";
    case TP_TASK_SPEECH2TEXT: return "speech2text";
    }
    return "unknown";
}
