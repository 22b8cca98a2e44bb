/* tp-select: two-phase model selection (issue 10; the method and formats in docs/select.md).
 * Argument parsing, wiring and output only: the method is core/select*.c. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/select.h"
#include "core/select_train.h"

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
    "  build     --zoo ZOO --tasks DIR --finetune RUN.json --work DIR [--epochs E] [--benchmarks A,B,...]\n"
    "            [--leep-examples N]\n"
    "            the offline phase, real training: fine-tunes every model of the manifest on every\n"
    "            benchmark task (default: every task directory) for E epochs (default: the manifest's),\n"
    "            one tp-finetune run per epoch, evaluates test with the best-on-dev weights, computes LEEP\n"
    "            of every model with a head on every task, and writes matrix.tsv, curves.tsv, leep.tsv and\n"
    "            a rewritten zoo.json next to the manifest (whose tables need not exist yet)\n"
    "  select    --zoo ZOO --target TASK --tasks DIR --finetune RUN.json --work DIR [--strategy S]\n"
    "            [recall options] [--predictor-k K] [--leep-examples N]\n"
    "            selects a model for the target task with real training: the recall (LEEP of the heads\n"
    "            it needs, one tp-infer forward pass each), then the fine phase (tp-finetune, one run per\n"
    "            model-epoch); prints every phase's epoch units and seconds, the dev curves trained, the\n"
    "            choice and its test score (when the task has test.tsv, reported apart)\n"
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
    "  --strategy S         select: two_phase (default), recall_halving, recall_full, successive_halving\n"
    "                       or brute_force\n"
    "  --tasks DIR          task directories DIR/<task>/{train,dev,test}.tsv (classification, TencentPretrain\n"
    "                       TSV; docs/finetune_data.md)\n"
    "  --finetune RUN.json  tp-finetune run-config template: tokenizer, seq_length, batch_size,\n"
    "                       learning_rate, seed, threads, ...; tp-select sets model, pretrained_model_path,\n"
    "                       train/dev/test_path, output_dir and epochs_num; scheduler: constant (the\n"
    "                       default here; a schedule over the run's length would stretch with every epoch)\n"
    "  --work DIR           runs go to DIR/<task>/<NN>-<model>/ (fresh directories; logs in run.log)\n"
    "  --epochs E           build: epochs per model and benchmark (default: the manifest's epochs)\n"
    "  --benchmarks A,B     build: the tasks to fine-tune on (default: every directory under --tasks)\n"
    "  --leep-examples N    training examples of the target the heads see, evenly spaced (0: all; 0)\n"
    "  --bin DIR            where tp-finetune and tp-infer are (default: tp-select's directory)\n"
    "  --format F           json (default) or tsv\n"
    "  --output FILE        write there (atomically) instead of stdout\n"
    "  --help               this text\n"
    "\n"
    "Exit status: 0 success, 1 failure (one message naming the file and line or key), 2 bad usage.\n";

typedef struct options {
    const char *command, *paper, *out, *zoo, *method, *exclude, *outputs, *model, *target, *scope, *format, *output;
    const char *tau, *k, *clusters, *top, *predictor_k;
    const char *strategy, *tasks, *finetune, *work, *epochs, *benchmarks, *leep_examples, *bin;
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
    OPTION(strategy), OPTION(tasks), OPTION(finetune), OPTION(work), OPTION(epochs), OPTION(benchmarks), OPTION(bin),
    {"--leep-examples", offsetof(options, leep_examples)},
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

/* Set by the option checks below: a missing or malformed option is bad usage (exit status 2). */
static int bad_usage;

static int parse_double_option(const char *name, const char *text, double fallback, double min, double *out)
{
    *out = fallback;
    if (!text) return 0;
    char *end = NULL;
    *out = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(*out) || *out < min) {
        bad_usage = 1;
        return tp_fail("option --%s: '%s' is not a number >= %g", name, text, min);
    }
    return 0;
}

static int parse_int_option(const char *name, const char *text, int64_t fallback, int64_t min, int64_t *out)
{
    double value;
    if (parse_double_option(name, text, (double)fallback, (double)min, &value) != 0) return -1;
    if (value != floor(value) || value > 1e9) {
        bad_usage = 1;
        return tp_fail("option --%s: '%s' is not an integer", name, text);
    }
    *out = (int64_t)value;
    return 0;
}

static int require(const char *value, const char *name)
{
    if (value) return 0;
    bad_usage = 1;
    return tp_fail("the command needs --%s", name);
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
    cJSON_AddStringToObject(root, "target", recall->target_name);
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

/* ---- real training: build and select ---------------------------------------------------------- */

static void print_progress(void *user, const char *line)
{
    (void)user;
    fprintf(stderr, "tp-select: %s\n", line);
}

/* tp-select's own directory, where tp-finetune and tp-infer are built next to it. */
static int own_directory(char *out, size_t size)
{
    ssize_t length = readlink("/proc/self/exe", out, size - 1);
    if (length <= 0) return tp_fail("cannot find tp-select's directory (/proc/self/exe): give --bin DIR");
    out[length] = '\0';
    char *slash = strrchr(out, '/');
    if (slash) *slash = '\0';
    return 0;
}

static int open_env(const options *opt, const tp_zoo *zoo, tp_select_env *env)
{
    static char bin[4096];
    int64_t leep_examples;
    if (require(opt->tasks, "tasks") != 0 || require(opt->finetune, "finetune") != 0 || require(opt->work, "work") != 0 ||
        parse_int_option("leep-examples", opt->leep_examples, 0, 0, &leep_examples) != 0)
        return -1;
    if (!opt->bin && own_directory(bin, sizeof bin) != 0) return -1;
    tp_select_env_options options = {opt->tasks, opt->work, opt->finetune, opt->bin ? opt->bin : bin, leep_examples,
                                     print_progress, NULL};
    return tp_select_env_open(env, zoo, &options);
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* --benchmarks A,B,... or every directory under --tasks with a train.tsv, sorted. */
static char **benchmark_names(const options *opt, int64_t *count)
{
    char **names = NULL;
    *count = 0;
    if (opt->benchmarks) {
        char *copy = tp_xstrdup(opt->benchmarks), *rest = NULL;
        for (char *name = strtok_r(copy, ",", &rest); name; name = strtok_r(NULL, ",", &rest)) {
            names = tp_xrealloc(names, (size_t)(*count + 1) * sizeof *names);
            names[(*count)++] = tp_xstrdup(name);
        }
        free(copy);
    } else {
        DIR *dir = opendir(opt->tasks);
        if (!dir) {
            tp_fail("%s: cannot open the task directory: %s", opt->tasks, strerror(errno));
            return NULL;
        }
        for (struct dirent *entry; (entry = readdir(dir));) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s/train.tsv", opt->tasks, entry->d_name);
            if (entry->d_name[0] == '.' || access(path, R_OK) != 0) continue;
            names = tp_xrealloc(names, (size_t)(*count + 1) * sizeof *names);
            names[(*count)++] = tp_xstrdup(entry->d_name);
        }
        closedir(dir);
        if (*count) qsort(names, (size_t)*count, sizeof *names, compare_names);
    }
    if (*count == 0) tp_fail("%s: no benchmark tasks (directories holding train.tsv, or --benchmarks)", opt->tasks);
    return names;
}

static void print_build_json(output *out, const tp_zoo *zoo)
{
    int64_t units = 0, leep_passes = 0;
    double seconds = 0, leep_seconds = 0;
    for (int64_t pair = 0; pair < zoo->model_count * zoo->benchmark_count; pair++)
        for (int64_t e = 0; zoo->has_curve[pair] && e < zoo->epochs; e++, units++) seconds += zoo->epoch_seconds[pair * zoo->epochs + e];
    for (int64_t i = 0; i < zoo->target_count * zoo->model_count; i++)
        if (!isnan(zoo->leep[i])) leep_passes++, leep_seconds += zoo->leep_seconds[i];
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "zoo", zoo->manifest_path);
    cJSON_AddNumberToObject(root, "models", (double)zoo->model_count);
    cJSON_AddItemToObject(root, "benchmarks", cJSON_CreateStringArray((const char *const *)zoo->benchmarks,
                                                                      (int)zoo->benchmark_count));
    cJSON_AddNumberToObject(root, "epochs", (double)zoo->epochs);
    cJSON_AddNumberToObject(root, "epoch_units", (double)units);
    cJSON_AddNumberToObject(root, "fine_tuning_seconds", seconds);
    cJSON_AddNumberToObject(root, "leep_forward_passes", (double)leep_passes);
    cJSON_AddNumberToObject(root, "leep_seconds", leep_seconds);
    print_json(out, root);
}

static int command_build(const options *opt)
{
    tp_select_env env;
    int64_t epochs, count = 0;
    output out;
    if (require(opt->zoo, "zoo") != 0) return -1;
    tp_zoo *zoo = tp_zoo_load_manifest(opt->zoo);
    if (!zoo) return -1;
    char **names = NULL;
    int status = parse_int_option("epochs", opt->epochs, zoo->epochs, 1, &epochs);
    if (status == 0 && !(names = benchmark_names(opt, &count))) status = -1;
    if (status == 0) status = open_env(opt, zoo, &env);
    if (status == 0) {
        status = tp_select_build(&env, zoo, names, count, epochs);
        tp_select_env_close(&env);
    }
    if (status == 0) status = tp_zoo_save(zoo, zoo->base_dir);
    if (status == 0) status = output_open(&out, opt);
    if (status == 0) {
        print_build_json(&out, zoo);
        status = output_close(&out, 0);
    }
    for (int64_t i = 0; i < count; i++) free(names[i]);
    free(names);
    tp_zoo_free(zoo);
    return status;
}

/* One select run: the epoch source and LEEP source over real training, and what they trained. */
typedef struct live_run {
    const tp_zoo *zoo;
    tp_select_env *env;
    const char *target;
    int64_t exclude, predictor_k;
    int64_t *epochs_trained; /* [model] */
    double *dev, *seconds;   /* [model * epochs + epoch] */
} live_run;

/* The epoch source's train_epoch: one tp-finetune run (core/select_train.c). */
static int finetune_epoch(void *user, int64_t model, int64_t epoch, double *dev_score, double *seconds)
{
    live_run *run = user;
    if (tp_select_train_epoch(run->env, run->target, model, epoch, dev_score, seconds) != 0) return -1;
    int64_t at = model * run->zoo->epochs + epoch;
    run->dev[at] = *dev_score;
    run->seconds[at] = *seconds;
    run->epochs_trained[model] = epoch + 1;
    fprintf(stderr, "tp-select: %s on %s: epoch %lld dev %s %.4f (%.1f s)\n", run->zoo->models[model].name, run->target,
            (long long)epoch + 1, run->env->metric, *dev_score, *seconds);
    return 0;
}

/* The predictor on the zoo's curves, without the target's column when it is a benchmark. */
static double finetune_predict(void *user, int64_t model, int64_t epoch, double dev_score)
{
    const live_run *run = user;
    return tp_select_predict_model(run->zoo, model, run->exclude, epoch, run->predictor_k, dev_score);
}

/* The recall's LEEP source: the head's forward pass on the target (core/select_train.c). */
static int live_leep(void *user, int64_t model, double *leep, double *seconds)
{
    const live_run *run = user;
    if (tp_select_head_leep(run->env, run->target, model, leep, seconds) != 0) return -1;
    fprintf(stderr, "tp-select: %s on %s: LEEP %.4f (%.1f s)\n", run->zoo->models[model].name, run->target, *leep,
            *seconds);
    return 0;
}

static int parse_strategy(const char *name, tp_strategy *out)
{
    *out = TP_STRATEGY_TWO_PHASE;
    if (!name) return 0;
    for (int s = 0; s < TP_STRATEGY_COUNT; s++)
        if (strcmp(name, tp_strategy_name((tp_strategy)s)) == 0) {
            *out = (tp_strategy)s;
            return 0;
        }
    bad_usage = 1;
    return tp_fail("option --strategy: '%s' (expected brute_force, successive_halving, recall_full, recall_halving or "
                   "two_phase)", name);
}

static cJSON *trained_json(const live_run *run)
{
    cJSON *list = cJSON_CreateArray();
    for (int64_t m = 0; m < run->zoo->model_count; m++) {
        int64_t epochs = run->epochs_trained[m];
        if (!epochs) continue;
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "model", run->zoo->models[m].name);
        cJSON_AddItemToObject(entry, "dev", cJSON_CreateDoubleArray(run->dev + m * run->zoo->epochs, (int)epochs));
        cJSON_AddItemToObject(entry, "seconds", cJSON_CreateDoubleArray(run->seconds + m * run->zoo->epochs, (int)epochs));
        cJSON_AddItemToArray(list, entry);
    }
    return list;
}

typedef struct select_result {
    tp_strategy strategy;
    int recalled; /* the recall ran */
    tp_recall recall;
    tp_selection selection;
    int64_t finish_units; /* the chosen model's remaining epochs up to E, trained after the selection */
    double finish_seconds;
    int tested;   /* the target has test.tsv: the chosen model's test score */
    double test_score, test_seconds;
} select_result;

static void print_select(output *out, const live_run *run, const select_result *result,
                         const tp_recall_options *options)
{
    const tp_zoo *zoo = run->zoo;
    const tp_selection *selection = &result->selection;
    double recall_seconds = result->recalled ? result->recall.leep_seconds : 0;
    if (out->tsv) {
        char dev[32], fine[32], recall[32], test[32];
        fprintf(out->fp, "target\tstrategy\tchosen\tchosen_dev\tepoch_units\tfine_seconds\trecall_seconds\ttest_score\n");
        fprintf(out->fp, "%s\t%s\t%s\t%s\t%lld\t%s\t%s\t%s\n", run->target, tp_strategy_name(result->strategy),
                zoo->models[selection->chosen].name, number(selection->chosen_dev, dev), (long long)selection->epoch_units,
                number(selection->seconds, fine), number(recall_seconds, recall),
                result->tested ? number(result->test_score, test) : "NA");
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "zoo", zoo->manifest_path);
    cJSON_AddStringToObject(root, "target", run->target);
    cJSON_AddStringToObject(root, "strategy", tp_strategy_name(result->strategy));
    cJSON_AddNumberToObject(root, "epochs", (double)zoo->epochs);
    cJSON_AddStringToObject(root, "metric", run->env->metric);
    if (result->recalled) {
        cJSON *recall = recall_json(zoo, &result->recall, options);
        cJSON *leep = cJSON_AddObjectToObject(recall, "leep");
        for (int64_t m = 0; m < zoo->model_count; m++)
            if (!isnan(result->recall.leep[m])) cJSON_AddNumberToObject(leep, zoo->models[m].name, result->recall.leep[m]);
        cJSON_AddItemToObject(root, "recall", recall);
    }
    cJSON_AddItemToObject(root, "trained", trained_json(run));
    if (selection->rung_count) cJSON_AddItemToObject(root, "rungs", rungs_json(zoo, selection));
    cJSON_AddStringToObject(root, "chosen", zoo->models[selection->chosen].name);
    cJSON_AddNumberToObject(root, "chosen_dev", selection->chosen_dev);
    cJSON_AddNumberToObject(root, "epoch_units", (double)selection->epoch_units);
    cJSON_AddNumberToObject(root, "fine_seconds", selection->seconds);
    cJSON_AddNumberToObject(root, "leep_forward_passes", result->recalled ? (double)result->recall.leep_passes : 0);
    cJSON_AddNumberToObject(root, "recall_seconds", recall_seconds);
    cJSON_AddNumberToObject(root, "total_seconds", selection->seconds + recall_seconds);
    cJSON *finish = cJSON_AddObjectToObject(root, "finish");
    cJSON_AddNumberToObject(finish, "epoch_units", (double)result->finish_units);
    cJSON_AddNumberToObject(finish, "seconds", result->finish_seconds);
    if (result->tested) {
        cJSON *test = cJSON_AddObjectToObject(root, "chosen_test");
        cJSON_AddNumberToObject(test, "score", result->test_score);
        cJSON_AddNumberToObject(test, "seconds", result->test_seconds);
    }
    print_json(out, root);
}

/* The candidates (recalled, or every model), each checked trainable before any training. */
static int run_selection(live_run *run, const tp_recall_options *options, select_result *result)
{
    const tp_zoo *zoo = run->zoo;
    tp_strategy strategy = result->strategy;
    tp_leep_source leep = {live_leep, run};
    if (uses_recall(strategy)) {
        if (tp_select_run_recall_with(zoo, run->target, options, &leep, &result->recall) != 0) return -1;
        result->recalled = 1;
    }
    int64_t count = result->recalled ? result->recall.recalled_count : zoo->model_count;
    int64_t *candidates = tp_xmalloc((size_t)count * sizeof *candidates);
    for (int64_t i = 0; i < count; i++) candidates[i] = result->recalled ? result->recall.recalled[i] : i;
    int status = 0;
    for (int64_t i = 0; status == 0 && i < count; i++) status = tp_select_check_trainable(run->env, candidates[i]);
    tp_epoch_source source = {finetune_epoch, finetune_predict, run};
    if (status == 0)
        status = strategy == TP_STRATEGY_BRUTE_FORCE || strategy == TP_STRATEGY_RECALL_FULL
                     ? tp_select_full(&source, candidates, count, zoo->epochs, &result->selection)
                     : tp_select_halving(&source, candidates, count, zoo->epochs, strategy == TP_STRATEGY_TWO_PHASE,
                                         &result->selection);
    free(candidates);
    return status;
}

/* The chosen model trains its remaining epochs up to E (apart from the selection's cost: what a
 * user of the choice pays anyway), then, when the target has test.tsv, its best-on-dev weights
 * are tested. */
static int finish_and_test(live_run *run, select_result *result)
{
    int64_t chosen = result->selection.chosen;
    for (int64_t e = run->epochs_trained[chosen]; e < run->zoo->epochs; e++) {
        double dev, seconds;
        if (finetune_epoch(run, chosen, e, &dev, &seconds) != 0) return -1;
        result->finish_units++;
        result->finish_seconds += seconds;
    }
    if (!(result->tested = tp_select_check_task(run->env, run->target, 1) == 0)) return 0;
    return tp_select_test_score(run->env, run->target, chosen, run->zoo->epochs, &result->test_score,
                                &result->test_seconds);
}

static int command_select(const options *opt)
{
    tp_recall_options options;
    tp_select_env env;
    select_result result;
    output out;
    memset(&result, 0, sizeof result);
    live_run run = {.target = opt->target};
    if (require(opt->zoo, "zoo") != 0 || require(opt->target, "target") != 0 || parse_recall_options(opt, &options) != 0 ||
        parse_int_option("predictor-k", opt->predictor_k, TP_SELECT_PREDICTOR_K, 1, &run.predictor_k) != 0 ||
        parse_strategy(opt->strategy, &result.strategy) != 0)
        return -1;
    tp_zoo *zoo = tp_zoo_load(opt->zoo);
    if (!zoo) return -1;
    run.zoo = zoo;
    run.env = &env;
    run.exclude = tp_zoo_find_benchmark(zoo, opt->target);
    int status = open_env(opt, zoo, &env);
    if (status != 0) {
        tp_zoo_free(zoo);
        return -1;
    }
    status = tp_select_check_task(&env, opt->target, 0);
    run.epochs_trained = tp_xcalloc((size_t)zoo->model_count, sizeof *run.epochs_trained);
    run.dev = tp_xcalloc((size_t)(zoo->model_count * zoo->epochs), sizeof *run.dev);
    run.seconds = tp_xcalloc((size_t)(zoo->model_count * zoo->epochs), sizeof *run.seconds);
    if (status == 0) status = run_selection(&run, &options, &result);
    if (status == 0) status = finish_and_test(&run, &result);
    if (status == 0) status = output_open(&out, opt);
    if (status == 0) {
        print_select(&out, &run, &result, &options);
        status = output_close(&out, 0);
    }
    tp_selection_free(&result.selection);
    if (result.recalled) tp_recall_free(&result.recall);
    free(run.epochs_trained);
    free(run.dev);
    free(run.seconds);
    tp_select_env_close(&env);
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
                    {"recall", command_recall},     {"simulate", command_simulate}, {"build", command_build},
                    {"select", command_select}};
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (strcmp(opt.command, commands[i].name) != 0) continue;
        if (commands[i].run(&opt) == 0) return 0;
        fprintf(stderr, "tp-select: error: %s\n", tp_last_error());
        return bad_usage ? 2 : 1;
    }
    return usage_error("unknown command '%s'", opt.command);
}
