/* The replay memory's choice of examples: k-means of their features, the example nearest each
 * centroid (core/continual.h).  (core/select_cluster.c's k-means clusters models by a score
 * distance with missing values; this one is plain Euclidean.) */
#include "core/continual.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum { KMEANS_MAX_ROUNDS = 100 };

static double squared_distance(const float *a, const double *b, int64_t dim)
{
    double sum = 0;
    for (int64_t d = 0; d < dim; d++) sum += ((double)a[d] - b[d]) * ((double)a[d] - b[d]);
    return sum;
}

static void set_centre(double *centre, const float *row, int64_t dim)
{
    for (int64_t d = 0; d < dim; d++) centre[d] = row[d];
}

/* k-means++: the first centre a uniform row, each next one a row drawn with probability
 * proportional to its squared distance to the nearest centre so far. */
static void seed_centres(const float *x, int64_t n, int64_t dim, int64_t k, tp_rng *rng, double *centres)
{
    double *nearest = tp_xmalloc((size_t)n * sizeof *nearest);
    set_centre(centres, x + (int64_t)tp_rng_below(rng, (uint64_t)n) * dim, dim);
    for (int64_t i = 0; i < n; i++) nearest[i] = squared_distance(x + i * dim, centres, dim);
    for (int64_t c = 1; c < k; c++) {
        double total = 0;
        for (int64_t i = 0; i < n; i++) total += nearest[i];
        int64_t pick = 0;
        if (total > 0) { /* else every row sits on a centre: any row will do */
            double target = tp_rng_uniform(rng) * total, running = 0;
            for (pick = 0; pick < n - 1; pick++) {
                running += nearest[pick];
                if (running > target) break;
            }
        }
        set_centre(centres + c * dim, x + pick * dim, dim);
        for (int64_t i = 0; i < n; i++) {
            double d = squared_distance(x + i * dim, centres + c * dim, dim);
            if (d < nearest[i]) nearest[i] = d;
        }
    }
    free(nearest);
}

static int64_t nearest_centre(const float *row, const double *centres, int64_t k, int64_t dim)
{
    int64_t best = 0;
    double best_distance = INFINITY;
    for (int64_t c = 0; c < k; c++) {
        double d = squared_distance(row, centres + c * dim, dim);
        if (d < best_distance) {
            best_distance = d;
            best = c;
        }
    }
    return best;
}

/* Each centre the mean of its rows; a centre without rows stays where it is. */
static void update_centres(const float *x, int64_t n, int64_t dim, int64_t k, const int64_t *assign, double *centres)
{
    int64_t *sizes = tp_xcalloc((size_t)k, sizeof *sizes);
    double *sums = tp_xcalloc((size_t)(k * dim), sizeof *sums);
    for (int64_t i = 0; i < n; i++) {
        sizes[assign[i]]++;
        for (int64_t d = 0; d < dim; d++) sums[assign[i] * dim + d] += x[i * dim + d];
    }
    for (int64_t c = 0; c < k; c++)
        for (int64_t d = 0; sizes[c] > 0 && d < dim; d++) centres[c * dim + d] = sums[c * dim + d] / (double)sizes[c];
    free(sizes);
    free(sums);
}

int64_t tp_memory_select(const float *features, int64_t n, int64_t dim, int64_t k, tp_rng *rng, int64_t *chosen)
{
    if (k > n) k = n;
    if (k < 1) return 0;
    double *centres = tp_xmalloc((size_t)(k * dim) * sizeof *centres);
    int64_t *assign = tp_xmalloc((size_t)n * sizeof *assign);
    seed_centres(features, n, dim, k, rng, centres);
    for (int64_t i = 0; i < n; i++) assign[i] = -1;
    for (int round = 0; round < KMEANS_MAX_ROUNDS; round++) {
        int changed = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t c = nearest_centre(features + i * dim, centres, k, dim);
            changed |= c != assign[i];
            assign[i] = c;
        }
        if (!changed) break;
        update_centres(features, n, dim, k, assign, centres);
    }
    int64_t count = 0;
    for (int64_t c = 0; c < k; c++) {
        int64_t best = -1;
        double best_distance = INFINITY;
        for (int64_t i = 0; i < n; i++) {
            if (assign[i] != c) continue;
            double d = squared_distance(features + i * dim, centres + c * dim, dim);
            if (d < best_distance) {
                best_distance = d;
                best = i;
            }
        }
        if (best >= 0) chosen[count++] = best;
    }
    free(centres);
    free(assign);
    return count;
}
