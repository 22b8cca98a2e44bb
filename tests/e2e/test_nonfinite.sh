#!/usr/bin/env bash
# Numerical faults: a run whose weights hold a NaN (a checkpoint patched by hand) produces
# non-finite gradients at every step; each step is skipped and logged, and after max_bad_steps
# consecutive bad steps tp-pretrain stops with a clear message, exit status 1, and the last
# good checkpoint untouched.
# Usage: tests/e2e/test_nonfinite.sh BUILD_DIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
printf 'The cat sat on the mat.\nIt was warm there.\n\nDogs bark at night.\nThe moon was bright.\n\n' >"$work/corpus.txt"
"$build/tp-preprocess" --corpus_path "$work/corpus.txt" --vocab_path "$vocab" --dataset_path "$work/data.tpd" \
    --seq_length 32 2>/dev/null
cat >"$work/run.json" <<JSON
{ "model": "$repo/models/bert/tiny_config.json", "vocab_path": "$vocab", "dataset_path": "$work/data.tpd",
  "output_dir": "$work/out", "batch_size": 2, "seq_length": 32, "total_steps": 20, "save_checkpoint_steps": 2,
  "max_bad_steps": 3 }
JSON
"$build/tp-pretrain" --config "$work/run.json" --total_steps 2 2>/dev/null || fail "first run failed"
checkpoint="$work/out/checkpoints/step-00000002"
cp "$checkpoint/model.safetensors" "$work/good.safetensors"
# The header is 8 bytes + its length; the last 4 bytes of the file belong to the last tensor: make it NaN.
size=$(stat -c %s "$checkpoint/model.safetensors")
printf '\xff\xff\xff\x7f' | dd of="$checkpoint/model.safetensors" bs=1 seek=$((size - 4)) conv=notrunc status=none
cp "$checkpoint/model.safetensors" "$work/nan.safetensors"

status=0
"$build/tp-pretrain" --config "$work/run.json" --resume 2>"$work/stderr" || status=$?
[ "$status" -eq 1 ] || fail "exit status $status, expected 1: $(cat "$work/stderr")"
grep -q "3 consecutive steps had non-finite gradients (max_bad_steps)" "$work/stderr" || fail "no clear message: $(cat "$work/stderr")"
[ "$(grep -c '"event":"non-finite gradients: step skipped"' "$work/out/metrics.jsonl")" = 3 ] || fail "skipped steps not logged"
cmp -s "$checkpoint/model.safetensors" "$work/nan.safetensors" || fail "the last checkpoint was changed"
[ "$(ls "$work/out/checkpoints" | grep -c '^step-')" = 1 ] || fail "a checkpoint was written by the failed run"
echo "test_nonfinite.sh: 1 passed, 0 failed"
