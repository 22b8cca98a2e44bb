#!/usr/bin/env bash
# Makes the small real task files tests/gpu/test_gpu_finetune.sh trains on, on a machine that has
# the data of scripts/fetch_data.sh (the lent GPU machine has none and no network: make them here
# and carry the directory, docs/gpu.md).  About 1 MiB:
#   classification/  fortunes (scripts/make_fortunes_task.sh): 320 training quotes, 64 dev
#   multi_label/ regression/  Debian packages (scripts/make_debian_task.sh): 320 train, 100 dev
#   tagging/         the Python docs' entities (scripts/make_pydoc_tagging_task.sh): 160 train, 50 dev
#   text2text/       reversed words (scripts/make_text2text_task.sh): 320 train, 40 dev, its vocab.txt
#   fashion/         the first 320 training and 100 test Fashion-MNIST images, IDX files
#   seq2seq/         100 KB of the corpus, BERT's vocabulary with 100 sentinels, and prefix pairs
# Usage: tests/gpu/make_gpu_tasks.sh OUT_DIR
set -euo pipefail
out=${1:?usage: make_gpu_tasks.sh OUT_DIR}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
rm -rf "$out"
mkdir -p "$out"/{classification,multi_label,regression,tagging,text2text,fashion,seq2seq}
# cut SOURCE DESTINATION LINES: the header and the first LINES examples (the files are hash-ordered)
cut_task() { head -n $(($3 + 1)) "$1" >"$2"; }

bash "$repo/scripts/make_fortunes_task.sh" "$scratch/fortunes" >/dev/null
# evenly spaced quotes: the files are ordered by class
spaced() { awk -v step="$(($(wc -l <"$1") / $2))" 'NR == 1 || (NR % step == 0 && ++kept <= '"$2"')' "$1"; }
spaced "$scratch/fortunes/train.tsv" 320 >"$out/classification/train.tsv"
spaced "$scratch/fortunes/dev.tsv" 64 >"$out/classification/dev.tsv"
bash "$repo/scripts/make_debian_task.sh" "$scratch/debian" >/dev/null
for kind in multi_label regression; do
    cut_task "$scratch/debian/$kind/train.tsv" "$out/$kind/train.tsv" 320
    cut_task "$scratch/debian/$kind/dev.tsv" "$out/$kind/dev.tsv" 100
done
bash "$repo/scripts/make_pydoc_tagging_task.sh" "$scratch/tagging" >/dev/null
cut_task "$scratch/tagging/train.tsv" "$out/tagging/train.tsv" 160
cut_task "$scratch/tagging/dev.tsv" "$out/tagging/dev.tsv" 50
bash "$repo/scripts/make_text2text_task.sh" "$scratch/text2text" >/dev/null
cut_task "$scratch/text2text/train.tsv" "$out/text2text/train.tsv" 320
cut_task "$scratch/text2text/dev.tsv" "$out/text2text/dev.tsv" 40
cp "$scratch/text2text/vocab.txt" "$out/text2text/"

/usr/bin/python3 "$repo/scripts/cut_fashion_mnist.py" "$repo/data/media/fashion-mnist" "$out/fashion" 320 100

head -c 100000 "$repo/data/corpus/pretrain.txt" | sed '$d' >"$out/seq2seq/corpus.txt"
{
    cat "$repo/data/vocab/bert-base-uncased-vocab.txt"
    for i in $(seq 0 99); do echo "<extra_id_$i>"; done
} >"$out/seq2seq/vocab.txt"
# prefix LM pairs: each line is the prefix of the next
paste "$out/seq2seq/corpus.txt" <(sed 1d "$out/seq2seq/corpus.txt") | grep -P '^[^\t]*\S[^\t]*\t.*\S' \
    >"$out/seq2seq/pairs.txt" || true
du -sh "$out"
