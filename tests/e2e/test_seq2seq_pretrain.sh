#!/usr/bin/env bash
# A tiny T5 and a tiny BART pre-trained by tp-pretrain on real text (the Python documentation
# corpus's first 100 KB), from datasets the t5 and bart processors make with BERT's WordPiece
# vocabulary plus 100 sentinel lines <extra_id_0> .. <extra_id_99> (docs/data.md):
#   - t5: span corruption (--span_masking, p 0.3, spans of at most 5), configs/t5_tiny.json;
#   - bart: sentence permutation + text infilling, configs/bart_tiny.json;
#   - 30 steps of 8 x 32 tokens each must bring the lm loss on the decoder's outputs down by at
#     least 0.5 from the first step to the last (measured: t5 11.00 -> 5.81 with the tiny config's
#     initializer t5 -- 10.33 -> 9.16 with TencentPretrain's N(0, 0.02), docs/model_config.md --,
#     bart 10.35 -> 6.23, prefix LM 10.33 -> 6.19; about 7 s of CPU in all, one thread);
#   - a prefix LM (the prefixlm processor on tab-joined neighbouring lines, a causal_with_prefix
#     decoder-only model) trains too.
# TP_TEST_QUICK=1 (sanitizer runs): 3 steps of 2 sequences, no threshold.
# Usage: tests/e2e/test_seq2seq_pretrain.sh BUILD_DIR   (ctest passes it)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

steps=30 bytes=100000 batch=8
[ "$quick" = 1 ] && steps=3 bytes=20000 batch=2
head -c "$bytes" "$corpus" | sed '$d' >"$work/corpus.txt" # whole lines only
{
    cat "$vocab"
    for i in $(seq 0 99); do echo "<extra_id_$i>"; done
} >"$work/vocab.txt"

# first_and_last_loss LOG: the lm loss of the first and the last progress line.
first_and_last_loss() { grep -Eo 'loss [0-9.]+' "$1" | sed -n '1p;$p' | awk '{print $2}' | paste -sd' '; }

pretrain() { # NAME MODEL_CONFIG RUN_CONFIG DATASET
    "$build/tp-pretrain" --config "$3" --model "$2" --vocab_path "$work/vocab.txt" --dataset_path "$4" \
        --output_dir "$work/run_$1" --total_steps "$steps" --save_checkpoint_steps 0 --report_steps 1 \
        --batch_size "$batch" --seq_length 32 --learning_rate 1e-2 --threads 1 2>"$work/$1.log" ||
        fail "tp-pretrain $1: $(tail -3 "$work/$1.log")"
    read -r first last <<<"$(first_and_last_loss "$work/$1.log")"
    echo "$1: loss $first -> $last after $steps steps" >&2
    if [ "$quick" != 1 ]; then
        awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }' || fail "$1: loss $first -> $last did not fall"
    fi
}

preprocess() { # NAME PROCESSOR [OPTIONS...]
    local name=$1 processor=$2
    shift 2
    "$build/tp-preprocess" --corpus_path "$work/corpus.txt" --vocab_path "$work/vocab.txt" \
        --dataset_path "$work/$name.tpd" --data_processor "$processor" --seq_length 32 --dup_factor 1 "$@" \
        2>"$work/pre_$name.log" || fail "tp-preprocess $name: $(tail -2 "$work/pre_$name.log")"
}

preprocess t5 t5 --span_masking --span_geo_prob 0.3 --span_max_length 5
pretrain t5 "$repo/models/t5/tiny_config.json" "$repo/configs/t5_tiny.json" "$work/t5.tpd"
preprocess bart bart
pretrain bart "$repo/models/bart/tiny_config.json" "$repo/configs/bart_tiny.json" "$work/bart.tpd"

# prefixlm: each line is the prefix of the next
paste "$work/corpus.txt" <(sed 1d "$work/corpus.txt") | grep -P '^[^\t]*\S[^\t]*\t.*\S' >"$work/pairs.txt" || true
mv "$work/pairs.txt" "$work/corpus.txt"
preprocess prefixlm prefixlm
sed -e 's/"mask": "causal"/"mask": "causal_with_prefix"/' -e 's/"data_processor": "lm"/"data_processor": "prefixlm"/' \
    "$repo/models/gpt2/tiny_config.json" >"$work/prefixlm_config.json"
grep -q causal_with_prefix "$work/prefixlm_config.json" || fail "models/gpt2/tiny_config.json has no causal mask to change"
pretrain prefixlm "$work/prefixlm_config.json" "$repo/configs/t5_tiny.json" "$work/prefixlm.tpd"
echo "$test_name.sh: ok"
