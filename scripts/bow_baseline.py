#!/usr/bin/env python3
"""Bag-of-words baseline for TencentPretrain-format classification TSVs: multinomial naive Bayes
(add-one smoothing) over lower-cased word tokens, trained on train.tsv, reported on test.tsv.
Standard library only.  Usage: python3 scripts/bow_baseline.py TASK_DIR"""
import collections
import math
import re
import sys


def read(path):
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        label_col, text_col = header.index("label"), header.index("text_a")
        for line in f:
            fields = line.rstrip("\r\n").split("\t")
            yield int(fields[label_col]), re.findall(r"[a-z0-9']+", fields[text_col].lower())


def main():
    task = sys.argv[1]
    counts = collections.defaultdict(collections.Counter)
    docs = collections.Counter()
    vocab = set()
    for label, words in read(f"{task}/train.tsv"):
        docs[label] += 1
        counts[label].update(words)
        vocab.update(words)
    totals = {label: sum(c.values()) for label, c in counts.items()}
    total_docs = sum(docs.values())

    def predict(words):
        def score(label):
            prior = math.log(docs[label] / total_docs)
            return prior + sum(math.log((counts[label][w] + 1) / (totals[label] + len(vocab))) for w in words)
        return max(docs, key=score)

    for split in ("dev", "test"):
        examples = list(read(f"{task}/{split}.tsv"))
        correct = sum(predict(words) == label for label, words in examples)
        print(f"{split}: naive Bayes bag-of-words accuracy {correct / len(examples):.4f} ({correct}/{len(examples)})")


if __name__ == "__main__":
    main()
