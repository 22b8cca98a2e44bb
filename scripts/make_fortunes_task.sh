#!/usr/bin/env bash
# Builds a real text-classification task from Debian's fortunes (fetched by scripts/fetch_data.sh):
# which of four categories a quote comes from.  Writes TencentPretrain's TSV format
# (header "label<TAB>text_a", label = class id) to OUT_DIR/{train,dev,test}.tsv and the class
# names to OUT_DIR/labels.txt.  Split: entry k of a category goes to dev when k % 10 == 8, to
# test when k % 10 == 9, else to train (deterministic, every category in every split).
# Usage: scripts/make_fortunes_task.sh OUT_DIR [category ...]   (default: computers politics science men-women)
set -euo pipefail
out=${1:?usage: make_fortunes_task.sh OUT_DIR [category ...]}
shift
categories=("$@")
[ ${#categories[@]} -gt 0 ] || categories=(computers politics science men-women)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fortunes="$repo/data/corpus/fortunes"
mkdir -p "$out"
for split in train dev test; do printf 'label\ttext_a\n' >"$out/$split.tsv.tmp"; done
: >"$out/labels.txt.tmp"
label=0
for category in "${categories[@]}"; do
    [ -f "$fortunes/$category" ] || { echo "make_fortunes_task.sh: $fortunes/$category missing (run scripts/fetch_data.sh)" >&2; exit 1; }
    echo "$category" >>"$out/labels.txt.tmp"
    # One entry per quote: lines joined by spaces, tabs and runs of blanks squeezed; 20..400 characters.
    awk -v label="$label" -v out="$out" '
        function flush() {
            gsub(/[\t ]+/, " ", entry); sub(/^ /, "", entry); sub(/ $/, "", entry)
            if (length(entry) >= 20 && length(entry) <= 400) {
                split_name = (k % 10 == 8) ? "dev" : (k % 10 == 9) ? "test" : "train"
                print label "\t" entry >> (out "/" split_name ".tsv.tmp")
                k++
            }
            entry = ""
        }
        $0 == "%" { flush(); next }
        { entry = entry " " $0 }
        END { flush() }' "$fortunes/$category"
    label=$((label + 1))
done
for name in train.tsv dev.tsv test.tsv labels.txt; do mv "$out/$name.tmp" "$out/$name"; done
echo "make_fortunes_task.sh: $(($(wc -l <"$out/train.tsv") - 1)) train, $(($(wc -l <"$out/dev.tsv") - 1)) dev, $(($(wc -l <"$out/test.tsv") - 1)) test examples in $out"
