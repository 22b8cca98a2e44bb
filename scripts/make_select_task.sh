#!/usr/bin/env bash
# Builds a small real text-classification task for tp-select's zoos (docs/select.md) from the data
# scripts/fetch_data.sh fetches:
#   fortunes  which fortune category a quote is from (classes: category names; via
#             scripts/make_fortunes_task.sh)
#   debtags   which of the given debtags a Debian package carries, from its one-line description
#             (classes: tags such as implemented-in::perl; packages with exactly one of them)
# Writes TencentPretrain's TSV (header "label<TAB>text_a", label = class id) to
# OUT_DIR/{train,dev,test}.tsv and the class names to OUT_DIR/labels.txt.  Split: the k-th example
# of a class goes to dev when k % 10 == 8, to test when k % 10 == 9, else to train; then each split
# keeps its first TRAIN (train) or EVAL (dev, test) examples of every class (0: all).
# Usage: scripts/make_select_task.sh OUT_DIR fortunes|debtags TRAIN EVAL CLASS CLASS...
set -euo pipefail
usage="usage: make_select_task.sh OUT_DIR fortunes|debtags TRAIN_PER_CLASS EVAL_PER_CLASS CLASS CLASS..."
out=${1:?$usage}
kind=${2:?$usage}
train_cap=${3:?$usage}
eval_cap=${4:?$usage}
shift 4
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$out"
raw="$out/raw"
case "$kind" in
fortunes)
    bash "$repo/scripts/make_fortunes_task.sh" "$raw" "$@" >/dev/null
    ;;
debtags)
    packages="$repo/data/corpus/debian-packages.tsv"
    [ -f "$packages" ] || { echo "make_select_task.sh: $packages missing (run scripts/fetch_data.sh)" >&2; exit 1; }
    mkdir -p "$raw"
    printf '%s\n' "$@" >"$raw/labels.txt"
    # Columns: name, Installed-Size, debtags (comma-separated), description.
    awk -F'\t' -v tags="$(printf '%s,' "$@")" -v out="$raw" '
        BEGIN {
            n = split(tags, list, ",")
            for (i = 1; i < n; i++) id[list[i]] = i - 1
            print "label\ttext_a" > (out "/train.tsv"); print "label\ttext_a" > (out "/dev.tsv")
            print "label\ttext_a" > (out "/test.tsv")
        }
        length($4) >= 10 {
            found = 0
            m = split($3, have, ",")
            for (i = 1; i <= m; i++) if (have[i] in id) { found++; label = id[have[i]] }
            if (found != 1) next
            k = count[label]++
            name = (k % 10 == 8) ? "dev" : (k % 10 == 9) ? "test" : "train"
            print label "\t" $4 >> (out "/" name ".tsv")
        }' "$packages"
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
# Cap every class of every split; the header stays.
for split in train dev test; do
    cap=$eval_cap
    [ "$split" = train ] && cap=$train_cap
    awk -F'\t' -v cap="$cap" 'NR == 1 || cap == 0 || ++seen[$1] <= cap' "$raw/$split.tsv" >"$out/$split.tsv.tmp"
    mv "$out/$split.tsv.tmp" "$out/$split.tsv"
done
mv "$raw/labels.txt" "$out/labels.txt"
rm -rf "$raw"
for split in train dev test; do
    classes=$(awk -F'\t' 'NR > 1 { seen[$1] = 1 } END { print length(seen) }' "$out/$split.tsv")
    [ "$classes" -eq $# ] || { echo "make_select_task.sh: $out/$split.tsv has $classes of $# classes" >&2; exit 1; }
done
echo "make_select_task.sh: $(($(wc -l <"$out/train.tsv") - 1)) train, $(($(wc -l <"$out/dev.tsv") - 1)) dev, $(($(wc -l <"$out/test.tsv") - 1)) test examples in $out"
