/* Corpus BLEU (core/bleu.h) against sacreBLEU 2.4.3: tests/reference/make_bleu_fixture.py stores in
 * tests/fixtures/bleu.json sacreBLEU's 13a tokenization of 25 lines (punctuation, digits around
 * periods / commas / dashes, HTML entities, "<skipped>", "-\n", Unicode letters and spaces, empty
 * lines) and corpus_bleu's score, n-gram counts and totals, lengths, precisions and brevity penalty
 * for 7 corpora (lines of Debian's GPL-3 text with seeded edits; an empty hypothesis; no match;
 * longer hypotheses; a pair without trigrams; the tricky lines):
 *   - every tokenization is identical;
 *   - counts, totals and lengths are identical, the score, precisions and penalty within 1e-9. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bleu.h"
#include "core/fileio.h"
#include "support/check.h"

#define FIXTURE "tests/fixtures/bleu.json"

static void check_tokenization(const cJSON *cases)
{
    const cJSON *pair = NULL;
    int checked = 0;
    cJSON_ArrayForEach(pair, cases)
    {
        const char *input = cJSON_GetArrayItem(pair, 0)->valuestring, *want = cJSON_GetArrayItem(pair, 1)->valuestring;
        char *got = tp_bleu_tokenize_13a(input);
        CHECK_MSG(!strcmp(got, want), "13a of '%s': '%s', sacreBLEU '%s'", input, got, want);
        free(got);
        checked++;
    }
    CHECK(checked == 25);
}

static int64_t item_int(const cJSON *object, const char *key, int index)
{
    const cJSON *item = cJSON_GetObjectItem(object, key);
    return (int64_t)(index < 0 ? item : cJSON_GetArrayItem(item, index))->valuedouble;
}

static void check_corpus(const cJSON *c)
{
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    const cJSON *hyps = cJSON_GetObjectItem(c, "hypotheses"), *refs = cJSON_GetObjectItem(c, "references");
    tp_bleu stats = {0};
    for (int i = 0; i < cJSON_GetArraySize(hyps); i++)
        tp_bleu_add(&stats, cJSON_GetArrayItem(hyps, i)->valuestring, cJSON_GetArrayItem(refs, i)->valuestring);
    double precisions[4], bp = 0, score = tp_bleu_score(&stats, precisions, &bp);
    for (int n = 0; n < 4; n++) {
        CHECK_MSG(stats.correct[n] == item_int(c, "counts", n), "%s: %d-gram matches %lld, sacreBLEU %lld", name, n + 1,
                  (long long)stats.correct[n], (long long)item_int(c, "counts", n));
        CHECK_MSG(stats.total[n] == item_int(c, "totals", n), "%s: %d-gram totals", name, n + 1);
        double want = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "precisions"), n)->valuedouble;
        CHECK_MSG(fabs(precisions[n] - want) <= 1e-9, "%s: precision %d %.12g, sacreBLEU %.12g", name, n + 1,
                  precisions[n], want);
    }
    CHECK_MSG(stats.hypothesis_length == item_int(c, "sys_len", -1) && stats.reference_length == item_int(c, "ref_len", -1),
              "%s: lengths %lld / %lld", name, (long long)stats.hypothesis_length, (long long)stats.reference_length);
    double want_bp = cJSON_GetObjectItem(c, "bp")->valuedouble, want = cJSON_GetObjectItem(c, "score")->valuedouble;
    CHECK_MSG(fabs(bp - want_bp) <= 1e-9, "%s: brevity penalty %.12g, sacreBLEU %.12g", name, bp, want_bp);
    CHECK_MSG(fabs(score - want) <= 1e-9, "%s: BLEU %.12g, sacreBLEU %.12g", name, score, want);
    printf("%-22s BLEU %8.4f (sacreBLEU %8.4f)\n", name, score, want);
}

int main(void)
{
    char *text = tp_read_file(FIXTURE, NULL);
    CHECK_MSG(text != NULL, "%s (tests/reference/make_bleu_fixture.py writes it)", FIXTURE);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (root) {
        check_tokenization(cJSON_GetObjectItem(root, "tokenize_13a"));
        const cJSON *c = NULL;
        int corpora = 0;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "corpora"))
        {
            check_corpus(c);
            corpora++;
        }
        CHECK(corpora == 7);
    }
    cJSON_Delete(root);
    return tp_test_finish("test_bleu");
}
