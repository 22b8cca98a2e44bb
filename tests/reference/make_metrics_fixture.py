#!/usr/bin/env python3
"""Writes tests/fixtures/metrics/{classification,regression,multilabel,entities}.json: reference
values for core/metrics.c, computed by libraries nobody in tp wrote.

Run from the repository root in the reference environment (tests/reference/setup_env.sh, plus
`data/venv-ref/bin/pip install seqeval==1.2.2`):
    data/venv-ref/bin/python tests/reference/make_metrics_fixture.py

classification.json  scikit-learn 1.3: confusion_matrix(labels=range(classes)), accuracy_score,
                     f1_score(average="macro", zero_division=0) (default labels: those in gold or
                     predictions), and precision/recall/f1 per class with labels=range(classes).
                     Cases include a class never predicted and a class in neither list.
regression.json      scipy.stats.pearsonr and spearmanr on vectors with many ties.
multilabel.json      scikit-learn f1_score(average="micro"/"macro", zero_division=0) and
                     accuracy_score on 0/1 indicator matrices, with a class that never occurs.
entities.json        seqeval 1.2.2 precision/recall/f1_score (default mode: conlleval-style
                     chunking) on lists of sentences, plus the entity counts from its
                     get_entities; hand-written edge cases, then random tag sequences over an
                     alphabet with IOB, IOBES and malformed tags.

Every case is seeded; floats are written by json (repr: round-trips doubles).
"""
import json
import os
import random
import warnings

import numpy as np
import scipy.stats
import seqeval.metrics as seqeval
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

OUT_DIR = os.path.join("tests", "fixtures", "metrics")


def classification_case(rng, classes, examples, never_predicted, absent):
    usable = [c for c in range(classes) if c != absent]
    gold = [rng.choice(usable) for _ in range(examples)]
    predictable = [c for c in usable if c != never_predicted]
    pred = [g if rng.random() < 0.6 and g in predictable else rng.choice(predictable) for g in gold]
    labels = list(range(classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, pred, labels=labels, average=None, zero_division=0)
    return {
        "classes": classes,
        "gold": gold,
        "predicted": pred,
        "confusion": confusion_matrix(gold, pred, labels=labels).tolist(),
        "accuracy": accuracy_score(gold, pred),
        "macro_f1": f1_score(gold, pred, average="macro", zero_division=0),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.tolist(),
    }


def regression_case(rng, n, levels):
    x = [rng.randint(0, levels) / 4 for _ in range(n)]  # few levels: many ties
    y = [xi * 0.5 + rng.gauss(0, 1) if rng.random() < 0.7 else float(rng.randint(0, levels)) for xi in x]
    return {
        "x": x,
        "y": y,
        "pearson": float(scipy.stats.pearsonr(x, y).statistic),
        "spearman": float(scipy.stats.spearmanr(x, y).statistic),
    }


def multilabel_case(rng, classes, examples):
    gold = [[int(rng.random() < 0.35) if c != classes - 1 else 0 for c in range(classes)] for _ in range(examples)]
    pred = [[bit if rng.random() < 0.75 else 1 - bit for bit in row] for row in gold]
    for row in pred:
        row[classes - 1] = 0  # the last class occurs nowhere: macro-F1 counts it as 0
    g, p = np.array(gold), np.array(pred)
    return {
        "classes": classes,
        "gold": gold,
        "predicted": pred,
        "micro_f1": f1_score(g, p, average="micro", zero_division=0),
        "macro_f1": f1_score(g, p, average="macro", zero_division=0),
        "subset_accuracy": accuracy_score(g, p),
    }


# Each pair: (gold sentences, predicted sentences).
EDGE_CASES = [
    ([["B-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]]),
    ([["O", "I-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O", "O"]]),    # I after O starts one
    ([["B-PER", "I-LOC", "O"]], [["B-PER", "B-LOC", "O"]]),              # I of another type
    ([["B-PER", "B-PER"]], [["B-PER", "I-PER"]]),                        # B B: two entities
    ([["B-PER"], ["I-PER"]], [["B-PER"], ["B-PER"]]),                    # never across sentences
    ([["O", "O"]], [["O", "B-LOC"]]),
    ([[]], [[]]),
    ([["S-LOC", "B-PER", "E-PER", "O"]], [["S-LOC", "B-PER", "I-PER", "E-PER"]]),  # IOBES
    ([["B-A", "E-A", "X-A", "O"]], [["B-A", "E-A", "O", "O"]]),          # malformed tags
    ([["X", "O"], ["X", "X"]], [["X", "X"], ["O", "X"]]),                # type-less tags
    ([["B", "I", "O"]], [["B", "O", "I"]]),
    ([["B-PER-X", ".", "I-PER-X"]], [["B-PER-X", "I-PER-X", "."]]),
    ([["Ö-PER", "I-PER"]], [["B-PER", "I-PER"]]),                        # non-ASCII first char
]

TAGS = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "E-PER", "S-LOC", "B", "I",
        "X-PER", "X", ".", "B-PER-X", "Ö-PER"]


def entities_case(gold, pred):
    true_entities, pred_entities = set(get_entities(gold)), set(get_entities(pred))
    return {
        "gold": gold,
        "predicted": pred,
        "gold_entities": len(true_entities),
        "predicted_entities": len(pred_entities),
        "correct": len(true_entities & pred_entities),
        "precision": seqeval.precision_score(gold, pred),
        "recall": seqeval.recall_score(gold, pred),
        "f1": seqeval.f1_score(gold, pred),
    }


def random_sentences(rng):
    gold = [[rng.choice(TAGS) for _ in range(rng.randint(0, 9))] for _ in range(rng.randint(1, 6))]
    pred = [[t if rng.random() < 0.6 else rng.choice(TAGS) for t in sentence] for sentence in gold]
    return gold, pred


def write(name, cases):
    with open(os.path.join(OUT_DIR, name), "w") as f:
        json.dump(cases, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def main():
    warnings.simplefilter("ignore")  # seqeval warns about the malformed tags on purpose
    os.makedirs(OUT_DIR, exist_ok=True)
    rng = random.Random(20240611)
    write("classification.json", [
        classification_case(rng, 3, 40, never_predicted=2, absent=None),
        classification_case(rng, 5, 200, never_predicted=1, absent=3),
        classification_case(rng, 2, 7, never_predicted=None, absent=None),
        classification_case(rng, 9, 500, never_predicted=8, absent=0),
    ])
    write("regression.json", [regression_case(rng, n, levels) for n, levels in
                              [(5, 3), (30, 4), (100, 10), (257, 40), (1000, 6)]])
    write("multilabel.json", [multilabel_case(rng, c, n) for c, n in [(3, 10), (6, 80), (12, 300)]])
    cases = [entities_case(g, p) for g, p in EDGE_CASES]
    cases += [entities_case(*random_sentences(rng)) for _ in range(60)]
    write("entities.json", cases)


if __name__ == "__main__":
    main()
