#!/usr/bin/env bash
# tp-convert as a program, on the Hugging Face fixtures of tests/fixtures/hf_families (the
# conversions' numbers are checked by test_hf_families.c):
#   - HF -> tp -> HF -> tp -> HF reaches a fixed point: the two Hugging Face directories written
#     by tp-convert hold byte-identical model.safetensors and config.json, for a BERT, a RoBERTa
#     and an ALBERT model, T5, T5 v1.1, BART and Pegasus; the tokenizer files are copied;
#   - --help; bad usage exits 2; bad input exits 1 with the file named and no output left.
# Usage: tests/models/test_tp_convert.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: test_tp_convert.sh BUILD_DIR}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fixtures="$repo/tests/fixtures/hf_families"
convert="$build/tp-convert"
work=$(mktemp -d /tmp/tp_test_tp_convert.XXXXXX)
trap 'rm -rf "$work"' EXIT

fail() {
    echo "test_tp_convert.sh: FAIL: $*" >&2
    exit 1
}

# expect STATUS NEEDLE ARGS...: tp-convert exits with STATUS and says NEEDLE on stderr.
expect() {
    local want=$1 needle=$2 status=0
    shift 2
    "$convert" "$@" 2>"$work/err" >/dev/null || status=$?
    [ "$status" = "$want" ] || fail "tp-convert $*: exit $status, expected $want ($(cat "$work/err"))"
    grep -qF -- "$needle" "$work/err" || fail "tp-convert $*: message '$(cat "$work/err")' lacks '$needle'"
}

"$convert" --help >"$work/help" || fail "--help exits non-zero"
for word in --from-hf --to-hf --model --weights --vocab --to model_config.json position_offset; do
    grep -qF -- "$word" "$work/help" || fail "--help does not mention $word"
done

for case in bert_pretraining roberta_mlm albert_cls; do
    "$convert" --from-hf "$fixtures/$case" --to "$work/$case.tp1" 2>/dev/null || fail "$case: --from-hf"
    "$convert" --to-hf --model "$work/$case.tp1/model_config.json" --weights "$work/$case.tp1/model.safetensors" \
        --to "$work/$case.hf1" 2>/dev/null || fail "$case: --to-hf"
    "$convert" --from-hf "$work/$case.hf1" --to "$work/$case.tp2" 2>/dev/null || fail "$case: second --from-hf"
    "$convert" --to-hf --model "$work/$case.tp2/model_config.json" --weights "$work/$case.tp2/model.safetensors" \
        --to "$work/$case.hf2" 2>/dev/null || fail "$case: second --to-hf"
    for file in model.safetensors config.json; do
        cmp -s "$work/$case.hf1/$file" "$work/$case.hf2/$file" || fail "$case: $file differs between round trips"
    done
done
# The encoder-decoders (tests/fixtures/{t5,t5_v1_1,bart,pegasus}; numbers checked by test_seq2seq_parity.c).
for case in t5 t5_v1_1 bart pegasus; do
    "$convert" --from-hf "$repo/tests/fixtures/$case" --to "$work/$case.tp1" 2>/dev/null || fail "$case: --from-hf"
    "$convert" --to-hf --model "$work/$case.tp1/model_config.json" --weights "$work/$case.tp1/model.safetensors" \
        --to "$work/$case.hf1" 2>/dev/null || fail "$case: --to-hf"
    "$convert" --from-hf "$work/$case.hf1" --to "$work/$case.tp2" 2>/dev/null || fail "$case: second --from-hf"
    "$convert" --to-hf --model "$work/$case.tp2/model_config.json" --weights "$work/$case.tp2/model.safetensors" \
        --to "$work/$case.hf2" 2>/dev/null || fail "$case: second --to-hf"
    for file in model.safetensors config.json; do
        cmp -s "$work/$case.hf1/$file" "$work/$case.hf2/$file" || fail "$case: $file differs between round trips"
    done
done
for file in vocab.txt tokenizer_config.json; do
    cmp -s "$fixtures/bert_pretraining/$file" "$work/bert_pretraining.hf2/$file" || fail "$file not carried along"
done
cmp -s "$fixtures/roberta_mlm/merges.txt" "$work/roberta_mlm.tp1/merges.txt" || fail "merges.txt not copied"
# --vocab names the tokenizer files explicitly.
"$convert" --to-hf --model "$work/bert_pretraining.tp1/model_config.json" --vocab "$fixtures/bert_cls/vocab.txt" \
    --weights "$work/bert_pretraining.tp1/model.safetensors" --to "$work/vocab_given" 2>/dev/null || fail "--vocab"
[ -f "$work/vocab_given/vocab.txt" ] && [ ! -f "$work/vocab_given/tokenizer_config.json" ] || fail "--vocab not obeyed"

# Bad usage: exit 2.
expect 2 "exactly one of" --to "$work/x"
expect 2 "unknown option" --from-hf "$fixtures/bert_cls" --to "$work/x" --frobnicate
expect 2 "needs --model and --weights" --to-hf --model "$work/bert_pretraining.tp1/model_config.json" --to "$work/x"
expect 2 "missing --to" --from-hf "$fixtures/bert_cls"
# Bad input: exit 1, the file named, nothing written.
expect 1 "nowhere/config.json" --from-hf "$work/nowhere" --to "$work/x"
expect 1 "already exists" --from-hf "$fixtures/bert_cls" --to "$work/bert_pretraining.tp1"
expect 1 "missing.safetensors" --to-hf --model "$work/bert_pretraining.tp1/model_config.json" \
    --weights "$work/missing.safetensors" --to "$work/x"
# Weights of another model: the first tensor whose shape differs is named.
expect 1 "'embedding.word.embedding.weight'" --to-hf --model "$work/roberta_mlm.tp1/model_config.json" \
    --weights "$work/albert_cls.tp1/model.safetensors" --to "$work/x"
[ ! -e "$work/x" ] || fail "a failed conversion left $work/x"
! ls -d "$work"/*.tmp.* 2>/dev/null || fail "a failed conversion left a temporary directory"
echo "test_tp_convert.sh: OK"
