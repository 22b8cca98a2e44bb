/* core/select*: tp-select's method on small hand-computed cases with exact expected outputs, on
 * the paper's released data and on a synthetic zoo with logged curves (expected outputs from
 * tests/reference/make_select_fixture.py: an independent Python implementation, scipy's average
 * linkage and numpy's LEEP), and the readers' errors with their messages. */
#include "core/error.h"
#include "core/fileio.h"
#include "core/select.h"
#include "support/check.h"
#include "support/scratch.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/select/"
#define EXACT 1e-12

static int near(double actual, double expected) { return fabs(actual - expected) <= EXACT * fmax(1, fabs(expected)); }

/* ---- distance --------------------------------------------------------------------------------- */

static void test_distance(void)
{
    /* gaps 0.25, 0, 0.25, 0.5, 0, 0.25, 0 -> sorted 0.5, 0.25, 0.25, 0.25, 0, 0, 0 (dyadic: exact) */
    const double a[7] = {0.5, 0.25, 0.75, 1.0, 0.5, 0.5, 0.25}, b[7] = {0.25, 0.25, 0.5, 0.5, 0.5, 0.75, 0.25};
    CHECK(tp_select_distance(a, b, 7, 5) == 1.25 / 5);
    CHECK(tp_select_distance(a, b, 7, 2) == 0.375);
    CHECK(tp_select_distance(a, b, 7, 1) == 0.5);
    CHECK(tp_select_distance(a, b, 7, 6) == 1.25 / 6); /* 7 shared = k + 1: still comparable */
    CHECK(isinf(tp_select_distance(a, b, 7, 7)));      /* 7 shared < k + 1 */
    /* a score <= 0 or NaN (NA) is not measured: a[0] = -1, b[3] = NA leave 5 shared */
    const double c[7] = {-1, 0.25, 0.75, 1.0, 0.5, 0.5, 0.25}, d[7] = {0.25, 0.25, 0.5, NAN, 0.5, 0.75, 0.25};
    CHECK(isinf(tp_select_distance(c, d, 7, 5)));
    CHECK(tp_select_distance(c, d, 7, 4) == 0.5 / 4); /* shared gaps 0, .25, 0, .25, 0 */
    const double e[7] = {0, 0.25, 0.75, 1.0, 0.5, 0.5, 0.25};
    CHECK(isinf(tp_select_distance(e, b, 7, 6))); /* a score of exactly 0 is not measured either */
    CHECK(tp_select_distance(a, a, 7, 5) == 0);
}

/* ---- clustering ------------------------------------------------------------------------------- */

static void set_distance(double *d, int64_t n, int64_t i, int64_t j, double value) { d[i * n + j] = d[j * n + i] = value; }

static int cluster_is(const tp_clustering *c, int64_t index, const int64_t *members, int64_t count)
{
    if (index >= c->cluster_count || c->start[index + 1] - c->start[index] != count) return 0;
    return memcmp(c->members + c->start[index], members, (size_t)count * sizeof *members) == 0;
}

/* Five models: d01 = d23 = 0.25 (a tie: the first pair in list order merges first), then {2,3}
 * at positions (1, 2), then ({0,1}, {4}) = (0.5 + 0.75) / 2 = 0.625 ties with ({2,3}, {4}) =
 * 0.625 and the first one in list order, (0, 2), wins. */
static void five_models(double *d)
{
    for (int i = 0; i < 25; i++) d[i] = 0;
    set_distance(d, 5, 0, 1, 0.25);
    set_distance(d, 5, 2, 3, 0.25);
    set_distance(d, 5, 0, 2, 1);
    set_distance(d, 5, 0, 3, 1);
    set_distance(d, 5, 1, 2, 1);
    set_distance(d, 5, 1, 3, 1);
    set_distance(d, 5, 0, 4, 0.5);
    set_distance(d, 5, 1, 4, 0.75);
    set_distance(d, 5, 2, 4, 0.625);
    set_distance(d, 5, 3, 4, 0.625);
}

static void test_agglomerative(void)
{
    double d[25];
    five_models(d);
    tp_clustering c;
    CHECK(tp_select_agglomerate(d, 5, 0.7, &c) == 0);
    CHECK(c.merge_count == 3 && c.cluster_count == 2);
    CHECK(c.merges[0].first == 0 && c.merges[0].second == 1 && c.merges[0].distance == 0.25);
    CHECK(c.merges[1].first == 1 && c.merges[1].second == 2 && c.merges[1].distance == 0.25);
    CHECK(c.merges[2].first == 0 && c.merges[2].second == 2 && c.merges[2].distance == 0.625);
    CHECK(cluster_is(&c, 0, (const int64_t[]){0, 1, 4}, 3) && cluster_is(&c, 1, (const int64_t[]){2, 3}, 2));
    tp_clustering_free(&c);
    /* tau equal to the distance still merges; just below it does not */
    CHECK(tp_select_agglomerate(d, 5, 0.625, &c) == 0 && c.merge_count == 3);
    tp_clustering_free(&c);
    CHECK(tp_select_agglomerate(d, 5, 0.6, &c) == 0 && c.merge_count == 2 && c.cluster_count == 3);
    CHECK(cluster_is(&c, 0, (const int64_t[]){0, 1}, 2) && cluster_is(&c, 1, (const int64_t[]){2, 3}, 2) &&
          cluster_is(&c, 2, (const int64_t[]){4}, 1));
    /* silhouette by hand: a(0) = 0.25, b(0) = min(mean(1, 1), 0.5) = 0.5 -> 0.5; a(1) = 0.25,
     * b(1) = 0.75 -> 2/3; a(2) = a(3) = 0.25, b = 0.625 -> 0.6; model 4 (singleton) 0 */
    CHECK(near(tp_select_silhouette(d, &c), (0.5 + 2.0 / 3 + 0.6 + 0.6 + 0) / 5));
    tp_clustering_free(&c);
    /* not comparable pairs keep their clusters apart whatever tau: {0, 2} merge, {1} stays */
    double e[9] = {0};
    set_distance(e, 3, 0, 1, INFINITY);
    set_distance(e, 3, 0, 2, 0.1);
    set_distance(e, 3, 1, 2, 0.2);
    CHECK(tp_select_agglomerate(e, 3, 10, &c) == 0 && c.merge_count == 1 && c.cluster_count == 2);
    CHECK(cluster_is(&c, 0, (const int64_t[]){0, 2}, 2) && cluster_is(&c, 1, (const int64_t[]){1}, 1));
    tp_clustering_free(&c);
}

static void test_representatives(void)
{
    /* the member order of a cluster decides ties: 4 comes before 1 in {4, 1, 0} */
    int64_t members[5] = {4, 1, 0, 2, 3}, start[4] = {0, 3, 4, 5};
    tp_clustering c = {.model_count = 5, .cluster_count = 3, .members = members, .start = start};
    const double averages[5] = {0.5, 0.75, 0.9, 0.1, 0.75};
    int64_t representative[3];
    CHECK(tp_select_representatives(&c, averages, representative) == 1);
    CHECK(representative[0] == 4 && representative[1] == -1 && representative[2] == -1);
    double scores[6] = {0.5, NAN, 0.25, -0.5, 0.5, 1.0}, means[3];
    tp_select_averages(scores, 3, 2, means);
    CHECK(means[0] == 0.5 && means[1] == 0.25 && means[2] == 0.75); /* only measured scores count */
}

static void test_kmeans(void)
{
    /* two groups of models 0.05 apart on 6 benchmarks; farthest-first seeds models 0 and 3 */
    double scores[4 * 6];
    for (int m = 0; m < 4; m++)
        for (int b = 0; b < 6; b++) scores[m * 6 + b] = (m < 2 ? 0.5 : 0.8) + (m % 2) * 0.01 + b * 0.01;
    tp_clustering c;
    CHECK(tp_select_kmeans(scores, 4, 6, 5, 2, &c) == 0 && c.cluster_count == 2);
    CHECK(cluster_is(&c, 0, (const int64_t[]){0, 1}, 2) && cluster_is(&c, 1, (const int64_t[]){2, 3}, 2));
    tp_clustering_free(&c);
    /* a model comparable with no centre (too few scores) is a singleton of its own, last */
    for (int b = 2; b < 6; b++) scores[1 * 6 + b] = NAN;
    CHECK(tp_select_kmeans(scores, 4, 6, 5, 2, &c) == 0 && c.cluster_count == 3);
    CHECK(cluster_is(&c, 0, (const int64_t[]){0}, 1) && cluster_is(&c, 1, (const int64_t[]){2, 3}, 2) &&
          cluster_is(&c, 2, (const int64_t[]){1}, 1));
    tp_clustering_free(&c);
}

/* ---- LEEP, proxy, recall ---------------------------------------------------------------------- */

static void test_leep_hand(void)
{
    /* theta = (0.75, 0.25) with y = 0, (0.25, 0.75) with y = 1: P(y, z) = [[.375, .125], [.125, .375]],
     * P(z) = (.5, .5), P(y | z) = [[.75, .25], [.25, .75]]; each example's expected probability
     * .75 * .75 + .25 * .25 = .625, so LEEP = log(0.625). */
    double probs[4] = {0.75, 0.25, 0.25, 0.75};
    int64_t labels[2] = {0, 1};
    tp_head_outputs outputs = {.count = 2, .source_labels = 2, .target_labels = 2, .probs = probs, .labels = labels};
    CHECK(near(tp_select_leep(&outputs), log(0.625)));
    /* one target label: P(y | z) = 1 for every z, the expected probability is 1, LEEP 0 */
    int64_t same[2] = {0, 0};
    outputs.labels = same;
    outputs.target_labels = 1;
    CHECK(fabs(tp_select_leep(&outputs)) < 1e-15);
}

/* Rows within the rounding tolerance of 1 are read as divided by their sum, so that LEEP stays a
 * log-probability: fuzz_select's input (one example, 0.75 + 0.251) made it log(1.001) > 0. */
static void test_outputs_rows_normalised(void)
{
    const char text[] = "label\tz0\tz1\r\np\t0.75\t0.251\r\n\r\n";
    tp_head_outputs *outputs = tp_head_outputs_read(tp_scratch_write("rounded.tsv", text, sizeof text - 1), 0);
    CHECK(outputs && outputs->count == 1);
    if (!outputs) return;
    CHECK(near(outputs->probs[0] + outputs->probs[1], 1.0) && near(outputs->probs[0], 0.75 / 1.001));
    CHECK(tp_select_leep(outputs) <= 1e-15);
    tp_head_outputs_free(outputs);
}

/* The fixture's cases (numpy), read back through the head-outputs reader. */
static void test_leep_fixture(void)
{
    char *text = tp_read_file(FIXTURES "leep_cases.json", NULL);
    cJSON *cases = text ? cJSON_Parse(text) : NULL;
    CHECK(cases && cJSON_GetArraySize(cases) == 4);
    for (cJSON *item = cases ? cases->child : NULL; item; item = item->next) {
        cJSON *probs = cJSON_GetObjectItem(item, "probs"), *labels = cJSON_GetObjectItem(item, "labels");
        char *tsv = tp_xmalloc(1 << 16);
        size_t at = (size_t)sprintf(tsv, "label");
        for (int z = 0; z < cJSON_GetArraySize(probs->child); z++) at += (size_t)sprintf(tsv + at, "\tsource%d", z);
        int row = 0;
        for (cJSON *r = probs->child; r; r = r->next, row++) {
            at += (size_t)sprintf(tsv + at, "\ncls%d", cJSON_GetArrayItem(labels, row)->valueint);
            for (cJSON *p = r->child; p; p = p->next) at += (size_t)sprintf(tsv + at, "\t%.17g", p->valuedouble);
        }
        tsv[at++] = '\n';
        tp_head_outputs *outputs = tp_head_outputs_read(tp_scratch_write("outputs.tsv", tsv, at), 0);
        double expected = cJSON_GetObjectItem(item, "leep")->valuedouble;
        CHECK_MSG(outputs && near(tp_select_leep(outputs), expected), "%s: %.17g vs %.17g",
                  cJSON_GetObjectItem(item, "name")->valuestring, outputs ? tp_select_leep(outputs) : NAN, expected);
        tp_head_outputs_free(outputs);
        free(tsv);
    }
    cJSON_Delete(cases);
    free(text);
}

static void test_proxy(void)
{
    /* cluster {0, 1} (representative 1: average 0.8 > 0.7), singleton {2};
     * exp(LEEP) = 0.5, 0.25, 0.125 */
    const double scores[6] = {0.6, 0.8, 0.8, 0.8, 0.6, 0.8}, leep[3] = {log(0.5), log(0.25), log(0.125)};
    int64_t members[3] = {0, 1, 2}, start[3] = {0, 2, 3}, representative[2];
    tp_clustering c = {.model_count = 3, .cluster_count = 2, .members = members, .start = start};
    double averages[3], proxy[3];
    tp_select_averages(scores, 3, 2, averages);
    CHECK(tp_select_representatives(&c, averages, representative) == 1 && representative[0] == 1);
    /* cos((.6, .8), (.8, .8)) = 1.12 / (1 * .8 sqrt 2) */
    double cosine = 1.12 / (0.8 * sqrt(2.0)), singleton = 0.7 * cosine * 0.25;
    unsigned char needed[3];
    CHECK(tp_select_leep_needed(&c, representative, TP_PROXY_ALL, needed) == 2 && needed[0] && needed[1] && !needed[2]);
    tp_select_proxy(scores, 2, &c, averages, representative, leep, TP_PROXY_ALL, proxy);
    CHECK(near(proxy[0], 0.35) && near(proxy[1], 0.2) && near(proxy[2], singleton));
    int64_t order[3];
    tp_select_recall(proxy, 3, 3, order);
    CHECK(order[0] == 0 && order[1] == 1 && order[2] == 2);
    CHECK(tp_select_leep_needed(&c, representative, TP_PROXY_REPRESENTATIVES, needed) == 1 && needed[1] && !needed[0]);
    tp_select_proxy(scores, 2, &c, averages, representative, leep, TP_PROXY_REPRESENTATIVES, proxy);
    CHECK(near(proxy[0], 0.175) && near(proxy[1], 0.2) && near(proxy[2], singleton));
    tp_select_recall(proxy, 3, 2, order);
    CHECK(order[0] == 1 && order[1] == 0);
    /* no representative at all: every model needs its own LEEP */
    int64_t alone_start[4] = {0, 1, 2, 3}, none[3];
    tp_clustering singletons = {.model_count = 3, .cluster_count = 3, .members = members, .start = alone_start};
    CHECK(tp_select_representatives(&singletons, averages, none) == 0);
    CHECK(tp_select_leep_needed(&singletons, none, TP_PROXY_REPRESENTATIVES, needed) == 3);
    tp_select_proxy(scores, 2, &singletons, averages, none, leep, TP_PROXY_ALL, proxy);
    CHECK(near(proxy[1], 0.2) && near(proxy[2], 0.7 * 0.125));
}

static void test_recall_order(void)
{
    const double proxy[5] = {0.5, 0.7, 0.5, 0.9, 0.7};
    int64_t order[5];
    tp_select_recall(proxy, 5, 4, order);
    CHECK(order[0] == 3 && order[1] == 1 && order[2] == 4 && order[3] == 0); /* ties: lower index first */
}

/* ---- predictor and halving -------------------------------------------------------------------- */

static void test_predictor(void)
{
    /* sorted .1 .12 .3 .5 .52 .9; initial centres sorted[floor((2j+1) 6 / 8)] = .1 .3 .5 .9;
     * groups {.1, .12} {.3} {.5, .52} {.9}, centres .11 .3 .51 .9, then no change */
    const double dev[6] = {0.1, 0.12, 0.5, 0.52, 0.9, 0.3}, final[6] = {0.2, 0.4, 0.6, 0.8, 1.0, 0.5};
    double centres[4];
    int64_t assign[6];
    CHECK(tp_select_kmeans_1d(dev, 6, 4, centres, assign) == 4);
    CHECK(assign[0] == 0 && assign[1] == 0 && assign[2] == 2 && assign[3] == 2 && assign[4] == 3 && assign[5] == 1);
    CHECK(near(centres[0], 0.11) && centres[1] == 0.3 && near(centres[2], 0.51) && centres[3] == 0.9);
    CHECK(near(tp_select_predict(dev, final, 6, 4, 0.45), 0.7)); /* nearest .51: (.6 + .8) / 2 */
    CHECK(near(tp_select_predict(dev, final, 6, 4, 0.2), 0.3));  /* .09 from .11, .1 from .3 */
    CHECK(tp_select_predict(dev, final, 6, 4, 2.0) == 1.0);
    /* equal values: initial centres .5 .5 .5 .9, every .5 goes to centre 0 (ties: lower index),
     * centres 1 and 2 stay empty and are never the nearest */
    const double flat[5] = {0.5, 0.5, 0.5, 0.5, 0.9}, flat_final[5] = {0.1, 0.2, 0.3, 0.4, 0.9};
    CHECK(near(tp_select_predict(flat, flat_final, 5, 4, 0.5), 0.25));
    CHECK(tp_select_predict(flat, flat_final, 5, 4, 0.8) == 0.9);
    CHECK(near(tp_select_predict(flat, flat_final, 2, 4, 0.7), 0.15)); /* n < K: K = n, centres .5 .5 */
    CHECK(isnan(tp_select_predict(flat, flat_final, 0, 4, 0.5)));
}

/* A hand-made epoch source: dev[m][e], prediction[m][e], seconds 1 + m per epoch. */
typedef struct table_source {
    double dev[4][3], prediction[4][3];
    int calls;
} table_source;

static int table_epoch(void *user, int64_t model, int64_t epoch, double *dev_score, double *seconds)
{
    table_source *table = user;
    table->calls++;
    *dev_score = table->dev[model][epoch];
    *seconds = 1.0 + (double)model;
    return 0;
}

static double table_predict(void *user, int64_t model, int64_t epoch, double dev_score)
{
    (void)dev_score;
    return ((table_source *)user)->prediction[model][epoch];
}

static void test_halving(void)
{
    table_source table = {
        .dev = {{0.5, 0.75, 0}, {0.7, 0.72, 0}, {0.6, 0.74, 0}, {0.4, 0, 0}},
        .prediction = {{0.9, 0.8, 0}, {0.6, 0.85, 0}, {0.5, NAN, 0}, {0.8, 0, 0}},
    };
    tp_epoch_source source = {table_epoch, table_predict, &table};
    const int64_t candidates[4] = {0, 1, 2, 3};
    tp_selection s;
    /* rung 1: model 2 (dev .6) predicts .5 < .6 of model 1 ahead; model 3 (.4) predicts .8 < .9
     * of model 0 ahead; model 0 (.5) predicts .9 >= .6: kept.  Survivors {0, 1} = max(1, 4/2).
     * Rung 2: model 1 (.72) predicts .85 >= .8 of model 0: kept; halving keeps model 0 (.75). */
    CHECK(tp_select_halving(&source, candidates, 4, 3, 1, &s) == 0);
    CHECK(s.chosen == 0 && s.epoch_units == 6 && s.seconds == 10 + 3 && s.rung_count == 2);
    CHECK(s.rungs[0].trained == 4 && s.rungs[0].dropped_count == 2 && s.rungs[0].dropped[0] == 2 &&
          s.rungs[0].dropped[1] == 3 && s.rungs[0].survivor_count == 2);
    CHECK(s.rungs[1].trained == 2 && s.rungs[1].dropped_count == 0 && s.rungs[1].survivor_count == 1);
    tp_selection_free(&s);
    /* without the drop rule: rung 1 keeps 1 (.7) and 2 (.6), rung 2 keeps 2 (.74 > .72) */
    CHECK(tp_select_halving(&source, candidates, 4, 3, 0, &s) == 0);
    CHECK(s.chosen == 2 && s.epoch_units == 6 && s.seconds == 10 + 5 && s.rungs[0].survivors[0] == 1 &&
          s.rungs[0].survivors[1] == 2);
    tp_selection_free(&s);
    /* full fine-tuning: every epoch of every candidate; a tie goes to the earlier candidate */
    table.dev[3][2] = table.dev[1][2] = 0.8;
    const int64_t pair[2] = {3, 1};
    CHECK(tp_select_full(&source, pair, 2, 3, &s) == 0 && s.chosen == 3 && s.epoch_units == 6 && s.seconds == 3 * 4 + 3 * 2);
    tp_selection_free(&s);
}

/* ---- the paper's data ------------------------------------------------------------------------- */

static cJSON *load_json(const char *path)
{
    char *text = tp_read_file(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK_MSG(root != NULL, "%s", path);
    return root;
}

static int same_indices(const cJSON *list, const int64_t *values, int64_t count)
{
    if (cJSON_GetArraySize(list) != count) return 0;
    int64_t i = 0;
    for (const cJSON *item = list->child; item; item = item->next, i++)
        if (item->valueint != values[i]) return 0;
    return 1;
}

static int same_clusters(const cJSON *clusters, const tp_clustering *c)
{
    if (cJSON_GetArraySize(clusters) != c->cluster_count) return 0;
    int64_t index = 0;
    for (const cJSON *cluster = clusters->child; cluster; cluster = cluster->next, index++)
        if (!same_indices(cluster, c->members + c->start[index], c->start[index + 1] - c->start[index])) return 0;
    return 1;
}

static int64_t *non_singleton_representatives(const tp_recall *recall, int64_t *count)
{
    int64_t *list = tp_xmalloc((size_t)recall->clustering.cluster_count * sizeof *list);
    *count = 0;
    for (int64_t c = 0; c < recall->clustering.cluster_count; c++)
        if (recall->representative[c] >= 0) list[(*count)++] = recall->representative[c];
    return list;
}

static void check_paper_recall(const tp_zoo *zoo, const cJSON *expected, const char *target, tp_proxy_scope scope)
{
    tp_recall_options options = {.tau = cJSON_GetObjectItem(expected, "tau")->valuedouble, .k = 5, .top = 15, .scope = scope};
    tp_recall recall;
    const char *suffix = scope == TP_PROXY_ALL ? "all" : "representatives";
    char key[64];
    CHECK(tp_select_run_recall(zoo, target, &options, &recall) == 0);
    if (!recall.recalled) return;
    CHECK(recall.excluded_benchmark == -1);
    CHECK(same_clusters(cJSON_GetObjectItem(expected, "clusters"), &recall.clustering));
    int64_t count, *reps = non_singleton_representatives(&recall, &count);
    CHECK(same_indices(cJSON_GetObjectItem(expected, "representatives"), reps, count));
    free(reps);
    snprintf(key, sizeof key, "recall_%s", suffix);
    CHECK_MSG(same_indices(cJSON_GetObjectItem(expected, key), recall.recalled, recall.recalled_count), "%s %s", target, key);
    snprintf(key, sizeof key, "proxy_%s", suffix);
    int64_t m = 0, close = 1;
    for (const cJSON *p = cJSON_GetObjectItem(expected, key)->child; p; p = p->next, m++) close &= near(recall.proxy[m], p->valuedouble);
    CHECK_MSG(close && m == zoo->model_count, "%s %s", target, key);
    tp_recall_free(&recall);
}

static void check_paper_merges(const tp_zoo *zoo, const cJSON *expected)
{
    double *scores = tp_zoo_scores_without(zoo, -1);
    double *d = tp_select_distances(scores, zoo->model_count, zoo->benchmark_count, 5);
    tp_clustering c;
    CHECK(tp_select_agglomerate(d, zoo->model_count, cJSON_GetObjectItem(expected, "tau")->valuedouble, &c) == 0);
    const cJSON *merges = cJSON_GetObjectItem(expected, "merges");
    CHECK(cJSON_GetArraySize(merges) == c.merge_count);
    int64_t i = 0, same = 1;
    for (const cJSON *merge = merges->child; merge && i < c.merge_count; merge = merge->next, i++)
        same &= cJSON_GetArrayItem(merge, 0)->valueint == c.merges[i].first &&
                cJSON_GetArrayItem(merge, 1)->valueint == c.merges[i].second &&
                near(c.merges[i].distance, cJSON_GetArrayItem(merge, 2)->valuedouble);
    CHECK(same);
    CHECK(near(tp_select_silhouette(d, &c), cJSON_GetObjectItem(expected, "silhouette")->valuedouble));
    tp_clustering_free(&c);
    free(scores);
    free(d);
}

static void test_paper(const char *name, const char *target, int64_t models, int64_t benchmarks)
{
    char dir[256];
    snprintf(dir, sizeof dir, FIXTURES "paper/%s", name);
    tp_zoo *imported = tp_zoo_import_paper(dir);
    CHECK_MSG(imported != NULL, "%s", tp_last_error());
    if (!imported) return;
    CHECK(imported->model_count == models && imported->benchmark_count == benchmarks && imported->target_count == 1);
    /* through the zoo format and back: the same doubles */
    const char *saved = tp_scratch_path(name);
    CHECK(tp_zoo_save(imported, saved) == 0);
    char manifest[512];
    snprintf(manifest, sizeof manifest, "%s/zoo.json", saved);
    tp_zoo *zoo = tp_zoo_load(manifest);
    CHECK_MSG(zoo != NULL, "%s", tp_last_error());
    if (zoo) {
        CHECK(memcmp(zoo->scores, imported->scores, (size_t)(models * benchmarks) * sizeof *zoo->scores) == 0);
        CHECK(memcmp(zoo->leep, imported->leep, (size_t)models * sizeof *zoo->leep) == 0);
        cJSON *all = load_json(FIXTURES "paper_expected.json");
        const cJSON *expected = cJSON_GetObjectItem(all, name);
        check_paper_merges(zoo, expected);
        check_paper_recall(zoo, expected, target, TP_PROXY_ALL);
        check_paper_recall(zoo, expected, target, TP_PROXY_REPRESENTATIVES);
        cJSON_Delete(all);
    }
    tp_zoo_free(zoo);
    tp_zoo_free(imported);
}

/* ---- simulation on the synthetic zoo ---------------------------------------------------------- */

static int same_model_list(const cJSON *list, const int64_t *models, int64_t count) { return same_indices(list, models, count); }

static void check_strategies(const cJSON *expected, const tp_simulation *sim)
{
    const cJSON *strategies = cJSON_GetObjectItem(expected, "strategies");
    for (int s = 0; s < TP_STRATEGY_COUNT; s++) {
        const cJSON *e = cJSON_GetObjectItem(strategies, tp_strategy_name((tp_strategy)s));
        const tp_selection *run = &sim->strategies[s];
        CHECK_MSG(e && run->chosen == cJSON_GetObjectItem(e, "chosen")->valueint &&
                      run->epoch_units == cJSON_GetObjectItem(e, "epoch_units")->valueint &&
                      near(run->seconds, cJSON_GetObjectItem(e, "seconds")->valuedouble),
                  "%s: chosen %lld, %lld units, %.17g s", tp_strategy_name((tp_strategy)s), (long long)run->chosen,
                  (long long)run->epoch_units, run->seconds);
    }
    const tp_selection *two = &sim->strategies[TP_STRATEGY_TWO_PHASE];
    const cJSON *log = cJSON_GetObjectItem(expected, "two_phase_log");
    CHECK(cJSON_GetArraySize(log) == two->rung_count);
    int64_t r = 0;
    for (const cJSON *rung = log->child; rung && r < two->rung_count; rung = rung->next, r++) {
        /* the reference lists drops in candidate order too */
        CHECK(same_model_list(cJSON_GetObjectItem(rung, "dropped"), two->rungs[r].dropped, two->rungs[r].dropped_count));
        CHECK(cJSON_GetObjectItem(rung, "trained")->valueint == two->rungs[r].trained);
    }
}

static void check_predictions(const tp_zoo *zoo, int64_t t, const cJSON *predictions)
{
    int64_t m = 0, same = 1;
    for (const cJSON *row = predictions->child; row; row = row->next, m++) {
        int64_t e = 0;
        for (const cJSON *p = row->child; p; p = p->next, e++) {
            double query = zoo->dev[(m * zoo->benchmark_count + t) * zoo->epochs + e];
            same &= near(tp_select_predict_model(zoo, m, t, e, 4, query), p->valuedouble);
        }
    }
    CHECK(same && m == zoo->model_count);
}

static void test_simulation(void)
{
    tp_zoo *zoo = tp_zoo_load(FIXTURES "synthetic/zoo.json");
    CHECK_MSG(zoo != NULL, "%s", tp_last_error());
    cJSON *expected = load_json(FIXTURES "synthetic_expected.json");
    if (!zoo || !expected) return;
    CHECK(zoo->model_count == 10 && zoo->benchmark_count == 8 && zoo->epochs == 5 && zoo->target_count == 8);
    tp_recall_options options = {.tau = cJSON_GetObjectItem(expected, "tau")->valuedouble, .k = 5,
                                 .top = cJSON_GetObjectItem(expected, "top")->valueint, .scope = TP_PROXY_ALL};
    int64_t t = 0;
    for (const cJSON *target = cJSON_GetObjectItem(expected, "targets")->child; target; target = target->next, t++) {
        tp_simulation sim;
        CHECK_MSG(tp_select_simulate(zoo, t, &options, 4, &sim) == 0, "%s", tp_last_error());
        CHECK(sim.recall.excluded_benchmark == t);
        CHECK(same_clusters(cJSON_GetObjectItem(target, "clusters"), &sim.recall.clustering));
        CHECK(same_model_list(cJSON_GetObjectItem(target, "recall_all"), sim.recall.recalled, sim.recall.recalled_count));
        CHECK(sim.recall.leep_passes == cJSON_GetObjectItem(target, "leep_passes_all")->valueint &&
              near(sim.recall.leep_seconds, cJSON_GetObjectItem(target, "leep_seconds_all")->valuedouble));
        CHECK(sim.offline_epoch_units == cJSON_GetObjectItem(target, "offline_epoch_units")->valueint &&
              near(sim.offline_seconds, cJSON_GetObjectItem(target, "offline_seconds")->valuedouble));
        check_strategies(target, &sim);
        check_predictions(zoo, t, cJSON_GetObjectItem(target, "predictions"));
        tp_simulation_free(&sim);
    }
    /* the representatives scope of one target */
    options.scope = TP_PROXY_REPRESENTATIVES;
    tp_recall recall;
    const cJSON *first = cJSON_GetObjectItem(expected, "targets")->child;
    CHECK(tp_select_run_recall(zoo, "fortunes", &options, &recall) == 0);
    CHECK(same_model_list(cJSON_GetObjectItem(first, "recall_representatives"), recall.recalled, recall.recalled_count));
    CHECK(recall.leep_passes == cJSON_GetObjectItem(first, "leep_passes_representatives")->valueint);
    tp_recall_free(&recall);
    cJSON_Delete(expected);
    tp_zoo_free(zoo);
}

/* ---- errors ----------------------------------------------------------------------------------- */

static const char good_manifest[] =
    "{\"format\": \"tp-select-zoo\", \"version\": 1, \"epochs\": 2, \"matrix\": \"m.tsv\",\n"
    " \"models\": [{\"name\": \"a\", \"head\": {\"labels\": 3}}, {\"name\": \"b\"}]}\n";

/* The manifest parse fails with exactly "zoo.json: <expected>". */
static void manifest_fails(const char *text, const char *expected)
{
    tp_zoo *zoo = tp_zoo_parse_manifest("zoo.json", text, ".");
    char full[512];
    snprintf(full, sizeof full, "zoo.json: %s", expected);
    CHECK_MSG(!zoo && strcmp(tp_last_error(), full) == 0, "\n  got:      %s\n  expected: %s", zoo ? "success" : tp_last_error(), full);
    tp_zoo_free(zoo);
}

static void test_manifest_errors(void)
{
    tp_zoo *zoo = tp_zoo_parse_manifest("zoo.json", good_manifest, ".");
    CHECK(zoo && zoo->model_count == 2 && zoo->epochs == 2 && zoo->models[0].head_labels == 3 && zoo->models[1].head_labels == 0);
    tp_zoo_free(zoo);
    manifest_fails("{\"format\": \"tp-select-zoo\",\n \"version\": 1,,}", "line 2, column 15: expected a key in quotes near ',}'");
    manifest_fails("{\"format\": \"tp-select-zoo\", \"version\": 1, \"matrix\": \"m\", \"model\": []}",
                   "key 'model': unknown key (known: format, version, description, epochs, matrix, curves, leep, models)");
    manifest_fails("{\"format\": \"tp-select-zoo\", \"version\": 1, \"models\": [{\"name\": \"a\"}]}", "key 'matrix': missing (required)");
    manifest_fails("{\"format\": \"tp-select-zoo\", \"version\": 2, \"matrix\": \"m\", \"models\": []}",
                   "key 'version': expected an integer in 1..1");
    manifest_fails("{\"format\": \"tp-select-zoo\", \"version\": 1, \"matrix\": \"m\", \"models\": []}",
                   "key 'models': expected a non-empty list of objects");
    manifest_fails("{\"format\": \"tp-select-zoo\", \"version\": 1, \"matrix\": \"m\", \"models\": [{\"name\": \"a\"}, {\"checkpoint\": \"x\"}]}",
                   "key 'models[1].name': missing (required)");
    manifest_fails("{\"format\": \"tp-select-zoo\", \"version\": 1, \"matrix\": \"m\", \"models\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}",
                   "key 'models[1].name': 'a' is already the name of models[0]");
    manifest_fails("{\"format\": \"tp-select-zoo\", \"version\": 1, \"matrix\": \"m\", \"models\": [{\"name\": \"a\", \"head\": {\"labels\": 0}}]}",
                   "key 'models[0].head.labels': expected an integer in 1..2147483647");
    manifest_fails("{\"format\": \"tp-select-zoo\", \"version\": 1, \"matrix\": \"m\", \"models\": [{\"name\": \"a\", \"head\": {\"task\": \"x\"}}]}",
                   "key 'models[0].head.labels': missing (required: the head's number of source labels)");
    manifest_fails("{\"format\": \"tp-select-zoo\", \"version\": 1, \"matrix\": \"m\", \"models\": [{\"name\": \"a\", \"heads\": null}]}",
                   "key 'models[0].heads': unknown key (known: name, checkpoint, config, head)");
}

/* Reading `text` as file `name` into a zoo of models a, b (epochs 2) fails with "<path>: <expected>". */
static void table_fails(int (*reader)(tp_zoo *, const char *), const char *name, const char *text, const char *expected)
{
    tp_zoo *zoo = tp_zoo_parse_manifest("zoo.json", good_manifest, ".");
    static const char matrix[] = "model\tx\ty\nb\t0.5\tNA\na\t0.25\t-1\n";
    int status = tp_zoo_read_matrix(zoo, tp_scratch_write("base.tsv", matrix, strlen(matrix)));
    CHECK(status == 0);
    const char *path = tp_scratch_write(name, text, strlen(text));
    char full[512];
    snprintf(full, sizeof full, "%s: %s", path, expected);
    status = reader(zoo, path);
    CHECK_MSG(status != 0 && strcmp(tp_last_error(), full) == 0, "\n  got:      %s\n  expected: %s",
              status ? tp_last_error() : "success", full);
    tp_zoo_free(zoo);
}

static int read_second_matrix(tp_zoo *zoo, const char *path)
{
    /* the base matrix is in place: read into a fresh zoo */
    tp_zoo *fresh = tp_zoo_parse_manifest("zoo.json", good_manifest, ".");
    (void)zoo;
    int status = tp_zoo_read_matrix(fresh, path);
    tp_zoo_free(fresh);
    return status;
}

static void test_table_errors(void)
{
    table_fails(read_second_matrix, "m1.tsv", "model\tx\na\t0.5\nb\tzero\n",
                "line 3, column 2 (model 'b', benchmark 'x'): not a number (write NA for a score not measured)");
    table_fails(read_second_matrix, "m2.tsv", "model\tx\ty\na\t0.5\n",
                "line 2: expected 3 tab-separated fields (model + 2 benchmarks), found 2");
    table_fails(read_second_matrix, "m3.tsv", "model\tx\na\t\nb\t1\n",
                "line 2, column 2 (model 'a', benchmark 'x'): empty score (write NA for a score not measured)");
    table_fails(read_second_matrix, "m4.tsv", "model\tx\na\t0.5\n", "no row for model 'b' (models[1] of the manifest)");
    table_fails(read_second_matrix, "m5.tsv", "model\tx\na\t0.5\na\t0.5\n", "line 3: model 'a' has a row already (line 2)");
    table_fails(read_second_matrix, "m6.tsv", "model\tx\nc\t0.5\n", "line 2: model 'c' is not in the manifest");
    table_fails(read_second_matrix, "m7.tsv", "model\tx\tx\n", "line 1, column 3: benchmark 'x' appears twice");
    table_fails(read_second_matrix, "m8.tsv", "model\tx\na\tinf\nb\t1\n",
                "line 2, column 2 (model 'a', benchmark 'x'): not a number (write NA for a score not measured)");
    table_fails(read_second_matrix, "m9.tsv", "model\tx\na\t1\n\nb\t1\n", "line 3: blank line");
    table_fails(tp_zoo_read_curves, "c1.tsv", "model\tbenchmark\tepoch\tdev_score\tseconds\na\tx\t1\t0.5\t3\n",
                "model 'a' on benchmark 'x' has 1 of 2 epochs (epoch 2 missing)");
    table_fails(tp_zoo_read_curves, "c2.tsv", "model\tbenchmark\tepoch\tdev_score\tseconds\na\tx\t3\t0.5\t3\n",
                "line 2, column 3: epoch '3' is not an integer in 1..2 (the manifest's epochs)");
    table_fails(tp_zoo_read_curves, "c3.tsv", "model\tbenchmark\tepoch\tdev_score\tseconds\na\tx\t1\t0.5\t3\na\tx\t1\t0.5\t3\n",
                "line 3: model 'a', benchmark 'x', epoch 1 appears twice");
    table_fails(tp_zoo_read_curves, "c4.tsv", "model\tbenchmark\tepoch\tdev\tseconds\n",
                "line 1: expected the header 'model<TAB>benchmark<TAB>epoch<TAB>dev_score<TAB>seconds'");
    table_fails(tp_zoo_read_curves, "c5.tsv", "model\tbenchmark\tepoch\tdev_score\tseconds\na\tz\t1\t0.5\t3\n",
                "line 2: benchmark 'z' is not in the matrix");
    table_fails(tp_zoo_read_leep, "l1.tsv", "model\ttarget\tleep\na\tt\t0.5\n",
                "line 2, column 3: LEEP '0.5' is not a number <= 0 (a mean log-probability)");
    table_fails(tp_zoo_read_leep, "l2.tsv", "model\ttarget\tleep\tseconds\na\tt\t-0.5\t1\na\tt\t-0.5\t1\n",
                "line 3: model 'a' has a LEEP score for target 't' already");
    table_fails(tp_zoo_read_leep, "l3.tsv", "", "the file is empty");
}

static void outputs_fail(const char *text, int64_t expected_labels, const char *expected)
{
    const char *path = tp_scratch_write("outputs_bad.tsv", text, strlen(text));
    tp_head_outputs *outputs = tp_head_outputs_read(path, expected_labels);
    char full[512];
    snprintf(full, sizeof full, "%s: %s", path, expected);
    CHECK_MSG(!outputs && strcmp(tp_last_error(), full) == 0, "\n  got:      %s\n  expected: %s",
              outputs ? "success" : tp_last_error(), full);
    tp_head_outputs_free(outputs);
}

static void test_outputs_and_heads(void)
{
    static const char good[] = "label\tz0\tz1\r\npos\t0.75\t0.25\r\nneg\t0.25\t0.75\r\n\r\n";
    tp_head_outputs *outputs = tp_head_outputs_read(tp_scratch_write("outputs.tsv", good, strlen(good)), 2);
    CHECK(outputs && outputs->count == 2 && outputs->target_labels == 2 && near(tp_select_leep(outputs), log(0.625)));
    tp_head_outputs_free(outputs);
    outputs_fail("label\tz0\tz1\npos\t0.75\t0.5\n", 0, "line 2: the probabilities sum to 1.25, not 1 (softmax outputs expected)");
    outputs_fail("label\tz0\tz1\npos\t1.5\t-0.5\n", 0, "line 2, column 2: '1.5' is not a probability in [0, 1]");
    outputs_fail("label\tz0\tz1\npos\t0.5\t0.5\n", 3, "line 1: 2 source labels, but the model's head has 3");
    outputs_fail("label\tz0\n", 0, "no examples after the header");
    /* a model without a head and without a LEEP score: the recall names it */
    static const char leep[] = "model\ttarget\tleep\nb\tt\t-0.5\n";
    tp_zoo *zoo = tp_zoo_parse_manifest("zoo.json", good_manifest, ".");
    static const char matrix2[] = "model\tx\nb\t0.5\na\t0.25\n";
    CHECK(tp_zoo_read_matrix(zoo, tp_scratch_write("heads2.tsv", matrix2, strlen(matrix2))) == 0);
    CHECK(tp_zoo_read_leep(zoo, tp_scratch_write("leep.tsv", leep, strlen(leep))) == 0);
    tp_recall_options options = {.tau = 1, .k = 5, .top = 2, .scope = TP_PROXY_ALL};
    tp_recall recall;
    CHECK(tp_select_run_recall(zoo, "t", &options, &recall) != 0);
    CHECK_MSG(strcmp(tp_last_error(), "zoo.json: model 'a' has no LEEP score for target 't' (compute it from its head's "
                                      "outputs: tp-select leep)") == 0, "%s", tp_last_error());
    zoo->models[0].head_labels = 0;
    CHECK(tp_select_run_recall(zoo, "t", &options, &recall) != 0);
    CHECK_MSG(strcmp(tp_last_error(), "zoo.json: model 'a' has no LEEP score for target 't' and no head to compute one from") == 0,
              "%s", tp_last_error());
    CHECK(tp_select_run_recall(zoo, "u", &options, &recall) != 0 && strstr(tp_last_error(), "no LEEP scores for target 'u'"));
    tp_zoo_free(zoo);
}

int main(void)
{
    tp_scratch_init("select");
    test_distance();
    test_agglomerative();
    test_representatives();
    test_kmeans();
    test_leep_hand();
    test_leep_fixture();
    test_outputs_rows_normalised();
    test_proxy();
    test_recall_order();
    test_predictor();
    test_halving();
    test_paper("nlp", "multirc", 39, 21);
    test_paper("cv", "xray", 30, 6);
    test_simulation();
    test_manifest_errors();
    test_table_errors();
    test_outputs_and_heads();
    return tp_test_finish("select");
}
