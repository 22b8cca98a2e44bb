#!/usr/bin/env python3
"""Writes tests/fixtures/metrics/wer.json: word error rates computed by jiwer 3.0.5 (PyPI), the
reference for core/metrics.c's tp_wer.

    data/venv-ref/bin/pip install jiwer==3.0.5
    data/venv-ref/bin/python tests/reference/make_wer_fixture.py

Cases: hand-written edge cases (identical, all deleted, all inserted, extra whitespace, tabs and
newlines, a hypothesis with no words) and seeded random corpora whose hypotheses are the references
with words substituted, deleted and inserted at random over a 6-word alphabet (so that repeated
words make the alignment ambiguous).  Each case: the reference and hypothesis lists, jiwer.wer of
the whole corpus, and jiwer's substitution/deletion/insertion counts (process_words).
"""
import json
import os
import random

import jiwer

OUT = os.path.join("tests", "fixtures", "metrics", "wer.json")
ALPHABET = ["yes", "no", "press", "one", "two", "the"]


def random_pair(rng):
    reference = [rng.choice(ALPHABET) for _ in range(rng.randint(1, 9))]
    hypothesis = []
    for word in reference:
        roll = rng.random()
        if roll < 0.15:
            continue  # deleted
        hypothesis.append(rng.choice(ALPHABET) if roll < 0.35 else word)
        if rng.random() < 0.15:
            hypothesis.append(rng.choice(ALPHABET))  # inserted
    return " ".join(reference), " ".join(hypothesis)


def case(name, references, hypotheses):
    out = jiwer.process_words(references, hypotheses)
    return {"name": name, "references": references, "hypotheses": hypotheses,
            "wer": jiwer.wer(references, hypotheses), "substitutions": out.substitutions,
            "deletions": out.deletions, "insertions": out.insertions}


def main():
    rng = random.Random(11)
    cases = [
        case("identical", ["press one for yes"], ["press one for yes"]),
        case("all deleted", ["press one for yes"], [""]),
        case("all inserted and substituted", ["yes"], ["no no no"]),
        case("whitespace", ["  press\tone \n for  yes "], ["press one\tfor no"]),
        case("two pairs", ["the cat sat", "on the mat"], ["the cat sat down", "on mat"]),
    ]
    for i in range(8):
        pairs = [random_pair(rng) for _ in range(rng.randint(1, 6))]
        cases.append(case("random %d" % i, [p[0] for p in pairs], [p[1] for p in pairs]))
    with open(OUT, "w") as f:
        json.dump({"jiwer": "3.0.5", "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
