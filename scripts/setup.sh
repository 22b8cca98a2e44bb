#!/usr/bin/env bash
# README command 1: installs what is missing, builds tp, fetches real English text from
# Debian packages and pre-trains a tiny BERT on it (configs/bert_tiny.json, a few minutes
# on 2 cores), printing the falling MLM loss and rising MLM accuracy.
# Rerunning it continues (or re-reports) the same run: nothing is overwritten.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install_deps.sh
bash scripts/fetch_data.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
if [ ! -f data/bert_tiny.tpd ]; then
    build/tp-preprocess --corpus_path data/corpus/pretrain.txt --vocab_path data/vocab/bert-base-uncased-vocab.txt \
        --dataset_path data/bert_tiny.tpd --data_processor bert --seq_length 64 --dup_factor 1 --dynamic_masking
fi
build/tp-pretrain --config configs/bert_tiny.json --resume
echo "setup.sh: done. Checkpoints and metrics (JSON Lines) are in runs/bert_tiny/."
