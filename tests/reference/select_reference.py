"""An independent Python implementation of tp-select's method (issue 10), written from the issue's
description and docs/select.md, not from core/select*.c.  tests/reference/make_select_fixture.py
uses it to write the expected outputs that tests/unit/test_select.c compares against.

Sums run in the order docs/select.md states (benchmark order, member order), with plain Python
floats and math.exp / math.log / math.sqrt, so that the C code and this file give the same
doubles and the tie rules ("first strict minimum in list order") see the same numbers.

A score is measured when it is > 0 (the paper's convention; NaN for `NA` is not).
"""
import math


def present(x):
    return x > 0  # NaN > 0 is False


# ---- model distance, clustering, representatives -----------------------------------------------

def distance(a, b, k):
    """Mean of the k largest |a_j - b_j| over benchmarks both measured; None: not comparable."""
    gaps = [abs(x - y) for x, y in zip(a, b) if present(x) and present(y)]
    if len(gaps) < k + 1:
        return None
    gaps.sort(reverse=True)
    total = 0.0
    for g in gaps[:k]:
        total += g
    return total / k


def distance_matrix(scores, k):
    n = len(scores)
    return [[distance(scores[i], scores[j], k) if i != j else 0.0 for j in range(n)] for i in range(n)]


def cluster_distance(dist, first, second):
    """Average linkage; None when any pair is not comparable."""
    total = 0.0
    for i in first:
        for j in second:
            if dist[i][j] is None:
                return None
            total += dist[i][j]
    return total / (len(first) * len(second))


def agglomerate(dist, tau):
    """Returns (clusters, merges): merge the first strict minimum (i < j, list order) while <= tau;
    the merged cluster takes position i with members first + second, position j is removed."""
    clusters = [[i] for i in range(len(dist))]
    merges = []
    while True:
        best, best_i, best_j = None, -1, -1
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                d = cluster_distance(dist, clusters[i], clusters[j])
                if d is not None and (best is None or d < best):
                    best, best_i, best_j = d, i, j
        if best is None or best > tau:
            return clusters, merges
        merges.append((best_i, best_j, best))
        clusters[best_i] = clusters[best_i] + clusters[best_j]
        del clusters[best_j]


def average_score(row):
    measured = [x for x in row if present(x)]
    total = 0.0
    for x in measured:
        total += x
    return total / len(measured) if measured else 0.0


def representatives(clusters, averages):
    """For each non-singleton cluster in order: its first member with the largest average."""
    reps = []
    for cluster in clusters:
        if len(cluster) < 2:
            continue
        best = cluster[0]
        for m in cluster[1:]:
            if averages[m] > averages[best]:
                best = m
        reps.append(best)
    return reps


def silhouette(dist, clusters):
    """Rousseeuw's silhouette, singletons 0, not-comparable pairs left out of the means."""
    label = {}
    for c, members in enumerate(clusters):
        for m in members:
            label[m] = c
    values = []
    for i in range(len(dist)):
        own = clusters[label[i]]
        if len(own) < 2:
            values.append(0.0)
            continue
        a = mean_distance(dist, i, [j for j in own if j != i])
        b = None
        for c, members in enumerate(clusters):
            if c == label[i]:
                continue
            d = mean_distance(dist, i, members)
            if d is not None and (b is None or d < b):
                b = d
        if a is None or b is None or max(a, b) == 0:
            values.append(0.0)
        else:
            values.append((b - a) / max(a, b))
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


def mean_distance(dist, i, members):
    total, count = 0.0, 0
    for j in members:
        if dist[i][j] is not None:
            total += dist[i][j]
            count += 1
    return total / count if count else None


# ---- LEEP, proxy scores, recall ------------------------------------------------------------------

def leep(probs, labels):
    """Nguyen et al. 2020, eq. (1)-(2): empirical joint P(y, z), conditional P(y | z), then the mean
    log of the expected empirical predictor's probability of each example's label."""
    n, source = len(probs), len(probs[0])
    targets = max(labels) + 1
    joint = [[0.0] * source for _ in range(targets)]
    for row, y in zip(probs, labels):
        for z in range(source):
            joint[y][z] += row[z]
    for y in range(targets):
        for z in range(source):
            joint[y][z] /= n
    marginal = [0.0] * source
    for y in range(targets):
        for z in range(source):
            marginal[z] += joint[y][z]
    total = 0.0
    for row, y in zip(probs, labels):
        p = 0.0
        for z in range(source):
            if marginal[z] > 0:
                p += joint[y][z] / marginal[z] * row[z]
        total += math.log(p)
    return total / n


def cosine(a, b):
    a = [x if present(x) else 0.0 for x in a]
    b = [x if present(x) else 0.0 for x in b]
    dot = na = nb = 0.0
    for x, y in zip(a, b):
        dot += x * y
        na += x * x
        nb += y * y
    if na == 0 or nb == 0:
        return 0.0
    return dot / (math.sqrt(na) * math.sqrt(nb))


def proxy_scores(scores, clusters, leep_of, scope):
    """scope 'all': a non-singleton member uses its own LEEP; 'representatives': its cluster's
    representative's.  Singletons: avg * mean over representatives r of cos(a_s, a_r) * exp(LEEP(r));
    without any representative, avg * exp(own LEEP)."""
    averages = [average_score(row) for row in scores]
    reps = representatives(clusters, averages)
    proxy = [0.0] * len(scores)
    rep_index = 0
    for cluster in clusters:
        if len(cluster) < 2:
            continue
        rep = reps[rep_index]
        rep_index += 1
        for m in cluster:
            source = m if scope == "all" else rep
            proxy[m] = averages[m] * math.exp(leep_of[source])
    for cluster in clusters:
        if len(cluster) != 1:
            continue
        s = cluster[0]
        if not reps:
            proxy[s] = averages[s] * math.exp(leep_of[s])
            continue
        total = 0.0
        for r in reps:
            total += cosine(scores[s], scores[r]) * math.exp(leep_of[r])
        proxy[s] = averages[s] * (total / len(reps))
    return proxy, reps


def recall(proxy, top):
    order = sorted(range(len(proxy)), key=lambda m: (-proxy[m], m))
    return order[:top]


# ---- learning-curve predictor, successive halving, strategies ------------------------------------

def kmeans_1d(xs, clusters):
    """Lloyd's algorithm; centres start at the midpoint quantiles of the sorted values,
    sorted[floor((2j+1) n / (2K))]; nearest centre ties go to the lower index; an empty cluster
    keeps its centre; stops when no assignment changes (at most 100 rounds)."""
    n = len(xs)
    k = min(clusters, n)
    ordered = sorted(xs)
    centres = [ordered[(2 * j + 1) * n // (2 * k)] for j in range(k)]
    assign = None
    for _ in range(100):
        new = [nearest(centres, x, [True] * k) for x in xs]
        if new == assign:
            break
        assign = new
        for j in range(k):
            total, count = 0.0, 0
            for x, a in zip(xs, assign):
                if a == j:
                    total += x
                    count += 1
            if count:
                centres[j] = total / count
    return centres, assign


def nearest(centres, x, usable):
    best = -1
    for j, c in enumerate(centres):
        if usable[j] and (best < 0 or abs(x - c) < abs(x - centres[best])):
            best = j
    return best


def predict(dev_points, final_points, query, clusters=4):
    """Predicted final score from the model's epoch-e dev scores on the other benchmarks."""
    if not dev_points:
        return None
    centres, assign = kmeans_1d(dev_points, clusters)
    used = [j in assign for j in range(len(centres))]
    c = nearest(centres, query, used)
    total, count = 0.0, 0
    for y, a in zip(final_points, assign):
        if a == c:
            total += y
            count += 1
    return total / count


class Zoo:
    """scores[m][b]; dev[m][b] = list of E dev scores or None; seconds likewise."""

    def __init__(self, models, benchmarks, scores, dev, seconds, leep_table, leep_seconds, epochs):
        self.models, self.benchmarks, self.scores = models, benchmarks, scores
        self.dev, self.seconds, self.epochs = dev, seconds, epochs
        self.leep, self.leep_seconds = leep_table, leep_seconds  # [target][model]

    def prediction(self, m, t, epoch, clusters=4):
        xs, ys = [], []
        for b in range(len(self.benchmarks)):
            if b == t or self.dev[m][b] is None or not present(self.scores[m][b]):
                continue
            xs.append(self.dev[m][b][epoch])
            ys.append(self.scores[m][b])
        return predict(xs, ys, self.dev[m][t][epoch], clusters)


def rank(candidates, dev_of):
    """By dev score, best first; ties keep the candidate order."""
    return sorted(candidates, key=lambda m: -dev_of[m])


def halving(zoo, t, candidates, drop):
    survivors = list(candidates)
    units, seconds, log = 0, 0.0, []
    last_dev = {}
    for epoch in range(zoo.epochs):
        start = len(survivors)
        for m in survivors:
            units += 1
            seconds += zoo.seconds[m][t][epoch]
            last_dev[m] = zoo.dev[m][t][epoch]
        dropped = []
        if drop:
            pred = {m: zoo.prediction(m, t, epoch) for m in survivors}
            for m in survivors:
                ahead = [pred[o] for o in survivors if last_dev[o] > last_dev[m] and pred[o] is not None]
                if ahead and pred[m] is not None and pred[m] < max(ahead):
                    dropped.append(m)
            survivors = [m for m in survivors if m not in dropped]
        keep = max(1, start // 2)
        survivors = rank(survivors, last_dev)[:keep]
        survivors = [m for m in candidates if m in survivors]
        log.append({"epoch": epoch + 1, "trained": start, "dropped": dropped, "survivors": list(survivors)})
        if len(survivors) == 1:
            break
    winner = rank(survivors, last_dev)[0]
    return winner, units, seconds, log


def full_training(zoo, t, candidates):
    last = zoo.epochs - 1
    dev_of = {m: zoo.dev[m][t][last] for m in candidates}
    units = len(candidates) * zoo.epochs
    seconds = 0.0
    for m in candidates:
        for e in range(zoo.epochs):
            seconds += zoo.seconds[m][t][e]
    return rank(candidates, dev_of)[0], units, seconds
