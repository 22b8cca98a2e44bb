#!/usr/bin/env bash
# Fashion-MNIST (fetched by scripts/fetch_data.sh) as captioned image-text pairs for the CLIP and
# ViLT recipes (configs/clip_fashion_mnist.json, configs/vilt_fashion_mnist.json; docs/media.md):
# scripts/fashion_mnist_pairs.py writes the 70 000 images as PNG files with train.tsv / t10k.tsv
# ("a photo of a <class name>"), classes.txt and vocab.txt into data/media/fashion-mnist-pairs/, and
# tp-preprocess makes them pre-decoded files for each model: {train,t10k}.tpimg (clip, texts of
# up to 16 tokens) and {train,t10k}_vilt.tpimg (vilt, up to 12).
# Usage: scripts/make_fashion_mnist_pairs.sh [BUILD_DIR]   (default: build)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
pairs="$repo/data/media/fashion-mnist-pairs"
/usr/bin/python3 "$repo/scripts/fashion_mnist_pairs.py" "$repo/data/media/fashion-mnist" "$pairs" >/dev/null
preprocess() { # PROCESSOR SEQ_LENGTH SUFFIX
    for split in train t10k; do
        "$build/tp-preprocess" --data_processor "$1" --corpus_path "$pairs/$split.tsv" \
            --config_path "$repo/models/$1/fashion_mnist_config.json" --tokenizer space \
            --vocab_path "$pairs/vocab.txt" --seq_length "$2" --dataset_path "$pairs/$split$3.tpimg"
    done
}
preprocess clip 16 ""
preprocess vilt 12 _vilt
