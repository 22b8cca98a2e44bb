#!/usr/bin/env bash
# Builds a small real text2text task (run_text2text.py format: text_a<TAB>label, label = the
# target text) from the English words of data/corpus/pretrain.txt (scripts/fetch_data.sh):
#   text_a = a word of 3 to 6 letters a-z, label = its letters in reverse order, space-separated
#   ("debian" -> "n a i b e d"), so that corpus BLEU (sacreBLEU 13a) scores letter n-grams.
# OUT_DIR/vocab.txt is a WordPiece vocabulary of the five BERT special tokens, the 26 letters and
# their 26 "##" continuations: the bert tokenizer reads "debian" as d ##e ##b ##i ##a ##n and the
# label as n a i b e d.
# Split: by an MD5 hash of the word, digit % 10 == 8 -> dev, 9 -> test, else train; each file is
# ordered by that hash (deterministic, and any prefix is a random-like sample).
# Usage: scripts/make_text2text_task.sh OUT_DIR
set -euo pipefail
out=${1:?usage: make_text2text_task.sh OUT_DIR}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
corpus="$repo/data/corpus/pretrain.txt"
[ -f "$corpus" ] || { echo "make_text2text_task.sh: $corpus missing (run scripts/fetch_data.sh)" >&2; exit 1; }
mkdir -p "$out"
/usr/bin/python3 - "$corpus" "$out" <<'PY'
import hashlib, re, string, sys

corpus, out = sys.argv[1], sys.argv[2]
with open(corpus, encoding="utf-8") as f:
    words = set(re.findall(r"\b[a-z]{3,6}\b", f.read()))
keyed = sorted((hashlib.md5(w.encode()).hexdigest(), w) for w in words)
splits = {"train": [], "dev": [], "test": []}
for key, word in keyed:
    digit = int(key[-1], 16) % 10
    splits["dev" if digit == 8 else "test" if digit == 9 else "train"].append(word)
for name, rows in splits.items():
    with open(f"{out}/{name}.tsv", "w", encoding="utf-8") as f:
        f.write("text_a\tlabel\n")
        for word in rows:
            f.write(f"{word}\t{' '.join(reversed(word))}\n")
letters = string.ascii_lowercase
with open(f"{out}/vocab.txt", "w", encoding="utf-8") as f:
    f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(letters) + ["##" + c for c in letters]) + "\n")
print({name: len(rows) for name, rows in splits.items()})
PY
