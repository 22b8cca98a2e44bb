#!/usr/bin/env python3
"""Writes tests/fixtures/select/: the inputs and expected outputs of tests/unit/test_select.c.

Run from the repository root in the reference environment (tests/reference/setup_env.sh):
    data/venv-ref/bin/python tests/reference/make_select_fixture.py

paper/{nlp,cv}/     the paper's released data (../shared/seed-data/two-phase-selection, MIT
                    license, copied with its LICENSE): datasets.txt, matrix.txt, the LEEP file.
paper_expected.json per data set, computed by tests/reference/select_reference.py (an independent
                    implementation of the method): the merge sequence, clusters, representatives,
                    silhouette, proxy scores and top-15 recall lists for both proxy scopes.  Each
                    partition is also checked here against scipy's average linkage cut at tau
                    (scipy.cluster.hierarchy.linkage + fcluster): the script stops if they differ.
leep_cases.json     LEEP (Nguyen et al. 2020) computed with vectorised numpy from the definition, on
                    a hand case (log 0.625) and seeded random softmax outputs, some with a source
                    label no example puts weight on.
synthetic/          a zoo with per-epoch dev curves (the paper released none): 10 models in three
                    families plus singletons, 8 benchmarks, 5 epochs, drawn from a seeded numpy
                    generator; zoo.json, matrix.tsv, curves.tsv, leep.tsv.
synthetic_expected.json  for every target (leave-one-out): the recall list and the five strategies'
                    outcomes (chosen model, epoch units, seconds), plus predictor values.
Numbers in the synthetic TSV files are written with 4-6 decimals, so C and Python parse the same
text into the same doubles.
"""
import json
import math
import os
import shutil

import numpy as np
import scipy.cluster.hierarchy as hierarchy
from scipy.spatial.distance import squareform

import select_reference as ref

SEED_DATA = os.path.join("..", "shared", "seed-data", "two-phase-selection")
OUT = os.path.join("tests", "fixtures", "select")
PAPER_SETS = {"nlp": ("leep_score_multirc.txt", 0.09), "cv": ("leep_score_xray.txt", 0.03)}
K = 5
TOP = 15


def read_paper(directory, leep_file):
    with open(os.path.join(directory, "matrix.txt")) as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    models = lines[0].split("\t")
    by_benchmark = [[float(x) for x in line.split("\t")] for line in lines[1:]]
    scores = [[row[m] for row in by_benchmark] for m in range(len(models))]
    with open(os.path.join(directory, leep_file)) as f:
        leep_lines = f.read().split("\n")
    assert leep_lines[0].split("\t") == models
    leep = [float(x) for x in leep_lines[1].split("\t")]
    return models, scores, leep


def scipy_partition(dist, tau):
    n = len(dist)
    condensed = squareform(np.array([[dist[i][j] for j in range(n)] for i in range(n)]), checks=False)
    labels = hierarchy.fcluster(hierarchy.linkage(condensed, method="average"), t=tau, criterion="distance")
    groups = {}
    for m, label in enumerate(labels):
        groups.setdefault(label, set()).add(m)
    return sorted(sorted(g) for g in groups.values())


def paper_case(name):
    leep_file, tau = PAPER_SETS[name]
    source = os.path.join(SEED_DATA, name)
    target = os.path.join(OUT, "paper", name)
    os.makedirs(target, exist_ok=True)
    for f in ("datasets.txt", "matrix.txt", leep_file):
        shutil.copyfile(os.path.join(source, f), os.path.join(target, f))
    models, scores, leep = read_paper(source, leep_file)
    dist = ref.distance_matrix(scores, K)
    assert all(d is not None for row in dist for d in row), "the paper's data has no incomparable pair"
    clusters, merges = ref.agglomerate(dist, tau)
    ours = sorted(sorted(c) for c in clusters)
    theirs = scipy_partition(dist, tau)
    if ours != theirs:
        raise SystemExit(f"{name}: average linkage differs from scipy's: {ours} vs {theirs}")
    result = {"tau": tau, "k": K, "top": TOP, "models": models,
              "merges": [[i, j, d] for i, j, d in merges], "clusters": clusters,
              "silhouette": ref.silhouette(dist, clusters)}
    averages = [ref.average_score(row) for row in scores]
    result["averages"] = averages
    for scope in ("all", "representatives"):
        proxy, reps = ref.proxy_scores(scores, clusters, leep, scope)
        result["representatives"] = reps
        result["proxy_" + scope] = proxy
        result["recall_" + scope] = ref.recall(proxy, TOP)
    return result


def leep_numpy(probs, labels):
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    n = probs.shape[0]
    onehot = np.zeros((n, labels.max() + 1))
    onehot[np.arange(n), labels] = 1.0
    joint = onehot.T @ probs / n
    marginal = joint.sum(axis=0)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    return float(np.mean(np.log(np.sum(conditional[labels] * probs, axis=1))))


def leep_cases():
    cases = [{"name": "hand", "probs": [[0.75, 0.25], [0.25, 0.75]], "labels": [0, 1]}]
    rng = np.random.default_rng(2020)
    for index, (n, source, target, dead) in enumerate([(7, 3, 2, False), (20, 5, 3, True), (40, 4, 4, False)]):
        logits = rng.normal(size=(n, source)) * 2
        if dead:
            logits[:, 1] = -1e9  # a source label no example puts weight on: P(z) = 0
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        probs = np.round(probs, 6)
        probs[:, -1] = 1.0 - probs[:, :-1].sum(axis=1)
        labels = rng.integers(0, target, size=n)
        labels[:target] = np.arange(target)
        cases.append({"name": f"random{index}", "probs": probs.tolist(), "labels": labels.tolist()})
    for case in cases:
        case["leep"] = leep_numpy(case["probs"], case["labels"])
        assert abs(case["leep"] - ref.leep(case["probs"], case["labels"])) < 1e-12
    return cases


# ---- the synthetic zoo ---------------------------------------------------------------------------

BENCHMARKS = ["fortunes", "debian", "pydoc", "news", "reviews", "topics", "spam", "qa"]
FAMILIES = [3, 3, 2]  # models per family; then 2 singletons
EPOCHS = 5
SYN_TAU = 0.05
SYN_TOP = 5


def synthetic_zoo():
    rng = np.random.default_rng(10)
    nb = len(BENCHMARKS)
    difficulty = rng.uniform(0.55, 0.85, size=nb)
    rows, names, sizes = [], [], []
    for family, count in enumerate(FAMILIES + [1, 1]):
        base = difficulty + rng.normal(0, 0.08, size=nb)
        for member in range(count):
            rows.append(np.clip(base + rng.normal(0, 0.01, size=nb), 0.3, 0.97))
            names.append(f"f{family}-m{member}" if count > 1 else f"single{family}")
            sizes.append(rng.uniform(0.8, 1.6))
    scores = np.round(np.array(rows), 4)
    dev = np.zeros((len(names), nb, EPOCHS))
    seconds = np.zeros((len(names), nb, EPOCHS))
    for m in range(len(names)):
        for b in range(nb):
            rate = rng.uniform(0.5, 1.5)
            start = scores[m, b] * rng.uniform(0.6, 0.8)
            for e in range(EPOCHS):
                progress = 1 - math.exp(-rate * (e + 1))
                dev[m, b, e] = start + (scores[m, b] - start) * progress + rng.normal(0, 0.005)
                seconds[m, b, e] = sizes[m] * (10 + 2 * b) * rng.uniform(0.95, 1.05)
    dev = np.round(dev, 4)
    seconds = np.round(seconds, 2)
    leep = np.round(np.log(scores) - rng.uniform(0.1, 0.4, size=scores.shape), 4)
    leep_seconds = np.round(np.array(sizes)[:, None] * rng.uniform(1.5, 2.5, size=scores.shape), 2)
    return names, scores, dev, seconds, leep, leep_seconds


def write_synthetic(names, scores, dev, seconds, leep, leep_seconds):
    target = os.path.join(OUT, "synthetic")
    os.makedirs(target, exist_ok=True)
    manifest = {
        "format": "tp-select-zoo", "version": 1, "epochs": EPOCHS,
        "matrix": "matrix.tsv", "curves": "curves.tsv", "leep": "leep.tsv",
        "models": [{"name": n, "checkpoint": f"models/{n}", "head": {"task": "source-" + n, "labels": 3}}
                   for n in names],
    }
    with open(os.path.join(target, "zoo.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    with open(os.path.join(target, "matrix.tsv"), "w") as f:
        f.write("model\t" + "\t".join(BENCHMARKS) + "\n")
        for m, n in enumerate(names):
            f.write(n + "\t" + "\t".join(f"{x:.4f}" for x in scores[m]) + "\n")
    with open(os.path.join(target, "curves.tsv"), "w") as f:
        f.write("model\tbenchmark\tepoch\tdev_score\tseconds\n")
        for m, n in enumerate(names):
            for b, bench in enumerate(BENCHMARKS):
                for e in range(EPOCHS):
                    f.write(f"{n}\t{bench}\t{e + 1}\t{dev[m, b, e]:.4f}\t{seconds[m, b, e]:.2f}\n")
    with open(os.path.join(target, "leep.tsv"), "w") as f:
        f.write("model\ttarget\tleep\tseconds\n")
        for m, n in enumerate(names):
            for b, bench in enumerate(BENCHMARKS):
                f.write(f"{n}\t{bench}\t{leep[m, b]:.4f}\t{leep_seconds[m, b]:.2f}\n")


def parse_back(names, scores, dev, seconds, leep, leep_seconds):
    """The values as the files hold them (the text both sides parse)."""
    s = [[float(f"{x:.4f}") for x in row] for row in scores]
    d = [[[float(f"{x:.4f}") for x in dev[m, b]] for b in range(len(BENCHMARKS))] for m in range(len(names))]
    sec = [[[float(f"{x:.2f}") for x in seconds[m, b]] for b in range(len(BENCHMARKS))] for m in range(len(names))]
    le = [[float(f"{leep[m, b]:.4f}") for m in range(len(names))] for b in range(len(BENCHMARKS))]
    ls = [[float(f"{leep_seconds[m, b]:.2f}") for m in range(len(names))] for b in range(len(BENCHMARKS))]
    return ref.Zoo(names, BENCHMARKS, s, d, sec, le, ls, EPOCHS)


def simulate_target(zoo, t):
    others = [b for b in range(len(BENCHMARKS)) if b != t]
    scores = [[row[b] for b in others] for row in zoo.scores]
    dist = ref.distance_matrix(scores, K)
    clusters, _ = ref.agglomerate(dist, SYN_TAU)
    out = {"target": BENCHMARKS[t], "clusters": clusters}
    for scope in ("all", "representatives"):
        proxy, reps = ref.proxy_scores(scores, clusters, zoo.leep[t], scope)
        recalled = ref.recall(proxy, SYN_TOP)
        out["representatives"] = reps
        out["recall_" + scope] = recalled
        needed = sorted(set(reps) | ({m for c in clusters if len(c) > 1 for m in c} if scope == "all" else set())
                        | ({c[0] for c in clusters if len(c) == 1} if not reps else set()))
        leep_seconds = 0.0
        for m in needed:
            leep_seconds += zoo.leep_seconds[t][m]
        out["leep_passes_" + scope] = len(needed)
        out["leep_seconds_" + scope] = leep_seconds
    recalled = out["recall_all"]
    everyone = list(range(len(zoo.models)))
    runs = {
        "brute_force": ref.full_training(zoo, t, everyone),
        "successive_halving": ref.halving(zoo, t, everyone, False)[:3],
        "recall_full": ref.full_training(zoo, t, recalled),
        "recall_halving": ref.halving(zoo, t, recalled, False)[:3],
        "two_phase": ref.halving(zoo, t, recalled, True)[:3],
    }
    out["strategies"] = {name: {"chosen": r[0], "epoch_units": r[1], "seconds": r[2]} for name, r in runs.items()}
    out["two_phase_log"] = ref.halving(zoo, t, recalled, True)[3]
    offline = 0.0
    for m in everyone:
        for b in others:
            for e in range(EPOCHS):
                offline += zoo.seconds[m][b][e]
    out["offline_seconds"] = offline
    out["offline_epoch_units"] = len(everyone) * len(others) * EPOCHS
    out["predictions"] = [[zoo.prediction(m, t, e) for e in range(EPOCHS)] for m in everyone]
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    paper = {name: paper_case(name) for name in PAPER_SETS}
    shutil.copyfile(os.path.join(SEED_DATA, "LICENSE"), os.path.join(OUT, "paper", "LICENSE"))
    with open(os.path.join(OUT, "paper_expected.json"), "w") as f:
        json.dump(paper, f, indent=1)
    with open(os.path.join(OUT, "leep_cases.json"), "w") as f:
        json.dump(leep_cases(), f, indent=1)
    raw = synthetic_zoo()
    write_synthetic(*raw)
    zoo = parse_back(*raw)
    expected = {"tau": SYN_TAU, "k": K, "top": SYN_TOP, "epochs": EPOCHS, "models": zoo.models,
                "targets": [simulate_target(zoo, t) for t in range(len(BENCHMARKS))]}
    with open(os.path.join(OUT, "synthetic_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    for name, result in paper.items():
        print(name, "clusters:", [c for c in result["clusters"] if len(c) > 1])
        print(name, "representatives:", result["representatives"])
        print(name, "recall all:", result["recall_all"])
        print(name, "recall representatives:", result["recall_representatives"])
        print(name, "silhouette:", result["silhouette"])
    for t in expected["targets"]:
        print(t["target"], t["recall_all"], {k: v["chosen"] for k, v in t["strategies"].items()})


if __name__ == "__main__":
    main()
