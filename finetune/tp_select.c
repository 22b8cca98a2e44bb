/* tp-select: two-phase model selection (issue 10; the method and formats in docs/select.md).
 * Argument parsing, wiring and output only: the method is core/select*.c. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/select.h"

static const char usage[] =
    "usage: tp-select COMMAND [OPTIONS]\n"
    "\n"
    "Two-phase model selection (docs/select.md): coarse recall of candidate models from a zoo's\n"
    "performance matrix and LEEP scores, then fine selection by successive halving with a\n"
    "learning-curve predictor.  A zoo is a manifest (zoo.json) naming a performance matrix, per-epoch\n"
    "dev curves and a LEEP table (docs/select.md, \"Zoo format\").\n"
    "\n"
    "Commands:\n"
    "  import    --paper DIR --out DIR\n"
    "            converts the paper's released data (datasets.txt, matrix.txt, leep_score_<target>.txt)\n"
    "            into a zoo: DIR/zoo.json, matrix.tsv, leep.tsv\n"
    "  cluster   --zoo ZOO [--method agglomerative|kmeans] [--tau T] [--k K] [--clusters N]\n"
    "            [--exclude BENCHMARK]\n"
    "            clusters the zoo's models; prints the clusters, representatives, merges, silhouette\n"
    "  leep      --outputs FILE [--zoo ZOO --model NAME]\n"
    "            LEEP of a head's softmax outputs on the target data (with --zoo/--model, the column\n"
    "            count is checked against the model's head)\n"
    "  recall    --zoo ZOO --target NAME [--tau T] [--k K] [--top R] [--proxy-scope all|representatives]\n"
    "            the coarse-recall phase for a target of the LEEP table (a target that is also a\n"
    "            benchmark has its matrix column left out)\n"
    "  simulate  --zoo ZOO [--target BENCHMARK] [--tau T] [--k K] [--top R] [--proxy-scope ...]\n"
    "            [--predictor-k K]\n"
    "            replays the zoo's logged curves with each benchmark (or only --target) as the target\n"
    "            (leave-one-out): the five strategies brute_force, successive_halving, recall_full,\n"
    "            recall_halving and two_phase, with epoch units and seconds per phase, the offline\n"
    "            cost apart, regret, speed-ups and whether the recall kept the best model\n"
    "  select    --zoo ZOO --target NAME [recall options]\n"
    "            recall, then two-phase fine selection with real training: not wired to tp-finetune\n"
    "            yet (docs/select.md, \"Real training\"); fails after the recall\n"
    "\n"
    "Options:\n"
    "  --tau T              merge threshold of the average-linkage clustering (0.09; the paper uses\n"
    "                       0.09 for its NLP zoo and 0.03 for CV)\n"
    "  --k K                score gaps averaged by the model distance (5)\n"
    "  --method M           agglomerative (default) or kmeans (k-means with the model distance)\n"
    "  --clusters N         k-means clusters (default: as many as the agglomerative clustering finds)\n"
    "  --exclude B          leave benchmark B's column out of the distances\n"
    "  --top R              models recalled (15)\n"
    "  --proxy-scope S      all: each non-singleton member's own LEEP (the paper's code, default);\n"
    "                       representatives: its representative's (the paper's text; fewer forward passes)\n"
    "  --predictor-k K      clusters of the learning-curve predictor (4)\n"
    "  --format F           json (default) or tsv\n"
    "  --output FILE        write there (atomically) instead of stdout\n"
    "  --help               this text\n"
    "\n"
    "Exit status: 0 success, 1 failure (one message naming the file and line or key), 2 bad usage.\n";

typedef struct options {
    const char *command, *paper, *out, *zoo, *method, *exclude, *outputs, *model, *target, *scope, *format, *output;
    const char *tau, *k, *clusters, *top, *predictor_k;
} options;

typedef struct option_name {
    const char *name;
    size_t offset;
} option_name;

#define OPTION(field) {"--" #field, offsetof(options, field)}
static const option_name option_names[] = {
    OPTION(paper),  OPTION(out),    OPTION(zoo),    OPTION(method), OPTION(exclude),  OPTION(outputs),
    OPTION(model),  OPTION(target), OPTION(format), OPTION(output), OPTION(tau),      OPTION(k),
    OPTION(clusters), OPTION(top),  {"--proxy-scope", offsetof(options, scope)},   {"--predictor-k", offsetof(options, predictor_k)},
};

static int usage_error(const char *fmt, const char *detail)
{
    fputs("tp-select: ", stderr);
    fprintf(stderr, fmt, detail);
    fputs(" (tp-select --help)\n", stderr);
    return 2;
}

static int parse_args(int argc, char **argv, options *opt)
{
    memset(opt, 0, sizeof *opt);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (strncmp(argv[i], "--", 2) != 0) {
            if (opt->command) return usage_error("unexpected argument '%s'", argv[i]);
            opt->command = argv[i];
            continue;
        }
        const option_name *found = NULL;
        for (size_t n = 0; n < sizeof option_names / sizeof *option_names && !found; n++)
            if (strcmp(argv[i], option_names[n].name) == 0) found = &option_names[n];
        if (!found) return usage_error("unknown option '%s'", argv[i]);
        if (i + 1 >= argc) return usage_error("option '%s' needs a value", argv[i]);
        *(const char **)((char *)opt + found->offset) = argv[++i];
    }
    if (!opt->command) return usage_error("%s", "no command given");
    return 0;
}

static int parse_double_option(const char *name, const char *text, double fallback, double min, double *out)
{
    *out = fallback;
    if (!text) return 0;
    char *end = NULL;
    *out = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(*out) || *out < min)
        return tp_fail("option --%s: '%s' is not a number >= %g", name, text, min);
    return 0;
}

static int parse_int_option(const char *name, const char *text, int64_t fallback, int64_t min, int64_t *out)
{
    double value;
    if (parse_double_option(name, text, (double)fallback, (double)min, &value) != 0) return -1;
    if (value != floor(value) || value > 1e9) return tp_fail("option --%s: '%s' is not an integer", name, text);
    *out = (int64_t)value;
    return 0;
}

static int require(const char *value, const char *name)
{
    return value ? 0 : tp_fail("the command needs --%s", name);
}

static int parse_recall_options(const options *opt, tp_recall_options *recall)
{
    if (parse_double_option("tau", opt->tau, 0.09, 0, &recall->tau) != 0) return -1;
    if (parse_int_option("k", opt->k, TP_SELECT_K, 1, &recall->k) != 0) return -1;
    if (parse_int_option("top", opt->top, 15, 1, &recall->top) != 0) return -1;
    recall->scope = TP_PROXY_ALL;
    if (!opt->scope || strcmp(opt->scope, "all") == 0) return 0;
    if (strcmp(opt->scope, "representatives") == 0) {
        recall->scope = TP_PROXY_REPRESENTATIVES;
        return 0;
    }
    return tp_fail("option --proxy-scope: '%s' (expected all or representatives)", opt->scope);
}

/* ---- output ----------------------------------------------------------------------------------- */

typedef struct output {
    int tsv;
    FILE *fp;
    tp_atomic_file file;
    int to_file;
} output;

static int output_open(output *out, const options *opt)
{
    memset(out, 0, sizeof *out);
    if (opt->format && strcmp(opt->format, "json") != 0 && strcmp(opt->format, "tsv") != 0)
        return tp_fail("option --format: '%s' (expected json or tsv)", opt->format);
    out->tsv = opt->format && strcmp(opt->format, "tsv") == 0;
    out->fp = stdout;
    if (!opt->output) return 0;
    if (tp_atomic_open(&out->file, opt->output) != 0) return -1;
    out->fp = out->file.fp;
    out->to_file = 1;
    return 0;
}

static int output_close(output *out, int status)
{
    if (!out->to_file) return fflush(stdout) == 0 && status == 0 ? 0 : -1;
    if (status != 0) {
        tp_atomic_abort(&out->file);
        return status;
    }
    return tp_atomic_commit(&out->file);
}

/* Prints (and frees) a JSON document. */
static void print_json(output *out, cJSON *root)
{
    char *text = cJSON_Print(root);
    fprintf(out->fp, "%s\n", text);
    free(text);
    cJSON_Delete(root);
}

static cJSON *json_number_or_null(double value) { return isfinite(value) ? cJSON_CreateNumber(value) : cJSON_CreateNull(); }

static cJSON *model_names_json(const tp_zoo *zoo, const int64_t *models, int64_t count)
{
    cJSON *list = cJSON_CreateArray();
    for (int64_t i = 0; i < count; i++) cJSON_AddItemToArray(list, cJSON_CreateString(zoo->models[models[i]].name));
    return list;
}

static cJSON *clusters_json(const tp_zoo *zoo, const tp_clustering *clustering, const int64_t *representative)
{
    cJSON *list = cJSON_CreateArray();
    for (int64_t c = 0; c < clustering->cluster_count; c++) {
        cJSON *cluster = cJSON_CreateObject();
        int64_t first = clustering->start[c], size = clustering->start[c + 1] - first;
        cJSON_AddItemToObject(cluster, "members", model_names_json(zoo, clustering->members + first, size));
        cJSON_AddItemToObject(cluster, "representative", representative[c] >= 0
                                                              ? cJSON_CreateString(zoo->models[representative[c]].name)
                                                              : cJSON_CreateNull());
        cJSON_AddItemToArray(list, cluster);
    }
    return list;
}

/* A number for TSV output: the shortest text that reads back as the same double. */
static const char *number(double value, char text[32])
{
    tp_select_format_number(value, text, 32);
    return text;
}

static void print_clusters_tsv(output *out, const tp_zoo *zoo, const tp_clustering *clustering,
                               const int64_t *representative, const double *averages)
{
    fputs("cluster\tmodel\trepresentative\taverage_score\n", out->fp);
    for (int64_t c = 0; c < clustering->cluster_count; c++)
        for (int64_t at = clustering->start[c]; at < clustering->start[c + 1]; at++) {
            int64_t m = clustering->members[at];
            char average[32];
            fprintf(out->fp, "%lld\t%s\t%d\t%s\n", (long long)c, zoo->models[m].name, representative[c] == m,
                    number(averages[m], average));
        }
}

/* ---- import, cluster, leep -------------------------------------------------------------------- */

static int command_import(const options *opt)
{
    if (require(opt->paper, "paper") != 0 || require(opt->out, "out") != 0) return -1;
    tp_zoo *zoo = tp_zoo_import_paper(opt->paper);
    if (!zoo) return -1;
    int status = tp_zoo_save(zoo, opt->out);
    if (status == 0)
        fprintf(stderr, "tp-select: %lld models x %lld benchmarks, LEEP for %lld target(s) -> %s/zoo.json\n",
                (long long)zoo->model_count, (long long)zoo->benchmark_count, (long long)zoo->target_count, opt->out);
    tp_zoo_free(zoo);
    return status;
}

static int excluded_benchmark(const tp_zoo *zoo, const char *name, int64_t *out)
{
    *out = name ? tp_zoo_find_benchmark(zoo, name) : -1;
    if (name && *out < 0) return tp_fail("option --exclude: the zoo has no benchmark '%s'", name);
    return 0;
}

static int cluster_models(const options *opt, const tp_zoo *zoo, const double *scores, int64_t benchmarks,
                          const double *distances, double tau, int64_t k, tp_clustering *out)
{
    if (tp_select_agglomerate(distances, zoo->model_count, tau, out) != 0) return -1;
    if (!opt->method || strcmp(opt->method, "agglomerative") == 0) return 0;
    if (strcmp(opt->method, "kmeans") != 0)
        return tp_fail("option --method: '%s' (expected agglomerative or kmeans)", opt->method);
    int64_t clusters;
    int status = parse_int_option("clusters", opt->clusters, out->cluster_count, 1, &clusters);
    tp_clustering_free(out);
    return status == 0 ? tp_select_kmeans(scores, zoo->model_count, benchmarks, k, clusters, out) : -1;
}

static void print_cluster_json(output *out, const tp_zoo *zoo, const options *opt, double tau, int64_t k, int64_t exclude,
                               const tp_clustering *clustering, const int64_t *representative, double silhouette)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "zoo", zoo->manifest_path);
    cJSON_AddStringToObject(root, "method", opt->method ? opt->method : "agglomerative");
    cJSON_AddNumberToObject(root, "tau", tau);
    cJSON_AddNumberToObject(root, "k", (double)k);
    cJSON_AddItemToObject(root, "excluded_benchmark", exclude >= 0 ? cJSON_CreateString(zoo->benchmarks[exclude]) : cJSON_CreateNull());
    int64_t non_singleton = 0;
    for (int64_t c = 0; c < clustering->cluster_count; c++) non_singleton += representative[c] >= 0;
    cJSON_AddNumberToObject(root, "clusters_total", (double)clustering->cluster_count);
    cJSON_AddNumberToObject(root, "non_singleton_clusters", (double)non_singleton);
    cJSON_AddItemToObject(root, "silhouette", json_number_or_null(silhouette));
    cJSON_AddItemToObject(root, "clusters", clusters_json(zoo, clustering, representative));
    cJSON *merges = cJSON_AddArrayToObject(root, "merges");
    for (int64_t i = 0; i < clustering->merge_count; i++) {
        cJSON *merge = cJSON_CreateObject();
        cJSON_AddNumberToObject(merge, "first", (double)clustering->merges[i].first);
        cJSON_AddNumberToObject(merge, "second", (double)clustering->merges[i].second);
        cJSON_AddNumberToObject(merge, "distance", clustering->merges[i].distance);
        cJSON_AddItemToArray(merges, merge);
    }
    print_json(out, root);
}

static int command_cluster(const options *opt)
{
    tp_recall_options recall;
    int64_t exclude;
    output out;
    if (require(opt->zoo, "zoo") != 0 || parse_recall_options(opt, &recall) != 0) return -1;
    tp_zoo *zoo = tp_zoo_load(opt->zoo);
    if (!zoo) return -1;
    if (excluded_benchmark(zoo, opt->exclude, &exclude) != 0 || output_open(&out, opt) != 0) {
        tp_zoo_free(zoo);
        return -1;
    }
    int64_t benchmarks = zoo->benchmark_count - (exclude >= 0);
    double *scores = tp_zoo_scores_without(zoo, exclude);
    double *distances = tp_select_distances(scores, zoo->model_count, benchmarks, recall.k);
    double *averages = tp_xmalloc((size_t)zoo->model_count * sizeof *averages);
    tp_clustering clustering;
    int status = cluster_models(opt, zoo, scores, benchmarks, distances, recall.tau, recall.k, &clustering);
    if (status == 0) {
        int64_t *representative = tp_xmalloc((size_t)clustering.cluster_count * sizeof *representative);
        tp_select_averages(scores, zoo->model_count, benchmarks, averages);
        tp_select_representatives(&clustering, averages, representative);
        if (out.tsv) print_clusters_tsv(&out, zoo, &clustering, representative, averages);
        else
            print_cluster_json(&out, zoo, opt, recall.tau, recall.k, exclude, &clustering, representative,
                               tp_select_silhouette(distances, &clustering));
        free(representative);
        tp_clustering_free(&clustering);
    }
    status = output_close(&out, status);
    free(scores);
    free(distances);
    free(averages);
    tp_zoo_free(zoo);
    return status;
}

static int command_leep(const options *opt)
{
    int64_t expected = 0;
    tp_zoo *zoo = NULL;
    if (require(opt->outputs, "outputs") != 0) return -1;
    if (!opt->zoo != !opt->model) return tp_fail("--zoo and --model go together");
    if (opt->zoo && !(zoo = tp_zoo_load(opt->zoo))) return -1;
    if (zoo) {
        int64_t m = tp_zoo_find_model(zoo, opt->model);
        int status = m < 0 ? tp_fail("%s: no model '%s'", zoo->manifest_path, opt->model)
                     : zoo->models[m].head_labels == 0
                         ? tp_fail("%s: model '%s' has no head: LEEP needs its source-task classifier's softmax outputs",
                                   zoo->manifest_path, opt->model)
                         : 0;
        if (status == 0) expected = zoo->models[m].head_labels;
        tp_zoo_free(zoo);
        if (status != 0) return -1;
    }
    tp_head_outputs *outputs = tp_head_outputs_read(opt->outputs, expected);
    output out;
    if (!outputs) return -1;
    int status = output_open(&out, opt);
    if (status == 0) {
        double leep = tp_select_leep(outputs);
        if (out.tsv) {
            char text[32];
            fprintf(out.fp, "outputs\texamples\tsource_labels\ttarget_labels\tleep\n%s\t%lld\t%lld\t%lld\t%s\n",
                    opt->outputs, (long long)outputs->count, (long long)outputs->source_labels,
                    (long long)outputs->target_labels, number(leep, text));
        } else {
            cJSON *root = cJSON_CreateObject();
            cJSON_AddStringToObject(root, "outputs", opt->outputs);
            cJSON_AddNumberToObject(root, "examples", (double)outputs->count);
            cJSON_AddNumberToObject(root, "source_labels", (double)outputs->source_labels);
            cJSON_AddNumberToObject(root, "target_labels", (double)outputs->target_labels);
            cJSON_AddNumberToObject(root, "leep", leep);
            print_json(&out, root);
        }
        status = output_close(&out, 0);
    }
    tp_head_outputs_free(outputs);
    return status;
}

/* ---- recall ----------------------------------------------------------------------------------- */

static cJSON *recall_json(const tp_zoo *zoo, const tp_recall *recall, const tp_recall_options *options)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "target", zoo->targets[recall->target]);
    cJSON_AddItemToObject(root, "excluded_benchmark", recall->excluded_benchmark >= 0
                                                          ? cJSON_CreateString(zoo->benchmarks[recall->excluded_benchmark])
                                                          : cJSON_CreateNull());
    cJSON_AddNumberToObject(root, "tau", options->tau);
    cJSON_AddNumberToObject(root, "k", (double)options->k);
    cJSON_AddStringToObject(root, "proxy_scope", options->scope == TP_PROXY_ALL ? "all" : "representatives");
    cJSON_AddItemToObject(root, "clusters", clusters_json(zoo, &recall->clustering, recall->representative));
    cJSON_AddNumberToObject(root, "leep_forward_passes", (double)recall->leep_passes);
    cJSON_AddNumberToObject(root, "leep_seconds", recall->leep_seconds);
    cJSON_AddNumberToObject(root, "leep_unlogged", (double)recall->leep_unlogged);
    cJSON *list = cJSON_AddArrayToObject(root, "recalled");
    for (int64_t i = 0; i < recall->recalled_count; i++) {
        int64_t m = recall->recalled[i];
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddNumberToObject(entry, "rank", (double)(i + 1));
        cJSON_AddStringToObject(entry, "model", zoo->models[m].name);
        cJSON_AddNumberToObject(entry, "proxy", recall->proxy[m]);
        cJSON_AddNumberToObject(entry, "average_score", recall->averages[m]);
        cJSON_AddItemToArray(list, entry);
    }
    return root;
}

static int command_recall(const options *opt)
{
    tp_recall_options options;
    tp_recall recall;
    output out;
    if (require(opt->zoo, "zoo") != 0 || require(opt->target, "target") != 0 || parse_recall_options(opt, &options) != 0)
        return -1;
    tp_zoo *zoo = tp_zoo_load(opt->zoo);
    if (!zoo) return -1;
    if (tp_select_run_recall(zoo, opt->target, &options, &recall) != 0) {
        tp_zoo_free(zoo);
        return -1;
    }
    int status = output_open(&out, opt);
    if (status == 0) {
        if (out.tsv) {
            fputs("rank\tmodel\tproxy\taverage_score\n", out.fp);
            for (int64_t i = 0; i < recall.recalled_count; i++) {
                int64_t m = recall.recalled[i];
                char proxy[32], average[32];
                fprintf(out.fp, "%lld\t%s\t%s\t%s\n", (long long)(i + 1), zoo->models[m].name, number(recall.proxy[m], proxy),
                        number(recall.averages[m], average));
            }
        } else {
            print_json(&out, recall_json(zoo, &recall, &options));
        }
        status = output_close(&out, 0);
    }
    tp_recall_free(&recall);
    tp_zoo_free(zoo);
    return status;
}

/* ---- simulate --------------------------------------------------------------------------------- */

static int uses_recall(int strategy) { return strategy >= TP_STRATEGY_RECALL_FULL; }

static double strategy_seconds(const tp_simulation *sim, int strategy)
{
    return sim->strategies[strategy].seconds + (uses_recall(strategy) ? sim->recall.leep_seconds : 0);
}

static cJSON *rungs_json(const tp_zoo *zoo, const tp_selection *selection)
{
    cJSON *list = cJSON_CreateArray();
    for (int64_t r = 0; r < selection->rung_count; r++) {
        const tp_rung *rung = &selection->rungs[r];
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddNumberToObject(entry, "epoch", (double)rung->epoch);
        cJSON_AddNumberToObject(entry, "trained", (double)rung->trained);
        cJSON_AddItemToObject(entry, "dropped", model_names_json(zoo, rung->dropped, rung->dropped_count));
        cJSON_AddItemToObject(entry, "survivors", model_names_json(zoo, rung->survivors, rung->survivor_count));
        cJSON_AddItemToArray(list, entry);
    }
    return list;
}

static cJSON *strategy_json(const tp_zoo *zoo, const tp_simulation *sim, int strategy)
{
    const tp_selection *run = &sim->strategies[strategy], *brute = &sim->strategies[TP_STRATEGY_BRUTE_FORCE];
    double chosen_score = zoo->scores[run->chosen * zoo->benchmark_count + sim->target];
    cJSON *entry = cJSON_CreateObject();
    cJSON_AddStringToObject(entry, "chosen", zoo->models[run->chosen].name);
    cJSON_AddNumberToObject(entry, "chosen_score", chosen_score);
    cJSON_AddNumberToObject(entry, "regret", sim->best_score - chosen_score);
    cJSON_AddBoolToObject(entry, "chose_best", run->chosen == sim->best_model);
    cJSON_AddBoolToObject(entry, "agrees_with_brute_force", run->chosen == brute->chosen);
    cJSON_AddNumberToObject(entry, "epoch_units", (double)run->epoch_units);
    cJSON_AddNumberToObject(entry, "fine_seconds", run->seconds);
    cJSON_AddNumberToObject(entry, "leep_forward_passes", uses_recall(strategy) ? (double)sim->recall.leep_passes : 0);
    cJSON_AddNumberToObject(entry, "recall_seconds", uses_recall(strategy) ? sim->recall.leep_seconds : 0);
    cJSON_AddNumberToObject(entry, "total_seconds", strategy_seconds(sim, strategy));
    cJSON_AddNumberToObject(entry, "speedup_epoch_units", (double)brute->epoch_units / (double)run->epoch_units);
    cJSON_AddItemToObject(entry, "speedup_seconds",
                          json_number_or_null(strategy_seconds(sim, TP_STRATEGY_BRUTE_FORCE) / strategy_seconds(sim, strategy)));
    if (run->rung_count) cJSON_AddItemToObject(entry, "rungs", rungs_json(zoo, run));
    return entry;
}

static cJSON *simulation_json(const tp_zoo *zoo, const tp_simulation *sim)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "target", zoo->benchmarks[sim->target]);
    cJSON_AddStringToObject(root, "best_model", zoo->models[sim->best_model].name);
    cJSON_AddNumberToObject(root, "best_score", sim->best_score);
    cJSON_AddBoolToObject(root, "recall_hit", sim->recall_hit);
    cJSON_AddItemToObject(root, "recalled", model_names_json(zoo, sim->recall.recalled, sim->recall.recalled_count));
    cJSON_AddItemToObject(root, "clusters", clusters_json(zoo, &sim->recall.clustering, sim->recall.representative));
    cJSON_AddNumberToObject(root, "leep_unlogged", (double)sim->recall.leep_unlogged);
    cJSON *offline = cJSON_AddObjectToObject(root, "offline");
    cJSON_AddNumberToObject(offline, "epoch_units", (double)sim->offline_epoch_units);
    cJSON_AddNumberToObject(offline, "seconds", sim->offline_seconds);
    cJSON *strategies = cJSON_AddObjectToObject(root, "strategies");
    for (int s = 0; s < TP_STRATEGY_COUNT; s++)
        cJSON_AddItemToObject(strategies, tp_strategy_name((tp_strategy)s), strategy_json(zoo, sim, s));
    return root;
}

static void print_simulation_tsv(output *out, const tp_zoo *zoo, const tp_simulation *sim)
{
    for (int s = 0; s < TP_STRATEGY_COUNT; s++) {
        const tp_selection *run = &sim->strategies[s];
        double chosen_score = zoo->scores[run->chosen * zoo->benchmark_count + sim->target];
        char score[32], regret[32], seconds[32], recall_seconds[32];
        fprintf(out->fp, "%s\t%s\t%s\t%s\t%s\t%lld\t%s\t%s\t%d\n", zoo->benchmarks[sim->target],
                tp_strategy_name((tp_strategy)s), zoo->models[run->chosen].name, number(chosen_score, score),
                number(sim->best_score - chosen_score, regret), (long long)run->epoch_units, number(run->seconds, seconds),
                number(uses_recall(s) ? sim->recall.leep_seconds : 0.0, recall_seconds), sim->recall_hit);
    }
}

static int command_simulate(const options *opt)
{
    tp_recall_options options;
    int64_t predictor_k;
    output out;
    if (require(opt->zoo, "zoo") != 0 || parse_recall_options(opt, &options) != 0 ||
        parse_int_option("predictor-k", opt->predictor_k, TP_SELECT_PREDICTOR_K, 1, &predictor_k) != 0)
        return -1;
    tp_zoo *zoo = tp_zoo_load(opt->zoo);
    if (!zoo) return -1;
    int64_t only = opt->target ? tp_zoo_find_benchmark(zoo, opt->target) : -1;
    int status = opt->target && only < 0 ? tp_fail("%s: no benchmark '%s'", opt->zoo, opt->target) : output_open(&out, opt);
    if (status != 0) {
        tp_zoo_free(zoo);
        return -1;
    }
    cJSON *targets = cJSON_CreateArray();
    if (out.tsv)
        fputs("target\tstrategy\tchosen\tchosen_score\tregret\tepoch_units\tfine_seconds\trecall_seconds\trecall_hit\n", out.fp);
    for (int64_t t = 0; status == 0 && t < zoo->benchmark_count; t++) {
        if (only >= 0 && t != only) continue;
        tp_simulation sim;
        status = tp_select_simulate(zoo, t, &options, predictor_k, &sim);
        if (status != 0) break;
        if (out.tsv) print_simulation_tsv(&out, zoo, &sim);
        else cJSON_AddItemToArray(targets, simulation_json(zoo, &sim));
        tp_simulation_free(&sim);
    }
    if (status == 0 && !out.tsv) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "zoo", zoo->manifest_path);
        cJSON_AddNumberToObject(root, "tau", options.tau);
        cJSON_AddNumberToObject(root, "top", (double)options.top);
        cJSON_AddStringToObject(root, "proxy_scope", options.scope == TP_PROXY_ALL ? "all" : "representatives");
        cJSON_AddItemToObject(root, "targets", targets);
        print_json(&out, root);
    } else {
        cJSON_Delete(targets);
    }
    status = output_close(&out, status);
    tp_zoo_free(zoo);
    return status;
}

/* ---- select: real training (the hook) --------------------------------------------------------- */

/* THE HOOK for real training.  A real run trains `model` (zoo->models[model]: its checkpoint,
 * config and head) on the target task for exactly one more epoch -- the model has trained `epoch`
 * epochs before -- and reports the dev score after it and the wall-clock seconds.  With tp-finetune
 * that is: a run config per (model, target) with output_dir = <work>/<model>, epochs_num =
 * epoch + 1, --resume when epoch > 0 (tp-finetune's exact resume between epochs), then the last
 * line of its per-epoch dev metrics JSONL (the score and the epoch's seconds).  What tp-finetune
 * still has to provide for that is listed in docs/select.md, "Real training".  Until then the
 * command stops here with this message; the simulation (replay_epoch in core/select_fine.c) is the
 * working path. */
static int finetune_epoch(void *user, int64_t model, int64_t epoch, double *dev_score, double *seconds)
{
    const tp_zoo *zoo = user;
    (void)epoch;
    *dev_score = *seconds = 0;
    return tp_fail("select: training '%s' on the target needs tp-finetune's one-epoch resume and per-epoch dev "
                   "metrics JSONL, not wired yet (docs/select.md, \"Real training\"); use tp-select simulate on logged curves",
                   zoo->models[model].name);
}

static double finetune_predict(void *user, int64_t model, int64_t epoch, double dev_score)
{
    return tp_select_predict_model(user, model, -1, epoch, TP_SELECT_PREDICTOR_K, dev_score);
}

static int command_select(const options *opt)
{
    tp_recall_options options;
    tp_recall recall;
    if (require(opt->zoo, "zoo") != 0 || require(opt->target, "target") != 0 || parse_recall_options(opt, &options) != 0)
        return -1;
    tp_zoo *zoo = tp_zoo_load(opt->zoo);
    if (!zoo) return -1;
    int status = tp_select_run_recall(zoo, opt->target, &options, &recall);
    if (status == 0) {
        tp_epoch_source source = {finetune_epoch, finetune_predict, zoo};
        tp_selection selection;
        status = tp_select_halving(&source, recall.recalled, recall.recalled_count, zoo->epochs, 1, &selection);
        if (status == 0) {
            printf("%s\n", zoo->models[selection.chosen].name);
            tp_selection_free(&selection);
        }
        tp_recall_free(&recall);
    }
    tp_zoo_free(zoo);
    return status;
}

int main(int argc, char **argv)
{
    options opt;
    int parsed = parse_args(argc, argv, &opt);
    if (parsed != 0) return parsed;
    static const struct {
        const char *name;
        int (*run)(const options *);
    } commands[] = {{"import", command_import},     {"cluster", command_cluster},   {"leep", command_leep},
                    {"recall", command_recall},     {"simulate", command_simulate}, {"select", command_select}};
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (strcmp(opt.command, commands[i].name) != 0) continue;
        if (commands[i].run(&opt) == 0) return 0;
        fprintf(stderr, "tp-select: error: %s\n", tp_last_error());
        return 1;
    }
    return usage_error("unknown command '%s'", opt.command);
}
