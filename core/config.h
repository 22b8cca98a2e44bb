/* Strict JSON configuration reading.
 *
 * A tp_config is one JSON object read from a file.  Readers ask for keys by
 * name with a type and a range; every key that is read (or explicitly
 * ignored) is marked used, and tp_config_check_unused() reports the first key
 * that nobody asked for -- so a misspelt key is an error, not a silent default.
 * Every message names the file and the key path, e.g.
 *   "configs/bert_tiny.json: key 'optimizer.learning_rate': expected a number, got a string"
 * Keys are plain names or dotted paths into nested objects ("optimizer.learning_rate").
 * Getters return 0 on success (the default when the key is absent) and -1 on error. */
#ifndef TP_CONFIG_H
#define TP_CONFIG_H

#include <stdint.h>

typedef struct tp_config tp_config;

tp_config *tp_config_load(const char *path);              /* file missing / bad JSON (with line:column) -> NULL */
tp_config *tp_config_parse(const char *name, const char *text); /* name is used in messages */
tp_config *tp_config_new_empty(const char *name);
void tp_config_free(tp_config *cfg);
const char *tp_config_name(const tp_config *cfg);           /* the file name given at load */

int tp_config_has(tp_config *cfg, const char *key);
int tp_config_int(tp_config *cfg, const char *key, int64_t default_value, int64_t min, int64_t max, int64_t *out);
int tp_config_double(tp_config *cfg, const char *key, double default_value, double min, double max, double *out);
int tp_config_bool(tp_config *cfg, const char *key, int default_value, int *out);
/* The returned string lives as long as cfg.  default_value may be NULL. */
int tp_config_string(tp_config *cfg, const char *key, const char *default_value, const char **out);
/* One of choices (NULL-terminated); out is the index.  The error lists the choices. */
int tp_config_enum(tp_config *cfg, const char *key, const char *default_value, const char *const *choices, int *out);
/* A string or an array of strings (TencentPretrain writes both "embedding": "word" and ["word", "pos"]).
 * *out is a NULL-terminated array owned by cfg; *count its length. */
int tp_config_strings(tp_config *cfg, const char *key, const char *const **out, int *count);
/* A list of at most `capacity` integers in [min, max] into out; *count 0 when the key is absent. */
int tp_config_ints(tp_config *cfg, const char *key, int64_t min, int64_t max, int64_t *out, int capacity, int *count);
/* Marks keys as accepted-but-unused (e.g. TencentPretrain keys that do not apply). */
void tp_config_ignore(tp_config *cfg, const char *key);

/* Sets key (dotted path, created if absent) from command-line text: a JSON value
 * when the text parses as one (3, 0.1, true, [..], "x"), otherwise the text as a string. */
int tp_config_set(tp_config *cfg, const char *key, const char *value_text);
/* Error naming the first key (in file order, full dotted path) that was never read or ignored. */
int tp_config_check_unused(tp_config *cfg);

/* The object (with any overrides applied) as compact JSON text; free() it. */
char *tp_config_to_json(const tp_config *cfg);
/* Writes the object (with any overrides applied) as pretty JSON to path, atomically. */
int tp_config_save(const tp_config *cfg, const char *path);

#endif
