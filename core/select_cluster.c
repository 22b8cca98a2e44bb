/* The model distance and the clusterings of tp-select (core/select.h, docs/select.md).  Sums run
 * in the order the header states, so that ties ("the first strict minimum") are reproducible by
 * any implementation that adds in the same order (tests/reference/select_reference.py). */
#include "select.h"

#include "error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KMEANS_MAX_ROUNDS 100

static int measured(double score) { return score > 0; } /* NaN (NA) is not > 0 */

static int compare_descending(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

double tp_select_distance(const double *a, const double *b, int64_t n, int64_t k)
{
    double stack_gaps[64];
    double *gaps = n <= 64 ? stack_gaps : tp_xmalloc((size_t)n * sizeof *gaps);
    int64_t shared = 0;
    for (int64_t j = 0; j < n; j++)
        if (measured(a[j]) && measured(b[j])) gaps[shared++] = fabs(a[j] - b[j]);
    double distance = INFINITY;
    if (shared >= k + 1) {
        qsort(gaps, (size_t)shared, sizeof *gaps, compare_descending);
        double total = 0;
        for (int64_t i = 0; i < k; i++) total += gaps[i];
        distance = total / (double)k;
    }
    if (gaps != stack_gaps) free(gaps);
    return distance;
}

double *tp_select_distances(const double *scores, int64_t models, int64_t benchmarks, int64_t k)
{
    double *distances = tp_xmalloc((size_t)(models * models) * sizeof *distances);
    for (int64_t i = 0; i < models; i++) {
        distances[i * models + i] = 0;
        for (int64_t j = i + 1; j < models; j++) {
            double d = tp_select_distance(scores + i * benchmarks, scores + j * benchmarks, benchmarks, k);
            distances[i * models + j] = distances[j * models + i] = d;
        }
    }
    return distances;
}

void tp_clustering_free(tp_clustering *clustering)
{
    free(clustering->members);
    free(clustering->start);
    free(clustering->merges);
    memset(clustering, 0, sizeof *clustering);
}

/* ---- average linkage -------------------------------------------------------------------------- */

/* Clusters as linked lists of members (member order kept by appending j's list to i's) and an
 * array of cluster heads in list order. */
typedef struct cluster_list {
    int64_t *head, *tail, *size, count;
    int64_t *next; /* next member of the same cluster, -1 at the end */
} cluster_list;

static double linkage(const double *distances, int64_t models, const cluster_list *list, int64_t i, int64_t j)
{
    double total = 0;
    for (int64_t a = list->head[i]; a >= 0; a = list->next[a])
        for (int64_t b = list->head[j]; b >= 0; b = list->next[b]) {
            double d = distances[a * models + b];
            if (isinf(d)) return INFINITY;
            total += d;
        }
    return total / (double)(list->size[i] * list->size[j]);
}

static void merge_clusters(cluster_list *list, int64_t i, int64_t j)
{
    list->next[list->tail[i]] = list->head[j];
    list->tail[i] = list->tail[j];
    list->size[i] += list->size[j];
    size_t after = (size_t)(list->count - j - 1);
    memmove(list->head + j, list->head + j + 1, after * sizeof *list->head);
    memmove(list->tail + j, list->tail + j + 1, after * sizeof *list->tail);
    memmove(list->size + j, list->size + j + 1, after * sizeof *list->size);
    list->count--;
}

static void clustering_from_list(const cluster_list *list, int64_t models, tp_clustering *out)
{
    out->model_count = models;
    out->cluster_count = list->count;
    out->members = tp_xmalloc((size_t)(models ? models : 1) * sizeof *out->members);
    out->start = tp_xmalloc((size_t)(list->count + 1) * sizeof *out->start);
    int64_t at = 0;
    for (int64_t c = 0; c < list->count; c++) {
        out->start[c] = at;
        for (int64_t m = list->head[c]; m >= 0; m = list->next[m]) out->members[at++] = m;
    }
    out->start[list->count] = at;
}

int tp_select_agglomerate(const double *distances, int64_t models, double tau, tp_clustering *out)
{
    memset(out, 0, sizeof *out);
    if (models < 1) return tp_fail("clustering: no models");
    cluster_list list = {.count = models};
    list.head = tp_xmalloc((size_t)models * sizeof *list.head);
    list.tail = tp_xmalloc((size_t)models * sizeof *list.tail);
    list.size = tp_xmalloc((size_t)models * sizeof *list.size);
    list.next = tp_xmalloc((size_t)models * sizeof *list.next);
    for (int64_t m = 0; m < models; m++) {
        list.head[m] = list.tail[m] = m;
        list.size[m] = 1;
        list.next[m] = -1;
    }
    out->merges = tp_xmalloc((size_t)models * sizeof *out->merges);
    for (;;) {
        double best = INFINITY;
        int64_t best_i = -1, best_j = -1;
        for (int64_t i = 0; i < list.count; i++)
            for (int64_t j = i + 1; j < list.count; j++) {
                double d = linkage(distances, models, &list, i, j);
                if (d < best) {
                    best = d;
                    best_i = i;
                    best_j = j;
                }
            }
        if (best_i < 0 || !(best <= tau)) break;
        out->merges[out->merge_count++] = (tp_merge){best_i, best_j, best};
        merge_clusters(&list, best_i, best_j);
    }
    clustering_from_list(&list, models, out);
    free(list.head);
    free(list.tail);
    free(list.size);
    free(list.next);
    return 0;
}

/* ---- k-means with the model distance ---------------------------------------------------------- */

/* Centroid c: per benchmark, the mean of the measured scores of the models assigned to c (NaN
 * where none is measured); a centroid without models stays where it is. */
static void update_centroids(const double *scores, int64_t models, int64_t benchmarks, const int64_t *assign,
                             int64_t clusters, double *centroids)
{
    for (int64_t c = 0; c < clusters; c++) {
        int64_t size = 0;
        for (int64_t m = 0; m < models; m++) size += assign[m] == c;
        for (int64_t b = 0; size > 0 && b < benchmarks; b++) {
            double total = 0;
            int64_t count = 0;
            for (int64_t m = 0; m < models; m++) {
                double score = scores[m * benchmarks + b];
                if (assign[m] == c && measured(score)) {
                    total += score;
                    count++;
                }
            }
            centroids[c * benchmarks + b] = count ? total / (double)count : NAN;
        }
    }
}

/* Nearest centroid, ties to the lower index; -1 when comparable with none. */
static int64_t nearest_centroid(const double *row, const double *centroids, int64_t clusters, int64_t benchmarks, int64_t k)
{
    int64_t best = -1;
    double best_distance = INFINITY;
    for (int64_t c = 0; c < clusters; c++) {
        double d = tp_select_distance(row, centroids + c * benchmarks, benchmarks, k);
        if (d < best_distance) {
            best_distance = d;
            best = c;
        }
    }
    return best;
}

/* Farthest-first: model 0, then the model farthest from its nearest chosen centre among those
 * comparable with one. */
static void initial_centres(const double *scores, int64_t models, int64_t benchmarks, int64_t k, int64_t clusters,
                            double *centroids)
{
    double *nearest = tp_xmalloc((size_t)models * sizeof *nearest);
    for (int64_t m = 0; m < models; m++) nearest[m] = INFINITY;
    int64_t chosen = 0;
    for (int64_t c = 0; c < clusters; c++) {
        memcpy(centroids + c * benchmarks, scores + chosen * benchmarks, (size_t)benchmarks * sizeof *centroids);
        int64_t farthest = -1;
        for (int64_t m = 0; m < models; m++) {
            double d = tp_select_distance(scores + m * benchmarks, scores + chosen * benchmarks, benchmarks, k);
            if (m == chosen) d = 0;
            if (d < nearest[m]) nearest[m] = d;
            /* a model comparable with no chosen centre would make a centre nothing is near */
            if (isfinite(nearest[m]) && (farthest < 0 || nearest[m] > nearest[farthest])) farthest = m;
        }
        chosen = farthest;
    }
    free(nearest);
}

/* Clusters in centre order (empty ones left out), members in model order; then every model
 * comparable with no centre as a singleton of its own. */
static void clustering_from_assignment(const int64_t *assign, int64_t models, int64_t clusters, tp_clustering *out)
{
    out->model_count = models;
    out->members = tp_xmalloc((size_t)models * sizeof *out->members);
    out->start = tp_xmalloc((size_t)(clusters + models + 1) * sizeof *out->start);
    int64_t at = 0;
    for (int64_t c = 0; c < clusters; c++) {
        int64_t first = at;
        for (int64_t m = 0; m < models; m++)
            if (assign[m] == c) out->members[at++] = m;
        if (at > first) out->start[out->cluster_count++] = first;
    }
    for (int64_t m = 0; m < models; m++) {
        if (assign[m] >= 0) continue;
        out->start[out->cluster_count++] = at;
        out->members[at++] = m;
    }
    out->start[out->cluster_count] = at;
}

int tp_select_kmeans(const double *scores, int64_t models, int64_t benchmarks, int64_t k, int64_t clusters,
                     tp_clustering *out)
{
    memset(out, 0, sizeof *out);
    if (models < 1) return tp_fail("k-means: no models");
    if (clusters < 1) return tp_fail("k-means: %lld clusters asked for (at least 1)", (long long)clusters);
    if (clusters > models) clusters = models;
    double *centroids = tp_xmalloc((size_t)(clusters * benchmarks) * sizeof *centroids);
    int64_t *assign = tp_xmalloc((size_t)models * sizeof *assign);
    initial_centres(scores, models, benchmarks, k, clusters, centroids);
    for (int64_t m = 0; m < models; m++) assign[m] = -2; /* nothing assigned yet */
    for (int round = 0; round < KMEANS_MAX_ROUNDS; round++) {
        int changed = 0;
        for (int64_t m = 0; m < models; m++) {
            int64_t c = nearest_centroid(scores + m * benchmarks, centroids, clusters, benchmarks, k);
            changed |= c != assign[m];
            assign[m] = c;
        }
        if (!changed) break;
        update_centroids(scores, models, benchmarks, assign, clusters, centroids);
    }
    clustering_from_assignment(assign, models, clusters, out);
    free(centroids);
    free(assign);
    return 0;
}

/* ---- silhouette, averages, representatives ---------------------------------------------------- */

/* Mean distance from model m to the members of cluster c other than m; NaN when none is comparable. */
static double mean_distance(const double *distances, const tp_clustering *clustering, int64_t m, int64_t c)
{
    double total = 0;
    int64_t count = 0;
    for (int64_t at = clustering->start[c]; at < clustering->start[c + 1]; at++) {
        int64_t other = clustering->members[at];
        double d = distances[m * clustering->model_count + other];
        if (other == m || isinf(d)) continue;
        total += d;
        count++;
    }
    return count ? total / (double)count : NAN;
}

static double model_silhouette(const double *distances, const tp_clustering *clustering, int64_t m, int64_t own)
{
    if (clustering->start[own + 1] - clustering->start[own] < 2) return 0;
    double a = mean_distance(distances, clustering, m, own), b = INFINITY;
    for (int64_t c = 0; c < clustering->cluster_count; c++) {
        double d = c == own ? NAN : mean_distance(distances, clustering, m, c);
        if (d < b) b = d; /* NaN compares false: skipped */
    }
    double larger = a > b ? a : b;
    if (isnan(a) || isinf(b) || !(larger > 0)) return 0;
    return (b - a) / larger;
}

double tp_select_silhouette(const double *distances, const tp_clustering *clustering)
{
    int64_t models = clustering->model_count;
    double *values = tp_xcalloc((size_t)models, sizeof *values);
    for (int64_t c = 0; c < clustering->cluster_count; c++)
        for (int64_t at = clustering->start[c]; at < clustering->start[c + 1]; at++)
            values[clustering->members[at]] = model_silhouette(distances, clustering, clustering->members[at], c);
    double total = 0;
    for (int64_t m = 0; m < models; m++) total += values[m];
    free(values);
    return models ? total / (double)models : 0;
}

void tp_select_averages(const double *scores, int64_t models, int64_t benchmarks, double *averages)
{
    for (int64_t m = 0; m < models; m++) {
        double total = 0;
        int64_t count = 0;
        for (int64_t b = 0; b < benchmarks; b++) {
            double score = scores[m * benchmarks + b];
            if (!measured(score)) continue;
            total += score;
            count++;
        }
        averages[m] = count ? total / (double)count : 0;
    }
}

int64_t tp_select_representatives(const tp_clustering *clustering, const double *averages, int64_t *representative)
{
    int64_t count = 0;
    for (int64_t c = 0; c < clustering->cluster_count; c++) {
        int64_t first = clustering->start[c], end = clustering->start[c + 1];
        representative[c] = -1;
        if (end - first < 2) continue;
        int64_t best = clustering->members[first];
        for (int64_t at = first + 1; at < end; at++)
            if (averages[clustering->members[at]] > averages[best]) best = clustering->members[at];
        representative[c] = best;
        count++;
    }
    return count;
}
