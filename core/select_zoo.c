/* The zoo of tp-select (core/select.h): the manifest, the performance matrix, the per-epoch dev
 * curves, the LEEP table, a head's softmax outputs, and the import of the paper's released data.
 * Formats in docs/select.md.  Every reader is strict: one message naming the file and the key,
 * or the line and column, of the first problem. */
#include "select.h"

#include "config.h"
#include "error.h"
#include "fileio.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZOO_FORMAT "tp-select-zoo"
#define ZOO_VERSION 1
#define DEFAULT_EPOCHS 5
#define MAX_EPOCHS 10000
/* Softmax outputs written as text: each row's sum may be off by the rounding of every entry. */
#define PROBABILITY_SUM_TOLERANCE 1e-3

/* ---- small helpers ---------------------------------------------------------------------------- */

static char *join_path(const char *dir, const char *path)
{
    if (path[0] == '/' || dir[0] == '\0') return tp_xstrdup(path);
    size_t length = strlen(dir) + strlen(path) + 2;
    char *joined = tp_xmalloc(length);
    snprintf(joined, length, "%s/%s", dir, path);
    return joined;
}

static char *parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return tp_xstrdup(".");
    if (slash == path) return tp_xstrdup("/");
    char *dir = tp_xmalloc((size_t)(slash - path) + 1);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    return dir;
}

/* A finite number filling the whole field, in plain decimal notation (strtod would also take
 * leading blanks, hex, inf and nan). */
static int parse_number(const char *field, double *out)
{
    if (field[0] == '\0') return -1;
    for (const char *c = field; *c; c++)
        if (!isdigit((unsigned char)*c) && !strchr("+-.eE", *c)) return -1;
    char *end = NULL;
    double value = strtod(field, &end);
    if (*end != '\0' || !isfinite(value)) return -1;
    *out = value;
    return 0;
}

static int parse_epoch(const char *field, int64_t epochs, int64_t *out)
{
    if (field[0] == '\0' || strlen(field) > 9) return -1;
    for (const char *c = field; *c; c++)
        if (!isdigit((unsigned char)*c)) return -1;
    int64_t value = strtoll(field, NULL, 10);
    if (value < 1 || value > epochs) return -1;
    *out = value;
    return 0;
}

void tp_select_format_number(double value, char *out, size_t size)
{
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(out, size, "%.*g", digits, value);
        if (strtod(out, NULL) == value) return;
    }
}

/* ---- tab-separated lines ---------------------------------------------------------------------- */

typedef struct tsv_reader {
    const char *path;
    char *text;
    size_t length, position;
    int64_t line; /* of the fields last returned, 1-based */
    char **fields;
    int64_t field_count, field_capacity;
} tsv_reader;

static int tsv_open(tsv_reader *reader, const char *path)
{
    memset(reader, 0, sizeof *reader);
    reader->path = path;
    reader->text = tp_read_file(path, &reader->length);
    if (!reader->text) return -1;
    const char *nul = memchr(reader->text, '\0', reader->length);
    if (nul) {
        int64_t line = 1;
        for (const char *c = reader->text; c < nul; c++) line += *c == '\n';
        return tp_fail("%s: line %" PRId64 ": NUL byte", path, line);
    }
    /* Blank lines at the end are allowed: cut them off. */
    while (reader->length > 0 && (reader->text[reader->length - 1] == '\n' || reader->text[reader->length - 1] == '\r'))
        reader->length--;
    reader->text[reader->length] = '\0';
    if (reader->length == 0) return tp_fail("%s: the file is empty", path);
    return 0;
}

static void tsv_close(tsv_reader *reader)
{
    free(reader->text);
    free(reader->fields);
    memset(reader, 0, sizeof *reader);
}

/* The next line's fields (NUL-terminated in place); 0 at the end, -1 on a blank line. */
static int tsv_next(tsv_reader *reader)
{
    if (reader->position > reader->length) return 0;
    char *start = reader->text + reader->position;
    char *end = strchr(start, '\n');
    if (!end) end = reader->text + reader->length;
    reader->position = (size_t)(end - reader->text) + 1;
    reader->line++;
    *end = '\0';
    if (end > start && end[-1] == '\r') end[-1] = '\0';
    if (start[0] == '\0') return tp_fail("%s: line %" PRId64 ": blank line", reader->path, reader->line);
    reader->field_count = 0;
    for (char *field = start;;) {
        if (reader->field_count == reader->field_capacity) {
            reader->field_capacity = reader->field_capacity ? 2 * reader->field_capacity : 16;
            reader->fields = tp_xrealloc(reader->fields, (size_t)reader->field_capacity * sizeof *reader->fields);
        }
        reader->fields[reader->field_count++] = field;
        char *tab = strchr(field, '\t');
        if (!tab) break;
        *tab = '\0';
        field = tab + 1;
    }
    return 1;
}

static int tsv_expect_fields(tsv_reader *reader, int64_t count, const char *what)
{
    if (reader->field_count == count) return 0;
    return tp_fail("%s: line %" PRId64 ": expected %" PRId64 " tab-separated fields (%s), found %" PRId64, reader->path,
                   reader->line, count, what, reader->field_count);
}

static int tsv_expect_header(tsv_reader *reader, const char *const *names, int64_t required, int64_t optional)
{
    int status = tsv_next(reader);
    if (status <= 0) return -1;
    int64_t count = reader->field_count;
    int ok = count >= required && count <= required + optional;
    for (int64_t i = 0; ok && i < count; i++) ok = strcmp(reader->fields[i], names[i]) == 0;
    if (ok) return 0;
    char expected[256] = "";
    for (int64_t i = 0; i < required + optional; i++) {
        if (i) strncat(expected, "<TAB>", sizeof expected - strlen(expected) - 1);
        strncat(expected, names[i], sizeof expected - strlen(expected) - 1);
    }
    return tp_fail("%s: line 1: expected the header '%s'%s", reader->path, expected,
                   optional ? " (the last column optional)" : "");
}

/* ---- name lookup: names sorted once, searched by bisection ----------------------------------- */

typedef struct named_index {
    const char *name;
    int64_t index;
} named_index;

typedef struct name_index {
    named_index *sorted;
    int64_t count;
} name_index;

static int compare_named(const void *a, const void *b)
{
    return strcmp(((const named_index *)a)->name, ((const named_index *)b)->name);
}

static void name_index_build(name_index *index, char *const *names, int64_t count)
{
    index->count = count;
    index->sorted = tp_xmalloc((size_t)(count ? count : 1) * sizeof *index->sorted);
    for (int64_t i = 0; i < count; i++) index->sorted[i] = (named_index){names[i], i};
    qsort(index->sorted, (size_t)count, sizeof *index->sorted, compare_named);
}

static int64_t name_index_find(const name_index *index, const char *name)
{
    named_index key = {name, 0};
    const named_index *found = bsearch(&key, index->sorted, (size_t)index->count, sizeof key, compare_named);
    return found ? found->index : -1;
}

static char **model_names(const tp_zoo *zoo)
{
    char **names = tp_xmalloc((size_t)(zoo->model_count ? zoo->model_count : 1) * sizeof *names);
    for (int64_t m = 0; m < zoo->model_count; m++) names[m] = zoo->models[m].name;
    return names;
}

static int64_t find_name(char *const *names, int64_t count, const char *name)
{
    for (int64_t i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

int64_t tp_zoo_find_model(const tp_zoo *zoo, const char *name)
{
    for (int64_t m = 0; m < zoo->model_count; m++)
        if (strcmp(zoo->models[m].name, name) == 0) return m;
    return -1;
}

int64_t tp_zoo_find_benchmark(const tp_zoo *zoo, const char *name)
{
    return find_name(zoo->benchmarks, zoo->benchmark_count, name);
}

int64_t tp_zoo_find_target(const tp_zoo *zoo, const char *name) { return find_name(zoo->targets, zoo->target_count, name); }

/* ---- the manifest ----------------------------------------------------------------------------- */

static int fail_key(const char *file, const char *key, const char *fmt, ...) TP_PRINTF(3, 4);
static int fail_key(const char *file, const char *key, const char *fmt, ...)
{
    char problem[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(problem, sizeof problem, fmt, args);
    va_end(args);
    return tp_fail("%s: key '%s': %s", file, key, problem);
}

static int check_keys(const char *file, const char *where, const cJSON *object, const char *const *known)
{
    for (const cJSON *item = object->child; item; item = item->next) {
        int found = 0;
        for (int i = 0; known[i] && !found; i++) found = strcmp(item->string, known[i]) == 0;
        if (found) continue;
        char key[512];
        snprintf(key, sizeof key, "%s%s%s", where, where[0] ? "." : "", item->string);
        char list[256] = "";
        for (int i = 0; known[i]; i++) {
            if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
            strncat(list, known[i], sizeof list - strlen(list) - 1);
        }
        return fail_key(file, key, "unknown key (known: %s)", list);
    }
    return 0;
}

/* An optional string member; required ones fail when absent. */
static int get_string(const char *file, const char *where, const cJSON *object, const char *name, int required,
                      const char **out)
{
    char key[512];
    snprintf(key, sizeof key, "%s%s%s", where, where[0] ? "." : "", name);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    *out = NULL;
    if (!item) return required ? fail_key(file, key, "missing (required)") : 0;
    if (!cJSON_IsString(item)) return fail_key(file, key, "expected a string");
    if (item->valuestring[0] == '\0') return fail_key(file, key, "empty string");
    *out = item->valuestring;
    return 0;
}

static int get_integer(const char *file, const char *key, const cJSON *item, int64_t min, int64_t max, int64_t *out)
{
    if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble) || item->valuedouble < (double)min ||
        item->valuedouble > (double)max)
        return fail_key(file, key, "expected an integer in %" PRId64 "..%" PRId64, min, max);
    *out = (int64_t)item->valuedouble;
    return 0;
}

static char *dup_or_null(const char *text) { return text ? tp_xstrdup(text) : NULL; }

static int read_head(const char *file, const char *where, const cJSON *head, tp_zoo_model *model)
{
    if (cJSON_IsNull(head)) return 0;
    if (!cJSON_IsObject(head)) return fail_key(file, where, "expected an object {\"labels\": N, \"task\": ...} or null");
    static const char *const known[] = {"labels", "task", NULL};
    if (check_keys(file, where, head, known) != 0) return -1;
    char key[512];
    snprintf(key, sizeof key, "%s.labels", where);
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(head, "labels");
    if (!labels) return fail_key(file, key, "missing (required: the head's number of source labels)");
    if (get_integer(file, key, labels, 1, INT32_MAX, &model->head_labels) != 0) return -1;
    const char *task;
    if (get_string(file, where, head, "task", 0, &task) != 0) return -1;
    model->head_task = dup_or_null(task);
    return 0;
}

static int read_model(const char *file, int64_t index, const cJSON *entry, tp_zoo_model *model)
{
    char where[64];
    snprintf(where, sizeof where, "models[%" PRId64 "]", index);
    if (!cJSON_IsObject(entry)) return fail_key(file, where, "expected an object {\"name\": ...}");
    static const char *const known[] = {"name", "checkpoint", "config", "head", NULL};
    if (check_keys(file, where, entry, known) != 0) return -1;
    const char *name, *checkpoint, *config;
    if (get_string(file, where, entry, "name", 1, &name) != 0) return -1;
    if (strpbrk(name, "\t\r\n")) return fail_key(file, where, "the name holds a tab or a line break");
    if (get_string(file, where, entry, "checkpoint", 0, &checkpoint) != 0) return -1;
    if (get_string(file, where, entry, "config", 0, &config) != 0) return -1;
    model->name = tp_xstrdup(name);
    model->checkpoint = dup_or_null(checkpoint);
    model->config = dup_or_null(config);
    const cJSON *head = cJSON_GetObjectItemCaseSensitive(entry, "head");
    if (!head) return 0;
    snprintf(where + strlen(where), sizeof where - strlen(where), ".head");
    return read_head(file, where, head, model);
}

static int read_models(const char *file, const cJSON *models, tp_zoo *zoo)
{
    if (!models) return fail_key(file, "models", "missing (required: the list of models)");
    if (!cJSON_IsArray(models) || cJSON_GetArraySize(models) == 0)
        return fail_key(file, "models", "expected a non-empty list of objects");
    zoo->model_count = cJSON_GetArraySize(models);
    zoo->models = tp_xcalloc((size_t)zoo->model_count, sizeof *zoo->models);
    int64_t index = 0;
    for (const cJSON *entry = models->child; entry; entry = entry->next, index++) {
        if (read_model(file, index, entry, &zoo->models[index]) != 0) return -1;
        int64_t earlier = tp_zoo_find_model(zoo, zoo->models[index].name);
        if (earlier < index) {
            char key[64];
            snprintf(key, sizeof key, "models[%" PRId64 "].name", index);
            return fail_key(file, key, "'%s' is already the name of models[%" PRId64 "]", zoo->models[index].name, earlier);
        }
    }
    return 0;
}

static tp_zoo *zoo_new(const char *manifest_path, const char *base_dir)
{
    tp_zoo *zoo = tp_xcalloc(1, sizeof *zoo);
    zoo->manifest_path = tp_xstrdup(manifest_path);
    zoo->base_dir = tp_xstrdup(base_dir);
    zoo->epochs = DEFAULT_EPOCHS;
    return zoo;
}

typedef struct manifest_files {
    const char *matrix, *curves, *leep;
} manifest_files;

static int read_manifest(const char *file, const cJSON *root, tp_zoo *zoo, manifest_files *files)
{
    static const char *const known[] = {"format", "version", "description", "epochs", "matrix", "curves", "leep", "models", NULL};
    if (check_keys(file, "", root, known) != 0) return -1;
    const char *format;
    if (get_string(file, "", root, "format", 1, &format) != 0) return -1;
    if (strcmp(format, ZOO_FORMAT) != 0) return fail_key(file, "format", "expected \"" ZOO_FORMAT "\", got \"%s\"", format);
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    int64_t version_number;
    if (!version) return fail_key(file, "version", "missing (required: %d)", ZOO_VERSION);
    if (get_integer(file, "version", version, ZOO_VERSION, ZOO_VERSION, &version_number) != 0) return -1;
    const char *description;
    if (get_string(file, "", root, "description", 0, &description) != 0) return -1;
    zoo->description = dup_or_null(description);
    const cJSON *epochs = cJSON_GetObjectItemCaseSensitive(root, "epochs");
    if (epochs && get_integer(file, "epochs", epochs, 1, MAX_EPOCHS, &zoo->epochs) != 0) return -1;
    if (get_string(file, "", root, "matrix", 1, &files->matrix) != 0) return -1;
    if (get_string(file, "", root, "curves", 0, &files->curves) != 0) return -1;
    if (get_string(file, "", root, "leep", 0, &files->leep) != 0) return -1;
    return read_models(file, cJSON_GetObjectItemCaseSensitive(root, "models"), zoo);
}

/* The strict syntax check of core/config.c first (line and column, duplicate keys, UTF-8), then
 * the walk over cJSON's tree. */
static cJSON *parse_json(const char *name, const char *text)
{
    tp_config *checked = tp_config_parse(name, text);
    if (!checked) return NULL;
    tp_config_free(checked);
    cJSON *root = cJSON_Parse(text);
    if (!root) tp_fail("%s: cJSON could not parse the file (out of memory?)", name);
    return root;
}

static tp_zoo *parse_manifest(const char *name, const char *text, const char *base_dir, manifest_files *files)
{
    cJSON *root = parse_json(name, text);
    if (!root) return NULL;
    tp_zoo *zoo = zoo_new(name, base_dir);
    manifest_files found = {0};
    int status = read_manifest(name, root, zoo, &found);
    if (status == 0 && files) {
        files->matrix = found.matrix ? tp_xstrdup(found.matrix) : NULL;
        files->curves = found.curves ? tp_xstrdup(found.curves) : NULL;
        files->leep = found.leep ? tp_xstrdup(found.leep) : NULL;
    }
    cJSON_Delete(root);
    if (status == 0) return zoo;
    tp_zoo_free(zoo);
    return NULL;
}

tp_zoo *tp_zoo_parse_manifest(const char *name, const char *text, const char *base_dir)
{
    return parse_manifest(name, text, base_dir, NULL);
}

static int read_named_file(tp_zoo *zoo, const char *relative, int (*reader)(tp_zoo *, const char *))
{
    if (!relative) return 0;
    char *path = join_path(zoo->base_dir, relative);
    int status = reader(zoo, path);
    free(path);
    return status;
}

tp_zoo *tp_zoo_load_manifest(const char *manifest_path)
{
    char *text = tp_read_file(manifest_path, NULL);
    if (!text) return NULL;
    char *base_dir = parent_dir(manifest_path);
    tp_zoo *zoo = parse_manifest(manifest_path, text, base_dir, NULL);
    free(text);
    free(base_dir);
    return zoo;
}

tp_zoo *tp_zoo_load(const char *manifest_path)
{
    char *text = tp_read_file(manifest_path, NULL);
    if (!text) return NULL;
    char *base_dir = parent_dir(manifest_path);
    manifest_files files = {0};
    tp_zoo *zoo = parse_manifest(manifest_path, text, base_dir, &files);
    free(text);
    free(base_dir);
    if (zoo && (read_named_file(zoo, files.matrix, tp_zoo_read_matrix) != 0 ||
                read_named_file(zoo, files.curves, tp_zoo_read_curves) != 0 ||
                read_named_file(zoo, files.leep, tp_zoo_read_leep) != 0)) {
        tp_zoo_free(zoo);
        zoo = NULL;
    }
    free((char *)files.matrix);
    free((char *)files.curves);
    free((char *)files.leep);
    return zoo;
}

/* ---- the performance matrix ------------------------------------------------------------------- */

static int read_matrix_header(tsv_reader *reader, tp_zoo *zoo)
{
    if (tsv_next(reader) <= 0) return -1;
    if (strcmp(reader->fields[0], "model") != 0 || reader->field_count < 2)
        return tp_fail("%s: line 1: expected the header 'model<TAB>benchmark 1<TAB>...'", reader->path);
    zoo->benchmark_count = reader->field_count - 1;
    zoo->benchmarks = tp_xcalloc((size_t)zoo->benchmark_count, sizeof *zoo->benchmarks);
    for (int64_t b = 0; b < zoo->benchmark_count; b++) {
        const char *name = reader->fields[b + 1];
        if (name[0] == '\0') return tp_fail("%s: line 1, column %" PRId64 ": empty benchmark name", reader->path, b + 2);
        if (find_name(zoo->benchmarks, b, name) >= 0)
            return tp_fail("%s: line 1, column %" PRId64 ": benchmark '%s' appears twice", reader->path, b + 2, name);
        zoo->benchmarks[b] = tp_xstrdup(name);
    }
    return 0;
}

static int read_matrix_row(tsv_reader *reader, tp_zoo *zoo, const name_index *models, int64_t *row_line)
{
    char what[64];
    snprintf(what, sizeof what, "model + %" PRId64 " benchmarks", zoo->benchmark_count);
    if (tsv_expect_fields(reader, zoo->benchmark_count + 1, what) != 0) return -1;
    const char *name = reader->fields[0];
    int64_t m = name_index_find(models, name);
    if (m < 0) return tp_fail("%s: line %" PRId64 ": model '%s' is not in the manifest", reader->path, reader->line, name);
    if (row_line[m])
        return tp_fail("%s: line %" PRId64 ": model '%s' has a row already (line %" PRId64 ")", reader->path, reader->line,
                       name, row_line[m]);
    row_line[m] = reader->line;
    for (int64_t b = 0; b < zoo->benchmark_count; b++) {
        const char *cell = reader->fields[b + 1];
        double *score = &zoo->scores[m * zoo->benchmark_count + b];
        if (strcmp(cell, "NA") == 0) {
            *score = NAN;
        } else if (parse_number(cell, score) != 0) {
            return tp_fail("%s: line %" PRId64 ", column %" PRId64 " (model '%s', benchmark '%s'): %s", reader->path,
                           reader->line, b + 2, name, zoo->benchmarks[b],
                           cell[0] ? "not a number (write NA for a score not measured)" : "empty score (write NA for a score not measured)");
        }
    }
    return 0;
}

int tp_zoo_read_matrix(tp_zoo *zoo, const char *path)
{
    if (zoo->benchmarks) return tp_fail("%s: the zoo has a matrix already", path);
    tsv_reader reader;
    name_index models = {0};
    char **names = model_names(zoo);
    int64_t *row_line = tp_xcalloc((size_t)zoo->model_count, sizeof *row_line);
    int status = tsv_open(&reader, path);
    if (status == 0) status = read_matrix_header(&reader, zoo);
    if (status == 0) {
        zoo->scores = tp_xmalloc((size_t)(zoo->model_count * zoo->benchmark_count) * sizeof *zoo->scores);
        name_index_build(&models, names, zoo->model_count);
    }
    int next;
    while (status == 0 && (next = tsv_next(&reader)) != 0)
        status = next < 0 ? -1 : read_matrix_row(&reader, zoo, &models, row_line);
    for (int64_t m = 0; status == 0 && m < zoo->model_count; m++)
        if (!row_line[m])
            status = tp_fail("%s: no row for model '%s' (models[%" PRId64 "] of the manifest)", path, zoo->models[m].name, m);
    free(models.sorted);
    free(names);
    free(row_line);
    tsv_close(&reader);
    return status;
}

double *tp_zoo_scores_without(const tp_zoo *zoo, int64_t exclude)
{
    int64_t columns = zoo->benchmark_count - (exclude >= 0);
    double *scores = tp_xmalloc((size_t)(zoo->model_count * (columns ? columns : 1)) * sizeof *scores);
    for (int64_t m = 0; m < zoo->model_count; m++) {
        double *row = scores + m * columns;
        for (int64_t b = 0; b < zoo->benchmark_count; b++)
            if (b != exclude) *row++ = zoo->scores[m * zoo->benchmark_count + b];
    }
    return scores;
}

/* ---- per-epoch dev curves --------------------------------------------------------------------- */

static const char *const curve_columns[] = {"model", "benchmark", "epoch", "dev_score", "seconds"};

static int read_curve_row(tsv_reader *reader, tp_zoo *zoo, const name_index *models, const name_index *benchmarks,
                          unsigned char *seen)
{
    if (tsv_expect_fields(reader, 5, "model, benchmark, epoch, dev_score, seconds") != 0) return -1;
    char **field = reader->fields;
    int64_t m = name_index_find(models, field[0]), b = name_index_find(benchmarks, field[1]), epoch;
    double dev, seconds;
    if (m < 0) return tp_fail("%s: line %" PRId64 ": model '%s' is not in the manifest", reader->path, reader->line, field[0]);
    if (b < 0) return tp_fail("%s: line %" PRId64 ": benchmark '%s' is not in the matrix", reader->path, reader->line, field[1]);
    if (parse_epoch(field[2], zoo->epochs, &epoch) != 0)
        return tp_fail("%s: line %" PRId64 ", column 3: epoch '%s' is not an integer in 1..%" PRId64 " (the manifest's epochs)",
                       reader->path, reader->line, field[2], zoo->epochs);
    if (parse_number(field[3], &dev) != 0)
        return tp_fail("%s: line %" PRId64 ", column 4: dev_score '%s' is not a number", reader->path, reader->line, field[3]);
    if (parse_number(field[4], &seconds) != 0 || seconds < 0)
        return tp_fail("%s: line %" PRId64 ", column 5: seconds '%s' is not a number >= 0", reader->path, reader->line,
                       field[4]);
    int64_t at = (m * zoo->benchmark_count + b) * zoo->epochs + epoch - 1;
    if (seen[at])
        return tp_fail("%s: line %" PRId64 ": model '%s', benchmark '%s', epoch %" PRId64 " appears twice", reader->path,
                       reader->line, field[0], field[1], epoch);
    seen[at] = 1;
    zoo->dev[at] = dev;
    zoo->epoch_seconds[at] = seconds;
    return 0;
}

/* A pair has every epoch or none. */
static int check_curves_complete(const tp_zoo *zoo, const char *path, const unsigned char *seen, unsigned char *has_curve)
{
    for (int64_t pair = 0; pair < zoo->model_count * zoo->benchmark_count; pair++) {
        int64_t count = 0, missing = -1;
        for (int64_t e = 0; e < zoo->epochs; e++) {
            if (seen[pair * zoo->epochs + e]) count++;
            else if (missing < 0) missing = e;
        }
        if (count > 0 && count < zoo->epochs)
            return tp_fail("%s: model '%s' on benchmark '%s' has %" PRId64 " of %" PRId64 " epochs (epoch %" PRId64 " missing)",
                           path, zoo->models[pair / zoo->benchmark_count].name,
                           zoo->benchmarks[pair % zoo->benchmark_count], count, zoo->epochs, missing + 1);
        has_curve[pair] = count > 0;
    }
    return 0;
}

int tp_zoo_read_curves(tp_zoo *zoo, const char *path)
{
    if (!zoo->benchmarks) return tp_fail("%s: the zoo's matrix must be read before its curves", path);
    if (zoo->dev) return tp_fail("%s: the zoo has curves already", path);
    int64_t pairs = zoo->model_count * zoo->benchmark_count, cells = pairs * zoo->epochs;
    unsigned char *seen = tp_xcalloc((size_t)cells, 1);
    zoo->dev = tp_xcalloc((size_t)cells, sizeof *zoo->dev);
    zoo->epoch_seconds = tp_xcalloc((size_t)cells, sizeof *zoo->epoch_seconds);
    zoo->has_curve = tp_xcalloc((size_t)pairs, 1);
    char **names = model_names(zoo);
    name_index models, benchmarks;
    name_index_build(&models, names, zoo->model_count);
    name_index_build(&benchmarks, zoo->benchmarks, zoo->benchmark_count);
    tsv_reader reader;
    int status = tsv_open(&reader, path);
    if (status == 0) status = tsv_expect_header(&reader, curve_columns, 5, 0);
    int next;
    while (status == 0 && (next = tsv_next(&reader)) != 0)
        status = next < 0 ? -1 : read_curve_row(&reader, zoo, &models, &benchmarks, seen);
    if (status == 0) status = check_curves_complete(zoo, path, seen, zoo->has_curve);
    tsv_close(&reader);
    free(models.sorted);
    free(benchmarks.sorted);
    free(names);
    free(seen);
    return status;
}

/* ---- the LEEP table --------------------------------------------------------------------------- */

static const char *const leep_columns[] = {"model", "target", "leep", "seconds"};

static int64_t add_target(tp_zoo *zoo, const char *name)
{
    int64_t t = tp_zoo_find_target(zoo, name);
    if (t >= 0) return t;
    t = zoo->target_count++;
    size_t cells = (size_t)(zoo->target_count * zoo->model_count);
    zoo->targets = tp_xrealloc(zoo->targets, (size_t)zoo->target_count * sizeof *zoo->targets);
    zoo->targets[t] = tp_xstrdup(name);
    zoo->leep = tp_xrealloc(zoo->leep, cells * sizeof *zoo->leep);
    zoo->leep_seconds = tp_xrealloc(zoo->leep_seconds, cells * sizeof *zoo->leep_seconds);
    for (int64_t m = 0; m < zoo->model_count; m++) {
        zoo->leep[t * zoo->model_count + m] = NAN;
        zoo->leep_seconds[t * zoo->model_count + m] = NAN;
    }
    return t;
}

static int read_leep_row(tsv_reader *reader, tp_zoo *zoo, const name_index *models, int64_t columns)
{
    if (tsv_expect_fields(reader, columns, columns == 4 ? "model, target, leep, seconds" : "model, target, leep") != 0)
        return -1;
    char **field = reader->fields;
    int64_t m = name_index_find(models, field[0]);
    double leep, seconds = NAN;
    if (m < 0) return tp_fail("%s: line %" PRId64 ": model '%s' is not in the manifest", reader->path, reader->line, field[0]);
    if (field[1][0] == '\0') return tp_fail("%s: line %" PRId64 ", column 2: empty target name", reader->path, reader->line);
    if (parse_number(field[2], &leep) != 0 || leep > 0)
        return tp_fail("%s: line %" PRId64 ", column 3: LEEP '%s' is not a number <= 0 (a mean log-probability)",
                       reader->path, reader->line, field[2]);
    if (columns == 4 && (parse_number(field[3], &seconds) != 0 || seconds < 0))
        return tp_fail("%s: line %" PRId64 ", column 4: seconds '%s' is not a number >= 0", reader->path, reader->line,
                       field[3]);
    int64_t t = add_target(zoo, field[1]);
    double *slot = &zoo->leep[t * zoo->model_count + m];
    if (!isnan(*slot))
        return tp_fail("%s: line %" PRId64 ": model '%s' has a LEEP score for target '%s' already", reader->path,
                       reader->line, field[0], field[1]);
    *slot = leep;
    zoo->leep_seconds[t * zoo->model_count + m] = seconds;
    return 0;
}

int tp_zoo_read_leep(tp_zoo *zoo, const char *path)
{
    if (zoo->targets) return tp_fail("%s: the zoo has a LEEP table already", path);
    char **names = model_names(zoo);
    name_index models;
    name_index_build(&models, names, zoo->model_count);
    tsv_reader reader;
    int status = tsv_open(&reader, path);
    if (status == 0) status = tsv_expect_header(&reader, leep_columns, 3, 1);
    int64_t columns = reader.field_count;
    int next;
    while (status == 0 && (next = tsv_next(&reader)) != 0)
        status = next < 0 ? -1 : read_leep_row(&reader, zoo, &models, columns);
    tsv_close(&reader);
    free(models.sorted);
    free(names);
    return status;
}

/* ---- empty tables (the offline phase) -------------------------------------------------------- */

int tp_zoo_init_tables(tp_zoo *zoo, char *const *benchmarks, int64_t benchmark_count, int64_t epochs)
{
    if (zoo->benchmarks || zoo->targets) return tp_fail("%s: the zoo has tables already", zoo->manifest_path);
    if (benchmark_count < 1 || epochs < 1 || epochs > MAX_EPOCHS)
        return tp_fail("%s: %" PRId64 " benchmarks, %" PRId64 " epochs (at least 1 each, at most %d epochs)",
                       zoo->manifest_path, benchmark_count, epochs, MAX_EPOCHS);
    zoo->benchmark_count = benchmark_count;
    zoo->epochs = epochs;
    zoo->benchmarks = tp_xcalloc((size_t)benchmark_count, sizeof *zoo->benchmarks);
    for (int64_t b = 0; b < benchmark_count; b++) {
        if (find_name(zoo->benchmarks, b, benchmarks[b]) >= 0)
            return tp_fail("%s: benchmark '%s' given twice", zoo->manifest_path, benchmarks[b]);
        zoo->benchmarks[b] = tp_xstrdup(benchmarks[b]);
    }
    int64_t pairs = zoo->model_count * benchmark_count;
    zoo->scores = tp_xmalloc((size_t)pairs * sizeof *zoo->scores);
    for (int64_t i = 0; i < pairs; i++) zoo->scores[i] = NAN;
    zoo->dev = tp_xcalloc((size_t)(pairs * epochs), sizeof *zoo->dev);
    zoo->epoch_seconds = tp_xcalloc((size_t)(pairs * epochs), sizeof *zoo->epoch_seconds);
    zoo->has_curve = tp_xcalloc((size_t)pairs, 1);
    for (int64_t b = 0; b < benchmark_count; b++) add_target(zoo, benchmarks[b]);
    return 0;
}

/* ---- head outputs ----------------------------------------------------------------------------- */

static int read_output_row(tsv_reader *reader, tp_head_outputs *outputs, int64_t *capacity, int64_t *label_capacity)
{
    char what[64];
    snprintf(what, sizeof what, "label + %" PRId64 " probabilities", outputs->source_labels);
    if (tsv_expect_fields(reader, outputs->source_labels + 1, what) != 0) return -1;
    const char *label = reader->fields[0];
    if (label[0] == '\0') return tp_fail("%s: line %" PRId64 ", column 1: empty label", reader->path, reader->line);
    if (outputs->count == *capacity) {
        *capacity = *capacity ? 2 * *capacity : 64;
        outputs->probs = tp_xrealloc(outputs->probs, (size_t)(*capacity * outputs->source_labels) * sizeof *outputs->probs);
        outputs->labels = tp_xrealloc(outputs->labels, (size_t)*capacity * sizeof *outputs->labels);
    }
    double *row = outputs->probs + outputs->count * outputs->source_labels, sum = 0;
    for (int64_t z = 0; z < outputs->source_labels; z++) {
        const char *cell = reader->fields[z + 1];
        if (parse_number(cell, &row[z]) != 0 || row[z] < 0 || row[z] > 1)
            return tp_fail("%s: line %" PRId64 ", column %" PRId64 ": '%s' is not a probability in [0, 1]", reader->path,
                           reader->line, z + 2, cell);
        sum += row[z];
    }
    if (fabs(sum - 1) > PROBABILITY_SUM_TOLERANCE)
        return tp_fail("%s: line %" PRId64 ": the probabilities sum to %.6g, not 1 (softmax outputs expected)", reader->path,
                       reader->line, sum);
    /* The text rounded every entry; LEEP is a log-probability only over rows that sum to 1 (a row of
     * 0.75 and 0.251 gave a positive LEEP: fuzz_select, docs/robustness.md). */
    for (int64_t z = 0; z < outputs->source_labels; z++) row[z] /= sum;
    int64_t id = find_name(outputs->label_names, outputs->target_labels, label);
    if (id < 0) {
        if (outputs->target_labels == *label_capacity) {
            *label_capacity = *label_capacity ? 2 * *label_capacity : 8;
            outputs->label_names = tp_xrealloc(outputs->label_names, (size_t)*label_capacity * sizeof *outputs->label_names);
        }
        id = outputs->target_labels++;
        outputs->label_names[id] = tp_xstrdup(label);
    }
    outputs->labels[outputs->count++] = id;
    return 0;
}

tp_head_outputs *tp_head_outputs_read(const char *path, int64_t expected_source_labels)
{
    tsv_reader reader;
    tp_head_outputs *outputs = tp_xcalloc(1, sizeof *outputs);
    int64_t capacity = 0, label_capacity = 0;
    int status = tsv_open(&reader, path);
    if (status == 0 && tsv_next(&reader) <= 0) status = -1;
    if (status == 0 && (strcmp(reader.fields[0], "label") != 0 || reader.field_count < 2))
        status = tp_fail("%s: line 1: expected the header 'label<TAB>source label 1<TAB>...'", path);
    if (status == 0) outputs->source_labels = reader.field_count - 1;
    if (status == 0 && expected_source_labels > 0 && outputs->source_labels != expected_source_labels)
        status = tp_fail("%s: line 1: %" PRId64 " source labels, but the model's head has %" PRId64, path,
                         outputs->source_labels, expected_source_labels);
    int next;
    while (status == 0 && (next = tsv_next(&reader)) != 0)
        status = next < 0 ? -1 : read_output_row(&reader, outputs, &capacity, &label_capacity);
    if (status == 0 && outputs->count == 0) status = tp_fail("%s: no examples after the header", path);
    tsv_close(&reader);
    if (status == 0) return outputs;
    tp_head_outputs_free(outputs);
    return NULL;
}

void tp_head_outputs_free(tp_head_outputs *outputs)
{
    if (!outputs) return;
    for (int64_t i = 0; i < outputs->target_labels; i++) free(outputs->label_names[i]);
    free(outputs->label_names);
    free(outputs->probs);
    free(outputs->labels);
    free(outputs);
}

/* ---- writing ---------------------------------------------------------------------------------- */

static cJSON *manifest_json(const tp_zoo *zoo)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", ZOO_FORMAT);
    cJSON_AddNumberToObject(root, "version", ZOO_VERSION);
    if (zoo->description) cJSON_AddStringToObject(root, "description", zoo->description);
    cJSON_AddNumberToObject(root, "epochs", (double)zoo->epochs);
    cJSON_AddStringToObject(root, "matrix", "matrix.tsv");
    if (zoo->dev) cJSON_AddStringToObject(root, "curves", "curves.tsv");
    if (zoo->target_count) cJSON_AddStringToObject(root, "leep", "leep.tsv");
    cJSON *models = cJSON_AddArrayToObject(root, "models");
    for (int64_t m = 0; m < zoo->model_count; m++) {
        const tp_zoo_model *model = &zoo->models[m];
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "name", model->name);
        if (model->checkpoint) cJSON_AddStringToObject(entry, "checkpoint", model->checkpoint);
        if (model->config) cJSON_AddStringToObject(entry, "config", model->config);
        if (model->head_labels > 0) {
            cJSON *head = cJSON_AddObjectToObject(entry, "head");
            if (model->head_task) cJSON_AddStringToObject(head, "task", model->head_task);
            cJSON_AddNumberToObject(head, "labels", (double)model->head_labels);
        }
        cJSON_AddItemToArray(models, entry);
    }
    return root;
}

static void write_value(FILE *out, double value)
{
    char text[40];
    if (isnan(value)) {
        fputs("NA", out);
        return;
    }
    tp_select_format_number(value, text, sizeof text);
    fputs(text, out);
}

static void write_matrix(FILE *out, const tp_zoo *zoo)
{
    fputs("model", out);
    for (int64_t b = 0; b < zoo->benchmark_count; b++) fprintf(out, "\t%s", zoo->benchmarks[b]);
    fputc('\n', out);
    for (int64_t m = 0; m < zoo->model_count; m++) {
        fputs(zoo->models[m].name, out);
        for (int64_t b = 0; b < zoo->benchmark_count; b++) {
            fputc('\t', out);
            write_value(out, zoo->scores[m * zoo->benchmark_count + b]);
        }
        fputc('\n', out);
    }
}

static void write_curves(FILE *out, const tp_zoo *zoo)
{
    fputs("model\tbenchmark\tepoch\tdev_score\tseconds\n", out);
    for (int64_t pair = 0; pair < zoo->model_count * zoo->benchmark_count; pair++) {
        if (!zoo->has_curve[pair]) continue;
        for (int64_t e = 0; e < zoo->epochs; e++) {
            fprintf(out, "%s\t%s\t%" PRId64 "\t", zoo->models[pair / zoo->benchmark_count].name,
                    zoo->benchmarks[pair % zoo->benchmark_count], e + 1);
            write_value(out, zoo->dev[pair * zoo->epochs + e]);
            fputc('\t', out);
            write_value(out, zoo->epoch_seconds[pair * zoo->epochs + e]);
            fputc('\n', out);
        }
    }
}

static int leep_has_seconds(const tp_zoo *zoo)
{
    for (int64_t i = 0; i < zoo->target_count * zoo->model_count; i++)
        if (!isnan(zoo->leep[i]) && !isnan(zoo->leep_seconds[i])) return 1;
    return 0;
}

/* Seconds are written when any score has them; then an unlogged one is written 0. */
static void write_leep(FILE *out, const tp_zoo *zoo)
{
    int with_seconds = leep_has_seconds(zoo);
    fputs(with_seconds ? "model\ttarget\tleep\tseconds\n" : "model\ttarget\tleep\n", out);
    for (int64_t t = 0; t < zoo->target_count; t++) {
        for (int64_t m = 0; m < zoo->model_count; m++) {
            int64_t at = t * zoo->model_count + m;
            if (isnan(zoo->leep[at])) continue;
            fprintf(out, "%s\t%s\t", zoo->models[m].name, zoo->targets[t]);
            write_value(out, zoo->leep[at]);
            if (with_seconds) {
                fputc('\t', out);
                write_value(out, isnan(zoo->leep_seconds[at]) ? 0 : zoo->leep_seconds[at]);
            }
            fputc('\n', out);
        }
    }
}

static int write_table(const char *dir, const char *name, const tp_zoo *zoo, void (*writer)(FILE *, const tp_zoo *))
{
    char *path = join_path(dir, name);
    tp_atomic_file file;
    int status = tp_atomic_open(&file, path);
    if (status == 0) {
        writer(file.fp, zoo);
        status = tp_atomic_commit(&file);
    }
    free(path);
    return status;
}

int tp_zoo_save(const tp_zoo *zoo, const char *dir)
{
    if (!zoo->benchmarks) return tp_fail("%s: the zoo has no matrix to save", dir);
    if (tp_mkdirs(dir) != 0) return -1;
    cJSON *root = manifest_json(zoo);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    size_t length = strlen(text);
    text = tp_xrealloc(text, length + 2);
    text[length] = '\n';
    char *manifest = join_path(dir, "zoo.json");
    int status = tp_write_file_atomic(manifest, text, length + 1);
    free(manifest);
    free(text);
    if (status == 0) status = write_table(dir, "matrix.tsv", zoo, write_matrix);
    if (status == 0 && zoo->dev) status = write_table(dir, "curves.tsv", zoo, write_curves);
    if (status == 0 && zoo->target_count) status = write_table(dir, "leep.tsv", zoo, write_leep);
    return status;
}

void tp_zoo_free(tp_zoo *zoo)
{
    if (!zoo) return;
    for (int64_t m = 0; m < zoo->model_count; m++) {
        tp_zoo_model *model = &zoo->models[m];
        free(model->name);
        free(model->checkpoint);
        free(model->config);
        free(model->head_task);
    }
    for (int64_t b = 0; b < zoo->benchmark_count; b++) free(zoo->benchmarks[b]);
    for (int64_t t = 0; t < zoo->target_count; t++) free(zoo->targets[t]);
    free(zoo->models);
    free(zoo->benchmarks);
    free(zoo->targets);
    free(zoo->scores);
    free(zoo->dev);
    free(zoo->epoch_seconds);
    free(zoo->has_curve);
    free(zoo->leep);
    free(zoo->leep_seconds);
    free(zoo->manifest_path);
    free(zoo->description);
    free(zoo->base_dir);
    free(zoo);
}

/* ---- the paper's released data ---------------------------------------------------------------- */

static int read_paper_datasets(tp_zoo *zoo, const char *path)
{
    tsv_reader reader;
    int status = tsv_open(&reader, path), next;
    int64_t capacity = 0;
    while (status == 0 && (next = tsv_next(&reader)) != 0) {
        if (next < 0 || tsv_expect_fields(&reader, 1, "one dataset name") != 0) {
            status = -1;
            break;
        }
        if (find_name(zoo->benchmarks, zoo->benchmark_count, reader.fields[0]) >= 0) {
            status = tp_fail("%s: line %" PRId64 ": dataset '%s' appears twice", path, reader.line, reader.fields[0]);
            break;
        }
        if (zoo->benchmark_count == capacity) {
            capacity = capacity ? 2 * capacity : 32;
            zoo->benchmarks = tp_xrealloc(zoo->benchmarks, (size_t)capacity * sizeof *zoo->benchmarks);
        }
        zoo->benchmarks[zoo->benchmark_count++] = tp_xstrdup(reader.fields[0]);
    }
    tsv_close(&reader);
    return status;
}

/* The model names of a line 1 (the matrix's, or a LEEP file's, which must repeat them). */
static int read_paper_models(tp_zoo *zoo, tsv_reader *reader)
{
    if (tsv_next(reader) <= 0) return -1;
    if (zoo->models) {
        int same = reader->field_count == zoo->model_count;
        for (int64_t m = 0; same && m < zoo->model_count; m++) same = strcmp(reader->fields[m], zoo->models[m].name) == 0;
        return same ? 0 : tp_fail("%s: line 1: the model names differ from matrix.txt's", reader->path);
    }
    zoo->models = tp_xcalloc((size_t)reader->field_count, sizeof *zoo->models);
    for (int64_t m = 0; m < reader->field_count; m++) {
        const char *name = reader->fields[m];
        if (name[0] == '\0') return tp_fail("%s: line 1, column %" PRId64 ": empty model name", reader->path, m + 1);
        if (tp_zoo_find_model(zoo, name) >= 0)
            return tp_fail("%s: line 1, column %" PRId64 ": model '%s' appears twice", reader->path, m + 1, name);
        zoo->models[zoo->model_count++].name = tp_xstrdup(name);
    }
    return 0;
}

static int read_paper_numbers(tsv_reader *reader, int64_t count, double *out, int64_t stride, const char *what)
{
    char expected[96];
    snprintf(expected, sizeof expected, "one score per model for %s", what);
    if (tsv_expect_fields(reader, count, expected) != 0) return -1;
    for (int64_t i = 0; i < count; i++)
        if (parse_number(reader->fields[i], &out[i * stride]) != 0)
            return tp_fail("%s: line %" PRId64 ", column %" PRId64 " (%s): '%s' is not a number", reader->path,
                           reader->line, i + 1, what, reader->fields[i]);
    return 0;
}

static int read_paper_matrix(tp_zoo *zoo, const char *path)
{
    tsv_reader reader;
    int status = tsv_open(&reader, path);
    if (status == 0) status = read_paper_models(zoo, &reader);
    if (status == 0) zoo->scores = tp_xmalloc((size_t)(zoo->model_count * zoo->benchmark_count) * sizeof *zoo->scores);
    for (int64_t b = 0; status == 0 && b < zoo->benchmark_count; b++) {
        int next = tsv_next(&reader);
        if (next == 0) status = tp_fail("%s: %" PRId64 " score lines for %" PRId64 " datasets", path, b, zoo->benchmark_count);
        else if (next < 0) status = -1;
        else status = read_paper_numbers(&reader, zoo->model_count, zoo->scores + b, zoo->benchmark_count, zoo->benchmarks[b]);
    }
    if (status == 0 && tsv_next(&reader) != 0)
        status = tp_fail("%s: line %" PRId64 ": more score lines than datasets.txt names", path, reader.line);
    tsv_close(&reader);
    return status;
}

static int read_paper_leep(tp_zoo *zoo, const char *path, const char *target)
{
    tsv_reader reader;
    int status = tsv_open(&reader, path);
    if (status == 0) status = read_paper_models(zoo, &reader);
    if (status == 0) {
        int64_t t = add_target(zoo, target);
        int next = tsv_next(&reader);
        if (next == 0) status = tp_fail("%s: no line 2 (the LEEP scores)", path);
        else if (next < 0) status = -1;
        else status = read_paper_numbers(&reader, zoo->model_count, zoo->leep + t * zoo->model_count, 1, "LEEP");
    }
    if (status == 0 && tsv_next(&reader) != 0) status = tp_fail("%s: line %" PRId64 ": more than 2 lines", path, reader.line);
    tsv_close(&reader);
    return status;
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every leep_score_<target>.txt of dir, in name order. */
static int read_paper_leep_files(tp_zoo *zoo, const char *dir)
{
    static const char prefix[] = "leep_score_", suffix[] = ".txt";
    DIR *handle = opendir(dir);
    if (!handle) return tp_fail("%s: cannot open the directory", dir);
    char **names = NULL;
    int64_t count = 0;
    for (struct dirent *entry; (entry = readdir(handle));) {
        size_t length = strlen(entry->d_name);
        if (length <= strlen(prefix) + strlen(suffix) || strncmp(entry->d_name, prefix, strlen(prefix)) != 0 ||
            strcmp(entry->d_name + length - strlen(suffix), suffix) != 0)
            continue;
        names = tp_xrealloc(names, (size_t)(count + 1) * sizeof *names);
        names[count++] = tp_xstrdup(entry->d_name);
    }
    closedir(handle);
    qsort(names, (size_t)count, sizeof *names, compare_strings);
    int status = 0;
    for (int64_t i = 0; i < count; i++) {
        if (status == 0) {
            char *path = join_path(dir, names[i]);
            size_t length = strlen(names[i]) - strlen(prefix) - strlen(suffix);
            char target[256];
            snprintf(target, sizeof target, "%.*s", (int)length, names[i] + strlen(prefix));
            status = read_paper_leep(zoo, path, target);
            free(path);
        }
        free(names[i]);
    }
    free(names);
    return status;
}

tp_zoo *tp_zoo_import_paper(const char *dir)
{
    tp_zoo *zoo = zoo_new("", ".");
    char *datasets = join_path(dir, "datasets.txt"), *matrix = join_path(dir, "matrix.txt");
    int status = read_paper_datasets(zoo, datasets);
    if (status == 0) status = read_paper_matrix(zoo, matrix);
    if (status == 0) status = read_paper_leep_files(zoo, dir);
    free(datasets);
    free(matrix);
    if (status == 0) return zoo;
    tp_zoo_free(zoo);
    return NULL;
}
