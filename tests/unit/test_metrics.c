/* core/metrics against scikit-learn, scipy and seqeval: the JSON files in tests/fixtures/metrics/, written by
 * tests/reference/make_metrics_fixture.py.  Values agree to 1e-12 (relative; absolute below 1),
 * counts exactly. */
#include "core/error.h"
#include "core/fileio.h"
#include "core/metrics.h"
#include "support/check.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOLERANCE 1e-12

static cJSON *load_fixture(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/metrics/%s", name);
    char *text = tp_read_file(path, NULL);
    cJSON *json = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!json) {
        fprintf(stderr, "%s: cannot load (run tests/reference/make_metrics_fixture.py)\n", path);
        exit(1);
    }
    return json;
}

static double number(const cJSON *object, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(object, key)->valuedouble;
}

static const cJSON *item(const cJSON *object, const char *key) { return cJSON_GetObjectItemCaseSensitive(object, key); }

static int close_to(double actual, double expected) { return tp_close(actual, expected, TOLERANCE, 1.0); }

static double *numbers(const cJSON *array)
{
    double *values = malloc((size_t)cJSON_GetArraySize(array) * sizeof *values + 1);
    int i = 0;
    for (const cJSON *value = array->child; value; value = value->next) values[i++] = value->valuedouble;
    return values;
}

static void check_confusion_case(const cJSON *c, int index)
{
    int64_t classes = (int64_t)number(c, "classes");
    tp_confusion *confusion = tp_confusion_new(classes);
    for (const cJSON *g = item(c, "gold")->child, *p = item(c, "predicted")->child; g && p; g = g->next, p = p->next)
        CHECK(tp_confusion_add(confusion, g->valueint, p->valueint) == 0);
    int64_t gold = 0;
    for (const cJSON *row = item(c, "confusion")->child; row; row = row->next, gold++) {
        int64_t predicted = 0;
        for (const cJSON *count = row->child; count; count = count->next, predicted++)
            CHECK_MSG(tp_confusion_count(confusion, gold, predicted) == count->valueint, "case %d (%lld, %lld)", index,
                      (long long)gold, (long long)predicted);
    }
    CHECK_MSG(close_to(tp_confusion_accuracy(confusion), number(c, "accuracy")), "case %d", index);
    CHECK_MSG(close_to(tp_confusion_macro_f1(confusion), number(c, "macro_f1")), "case %d: %.17g vs %.17g", index,
              tp_confusion_macro_f1(confusion), number(c, "macro_f1"));
    for (int64_t k = 0; k < classes; k++) {
        tp_class_scores scores = tp_confusion_class(confusion, k);
        CHECK_MSG(close_to(scores.precision, cJSON_GetArrayItem(item(c, "precision"), (int)k)->valuedouble) &&
                      close_to(scores.recall, cJSON_GetArrayItem(item(c, "recall"), (int)k)->valuedouble) &&
                      close_to(scores.f1, cJSON_GetArrayItem(item(c, "f1"), (int)k)->valuedouble) &&
                      scores.support == cJSON_GetArrayItem(item(c, "support"), (int)k)->valueint,
                  "case %d class %lld", index, (long long)k);
    }
    tp_confusion_free(confusion);
}

static void test_classification(void)
{
    cJSON *cases = load_fixture("classification.json");
    int index = 0;
    for (const cJSON *c = cases->child; c; c = c->next) check_confusion_case(c, index++);
    CHECK(index >= 4);
    cJSON_Delete(cases);

    tp_confusion *confusion = tp_confusion_new(3);
    CHECK(tp_confusion_accuracy(confusion) == 0 && tp_confusion_macro_f1(confusion) == 0);
    CHECK(tp_confusion_add(confusion, 3, 0) == -1);
    CHECK(strcmp(tp_last_error(), "confusion matrix: class pair (3, 0) outside 0..2") == 0);
    CHECK(tp_confusion_add(confusion, 0, -1) == -1);
    CHECK(confusion->total == 0);
    tp_confusion_add(confusion, 0, 1);
    char *printed = NULL;
    size_t printed_bytes = 0;
    FILE *out = open_memstream(&printed, &printed_bytes);
    const char *const names[] = {"neg", "neutral", "pos"};
    tp_confusion_print(out, confusion, names);
    fclose(out);
    CHECK(strstr(printed, "neutral") && strstr(printed, "accuracy 0.0000 (1 examples)"));
    free(printed);
    tp_confusion_free(confusion);
}

static void test_regression(void)
{
    cJSON *cases = load_fixture("regression.json");
    int index = 0;
    for (const cJSON *c = cases->child; c; c = c->next, index++) {
        double *x = numbers(item(c, "x")), *y = numbers(item(c, "y"));
        int64_t n = cJSON_GetArraySize(item(c, "x"));
        CHECK_MSG(close_to(tp_pearson(x, y, n), number(c, "pearson")), "case %d: %.17g vs %.17g", index,
                  tp_pearson(x, y, n), number(c, "pearson"));
        CHECK_MSG(close_to(tp_spearman(x, y, n), number(c, "spearman")), "case %d: %.17g vs %.17g", index,
                  tp_spearman(x, y, n), number(c, "spearman"));
        free(x);
        free(y);
    }
    CHECK(index >= 5);
    cJSON_Delete(cases);
    /* scipy: NaN for constant input or a NaN value. */
    const double constant[] = {2, 2, 2}, varying[] = {1, 2, 3}, with_nan[] = {1, NAN, 3};
    CHECK(isnan(tp_pearson(constant, varying, 3)) && isnan(tp_spearman(varying, constant, 3)));
    CHECK(isnan(tp_spearman(with_nan, varying, 3)) && isnan(tp_pearson(varying, varying, 1)));
}

static uint8_t *bits(const cJSON *row, int64_t classes)
{
    uint8_t *values = calloc((size_t)classes, 1);
    int64_t c = 0;
    for (const cJSON *bit = row->child; bit && c < classes; bit = bit->next) values[c++] = (uint8_t)bit->valueint;
    return values;
}

static void test_multilabel(void)
{
    cJSON *cases = load_fixture("multilabel.json");
    int index = 0;
    for (const cJSON *c = cases->child; c; c = c->next, index++) {
        int64_t classes = (int64_t)number(c, "classes");
        tp_multilabel *scores = tp_multilabel_new(classes);
        for (const cJSON *g = item(c, "gold")->child, *p = item(c, "predicted")->child; g && p;
             g = g->next, p = p->next) {
            uint8_t *gold = bits(g, classes), *predicted = bits(p, classes);
            tp_multilabel_add(scores, gold, predicted);
            free(gold);
            free(predicted);
        }
        CHECK_MSG(close_to(tp_multilabel_micro_f1(scores), number(c, "micro_f1")), "case %d", index);
        CHECK_MSG(close_to(tp_multilabel_macro_f1(scores), number(c, "macro_f1")), "case %d: %.17g vs %.17g", index,
                  tp_multilabel_macro_f1(scores), number(c, "macro_f1"));
        CHECK_MSG(close_to(tp_multilabel_subset_accuracy(scores), number(c, "subset_accuracy")), "case %d", index);
        tp_multilabel_free(scores);
    }
    CHECK(index >= 3);
    cJSON_Delete(cases);
}

/* The tags of one sentence as a NULL-padded array of the JSON strings. */
static const char **tags_of(const cJSON *sentence, int64_t *length)
{
    *length = cJSON_GetArraySize(sentence);
    const char **tags = malloc((size_t)(*length + 1) * sizeof *tags);
    int64_t i = 0;
    for (const cJSON *tag = sentence->child; tag; tag = tag->next) tags[i++] = tag->valuestring;
    return tags;
}

static void test_entities(void)
{
    cJSON *cases = load_fixture("entities.json");
    int index = 0;
    for (const cJSON *c = cases->child; c; c = c->next, index++) {
        tp_entity_counts counts = {0};
        for (const cJSON *g = item(c, "gold")->child, *p = item(c, "predicted")->child; g && p;
             g = g->next, p = p->next) {
            int64_t gold_length, predicted_length;
            const char **gold = tags_of(g, &gold_length), **predicted = tags_of(p, &predicted_length);
            CHECK(gold_length == predicted_length);
            tp_entity_add(&counts, gold, predicted, gold_length);
            free(gold);
            free(predicted);
        }
        CHECK_MSG(counts.gold == (int64_t)number(c, "gold_entities") &&
                      counts.predicted == (int64_t)number(c, "predicted_entities") &&
                      counts.correct == (int64_t)number(c, "correct"),
                  "case %d: %lld %lld %lld", index, (long long)counts.gold, (long long)counts.predicted,
                  (long long)counts.correct);
        tp_entity_scores scores = tp_entity_f1(&counts);
        CHECK_MSG(close_to(scores.precision, number(c, "precision")) && close_to(scores.recall, number(c, "recall")) &&
                      close_to(scores.f1, number(c, "f1")),
                  "case %d", index);
    }
    CHECK(index >= 60);
    cJSON_Delete(cases);
}

int main(void)
{
    test_classification();
    test_regression();
    test_multilabel();
    test_entities();
    return tp_test_finish("test_metrics");
}
