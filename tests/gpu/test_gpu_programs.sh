#!/usr/bin/env bash
# tp-pretrain with `device: cuda` on real text (the Python documentation corpus), against the same
# run on the CPU:
#   - 30 steps of a tiny BERT (dropout on): the per-step losses on the GPU equal the CPU's within
#     2e-3 relative (the tolerance of tests/gpu/test_gpu_train.c);
#   - a GPU run killed (SIGKILL) after a checkpoint and resumed logs bit-identical losses to an
#     uninterrupted GPU run (every CUDA kernel is deterministic: docs/gpu.md);
#   - with TP_NCCL=1 (gradients all-reduced over NCCL in a world of one, when the suite found
#     libnccl.so.2), the losses equal the plain GPU run's bit for bit;
#   - `precision: bf16`: the first step's loss within 1e-2 of the CPU's, and the loss falls.
# Without a GPU or a CUDA build: prints "skipped: ..." and passes.
# Usage: tests/gpu/test_gpu_programs.sh BUILD_DIR   (ctest passes it)
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/common.sh"
make_dataset 40 64
cat >"$work/run.json" <<JSON
{ "model": "$repo/models/bert/tiny_config.json", "vocab_path": "$vocab", "dataset_path": "$work/data.tpd",
  "batch_size": 8, "seq_length": 64, "total_steps": 30, "learning_rate": 1e-3, "report_steps": 1,
  "save_checkpoint_steps": 10, "keep_checkpoints": 5 }
JSON
pretrain() { "$build/tp-pretrain" --config "$work/run.json" "$@"; }

if ! pretrain --device cuda --total_steps 1 --output_dir "$work/probe" 2>"$work/probe.log"; then
    if grep -q "no CUDA device\|no CUDA backend" "$work/probe.log"; then
        echo "skipped: $(tail -1 "$work/probe.log")"
        exit 0
    fi
    fail "probe run: $(tail -3 "$work/probe.log")"
fi

# mlm_loss of every step, one per line.
step_losses() { sed -E 's/.*"mlm_loss":([0-9.e+-]+).*/\1/' "$1/metrics.jsonl"; }
# compare_losses A B FIRST_TOLERANCE LATER_TOLERANCE: relative per-step differences.
compare_losses() {
    paste <(step_losses "$1") <(step_losses "$2") | awk -v first="$3" -v later="$4" '
        { d = ($2 - $1) / $1; if (d < 0) d = -d; t = NR == 1 ? first : later
          printf "%4d %12.6f %12.6f %10.3g%s\n", NR, $1, $2, d, d <= t ? "" : "  FAIL"; if (d > t) bad = 1 }
        END { exit bad || NR == 0 }'
}

pretrain --output_dir "$work/cpu" 2>"$work/cpu.log" || fail "CPU run: $(tail -3 "$work/cpu.log")"
pretrain --device cuda --output_dir "$work/gpu" 2>"$work/gpu.log" || fail "GPU run: $(tail -3 "$work/gpu.log")"
grep -q "device cuda" "$work/gpu.log" || fail "the GPU run did not report device cuda"
echo "step     cpu loss     gpu loss   rel diff"
compare_losses "$work/cpu" "$work/gpu" 2e-3 2e-3 || fail "GPU losses differ from the CPU's"

# ---- killed after a checkpoint, then resumed: the same losses bit for bit ----
"$build/tp-pretrain" --config "$work/run.json" --device cuda --output_dir "$work/killed" 2>"$work/killed.log" &
pid=$!
wait_until test -f "$work/killed/checkpoints/latest" || true
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
[ -f "$work/killed/checkpoints/latest" ] || fail "no checkpoint before the kill"
pretrain --device cuda --output_dir "$work/killed" --resume 2>"$work/resume.log" ||
    fail "GPU resume: $(tail -3 "$work/resume.log")"
cmp -s <(losses "$work/gpu/metrics.jsonl") <(losses "$work/killed/metrics.jsonl") ||
    fail "the resumed GPU run's losses differ from the uninterrupted one's"
echo "GPU kill + resume: identical losses"

# ---- gradients over NCCL (a world of one, TP_NCCL=1): the same losses bit for bit ----
if [ -n "${TP_NCCL_LIBRARY:-}" ]; then
    TP_NCCL=1 pretrain --device cuda --output_dir "$work/nccl" 2>"$work/nccl.log" ||
        fail "NCCL run: $(tail -3 "$work/nccl.log")"
    cmp -s <(losses "$work/gpu/metrics.jsonl") <(losses "$work/nccl/metrics.jsonl") ||
        fail "the run with gradients over NCCL logs other losses than the plain GPU run"
    echo "GPU with gradients over NCCL: identical losses"
else
    echo "NCCL: libnccl.so.2 not found (TP_NCCL_LIBRARY unset): not checked here"
fi

# ---- bf16 products ----
pretrain --device cuda --precision bf16 --output_dir "$work/bf16" 2>"$work/bf16.log" ||
    fail "bf16 run: $(tail -3 "$work/bf16.log")"
echo "step     cpu loss    bf16 loss   rel diff"
compare_losses "$work/cpu" "$work/bf16" 1e-2 1 || fail "bf16 first-step loss off by more than 1e-2"
first=$(step_losses "$work/bf16" | head -1)
last=$(step_losses "$work/bf16" | tail -1)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 1.0) }' || fail "bf16 MLM loss did not fall: $first -> $last"

# ---- a CPU run refuses reduced precision ----
if pretrain --precision bf16 --output_dir "$work/cpu_bf16" 2>"$work/cpu_bf16.log"; then fail "CPU bf16 accepted"; fi
grep -q 'precision "bf16" needs device "cuda"' "$work/cpu_bf16.log" || fail "CPU bf16: $(cat "$work/cpu_bf16.log")"
echo "test_gpu_programs: passed"
