/* Coarse recall of tp-select (core/select.h, docs/select.md): LEEP, proxy scores, the recall list,
 * and the whole phase on a zoo. */
#include "select.h"

#include "error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double tp_select_leep(const tp_head_outputs *outputs)
{
    int64_t n = outputs->count, source = outputs->source_labels, targets = outputs->target_labels;
    double *joint = tp_xcalloc((size_t)(targets * source), sizeof *joint);
    double *marginal = tp_xcalloc((size_t)source, sizeof *marginal);
    for (int64_t i = 0; i < n; i++)
        for (int64_t z = 0; z < source; z++) joint[outputs->labels[i] * source + z] += outputs->probs[i * source + z];
    for (int64_t i = 0; i < targets * source; i++) joint[i] /= (double)n;
    for (int64_t y = 0; y < targets; y++)
        for (int64_t z = 0; z < source; z++) marginal[z] += joint[y * source + z];
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        const double *theta = outputs->probs + i * source, *row = joint + outputs->labels[i] * source;
        double p = 0;
        for (int64_t z = 0; z < source; z++)
            if (marginal[z] > 0) p += row[z] / marginal[z] * theta[z];
        total += log(p);
    }
    free(joint);
    free(marginal);
    return total / (double)n;
}

int64_t tp_select_leep_needed(const tp_clustering *clustering, const int64_t *representative, tp_proxy_scope scope,
                              unsigned char *needed)
{
    int64_t representatives = 0;
    memset(needed, 0, (size_t)clustering->model_count);
    for (int64_t c = 0; c < clustering->cluster_count; c++) {
        if (representative[c] < 0) continue;
        representatives++;
        needed[representative[c]] = 1;
        for (int64_t at = clustering->start[c]; scope == TP_PROXY_ALL && at < clustering->start[c + 1]; at++)
            needed[clustering->members[at]] = 1;
    }
    if (representatives == 0) memset(needed, 1, (size_t)clustering->model_count);
    int64_t count = 0;
    for (int64_t m = 0; m < clustering->model_count; m++) count += needed[m];
    return count;
}

/* Cosine of two score vectors, unmeasured scores as 0; 0 when either is all zero. */
static double score_cosine(const double *a, const double *b, int64_t n)
{
    double dot = 0, norm_a = 0, norm_b = 0;
    for (int64_t j = 0; j < n; j++) {
        double x = a[j] > 0 ? a[j] : 0, y = b[j] > 0 ? b[j] : 0;
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    }
    if (norm_a == 0 || norm_b == 0) return 0;
    return dot / (sqrt(norm_a) * sqrt(norm_b));
}

static double singleton_proxy(const double *scores, int64_t benchmarks, const tp_clustering *clustering,
                              const int64_t *representative, const double *leep, int64_t s)
{
    double total = 0;
    int64_t count = 0;
    for (int64_t c = 0; c < clustering->cluster_count; c++) {
        int64_t r = representative[c];
        if (r < 0) continue;
        total += score_cosine(scores + s * benchmarks, scores + r * benchmarks, benchmarks) * exp(leep[r]);
        count++;
    }
    return count ? total / (double)count : exp(leep[s]);
}

void tp_select_proxy(const double *scores, int64_t benchmarks, const tp_clustering *clustering,
                     const double *averages, const int64_t *representative, const double *leep, tp_proxy_scope scope,
                     double *proxy)
{
    for (int64_t c = 0; c < clustering->cluster_count; c++) {
        for (int64_t at = clustering->start[c]; at < clustering->start[c + 1]; at++) {
            int64_t m = clustering->members[at];
            if (representative[c] < 0)
                proxy[m] = averages[m] * singleton_proxy(scores, benchmarks, clustering, representative, leep, m);
            else
                proxy[m] = averages[m] * exp(leep[scope == TP_PROXY_ALL ? m : representative[c]]);
        }
    }
}

typedef struct ranked {
    double score;
    int64_t index;
} ranked;

static int compare_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return (x->index > y->index) - (x->index < y->index);
}

void tp_select_recall(const double *proxy, int64_t models, int64_t top, int64_t *order)
{
    ranked *all = tp_xmalloc((size_t)(models ? models : 1) * sizeof *all);
    for (int64_t m = 0; m < models; m++) all[m] = (ranked){proxy[m], m};
    qsort(all, (size_t)models, sizeof *all, compare_ranked);
    for (int64_t i = 0; i < top && i < models; i++) order[i] = all[i].index;
    free(all);
}

/* ---- the recall phase on a zoo ---------------------------------------------------------------- */

/* The LEEP scores of the needed models, from the source or else the target's column of the table
 * (the error names the first one missing); NaN for the others. */
static int gather_leep(const tp_zoo *zoo, const unsigned char *needed, const tp_leep_source *source, tp_recall *out)
{
    for (int64_t m = 0; m < zoo->model_count; m++) {
        double *leep = &out->leep[m], seconds = NAN;
        *leep = NAN;
        if (!needed[m]) continue;
        if (source) {
            if (source->leep(source->user, m, leep, &seconds) != 0) return -1;
        } else {
            *leep = zoo->leep[out->target * zoo->model_count + m];
            seconds = zoo->leep_seconds[out->target * zoo->model_count + m];
        }
        if (isnan(*leep)) {
            const tp_zoo_model *model = &zoo->models[m];
            return tp_fail("%s: model '%s' has no LEEP score for target '%s'%s", zoo->manifest_path, model->name,
                           out->target_name,
                           model->head_labels > 0 ? " (compute it from its head's outputs: tp-select leep)"
                                                  : " and no head to compute one from");
        }
        out->leep_passes++;
        if (isnan(seconds)) out->leep_unlogged++;
        else out->leep_seconds += seconds;
    }
    return 0;
}

int tp_select_run_recall(const tp_zoo *zoo, const char *target, const tp_recall_options *options, tp_recall *out)
{
    return tp_select_run_recall_with(zoo, target, options, NULL, out);
}

int tp_select_run_recall_with(const tp_zoo *zoo, const char *target, const tp_recall_options *options,
                              const tp_leep_source *source, tp_recall *out)
{
    memset(out, 0, sizeof *out);
    out->target_name = tp_xstrdup(target);
    out->target = source ? -1 : tp_zoo_find_target(zoo, target);
    if (!source && out->target < 0) {
        tp_recall_free(out);
        return tp_fail("%s: no LEEP scores for target '%s' (the zoo's LEEP table has %lld targets)", zoo->manifest_path,
                       target, (long long)zoo->target_count);
    }
    if (options->k < 1 || options->top < 1) {
        tp_recall_free(out);
        return tp_fail("recall: k and top must be at least 1");
    }
    out->excluded_benchmark = tp_zoo_find_benchmark(zoo, target);
    int64_t models = zoo->model_count, benchmarks = zoo->benchmark_count - (out->excluded_benchmark >= 0);
    double *scores = tp_zoo_scores_without(zoo, out->excluded_benchmark);
    double *distances = tp_select_distances(scores, models, benchmarks, options->k);
    unsigned char *needed = tp_xmalloc((size_t)models);
    out->leep = tp_xmalloc((size_t)models * sizeof *out->leep);
    int status = tp_select_agglomerate(distances, models, options->tau, &out->clustering);
    if (status == 0) {
        out->averages = tp_xmalloc((size_t)models * sizeof *out->averages);
        out->proxy = tp_xmalloc((size_t)models * sizeof *out->proxy);
        out->representative = tp_xmalloc((size_t)out->clustering.cluster_count * sizeof *out->representative);
        tp_select_averages(scores, models, benchmarks, out->averages);
        tp_select_representatives(&out->clustering, out->averages, out->representative);
        tp_select_leep_needed(&out->clustering, out->representative, options->scope, needed);
        status = gather_leep(zoo, needed, source, out);
    }
    if (status == 0) {
        tp_select_proxy(scores, benchmarks, &out->clustering, out->averages, out->representative, out->leep,
                        options->scope, out->proxy);
        out->recalled_count = options->top < models ? options->top : models;
        out->recalled = tp_xmalloc((size_t)out->recalled_count * sizeof *out->recalled);
        tp_select_recall(out->proxy, models, out->recalled_count, out->recalled);
    }
    free(scores);
    free(distances);
    free(needed);
    if (status != 0) tp_recall_free(out);
    return status;
}

void tp_recall_free(tp_recall *recall)
{
    tp_clustering_free(&recall->clustering);
    free(recall->target_name);
    free(recall->leep);
    free(recall->averages);
    free(recall->proxy);
    free(recall->representative);
    free(recall->recalled);
    memset(recall, 0, sizeof *recall);
}
