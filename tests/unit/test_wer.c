/* tp_wer against jiwer 3.0.5: tests/fixtures/metrics/wer.json, written by
 * tests/reference/make_wer_fixture.py (edge cases and seeded random corpora).  The error count must
 * equal jiwer's substitutions + deletions + insertions exactly, the rate agree to 1e-12. */
#include "core/error.h"
#include "core/fileio.h"
#include "core/metrics.h"
#include "support/check.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

#define FIXTURE "tests/fixtures/metrics/wer.json"

static double number(const cJSON *object, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
    return cJSON_IsNumber(item) ? item->valuedouble : NAN;
}

static void check_case(const cJSON *c)
{
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "name"));
    const cJSON *references = cJSON_GetObjectItemCaseSensitive(c, "references");
    const cJSON *hypotheses = cJSON_GetObjectItemCaseSensitive(c, "hypotheses");
    CHECK_MSG(cJSON_GetArraySize(references) == cJSON_GetArraySize(hypotheses), "%s: list lengths differ", name);
    tp_wer_counts counts = {0, 0};
    for (int i = 0; i < cJSON_GetArraySize(references); i++)
        tp_wer_add(&counts, cJSON_GetArrayItem(references, i)->valuestring, cJSON_GetArrayItem(hypotheses, i)->valuestring);
    double errors = number(c, "substitutions") + number(c, "deletions") + number(c, "insertions");
    CHECK_MSG((double)counts.errors == errors, "%s: %lld word errors, jiwer %g", name, (long long)counts.errors, errors);
    CHECK_MSG(fabs(tp_wer(&counts) - number(c, "wer")) <= 1e-12, "%s: WER %.15g, jiwer %.15g", name, tp_wer(&counts),
              number(c, "wer"));
}

int main(void)
{
    char *text = tp_read_file(FIXTURE, NULL);
    cJSON *json = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK_MSG(json != NULL, "%s: cannot load (run tests/reference/make_wer_fixture.py)", FIXTURE);
    if (!json) return tp_test_finish("test_wer");
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(json, "cases"), *c;
    CHECK(cJSON_GetArraySize(cases) >= 10);
    cJSON_ArrayForEach(c, cases) check_case(c);
    tp_wer_counts none = {0, 0};
    tp_wer_add(&none, " \t", "extra words");
    CHECK(none.errors == 2 && none.reference_words == 0 && tp_wer(&none) == 0.0); /* jiwer refuses this case */
    cJSON_Delete(json);
    return tp_test_finish("test_wer");
}
