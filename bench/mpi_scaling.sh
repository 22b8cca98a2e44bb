#!/usr/bin/env bash
# Data-parallel scaling on this machine: tp-pretrain with 1 rank x 1 thread against 2 ranks x
# 1 thread each (mpirun), the same per-rank batch (so the 2-rank run does twice the work per
# step), BERT small-ish (models/bert/tiny_config.json unless MODEL is set) on the Python docs
# corpus.  Runs alternate (1, 2, 1, 2, ...) PAIRS times; each run's throughput is the median of
# its per-step tokens/s after WARMUP steps, and its communication share the median of
# wait_seconds / step_seconds (time a rank waited for the others, not overlapped with backward).
# Prints one line per run and the median of the per-pair speed-ups (2-rank tokens/s over
# 1-rank tokens/s; 2.0 is perfect scaling).
# Usage: bench/mpi_scaling.sh [BUILD_DIR]   (env: PAIRS=3 STEPS=30 WARMUP=5 BATCH=16 SEQ=128 MODEL=...)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
pairs=${PAIRS:-3} steps=${STEPS:-30} warmup=${WARMUP:-5} batch=${BATCH:-16} seq=${SEQ:-128}
model=${MODEL:-$repo/models/bert/tiny_config.json}
vocab=$repo/data/vocab/bert-base-uncased-vocab.txt
work=$(mktemp -d /tmp/tp_mpi_scaling.XXXXXX)
trap 'rm -rf "$work"' EXIT
mpirun_flags=(--oversubscribe --bind-to none -np 2)
[ "$(id -u)" -ne 0 ] || mpirun_flags+=(--allow-run-as-root)

"$build/tp-preprocess" --corpus_path "$repo/data/corpus/pretrain.txt" --vocab_path "$vocab" \
    --dataset_path "$work/data.tpd" --data_processor bert --seq_length "$seq" --dup_factor 1 >/dev/null
cat >"$work/run.json" <<JSON
{ "model": "$model", "vocab_path": "$vocab", "dataset_path": "$work/data.tpd", "batch_size": $batch,
  "seq_length": $seq, "total_steps": $steps, "learning_rate": 1e-4, "report_steps": 1,
  "save_checkpoint_steps": 1000000, "keep_checkpoints": 0, "threads": 1 }
JSON

# median VALUES...: of the numbers read from stdin
median() { sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# field NAME FILE: the numbers of one metrics key after the warm-up steps
field() { grep -v '"split"' "$2" | tail -n +$((warmup + 1)) | grep -o "\"$1\":[0-9.e+-]*" | cut -d: -f2; }
throughput() { field tokens_per_s "$1/metrics.jsonl" | median; }
wait_share() {
    paste <(field wait_seconds "$1/metrics.jsonl") <(field step_seconds "$1/metrics.jsonl") |
        awk '{ print $1 / $2 }' | median
}

ratios=()
for pair in $(seq "$pairs"); do
    "$build/tp-pretrain" --config "$work/run.json" --output_dir "$work/one_$pair" 2>/dev/null
    mpirun "${mpirun_flags[@]}" "$build/tp-pretrain" --config "$work/run.json" --output_dir "$work/two_$pair" 2>/dev/null
    one=$(throughput "$work/one_$pair")
    two=$(throughput "$work/two_$pair")
    ratio=$(awk -v a="$two" -v b="$one" 'BEGIN { printf "%.2f", a / b }')
    ratios+=("$ratio")
    printf 'pair %d: 1 rank %8.0f tokens/s | 2 ranks %8.0f tokens/s, waiting %5.1f%% of the step | speed-up %s\n' \
        "$pair" "$one" "$two" "$(awk -v s="$(wait_share "$work/two_$pair")" 'BEGIN { print 100 * s }')" "$ratio"
done
printf 'median speed-up 1 -> 2 ranks: %s (of %d pairs; 2.00 is perfect scaling)\n' \
    "$(printf '%s\n' "${ratios[@]}" | median)" "$pairs"
