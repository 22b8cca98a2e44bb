/* Fine selection of tp-select (core/select.h, docs/select.md): the learning-curve predictor,
 * successive halving with the predictor's drop rule, full fine-tuning, and the leave-one-out
 * simulation of the five strategies from a zoo's logged curves. */
#include "select.h"

#include "error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KMEANS_1D_MAX_ROUNDS 100

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The nearest usable centre (usable NULL: all), ties to the lower index; -1 when none is usable. */
static int64_t nearest_centre(const double *centres, int64_t count, const unsigned char *usable, double value)
{
    int64_t best = -1;
    for (int64_t j = 0; j < count; j++)
        if ((!usable || usable[j]) && (best < 0 || fabs(value - centres[j]) < fabs(value - centres[best]))) best = j;
    return best;
}

int64_t tp_select_kmeans_1d(const double *values, int64_t n, int64_t clusters, double *centres, int64_t *assign)
{
    int64_t k = clusters < n ? clusters : n;
    if (k < 1) return 0;
    double *sorted = tp_xmalloc((size_t)n * sizeof *sorted);
    memcpy(sorted, values, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_doubles);
    for (int64_t j = 0; j < k; j++) centres[j] = sorted[(2 * j + 1) * n / (2 * k)];
    free(sorted);
    for (int64_t i = 0; i < n; i++) assign[i] = -1;
    for (int round = 0; round < KMEANS_1D_MAX_ROUNDS; round++) {
        int changed = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t c = nearest_centre(centres, k, NULL, values[i]);
            changed |= c != assign[i];
            assign[i] = c;
        }
        if (!changed) break;
        for (int64_t j = 0; j < k; j++) {
            double total = 0;
            int64_t count = 0;
            for (int64_t i = 0; i < n; i++)
                if (assign[i] == j) {
                    total += values[i];
                    count++;
                }
            if (count) centres[j] = total / (double)count;
        }
    }
    return k;
}

double tp_select_predict(const double *dev, const double *final, int64_t n, int64_t clusters, double query)
{
    if (n < 1 || clusters < 1) return NAN;
    double *centres = tp_xmalloc((size_t)clusters * sizeof *centres);
    int64_t *assign = tp_xmalloc((size_t)n * sizeof *assign);
    unsigned char *used = tp_xcalloc((size_t)clusters, 1);
    int64_t k = tp_select_kmeans_1d(dev, n, clusters, centres, assign);
    for (int64_t i = 0; i < n; i++) used[assign[i]] = 1;
    int64_t nearest = nearest_centre(centres, k, used, query);
    double total = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++)
        if (assign[i] == nearest) {
            total += final[i];
            count++;
        }
    free(centres);
    free(assign);
    free(used);
    return total / (double)count;
}

double tp_select_predict_model(const tp_zoo *zoo, int64_t model, int64_t exclude, int64_t epoch, int64_t clusters,
                               double query)
{
    int64_t benchmarks = zoo->benchmark_count, n = 0;
    double *dev = tp_xmalloc((size_t)benchmarks * sizeof *dev), *final = tp_xmalloc((size_t)benchmarks * sizeof *final);
    for (int64_t b = 0; zoo->dev && b < benchmarks; b++) {
        int64_t pair = model * benchmarks + b;
        double score = zoo->scores[pair];
        if (b == exclude || !zoo->has_curve[pair] || !(score > 0)) continue;
        dev[n] = zoo->dev[pair * zoo->epochs + epoch];
        final[n++] = score;
    }
    double prediction = tp_select_predict(dev, final, n, clusters, query);
    free(dev);
    free(final);
    return prediction;
}

/* ---- full fine-tuning and successive halving -------------------------------------------------- */

void tp_selection_free(tp_selection *selection)
{
    for (int64_t r = 0; r < selection->rung_count; r++) {
        free(selection->rungs[r].dropped);
        free(selection->rungs[r].survivors);
    }
    free(selection->rungs);
    memset(selection, 0, sizeof *selection);
}

static int train(const tp_epoch_source *source, tp_selection *out, int64_t model, int64_t epoch, double *dev)
{
    double seconds = 0;
    if (source->train_epoch(source->user, model, epoch, dev, &seconds) != 0) return -1;
    out->epoch_units++;
    out->seconds += seconds;
    return 0;
}

/* The position (in candidate order) of the best dev score among the flagged; ties: the earlier. */
static int64_t best_of(const double *dev, const unsigned char *alive, int64_t count)
{
    int64_t best = -1;
    for (int64_t i = 0; i < count; i++)
        if (alive[i] && (best < 0 || dev[i] > dev[best])) best = i;
    return best;
}

static int check_candidates(int64_t count, int64_t epochs)
{
    if (count < 1) return tp_fail("selection: no candidate models");
    if (epochs < 1) return tp_fail("selection: %lld epochs (at least 1)", (long long)epochs);
    return 0;
}

int tp_select_full(const tp_epoch_source *source, const int64_t *candidates, int64_t count, int64_t epochs,
                   tp_selection *out)
{
    memset(out, 0, sizeof *out);
    if (check_candidates(count, epochs) != 0) return -1;
    double *dev = tp_xmalloc((size_t)count * sizeof *dev);
    unsigned char *alive = tp_xmalloc((size_t)count);
    for (int64_t i = 0; i < count; i++) alive[i] = 1;
    int status = 0;
    for (int64_t i = 0; status == 0 && i < count; i++)
        for (int64_t e = 0; status == 0 && e < epochs; e++) status = train(source, out, candidates[i], e, &dev[i]);
    if (status == 0) {
        int64_t best = best_of(dev, alive, count);
        out->chosen = candidates[best];
        out->chosen_dev = dev[best];
    }
    free(dev);
    free(alive);
    return status;
}

/* The drop rule: a survivor whose prediction is below the best prediction among the survivors
 * with a strictly higher dev score.  Marks them in dropped[], returns their number. */
static int64_t drop_by_prediction(const double *dev, const double *prediction, const unsigned char *alive, int64_t count,
                                  unsigned char *dropped)
{
    int64_t dropped_count = 0;
    for (int64_t i = 0; i < count; i++) {
        dropped[i] = 0;
        if (!alive[i] || isnan(prediction[i])) continue;
        double best_ahead = -INFINITY;
        for (int64_t j = 0; j < count; j++)
            if (alive[j] && dev[j] > dev[i] && prediction[j] > best_ahead) best_ahead = prediction[j];
        if (prediction[i] < best_ahead) {
            dropped[i] = 1;
            dropped_count++;
        }
    }
    return dropped_count;
}

/* Keeps the best `keep` survivors by dev score (ties: the earlier candidate). */
static void keep_best(const double *dev, unsigned char *alive, int64_t count, int64_t keep)
{
    unsigned char *kept = tp_xcalloc((size_t)count, 1);
    for (int64_t n = 0; n < keep; n++) {
        int64_t best = -1;
        for (int64_t i = 0; i < count; i++)
            if (alive[i] && !kept[i] && (best < 0 || dev[i] > dev[best])) best = i;
        if (best < 0) break;
        kept[best] = 1;
    }
    memcpy(alive, kept, (size_t)count);
    free(kept);
}

static int64_t *flagged_models(const int64_t *candidates, const unsigned char *flags, int64_t count, int64_t *out_count)
{
    int64_t n = 0;
    for (int64_t i = 0; i < count; i++) n += flags[i] != 0;
    int64_t *models = tp_xmalloc((size_t)(n ? n : 1) * sizeof *models);
    *out_count = 0;
    for (int64_t i = 0; i < count; i++)
        if (flags[i]) models[(*out_count)++] = candidates[i];
    return models;
}

static int halving_rung(const tp_epoch_source *source, const int64_t *candidates, int64_t count, int64_t epoch,
                        int drop, double *dev, unsigned char *alive, tp_selection *out)
{
    tp_rung *rung = &out->rungs[out->rung_count++];
    rung->epoch = epoch + 1;
    for (int64_t i = 0; i < count; i++) {
        if (!alive[i]) continue;
        if (train(source, out, candidates[i], epoch, &dev[i]) != 0) return -1;
        rung->trained++;
    }
    unsigned char *dropped = tp_xcalloc((size_t)count, 1);
    if (drop) {
        double *prediction = tp_xmalloc((size_t)count * sizeof *prediction);
        for (int64_t i = 0; i < count; i++)
            prediction[i] = alive[i] ? source->predict(source->user, candidates[i], epoch, dev[i]) : NAN;
        drop_by_prediction(dev, prediction, alive, count, dropped);
        for (int64_t i = 0; i < count; i++) alive[i] &= !dropped[i];
        free(prediction);
    }
    keep_best(dev, alive, count, rung->trained / 2 > 1 ? rung->trained / 2 : 1);
    rung->dropped = flagged_models(candidates, dropped, count, &rung->dropped_count);
    rung->survivors = flagged_models(candidates, alive, count, &rung->survivor_count);
    free(dropped);
    return 0;
}

int tp_select_halving(const tp_epoch_source *source, const int64_t *candidates, int64_t count, int64_t epochs,
                      int drop, tp_selection *out)
{
    memset(out, 0, sizeof *out);
    if (check_candidates(count, epochs) != 0) return -1;
    double *dev = tp_xmalloc((size_t)count * sizeof *dev);
    unsigned char *alive = tp_xmalloc((size_t)count);
    for (int64_t i = 0; i < count; i++) alive[i] = 1;
    out->rungs = tp_xcalloc((size_t)epochs, sizeof *out->rungs);
    int status = 0;
    for (int64_t e = 0; status == 0 && e < epochs; e++) {
        status = halving_rung(source, candidates, count, e, drop, dev, alive, out);
        if (status == 0 && out->rungs[e].survivor_count == 1) break;
    }
    if (status == 0) {
        int64_t best = best_of(dev, alive, count);
        out->chosen = candidates[best];
        out->chosen_dev = dev[best];
    } else {
        tp_selection_free(out);
    }
    free(dev);
    free(alive);
    return status;
}

/* ---- the simulation --------------------------------------------------------------------------- */

const char *tp_strategy_name(tp_strategy strategy)
{
    static const char *const names[TP_STRATEGY_COUNT] = {"brute_force", "successive_halving", "recall_full",
                                                         "recall_halving", "two_phase"};
    return strategy < TP_STRATEGY_COUNT ? names[strategy] : "?";
}

typedef struct replay {
    const tp_zoo *zoo;
    int64_t target, predictor_k;
} replay;

/* The simulation reads the logged epoch (real training: finetune_epoch in finetune/tp_select.c). */
static int replay_epoch(void *user, int64_t model, int64_t epoch, double *dev_score, double *seconds)
{
    const replay *run = user;
    int64_t at = (model * run->zoo->benchmark_count + run->target) * run->zoo->epochs + epoch;
    *dev_score = run->zoo->dev[at];
    *seconds = run->zoo->epoch_seconds[at];
    return 0;
}

static double replay_predict(void *user, int64_t model, int64_t epoch, double dev_score)
{
    const replay *run = user;
    return tp_select_predict_model(run->zoo, model, run->target, epoch, run->predictor_k, dev_score);
}

static int check_replayable(const tp_zoo *zoo, int64_t target)
{
    if (target < 0 || target >= zoo->benchmark_count) return tp_fail("simulate: no benchmark %lld", (long long)target);
    if (!zoo->dev) return tp_fail("%s: the zoo has no dev curves to replay (manifest key 'curves')", zoo->manifest_path);
    for (int64_t m = 0; m < zoo->model_count; m++) {
        int64_t pair = m * zoo->benchmark_count + target;
        if (!zoo->has_curve[pair] || !(zoo->scores[pair] > 0))
            return tp_fail("%s: model '%s' has no %s on benchmark '%s': every model needs both to replay it as the target",
                           zoo->manifest_path, zoo->models[m].name, zoo->has_curve[pair] ? "measured score" : "dev curve",
                           zoo->benchmarks[target]);
    }
    return 0;
}

static void offline_cost(const tp_zoo *zoo, int64_t target, tp_simulation *out)
{
    for (int64_t m = 0; m < zoo->model_count; m++)
        for (int64_t b = 0; b < zoo->benchmark_count; b++) {
            int64_t pair = m * zoo->benchmark_count + b;
            if (b == target || !zoo->has_curve[pair]) continue;
            out->offline_epoch_units += zoo->epochs;
            for (int64_t e = 0; e < zoo->epochs; e++) out->offline_seconds += zoo->epoch_seconds[pair * zoo->epochs + e];
        }
}

static int run_strategies(const tp_zoo *zoo, const tp_epoch_source *source, tp_simulation *out)
{
    int64_t models = zoo->model_count, *everyone = tp_xmalloc((size_t)models * sizeof *everyone);
    for (int64_t m = 0; m < models; m++) everyone[m] = m;
    const int64_t *recalled = out->recall.recalled, count = out->recall.recalled_count, epochs = zoo->epochs;
    tp_selection *s = out->strategies;
    int status = tp_select_full(source, everyone, models, epochs, &s[TP_STRATEGY_BRUTE_FORCE]);
    if (status == 0) status = tp_select_halving(source, everyone, models, epochs, 0, &s[TP_STRATEGY_HALVING]);
    if (status == 0) status = tp_select_full(source, recalled, count, epochs, &s[TP_STRATEGY_RECALL_FULL]);
    if (status == 0) status = tp_select_halving(source, recalled, count, epochs, 0, &s[TP_STRATEGY_RECALL_HALVING]);
    if (status == 0) status = tp_select_halving(source, recalled, count, epochs, 1, &s[TP_STRATEGY_TWO_PHASE]);
    free(everyone);
    return status;
}

int tp_select_simulate(const tp_zoo *zoo, int64_t target_benchmark, const tp_recall_options *options,
                       int64_t predictor_k, tp_simulation *out)
{
    memset(out, 0, sizeof *out);
    out->target = target_benchmark;
    if (check_replayable(zoo, target_benchmark) != 0) return -1;
    if (predictor_k < 1) return tp_fail("simulate: predictor clusters %lld (at least 1)", (long long)predictor_k);
    if (tp_select_run_recall(zoo, zoo->benchmarks[target_benchmark], options, &out->recall) != 0) return -1;
    replay run = {zoo, target_benchmark, predictor_k};
    tp_epoch_source source = {replay_epoch, replay_predict, &run};
    if (run_strategies(zoo, &source, out) != 0) {
        tp_simulation_free(out);
        return -1;
    }
    out->best_model = 0;
    for (int64_t m = 1; m < zoo->model_count; m++)
        if (zoo->scores[m * zoo->benchmark_count + target_benchmark] >
            zoo->scores[out->best_model * zoo->benchmark_count + target_benchmark])
            out->best_model = m;
    out->best_score = zoo->scores[out->best_model * zoo->benchmark_count + target_benchmark];
    for (int64_t i = 0; i < out->recall.recalled_count; i++) out->recall_hit |= out->recall.recalled[i] == out->best_model;
    offline_cost(zoo, target_benchmark, out);
    return 0;
}

void tp_simulation_free(tp_simulation *simulation)
{
    tp_recall_free(&simulation->recall);
    for (int s = 0; s < TP_STRATEGY_COUNT; s++) tp_selection_free(&simulation->strategies[s]);
}
