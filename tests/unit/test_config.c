/* core/config: every getter's success and failure path with its exact message,
 * used-key tracking, command-line overrides, save/reload, and the strictness
 * rules (parse errors with line and column, duplicate keys, NUL bytes, invalid
 * UTF-8, deep nesting).
 *
 * Expected line/column positions were worked out by hand from the text.  For the
 * structural errors (missing ',' ':' or value, bad key, bad escape, unterminated
 * string, control character, trailing data) they agree with Python's json module
 * (JSONDecodeError.lineno/colno), an independent parser; for a malformed number
 * tp points at its first character where Python points after its valid prefix,
 * and Python accepts NaN and Infinity, which JSON does not. */
#include "core/config.h"
#include "core/error.h"
#include "core/fileio.h"
#include "support/check.h"
#include "support/scratch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK_ERROR(expected)                                                                                  \
    CHECK_MSG(strcmp(tp_last_error(), (expected)) == 0, "\n  got:  %s\n  want: %s", tp_last_error(), (expected))

static tp_config *parse(const char *text)
{
    tp_config *cfg = tp_config_parse("c.json", text);
    CHECK_MSG(cfg != NULL, "parse failed: %s", tp_last_error());
    if (!cfg) exit(1);
    return cfg;
}

/* Parsing must fail with exactly this message. */
static void check_parse_error(const char *text, const char *expected)
{
    tp_config *cfg = tp_config_parse("c.json", text);
    CHECK_MSG(cfg == NULL, "parsed: %s", text);
    CHECK_ERROR(expected);
    tp_config_free(cfg);
}

static void test_int(void)
{
    tp_config *cfg = parse("{\"n\": 12, \"s\": \"12\", \"f\": 1.5, \"e\": 1e3, \"neg\": -7, \"zero\": 0,"
                           " \"big\": 9007199254740992, \"huge\": 9007199254740994, \"b\": true, \"l\": [1]}");
    int64_t value = -1;
    CHECK(tp_config_int(cfg, "n", 5, 1, 1024, &value) == 0 && value == 12);
    CHECK(tp_config_int(cfg, "absent", 5, 1, 1024, &value) == 0 && value == 5);
    CHECK(tp_config_int(cfg, "e", 5, 1, 1024, &value) == 0 && value == 1000);
    CHECK(tp_config_int(cfg, "neg", 0, -7, 7, &value) == 0 && value == -7);
    CHECK(tp_config_int(cfg, "big", 0, INT64_MIN, INT64_MAX, &value) == 0 && value == 9007199254740992);
    value = 99;
    CHECK(tp_config_int(cfg, "s", 5, 1, 1024, &value) == -1 && value == 99);
    CHECK_ERROR("c.json: key 's': expected an integer, got a string (\"12\")");
    CHECK(tp_config_int(cfg, "f", 5, 1, 1024, &value) == -1);
    CHECK_ERROR("c.json: key 'f': expected an integer, got 1.5");
    CHECK(tp_config_int(cfg, "zero", 5, 1, 1024, &value) == -1);
    CHECK_ERROR("c.json: key 'zero': value 0 out of range [1, 1024]");
    CHECK(tp_config_int(cfg, "n", 5, 1, 11, &value) == -1);
    CHECK_ERROR("c.json: key 'n': value 12 out of range [1, 11]");
    CHECK(tp_config_int(cfg, "n", 5, 12, 12, &value) == 0 && value == 12); /* bounds are inclusive */
    CHECK(tp_config_int(cfg, "huge", 0, INT64_MIN, INT64_MAX, &value) == -1);
    CHECK_ERROR("c.json: key 'huge': integer 9007199254740994 too large to be exact (limit: magnitude 2^53)");
    CHECK(tp_config_int(cfg, "b", 0, 0, 1, &value) == -1);
    CHECK_ERROR("c.json: key 'b': expected an integer, got true");
    CHECK(tp_config_int(cfg, "l", 0, 0, 1, &value) == -1);
    CHECK_ERROR("c.json: key 'l': expected an integer, got a list");
    CHECK(tp_config_int(cfg, "a..b", 0, 0, 1, &value) == -1);
    CHECK_ERROR("c.json: invalid key path 'a..b'");
    tp_config_free(cfg);
}

static void test_double(void)
{
    tp_config *cfg = parse("{\"lr\": 3e-4, \"i\": 2, \"s\": \"0.1\", \"n\": null, \"o\": {}}");
    double value = -1;
    CHECK(tp_config_double(cfg, "lr", 0.1, 0, 1, &value) == 0 && value == 3e-4);
    CHECK(tp_config_double(cfg, "i", 0.1, 0, 10, &value) == 0 && value == 2.0);
    CHECK(tp_config_double(cfg, "absent", 0.25, 0, 1, &value) == 0 && value == 0.25);
    CHECK(tp_config_double(cfg, "s", 0.1, 0, 1, &value) == -1);
    CHECK_ERROR("c.json: key 's': expected a number, got a string (\"0.1\")");
    CHECK(tp_config_double(cfg, "n", 0.1, 0, 1, &value) == -1);
    CHECK_ERROR("c.json: key 'n': expected a number, got null");
    CHECK(tp_config_double(cfg, "o", 0.1, 0, 1, &value) == -1);
    CHECK_ERROR("c.json: key 'o': expected a number, got an object");
    CHECK(tp_config_double(cfg, "i", 0.1, 0, 1.5, &value) == -1);
    CHECK_ERROR("c.json: key 'i': value 2 out of range [0, 1.5]");
    CHECK(tp_config_double(cfg, "lr", 0.1, 0.001, 1, &value) == -1);
    CHECK_ERROR("c.json: key 'lr': value 0.0003 out of range [0.001, 1]");
    tp_config_free(cfg);
}

static void test_bool_and_string(void)
{
    tp_config *cfg = parse("{\"t\": true, \"f\": false, \"one\": 1, \"st\": \"true\", \"name\": \"bert\","
                           " \"long\": \"0123456789012345678901234567890123456789abc\"}");
    int flag = -1;
    CHECK(tp_config_bool(cfg, "t", 0, &flag) == 0 && flag == 1);
    CHECK(tp_config_bool(cfg, "f", 1, &flag) == 0 && flag == 0);
    CHECK(tp_config_bool(cfg, "absent", 1, &flag) == 0 && flag == 1);
    CHECK(tp_config_bool(cfg, "one", 0, &flag) == -1);
    CHECK_ERROR("c.json: key 'one': expected true or false, got 1");
    CHECK(tp_config_bool(cfg, "st", 0, &flag) == -1);
    CHECK_ERROR("c.json: key 'st': expected true or false, got a string (\"true\")");

    const char *text = NULL;
    CHECK(tp_config_string(cfg, "name", NULL, &text) == 0 && text && strcmp(text, "bert") == 0);
    CHECK(tp_config_string(cfg, "absent", "dflt", &text) == 0 && text && strcmp(text, "dflt") == 0);
    CHECK(tp_config_string(cfg, "absent", NULL, &text) == 0 && text == NULL);
    CHECK(tp_config_string(cfg, "t", NULL, &text) == -1);
    CHECK_ERROR("c.json: key 't': expected a string, got true");
    CHECK(tp_config_int(cfg, "long", 0, 0, 1, &(int64_t){0}) == -1); /* long strings are cut in messages */
    CHECK_ERROR("c.json: key 'long': expected an integer, got a string (\"0123456789012345678901234567890123456789...\")");
    tp_config_free(cfg);
}

static void test_enum(void)
{
    static const char *const activations[] = {"gelu", "gelu_fast", "relu", "silu", NULL};
    tp_config *cfg = parse("{\"act\": \"relu\", \"typo\": \"gleu\", \"num\": 3, \"case\": \"GELU\"}");
    int index = -5;
    CHECK(tp_config_enum(cfg, "act", "gelu", activations, &index) == 0 && index == 2);
    CHECK(tp_config_enum(cfg, "absent", "silu", activations, &index) == 0 && index == 3);
    CHECK(tp_config_enum(cfg, "absent", NULL, activations, &index) == 0 && index == -1);
    CHECK(tp_config_enum(cfg, "typo", "gelu", activations, &index) == -1);
    CHECK_ERROR("c.json: key 'typo': unknown value 'gleu' (expected one of: gelu, gelu_fast, relu, silu)");
    CHECK(tp_config_enum(cfg, "case", "gelu", activations, &index) == -1);
    CHECK_ERROR("c.json: key 'case': unknown value 'GELU' (expected one of: gelu, gelu_fast, relu, silu)");
    CHECK(tp_config_enum(cfg, "num", "gelu", activations, &index) == -1);
    CHECK_ERROR("c.json: key 'num': expected one of: gelu, gelu_fast, relu, silu; got 3");
    CHECK(tp_config_enum(cfg, "absent", "tanh", activations, &index) == -1);
    CHECK_ERROR("c.json: key 'absent': the default 'tanh' is not one of: gelu, gelu_fast, relu, silu");
    tp_config_free(cfg);
}

static void test_strings(void)
{
    tp_config *cfg = parse("{\"one\": \"word\", \"two\": [\"word\", \"pos\"], \"none\": [], \"bad\": [\"word\", 3],"
                           " \"num\": 3}");
    const char *const *list = NULL;
    int count = -1;
    CHECK(tp_config_strings(cfg, "one", &list, &count) == 0 && count == 1);
    CHECK(list && strcmp(list[0], "word") == 0 && list[1] == NULL);
    CHECK(tp_config_strings(cfg, "two", &list, &count) == 0 && count == 2);
    CHECK(list && strcmp(list[0], "word") == 0 && strcmp(list[1], "pos") == 0 && list[2] == NULL);
    CHECK(tp_config_strings(cfg, "none", &list, &count) == 0 && count == 0 && list && list[0] == NULL);
    CHECK(tp_config_strings(cfg, "absent", &list, &count) == 0 && count == 0 && list && list[0] == NULL);
    CHECK(tp_config_strings(cfg, "bad", &list, &count) == -1);
    CHECK_ERROR("c.json: key 'bad[1]': expected a string, got 3");
    CHECK(tp_config_strings(cfg, "num", &list, &count) == -1);
    CHECK_ERROR("c.json: key 'num': expected a string or a list of strings, got 3");
    tp_config_free(cfg);
}

static void test_nested_keys(void)
{
    tp_config *cfg = parse("{\"optimizer\": {\"name\": \"adamw\", \"betas\": {\"b1\": 0.9}}, \"lr\": 0.5}");
    double value = 0;
    CHECK(tp_config_double(cfg, "optimizer.betas.b1", 0, 0, 1, &value) == 0 && value == 0.9);
    CHECK(tp_config_double(cfg, "optimizer.betas.b2", 0.999, 0, 1, &value) == 0 && value == 0.999);
    CHECK(tp_config_double(cfg, "missing.b2", 0.5, 0, 1, &value) == 0 && value == 0.5);
    CHECK(tp_config_has(cfg, "optimizer.name") == 1);
    CHECK(tp_config_has(cfg, "optimizer") == 1);
    CHECK(tp_config_has(cfg, "optimizer.nam") == 0);
    CHECK(tp_config_has(cfg, "lr.x") == 0);
    CHECK(tp_config_double(cfg, "lr.x", 0, 0, 1, &value) == -1);
    CHECK_ERROR("c.json: key 'lr': expected an object, got 0.5 (needed for 'lr.x')");
    CHECK(tp_config_double(cfg, "optimizer.name.x", 0, 0, 1, &value) == -1);
    CHECK_ERROR("c.json: key 'optimizer.name': expected an object, got a string (\"adamw\") (needed for 'optimizer.name.x')");
    CHECK(tp_config_double(cfg, "optimizer.", 0, 0, 1, &value) == -1);
    CHECK_ERROR("c.json: invalid key path 'optimizer.'");
    tp_config_free(cfg);
}

static void test_unused(void)
{
    const char *text = "{\"layers\": 2, \"optimizer\": {\"name\": \"adamw\", \"lerning_rate\": 0.1, \"zz\": 1},"
                       " \"unrelated\": {\"a\": 1}, \"dropout\": 0.1}";
    tp_config *cfg = parse(text);
    int64_t layers;
    const char *name;
    double lr;
    CHECK(tp_config_int(cfg, "layers", 1, 1, 100, &layers) == 0);
    CHECK(tp_config_string(cfg, "optimizer.name", NULL, &name) == 0);
    CHECK(tp_config_double(cfg, "optimizer.learning_rate", 1e-3, 0, 1, &lr) == 0 && lr == 1e-3);
    /* depth first in file order: optimizer's members come before 'unrelated' */
    CHECK(tp_config_check_unused(cfg) == -1);
    CHECK_ERROR("c.json: key 'optimizer.lerning_rate': unknown key (did you mean 'optimizer.learning_rate'?)");
    tp_config_ignore(cfg, "optimizer.lerning_rate");
    CHECK(tp_config_check_unused(cfg) == -1);
    CHECK_ERROR("c.json: key 'optimizer.zz': unknown key"); /* no name within distance 2 */
    tp_config_ignore(cfg, "optimizer.zz");
    CHECK(tp_config_check_unused(cfg) == -1);
    CHECK_ERROR("c.json: key 'unrelated': unknown key");
    tp_config_ignore(cfg, "unrelated"); /* ignoring an object accepts everything inside it */
    CHECK(tp_config_check_unused(cfg) == -1);
    CHECK_ERROR("c.json: key 'dropout': unknown key");
    CHECK(tp_config_has(cfg, "dropout") == 1); /* has() does not count as reading */
    CHECK(tp_config_check_unused(cfg) == -1);
    tp_config_ignore(cfg, "dropout");
    CHECK(tp_config_check_unused(cfg) == 0);
    tp_config_free(cfg);

    /* A misspelt object name is suggested from a key path asked for inside it. */
    cfg = parse("{\"optimiser\": {\"lr\": 1}}");
    CHECK(tp_config_double(cfg, "optimizer.lr", 0.1, 0, 1, &lr) == 0 && lr == 0.1);
    CHECK(tp_config_check_unused(cfg) == -1);
    CHECK_ERROR("c.json: key 'optimiser': unknown key (did you mean 'optimizer'?)");
    tp_config_free(cfg);

    /* A failed read still marks the key: the error was already reported. */
    cfg = parse("{\"hidden_size\": \"x\", \"hiden\": 1, \"emb_size\": 1}");
    CHECK(tp_config_int(cfg, "hidden_size", 1, 1, 8, &layers) == -1);
    CHECK(tp_config_int(cfg, "emb_szie", 1, 1, 8, &layers) == 0); /* a swap of neighbours is one edit */
    CHECK(tp_config_check_unused(cfg) == -1);
    CHECK_ERROR("c.json: key 'hiden': unknown key"); /* 'hidden_size' is 6 edits away */
    tp_config_ignore(cfg, "hiden");
    CHECK(tp_config_check_unused(cfg) == -1);
    CHECK_ERROR("c.json: key 'emb_size': unknown key (did you mean 'emb_szie'?)");
    tp_config_free(cfg);

    /* Lists are leaves: reading one accepts what is inside it. */
    cfg = parse("{\"list\": [{\"x\": 1}, 2], \"a.b\": 1}");
    const char *const *strings;
    int count;
    CHECK(tp_config_strings(cfg, "list", &strings, &count) == -1);
    CHECK(tp_config_check_unused(cfg) == -1);
    CHECK_ERROR("c.json: key 'a.b': unknown key"); /* a name with a dot cannot be addressed */
    tp_config_free(cfg);
}

static void test_set(void)
{
    tp_config *cfg = parse("{\"layers\": 2, \"name\": \"old\", \"optimizer\": {\"lr\": 0.1}, \"seq\": 128}");
    const char *old_name = NULL;
    CHECK(tp_config_string(cfg, "name", NULL, &old_name) == 0);

    CHECK(tp_config_set(cfg, "layers", "12") == 0);
    CHECK(tp_config_set(cfg, "optimizer.lr", "3e-4") == 0);
    CHECK(tp_config_set(cfg, "optimizer.schedule.warmup", "0.1") == 0); /* creates 'schedule' */
    CHECK(tp_config_set(cfg, "name", "new") == 0);                     /* not JSON: a string */
    CHECK(tp_config_set(cfg, "quoted", "\"12\"") == 0);
    CHECK(tp_config_set(cfg, "leading_zero", "007") == 0); /* not strict JSON: a string */
    CHECK(tp_config_set(cfg, "emb", "[\"word\", \"pos\"]") == 0);
    CHECK(tp_config_set(cfg, "flag", "true") == 0);
    CHECK(tp_config_set(cfg, "seq", "{\"len\": 512}") == 0); /* type change: number -> object */
    CHECK(strcmp(old_name, "old") == 0);                     /* pointers handed out stay valid */

    int64_t layers = 0, len = 0;
    double lr = 0, warmup = 0;
    const char *text = NULL;
    int flag = 0, count = 0;
    const char *const *list = NULL;
    CHECK(tp_config_int(cfg, "layers", 1, 1, 100, &layers) == 0 && layers == 12);
    CHECK(tp_config_double(cfg, "optimizer.lr", 0, 0, 1, &lr) == 0 && lr == 3e-4);
    CHECK(tp_config_double(cfg, "optimizer.schedule.warmup", 0, 0, 1, &warmup) == 0 && warmup == 0.1);
    CHECK(tp_config_string(cfg, "name", NULL, &text) == 0 && strcmp(text, "new") == 0);
    CHECK(tp_config_string(cfg, "quoted", NULL, &text) == 0 && strcmp(text, "12") == 0);
    CHECK(tp_config_string(cfg, "leading_zero", NULL, &text) == 0 && strcmp(text, "007") == 0);
    CHECK(tp_config_strings(cfg, "emb", &list, &count) == 0 && count == 2 && strcmp(list[1], "pos") == 0);
    CHECK(tp_config_bool(cfg, "flag", 0, &flag) == 0 && flag == 1);
    CHECK(tp_config_int(cfg, "seq.len", 1, 1, 4096, &len) == 0 && len == 512);
    CHECK(tp_config_check_unused(cfg) == 0);

    /* An override nobody reads is an unknown key like any other. */
    CHECK(tp_config_set(cfg, "optimizer.lerning_rate", "0.1") == 0);
    CHECK(tp_config_check_unused(cfg) == -1);
    CHECK_ERROR("c.json: key 'optimizer.lerning_rate': unknown key");

    CHECK(tp_config_set(cfg, "layers.x", "1") == -1);
    CHECK_ERROR("c.json: key 'layers': expected an object, got 12 (needed for 'layers.x')");
    CHECK(tp_config_set(cfg, "", "1") == -1);
    CHECK_ERROR("c.json: invalid key path ''");
    CHECK(tp_config_set(cfg, "d", "{\"a\": 1, \"a\": 2}") == -1);
    CHECK_ERROR("c.json: key 'd.a': duplicate key");
    CHECK(tp_config_set(cfg, "inf", "1e999") == -1);
    CHECK_ERROR("c.json: key 'inf': number out of range (overflows a double)");
    CHECK(tp_config_set(cfg, "bad", "\xff") == -1);
    CHECK_ERROR("c.json: key 'bad': value is not valid UTF-8");
    CHECK(tp_config_has(cfg, "d") == 0 && tp_config_has(cfg, "inf") == 0);
    tp_config_free(cfg);

    cfg = tp_config_new_empty("cli");
    CHECK(strcmp(tp_config_name(cfg), "cli") == 0);
    CHECK(tp_config_set(cfg, "a.b.c", "1") == 0 && tp_config_has(cfg, "a.b.c") == 1);
    tp_config_free(cfg);
}

static void test_save_reload(void)
{
    tp_config *cfg = parse("{\"name\": \"caf\\u00e9 \\\"q\\\"\", \"lr\": 0.0001, \"n\": -3, \"big\": 1e300,"
                           " \"emb\": [\"word\", \"pos\"], \"opt\": {\"betas\": [0.9, 0.999], \"on\": true},"
                           " \"nothing\": null, \"last\": 1}");
    CHECK(tp_config_set(cfg, "lr", "0.1") == 0);
    CHECK(tp_config_set(cfg, "opt.eps", "1e-8") == 0);
    const char *path = tp_scratch_path("saved.json");
    CHECK(tp_config_save(cfg, path) == 0);
    tp_config_free(cfg);

    /* the override kept its place in the file */
    char *saved = tp_read_file(path, NULL);
    CHECK(saved && strstr(saved, "\"lr\"") && strstr(saved, "\"n\"") && strstr(saved, "\"lr\"") < strstr(saved, "\"n\""));
    free(saved);

    cfg = tp_config_load(path);
    CHECK_MSG(cfg != NULL, "%s", tp_last_error());
    if (!cfg) return;
    const char *name = NULL;
    double lr = 0, big = 0, eps = 0;
    int64_t n = 0;
    int on = 0, count = 0;
    const char *const *emb = NULL;
    CHECK(tp_config_string(cfg, "name", NULL, &name) == 0 && strcmp(name, "caf\xc3\xa9 \"q\"") == 0);
    CHECK(tp_config_double(cfg, "lr", 0, 0, 1, &lr) == 0 && lr == 0.1);
    CHECK(tp_config_int(cfg, "n", 0, -10, 10, &n) == 0 && n == -3);
    CHECK(tp_config_double(cfg, "big", 0, 0, 1e308, &big) == 0 && big == 1e300);
    CHECK(tp_config_strings(cfg, "emb", &emb, &count) == 0 && count == 2 && strcmp(emb[0], "word") == 0);
    CHECK(tp_config_bool(cfg, "opt.on", 0, &on) == 0 && on == 1);
    CHECK(tp_config_double(cfg, "opt.eps", 0, 0, 1, &eps) == 0 && eps == 1e-8);
    tp_config_ignore(cfg, "opt.betas");
    tp_config_ignore(cfg, "nothing");
    CHECK(tp_config_check_unused(cfg) == -1);
    CHECK_MSG(strstr(tp_last_error(), "key 'last': unknown key") != NULL, "%s", tp_last_error());
    tp_config_free(cfg);

    cfg = parse("{ \"a\": 1, \"b\": [1, 2.5], \"c\": {\"d\": \"x\\ny\"}, \"e\": null }");
    CHECK(tp_config_set(cfg, "c.e", "false") == 0);
    char *compact = tp_config_to_json(cfg);
    CHECK_MSG(compact && strcmp(compact, "{\"a\":1,\"b\":[1,2.5],\"c\":{\"d\":\"x\\ny\",\"e\":false},\"e\":null}") == 0, "%s",
              compact ? compact : "(null)");
    free(compact);
    tp_config_free(cfg);

    const char *missing_dir = tp_scratch_path("no/such/dir/x.json");
    cfg = tp_config_new_empty("x");
    CHECK(tp_config_save(cfg, missing_dir) == -1);
    CHECK(strstr(tp_last_error(), "No such file or directory") != NULL);
    tp_config_free(cfg);
}

static void test_syntax_errors(void)
{
    check_parse_error("{\n  \"a\": 1,\n  \"b\": }\n", "c.json: line 3, column 8: invalid JSON near '}'");
    check_parse_error("{\"a\": 1,}", "c.json: line 1, column 9: expected a key in quotes near '}'");
    check_parse_error("{\"a\" 1}", "c.json: line 1, column 6: expected ':' near '1}'");
    check_parse_error("{\"a\": 1 \"b\": 2}", "c.json: line 1, column 9: expected ',' or '}' near '\"b\": 2}'");
    check_parse_error("{\"a\": [1 2]}", "c.json: line 1, column 10: expected ',' or ']' near '2]}'");
    check_parse_error("{a: 1}", "c.json: line 1, column 2: expected a key in quotes near 'a: 1}'");
    check_parse_error("{\"a\": 1", "c.json: line 1, column 8: unexpected end of file");
    check_parse_error("{\"a\": 1} x", "c.json: line 1, column 10: invalid JSON near 'x'");
    check_parse_error("{\"a\": NaN}", "c.json: line 1, column 7: invalid JSON near 'NaN}'");
    check_parse_error("{\"a\": Infinity}", "c.json: line 1, column 7: invalid JSON near 'Infinity}'");
    check_parse_error("{\"a\": -Infinity}", "c.json: line 1, column 7: invalid JSON number near '-Infinity}'");
    check_parse_error("{\"a\": 007}", "c.json: line 1, column 7: invalid JSON number near '007}'");
    check_parse_error("{\"a\": 1.}", "c.json: line 1, column 7: invalid JSON number near '1.}'");
    check_parse_error("{\"a\": .5}", "c.json: line 1, column 7: invalid JSON near '.5}'");
    check_parse_error("{\"a\": +1}", "c.json: line 1, column 7: invalid JSON near '+1}'");
    check_parse_error("{\"a\": tru}", "c.json: line 1, column 7: invalid JSON near 'tru}'");
    check_parse_error("{\"a\": 'x'}", "c.json: line 1, column 7: invalid JSON near ''x'}'");
    /* columns count characters: the e-acute is two bytes */
    check_parse_error("{\"caf\xc3\xa9\": [1,]}", "c.json: line 1, column 13: invalid JSON near ']}'");
    check_parse_error("{\"a\": \"abc}", "c.json: line 1, column 7: unterminated string");
    check_parse_error("{\"a\": \"x\ny\"}", "c.json: line 1, column 9: control character 0x0a in a string (write it as an escape, e.g. \\n)");
    check_parse_error("{\"a\": \"\\q\"}", "c.json: line 1, column 8: invalid escape sequence near '\\q\"}'");
    check_parse_error("{\"a\": \"\\u12G4\"}", "c.json: line 1, column 8: invalid escape sequence near '\\u12G4\"}'");
    check_parse_error("{\"a\": \"\\uD800x\"}", "c.json: line 1, column 8: invalid escape sequence near '\\uD800x\"}'");
    check_parse_error("{\"a\": \"x\\u0000y\"}", "c.json: line 1, column 9: \\u0000 in a string (NUL is not allowed)");
    check_parse_error("{\"a\":\x01 1}", "c.json: line 1, column 6: invalid character 0x01");
    check_parse_error("{\"a\": 1e999}", "c.json: key 'a': number out of range (overflows a double)");
    check_parse_error("{\"a\": {\"b\": [0, 1e400]}}", "c.json: key 'a.b[1]': number out of range (overflows a double)");

    char long_number[200] = "{\"a\": 1";
    memset(long_number + strlen(long_number), '0', 70);
    strcat(long_number, "}");
    check_parse_error(long_number, "c.json: line 1, column 7: number longer than 63 characters");

    /* valid JSON that cJSON alone would get wrong or refuse stays accepted */
    tp_config *cfg = parse("\xEF\xBB\xBF{\"pair\": \"\\uD83D\\uDE00\", \"e\": -0.5E+2}");
    const char *text = NULL;
    double value = 0;
    CHECK(tp_config_string(cfg, "pair", NULL, &text) == 0 && strcmp(text, "\xF0\x9F\x98\x80") == 0);
    CHECK(tp_config_double(cfg, "e", 0, -100, 0, &value) == 0 && value == -50);
    tp_config_free(cfg);
}

static void test_structure_errors(void)
{
    check_parse_error("", "c.json: empty file (expected a JSON object)");
    check_parse_error(" \n\t\r\n", "c.json: empty file (expected a JSON object)");
    check_parse_error("[1, 2]", "c.json: expected a JSON object at the top level, got a list");
    check_parse_error("\"x\"", "c.json: expected a JSON object at the top level, got a string (\"x\")");
    check_parse_error("{\"a\": 1, \"b\": 2, \"a\": 3}", "c.json: key 'a': duplicate key");
    check_parse_error("{\"m\": {\"x\": 1, \"y\": {}, \"x\": {}}}", "c.json: key 'm.x': duplicate key");
    check_parse_error("{\"l\": [{}, {\"k\": 1, \"k\": 1}]}", "c.json: key 'l[1].k': duplicate key");
    check_parse_error("{\"s\": \"ok\", \"t\": \"\xc3\x28\"}", "c.json: key 't': string is not valid UTF-8");
    check_parse_error("{\"o\": {\"s\": [\"a\", \"\xed\xa0\x80\"]}}", "c.json: key 'o.s[1]': string is not valid UTF-8");
    check_parse_error("{\"o\": {\"k\xff\": 1}}", "c.json: key 'o.k\\xff': key name is not valid UTF-8");
    check_parse_error("{\"s\": \"\xc0\xaf\"}", "c.json: key 's': string is not valid UTF-8"); /* overlong '/' */
    check_parse_error("{\"s\": \"\xf4\x90\x80\x80\"}", "c.json: key 's': string is not valid UTF-8"); /* > U+10FFFF */

    /* 100000 '[': an error at the first level too deep, not a stack overflow */
    size_t depth = 100000;
    char *deep = malloc(depth + 16);
    strcpy(deep, "{\"a\": ");
    memset(deep + 6, '[', depth);
    deep[6 + depth] = '\0';
    check_parse_error(deep, "c.json: line 1, column 1006: nested deeper than 1000 levels");
    /* exactly the limit is fine: the root object plus 999 lists */
    memset(deep + 6, '[', 999);
    memset(deep + 6 + 999, ']', 999);
    strcpy(deep + 6 + 2 * 999, "}");
    tp_config *cfg = parse(deep);
    tp_config_ignore(cfg, "a");
    CHECK(tp_config_check_unused(cfg) == 0);
    /* ... and an override may not push the nesting past it */
    deep[6 + 2 * 999] = '\0'; /* deep + 6 is now just the 999 lists */
    CHECK(tp_config_set(cfg, "x", deep + 6) == 0); /* root + 999 lists: 1000 */
    CHECK(tp_config_set(cfg, "y.z", deep + 6) == -1);
    CHECK_ERROR("c.json: key 'y.z': value would nest deeper than 1000 levels");
    tp_config_free(cfg);
    free(deep);

    /* a key longer than 4 KB works like any other */
    size_t key_length = 5000;
    char *long_key = malloc(key_length + 1);
    memset(long_key, 'k', key_length);
    long_key[key_length] = '\0';
    char *long_text = malloc(key_length + 32);
    snprintf(long_text, key_length + 32, "{\"%s\": 7, \"other\": 1}", long_key);
    cfg = parse(long_text);
    int64_t value = 0;
    CHECK(tp_config_int(cfg, long_key, 0, 0, 10, &value) == 0 && value == 7);
    CHECK(tp_config_check_unused(cfg) == -1);
    CHECK_ERROR("c.json: key 'other': unknown key");
    tp_config_free(cfg);
    free(long_key);
    free(long_text);
}

static void test_files(void)
{
    const char *path = tp_scratch_write("ok.json", "{\"a\": 1}\n", 9);
    tp_config *cfg = tp_config_load(path);
    CHECK_MSG(cfg != NULL, "%s", tp_last_error());
    if (cfg) {
        CHECK(strcmp(tp_config_name(cfg), path) == 0);
        tp_config_free(cfg);
    }

    char expected[512];
    const char *missing = tp_scratch_path("missing.json");
    CHECK(tp_config_load(missing) == NULL);
    snprintf(expected, sizeof expected, "%s: No such file or directory", missing);
    CHECK_ERROR(expected);

    path = tp_scratch_write("empty.json", "", 0);
    CHECK(tp_config_load(path) == NULL);
    snprintf(expected, sizeof expected, "%s: empty file (expected a JSON object)", path);
    CHECK_ERROR(expected);

    static const char with_nul[] = "{\"a\": 1,\n \"b\": \"x\0y\"}";
    path = tp_scratch_write("nul.json", with_nul, sizeof with_nul - 1);
    CHECK(tp_config_load(path) == NULL);
    snprintf(expected, sizeof expected, "%s: line 2, column 9: NUL byte in the file", path);
    CHECK_ERROR(expected);

    static const char trailing_nul[] = "{\"a\": 1}\0";
    path = tp_scratch_write("trailing_nul.json", trailing_nul, sizeof trailing_nul - 1);
    CHECK(tp_config_load(path) == NULL);
    snprintf(expected, sizeof expected, "%s: line 1, column 9: NUL byte in the file", path);
    CHECK_ERROR(expected);

    static const char bad[] = "{\n\"a\": [1, 2,, 3]\n}\n";
    path = tp_scratch_write("bad.json", bad, sizeof bad - 1);
    CHECK(tp_config_load(path) == NULL);
    snprintf(expected, sizeof expected, "%s: line 2, column 12: invalid JSON near ', 3]'", path);
    CHECK_ERROR(expected);
}

int main(void)
{
    tp_scratch_init("config");
    test_int();
    test_double();
    test_bool_and_string();
    test_enum();
    test_strings();
    test_nested_keys();
    test_unused();
    test_set();
    test_save_reload();
    test_syntax_errors();
    test_structure_errors();
    test_files();
    return tp_test_finish("test_config");
}
