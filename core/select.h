/* Two-phase model selection (issue 10, docs/select.md): coarse recall of candidate models from a
 * zoo's performance matrix and LEEP scores, then fine selection by successive halving with a
 * learning-curve predictor.
 *
 *   core/select_zoo.c      the zoo: manifest, performance matrix, dev curves, LEEP table, head
 *                          outputs (strict readers and writers) and the import of the paper's data
 *   core/select_cluster.c  the model distance, average-linkage and k-means clustering, silhouette,
 *                          representatives
 *   core/select_recall.c   LEEP, proxy scores, recall
 *   core/select_fine.c     the predictor, successive halving, full fine-tuning, the strategies and
 *                          their simulation from logged curves
 *
 * A score is "measured" when it is > 0 (the paper's convention: its matrices mark missing scores
 * with values <= 0); a matrix cell written `NA` is stored as NaN, which is not > 0 either.
 * Library code never prints; failures return -1 / NULL with tp_fail. */
#ifndef TP_SELECT_H
#define TP_SELECT_H

#include <stddef.h>
#include <stdint.h>

/* ---- the zoo ---------------------------------------------------------------------------------- */

typedef struct tp_zoo_model {
    char *name;
    char *checkpoint;  /* as written in the manifest (NULL: absent) */
    char *config;      /* model config (NULL: absent) */
    char *head_task;   /* source task of the head (NULL: absent or no head) */
    int64_t head_labels; /* source labels of the classification head; 0: the model has no head */
} tp_zoo_model;

typedef struct tp_zoo {
    char *manifest_path; /* "" for a zoo built in memory */
    char *description;   /* the manifest's free text (NULL: none) */
    char *base_dir;      /* the manifest's directory: relative paths start there */
    int64_t model_count, benchmark_count, epochs;
    tp_zoo_model *models;
    char **benchmarks;
    double *scores; /* [model * benchmark_count + benchmark]; NaN for NA */
    /* Per-epoch dev curves: [(model * benchmark_count + benchmark) * epochs + epoch], epoch 0-based;
     * has_curve[model * benchmark_count + benchmark] says whether the pair has one (all epochs). */
    double *dev, *epoch_seconds;
    unsigned char *has_curve;
    /* LEEP scores of every model on named targets: [target * model_count + model], NaN when absent;
     * leep_seconds likewise (NaN: not logged). */
    int64_t target_count;
    char **targets;
    double *leep, *leep_seconds;
} tp_zoo;

/* The manifest and every file it names (docs/select.md, "Zoo format"). */
tp_zoo *tp_zoo_load(const char *manifest_path);
/* The manifest alone, from text (name is used in messages; relative paths start at base_dir):
 * the models, epochs and file names; tp_zoo_load then reads the files. */
tp_zoo *tp_zoo_parse_manifest(const char *name, const char *text, const char *base_dir);
/* The manifest file alone (its tables need not exist yet: the offline phase writes them). */
tp_zoo *tp_zoo_load_manifest(const char *manifest_path);
/* The file readers tp_zoo_load calls, on a zoo whose manifest is read (for the fuzz harness and
 * tests): the matrix defines the benchmarks; curves and the LEEP table need the matrix. */
int tp_zoo_read_matrix(tp_zoo *zoo, const char *path);
int tp_zoo_read_curves(tp_zoo *zoo, const char *path);
int tp_zoo_read_leep(tp_zoo *zoo, const char *path);
/* Empty tables for a zoo whose manifest is read and which has no matrix yet (the offline phase
 * fills them): benchmarks, every score NaN (NA), curves of `epochs` epochs with none present, and a
 * LEEP table with the benchmarks as targets, every score NaN. */
int tp_zoo_init_tables(tp_zoo *zoo, char *const *benchmarks, int64_t benchmark_count, int64_t epochs);
/* Writes dir/zoo.json, dir/matrix.tsv, and dir/curves.tsv and dir/leep.tsv when the zoo has them. */
int tp_zoo_save(const tp_zoo *zoo, const char *dir);
void tp_zoo_free(tp_zoo *zoo);

/* The paper's released data (plasware/two-phase-selection): dir/datasets.txt, dir/matrix.txt
 * (benchmarks as rows) and every dir/leep_score_<target>.txt; the models have no heads. */
tp_zoo *tp_zoo_import_paper(const char *dir);

/* The shortest of %.15g, %.16g, %.17g that reads back as the same double (size >= 32). */
void tp_select_format_number(double value, char *out, size_t size);

int64_t tp_zoo_find_model(const tp_zoo *zoo, const char *name);     /* -1: none */
int64_t tp_zoo_find_benchmark(const tp_zoo *zoo, const char *name); /* -1: none */
int64_t tp_zoo_find_target(const tp_zoo *zoo, const char *name);    /* -1: none */
/* The matrix without one benchmark column (exclude = -1: all columns): models x (benchmarks - 1),
 * row-major, malloc'd. */
double *tp_zoo_scores_without(const tp_zoo *zoo, int64_t exclude);

/* A head's softmax outputs on the target data: one row per target example, its target label and
 * the probabilities of the head's source labels (docs/select.md, "Head outputs"). */
typedef struct tp_head_outputs {
    int64_t count, source_labels, target_labels;
    double *probs;    /* [example * source_labels + z] */
    int64_t *labels;  /* target label ids, in order of first appearance */
    char **label_names;
} tp_head_outputs;

/* expected_source_labels > 0 checks the column count against the model's head. */
tp_head_outputs *tp_head_outputs_read(const char *path, int64_t expected_source_labels);
void tp_head_outputs_free(tp_head_outputs *outputs);

/* ---- clustering ------------------------------------------------------------------------------- */

#define TP_SELECT_K 5          /* gaps averaged by the distance */
#define TP_SELECT_PREDICTOR_K 4 /* clusters of the learning-curve predictor */

/* Mean of the k largest |a_j - b_j| over the n benchmarks where both are measured, summed in
 * decreasing order; INFINITY (not comparable) when fewer than k + 1 are shared. */
double tp_select_distance(const double *a, const double *b, int64_t n, int64_t k);
/* All pairwise distances of the rows of scores (models x benchmarks): models x models, malloc'd. */
double *tp_select_distances(const double *scores, int64_t models, int64_t benchmarks, int64_t k);

typedef struct tp_merge {
    int64_t first, second; /* positions in the cluster list before the merge (first < second) */
    double distance;
} tp_merge;

/* A partition of the models: cluster c has members[start[c] .. start[c + 1]). */
typedef struct tp_clustering {
    int64_t model_count, cluster_count;
    int64_t *members, *start;
    int64_t merge_count; /* agglomerative only */
    tp_merge *merges;
} tp_clustering;

/* Average linkage from singletons: merges the closest pair of clusters -- the first strict
 * minimum over (i < j) in list order, pairs with a not comparable member pair excluded -- while
 * its distance <= tau; the merged cluster takes position i with i's members then j's, and j
 * leaves the list. */
int tp_select_agglomerate(const double *distances, int64_t models, double tau, tp_clustering *out);
/* k-means with the model distance: centroids are per-benchmark means of the members' measured
 * scores; the first centre is model 0, then farthest-first (the largest finite distance to the
 * nearest chosen centre, ties to the earlier model); Lloyd rounds until no assignment changes (at
 * most 100).  A model comparable with no centre is a singleton cluster of its own, after the
 * others.  Clusters come in centre order (empty ones left out), members in model order. */
int tp_select_kmeans(const double *scores, int64_t models, int64_t benchmarks, int64_t k, int64_t clusters,
                     tp_clustering *out);
/* Mean silhouette (Rousseeuw) over all models: a singleton's is 0; not comparable pairs are left
 * out of the mean distances; a model without a defined a or b counts 0. */
double tp_select_silhouette(const double *distances, const tp_clustering *clustering);
void tp_clustering_free(tp_clustering *clustering);

/* Mean of each model's measured scores (0 when none). */
void tp_select_averages(const double *scores, int64_t models, int64_t benchmarks, double *averages);
/* representative[c] for every cluster: the member with the largest average (ties: the earlier
 * member in the cluster's order); -1 for singletons.  Returns the number of representatives. */
int64_t tp_select_representatives(const tp_clustering *clustering, const double *averages, int64_t *representative);

/* ---- recall ----------------------------------------------------------------------------------- */

/* LEEP (Nguyen et al. 2020): (1/n) sum_i log sum_z P(y_i | z) theta(x_i)_z with the empirical
 * joint P(y, z) = (1/n) sum_{i: y_i = y} theta(x_i)_z and P(y | z) = P(y, z) / P(z); source labels
 * with P(z) = 0 contribute nothing. */
double tp_select_leep(const tp_head_outputs *outputs);

typedef enum tp_proxy_scope {
    TP_PROXY_ALL,             /* a non-singleton member uses its own LEEP (the paper's code) */
    TP_PROXY_REPRESENTATIVES, /* ... its cluster representative's (the paper's wording) */
} tp_proxy_scope;

/* Which models' LEEP the proxy scores need (needed[m] = 1); returns their number.  Every
 * representative; with TP_PROXY_ALL every member of a non-singleton cluster; every model when
 * there is no representative. */
int64_t tp_select_leep_needed(const tp_clustering *clustering, const int64_t *representative, tp_proxy_scope scope,
                              unsigned char *needed);
/* proxy[m]: non-singleton member m -> avg(m) exp(LEEP(m or its representative)); singleton s ->
 * avg(s) * mean over representatives r (cluster order) of cos(a_s, a_r) exp(LEEP(r)), a_x the
 * score vector with unmeasured scores as 0; without any representative avg(s) exp(LEEP(s)).
 * leep[] must hold every needed model's score. */
void tp_select_proxy(const double *scores, int64_t benchmarks, const tp_clustering *clustering,
                     const double *averages, const int64_t *representative, const double *leep, tp_proxy_scope scope,
                     double *proxy);
/* order[0 .. top): models by proxy score, highest first, ties to the lower index. */
void tp_select_recall(const double *proxy, int64_t models, int64_t top, int64_t *order);

/* ---- fine selection --------------------------------------------------------------------------- */

/* 1-D k-means of n values into min(clusters, n) clusters: centres start at the sorted values'
 * midpoint quantiles sorted[floor((2j + 1) n / (2K))]; a value goes to the nearest centre (ties:
 * the lower index); a centre becomes the mean of its values (an empty one stays); rounds until no
 * assignment changes (at most 100).  Returns K; centres[K], assign[n]. */
int64_t tp_select_kmeans_1d(const double *values, int64_t n, int64_t clusters, double *centres, int64_t *assign);
/* The predicted final score: 1-D k-means of dev[0..n) and the mean of final[] over the non-empty
 * cluster nearest to query.  NaN when n = 0. */
double tp_select_predict(const double *dev, const double *final, int64_t n, int64_t clusters, double query);
/* The predictor on a zoo: the model's dev scores after epoch + 1 epochs on every benchmark but
 * exclude (-1: none) that has a curve and a measured score, against those scores. */
double tp_select_predict_model(const tp_zoo *zoo, int64_t model, int64_t exclude, int64_t epoch, int64_t clusters,
                               double query);

/* Where epochs come from.  train_epoch trains `model` for its epoch number `epoch` (0-based; the
 * model has trained exactly `epoch` epochs before) on the target and reports the dev score after
 * it and the seconds it took.  The simulation replays the zoo's logged curves; a real run resumes
 * tp-finetune for one epoch (finetune/tp_select.c, docs/select.md "Real training"). */
typedef struct tp_epoch_source {
    int (*train_epoch)(void *user, int64_t model, int64_t epoch, double *dev_score, double *seconds);
    /* Predicted final score of model after epoch + 1 epochs with that dev score; NaN: none. */
    double (*predict)(void *user, int64_t model, int64_t epoch, double dev_score);
    void *user;
} tp_epoch_source;

typedef struct tp_rung {
    int64_t epoch;    /* 1-based: every model trained in the rung has trained this many epochs */
    int64_t trained;  /* models trained in the rung */
    int64_t dropped_count, survivor_count;
    int64_t *dropped, *survivors; /* model ids, in candidate order */
} tp_rung;

typedef struct tp_selection {
    int64_t chosen;
    double chosen_dev;
    int64_t epoch_units; /* model-epochs trained */
    double seconds;      /* their wall-clock seconds */
    int64_t rung_count;  /* successive halving only */
    tp_rung *rungs;
} tp_selection;

/* Every candidate trains `epochs` epochs; the chosen one has the best dev score after the last
 * (ties: the earlier candidate). */
int tp_select_full(const tp_epoch_source *source, const int64_t *candidates, int64_t count, int64_t epochs,
                   tp_selection *out);
/* Successive halving: in rung e every survivor trains epoch e + 1; with drop, every survivor
 * whose predicted final score is below the best prediction among the survivors with a strictly
 * higher dev score is dropped; then the best max(1, floor(n / 2)) by dev score are kept, n being
 * the survivors at the start of the rung (ties: the earlier candidate).  Stops when one is left
 * or after `epochs` rungs; the chosen one has the best last dev score. */
int tp_select_halving(const tp_epoch_source *source, const int64_t *candidates, int64_t count, int64_t epochs,
                      int drop, tp_selection *out);
void tp_selection_free(tp_selection *selection);

typedef enum tp_strategy {
    TP_STRATEGY_BRUTE_FORCE,        /* every model, every epoch */
    TP_STRATEGY_HALVING,            /* successive halving over every model */
    TP_STRATEGY_RECALL_FULL,        /* recall, then full fine-tuning of the recalled */
    TP_STRATEGY_RECALL_HALVING,     /* recall, then successive halving */
    TP_STRATEGY_TWO_PHASE,          /* recall, then successive halving with the predictor's drops */
    TP_STRATEGY_COUNT
} tp_strategy;
const char *tp_strategy_name(tp_strategy strategy);

typedef struct tp_recall_options {
    double tau;
    int64_t k, top;
    tp_proxy_scope scope;
} tp_recall_options;

/* The coarse-recall phase on a zoo for one target: clustering (without the target's column when
 * it is a benchmark), representatives, proxy scores from the LEEP table's column for the target
 * (or from a LEEP source), the recall list. */
typedef struct tp_recall {
    char *target_name;
    int64_t target;            /* in zoo->targets; -1 when the LEEP scores came from a source */
    int64_t excluded_benchmark; /* -1: none */
    tp_clustering clustering;
    double *averages, *proxy;
    int64_t *representative; /* per cluster */
    int64_t recalled_count;
    int64_t *recalled;
    double *leep;        /* [model]: the LEEP scores used, NaN for the others */
    int64_t leep_passes; /* forward passes the proxy needed (LEEP scores used) */
    double leep_seconds; /* their logged seconds (unlogged ones count 0) */
    int64_t leep_unlogged;
} tp_recall;

int tp_select_run_recall(const tp_zoo *zoo, const char *target, const tp_recall_options *options, tp_recall *out);

/* LEEP computed when the recall needs it (real selection: a forward pass of the model's head on
 * the target data) instead of read from the zoo's table. */
typedef struct tp_leep_source {
    int (*leep)(void *user, int64_t model, double *leep, double *seconds);
    void *user;
} tp_leep_source;
/* tp_select_run_recall with every needed LEEP score from the source (NULL: the table). */
int tp_select_run_recall_with(const tp_zoo *zoo, const char *target, const tp_recall_options *options,
                              const tp_leep_source *source, tp_recall *out);
void tp_recall_free(tp_recall *recall);

/* Leave-one-out replay of one benchmark as the target from the zoo's logged curves: the recall
 * phase (above) and the five strategies.  Every model needs a curve and a measured score on the
 * target, and the LEEP table a column named after it. */
typedef struct tp_simulation {
    int64_t target; /* benchmark */
    tp_recall recall;
    tp_selection strategies[TP_STRATEGY_COUNT];
    int64_t best_model; /* the best final score on the target (ties: the lower index) */
    double best_score;
    int recall_hit;           /* best_model is among the recalled */
    int64_t offline_epoch_units; /* fine-tuning every model on every other benchmark */
    double offline_seconds;
} tp_simulation;

int tp_select_simulate(const tp_zoo *zoo, int64_t target_benchmark, const tp_recall_options *options,
                       int64_t predictor_k, tp_simulation *out);
void tp_simulation_free(tp_simulation *simulation);

#endif
