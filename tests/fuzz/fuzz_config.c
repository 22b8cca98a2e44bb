/* libFuzzer harness for core/config: parses the input as a config, overrides keys
 * with the input as command-line text, reads keys with every getter and looks for
 * unused keys.  Crashes, sanitizer reports and leaks are the failures; it also
 * aborts when the strict syntax check passes text that cJSON then refuses (the
 * check must accept only what cJSON parses) and when tp_config_to_json writes
 * text that tp_config_parse refuses.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. core/config.c core/error.c \
 *         core/fileio.c tests/fuzz/fuzz_config.c -lcjson -lm -o fuzz_config
 *   ./fuzz_config -max_total_time=180 tests/fuzz/corpus/config */
#include "core/config.h"
#include "core/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const keys[] = {"a", "b", "a.b", "a.b.c", "emb", "layers", "optimizer.learning_rate", "set.value", NULL};
static const char *const choices[] = {"gelu", "relu", "a", NULL};

static void read_all(tp_config *cfg)
{
    for (int i = 0; keys[i]; i++) {
        int64_t integer;
        double real;
        int flag, index, count;
        const char *text;
        const char *const *list;
        tp_config_has(cfg, keys[i]);
        tp_config_int(cfg, keys[i], 1, -1000, 1000, &integer);
        tp_config_double(cfg, keys[i], 0.5, -1e9, 1e9, &real);
        tp_config_bool(cfg, keys[i], 0, &flag);
        if (tp_config_string(cfg, keys[i], NULL, &text) == 0 && text) (void)strlen(text);
        tp_config_enum(cfg, keys[i], "gelu", choices, &index);
        if (tp_config_strings(cfg, keys[i], &list, &count) == 0)
            for (int k = 0; k < count; k++) (void)strlen(list[k]);
    }
}

/* "fuzz.json: line L, column C: cJSON could not parse ..." -- matched on its fixed
 * start, since other messages quote the input, which may hold the same words. */
static int cjson_refused_checked_text(const char *message)
{
    static const char start[] = "fuzz.json: line ";
    if (strncmp(message, start, sizeof start - 1) != 0) return 0;
    const char *column = strstr(message, ", column ");
    const char *problem = column ? strstr(column, ": ") : NULL;
    return problem && strncmp(problem + 2, "cJSON could not parse", 21) == 0;
}

/* What tp writes, tp must read back: strict JSON, no duplicates, within the nesting limit. */
static void reparse_output(const tp_config *cfg)
{
    char *json = tp_config_to_json(cfg);
    if (!json) abort();
    tp_config *again = tp_config_parse("fuzz-output.json", json);
    if (!again) abort();
    tp_config_free(again);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    tp_config *cfg = tp_config_parse("fuzz.json", text);
    if (!cfg) {
        if (cjson_refused_checked_text(tp_last_error())) abort();
        cfg = tp_config_new_empty("fuzz.json");
    }
    const char *before = NULL;
    tp_config_string(cfg, "a", NULL, &before);
    read_all(cfg);
    tp_config_check_unused(cfg);
    tp_config_set(cfg, "a", text); /* replaces a value handed out above */
    tp_config_set(cfg, "set.value", text);
    if (before) (void)strlen(before); /* must still be readable */
    read_all(cfg);
    tp_config_ignore(cfg, "b");
    tp_config_check_unused(cfg);
    reparse_output(cfg);
    tp_config_free(cfg);
    free(text);
    return 0;
}
