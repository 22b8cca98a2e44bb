#!/usr/bin/env bash
# Crash safety: tp-pretrain is killed with SIGKILL at random moments (checkpoints are written
# every 2 steps, so many kills land while one is being written), then resumed, until the run
# completes.  Afterwards:
#   - every checkpoint directory under its final name is byte-identical to the same step's
#     checkpoint of an uninterrupted run (nothing half-written ever has a final name);
#   - the metrics (losses) equal the uninterrupted run's, line for line.
# Usage: tests/e2e/test_crash_resume.sh BUILD_DIR [KILLS]   (ctest: 4 kills; scripts/crash_resume.sh: 20)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
kills=${2:-4}
make_dataset 20 32
cat >"$work/run.json" <<JSON
{
  "model": "$repo/models/bert/tiny_config.json",
  "vocab_path": "$vocab",
  "dataset_path": "$work/data.tpd",
  "batch_size": 4,
  "seq_length": 32,
  "total_steps": 40,
  "learning_rate": 1e-3,
  "report_steps": 1,
  "save_checkpoint_steps": 2,
  "keep_checkpoints": 0
}
JSON
tp_pretrain=("$build/tp-pretrain" --config "$work/run.json")

"${tp_pretrain[@]}" --output_dir "$work/full" 2>"$work/full.log" || fail "uninterrupted run: $(tail -2 "$work/full.log")"
start=$(date +%s%N)
"${tp_pretrain[@]}" --output_dir "$work/probe" 2>/dev/null
run_ms=$(((($(date +%s%N) - start) / 1000000)))

RANDOM=7
for ((kill_index = 1; kill_index <= kills; kill_index++)); do
    "${tp_pretrain[@]}" --output_dir "$work/crashed" --resume 2>>"$work/crashed.log" &
    pid=$!
    sleep "$(awk -v ms=$((RANDOM % (run_ms + 1))) 'BEGIN { printf "%.3f", ms / 1000 / 2 }')"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # Every checkpoint with a final name is complete: identical to the uninterrupted run's.
    for dir in "$work"/crashed/checkpoints/step-*; do
        [ -d "$dir" ] || continue
        case "$dir" in *.tmp.*) continue ;; esac
        for file in model.safetensors optimizer.safetensors; do
            cmp -s "$dir/$file" "$work/full/checkpoints/$(basename "$dir")/$file" ||
                fail "kill $kill_index: $dir/$file differs from the uninterrupted run's"
        done
    done
done
"${tp_pretrain[@]}" --output_dir "$work/crashed" --resume 2>>"$work/crashed.log" || fail "final resume: $(tail -2 "$work/crashed.log")"
diff <(losses "$work/full/metrics.jsonl") <(losses "$work/crashed/metrics.jsonl") >"$work/diff" ||
    fail "losses after $kills kills differ from the uninterrupted run: $(head -4 "$work/diff")"
cmp -s "$work/full/checkpoints/step-00000040/model.safetensors" "$work/crashed/checkpoints/step-00000040/model.safetensors" ||
    fail "final weights differ"
resumes=$(grep -c "resumed from step" "$work/crashed.log" || true)
echo "test_crash_resume.sh: $kills kills ($resumes resumed from a checkpoint): 1 passed, 0 failed"
