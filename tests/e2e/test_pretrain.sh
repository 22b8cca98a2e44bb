#!/usr/bin/env bash
# tp-pretrain end to end on real text (the Python documentation corpus that
# scripts/fetch_data.sh builds from Debian's python3.11-doc):
#   - the MLM loss falls over 60 steps of a tiny BERT;
#   - a run killed (SIGKILL) after a checkpoint and resumed with --resume logs
#     bit-identical losses to an uninterrupted run, and their final weights are identical;
#   - SIGTERM saves a checkpoint and exits 0;
#   - without --resume, existing checkpoints are never overwritten.
# Usage: tests/e2e/test_pretrain.sh BUILD_DIR   (ctest passes it)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
make_dataset 40 64
cat >"$work/run.json" <<JSON
{
  "model": "$repo/models/bert/tiny_config.json",
  "vocab_path": "$vocab",
  "dataset_path": "$work/data.tpd",
  "batch_size": 8,
  "seq_length": 64,
  "total_steps": 60,
  "learning_rate": 1e-3,
  "report_steps": 5,
  "save_checkpoint_steps": 10,
  "keep_checkpoints": 2
}
JSON

pretrain() { "$build/tp-pretrain" --config "$work/run.json" "$@"; }
# Background runs start the program itself, so that $! is its pid (not a subshell's).
tp_pretrain=("$build/tp-pretrain" --config "$work/run.json")
# The losses of a metrics file, without timings.

# ---- uninterrupted ----
pretrain --output_dir "$work/full" 2>"$work/full.log" || fail "uninterrupted run: $(tail -3 "$work/full.log")"
first=$(head -1 "$work/full/metrics.jsonl" | sed -E 's/.*"mlm_loss":([0-9.]+).*/\1/')
last=$(tail -1 "$work/full/metrics.jsonl" | sed -E 's/.*"mlm_loss":([0-9.]+).*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 1.0) }' || fail "MLM loss did not fall: $first -> $last"
[ "$(ls "$work/full/checkpoints" | grep -c '^step-')" = 2 ] || fail "keep_checkpoints 2 not honoured"

# ---- killed after a checkpoint, then resumed ----
"${tp_pretrain[@]}" --output_dir "$work/killed" 2>"$work/killed.log" &
pid=$!
wait_until test -f "$work/killed/checkpoints/latest" || true
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
[ -f "$work/killed/checkpoints/latest" ] || fail "no checkpoint before the kill"
[ ! -d "$work/killed/checkpoints/step-00000060" ] || fail "the run finished before it was killed"
pretrain --output_dir "$work/killed" --resume 2>"$work/resume.log" || fail "resume: $(tail -3 "$work/resume.log")"
grep -q "resumed from step" "$work/resume.log" || fail "did not resume: $(head -3 "$work/resume.log")"
diff <(losses "$work/full/metrics.jsonl") <(losses "$work/killed/metrics.jsonl") >"$work/diff" ||
    fail "resumed losses differ from the uninterrupted run: $(head -5 "$work/diff")"
cmp "$work/full/checkpoints/step-00000060/model.safetensors" "$work/killed/checkpoints/step-00000060/model.safetensors" ||
    fail "final weights differ after resume"

# ---- SIGTERM saves and exits cleanly ----
"${tp_pretrain[@]}" --output_dir "$work/term" --save_checkpoint_steps 0 --total_steps 100000 2>"$work/term.log" &
pid=$!
wait_until grep -q '"step":5' "$work/term/metrics.jsonl" 2>/dev/null || true
kill -TERM "$pid"
wait "$pid" || fail "SIGTERM: exit status $? ($(tail -2 "$work/term.log"))"
grep -q "stopped by signal" "$work/term.log" || fail "SIGTERM: no stop message"
[ -f "$work/term/checkpoints/latest" ] || fail "SIGTERM: no checkpoint saved"

# ---- a fresh run never overwrites checkpoints ----
if pretrain --output_dir "$work/full" 2>"$work/again.log"; then fail "second fresh run over checkpoints succeeded"; fi
grep -q "pass --resume" "$work/again.log" || fail "no clear message: $(cat "$work/again.log")"
[ "$(ls "$work/full/checkpoints" | grep -c '^step-')" = 2 ] || fail "checkpoints changed by the refused run"

echo "test_pretrain.sh: 1 passed, 0 failed"
