#!/usr/bin/env bash
# The continual-learning demonstration of docs/continual.md: five binary classification tasks from
# disjoint pairs of Debian fortune categories, learnt one after another by the tiny BERT that
# scripts/setup.sh pre-trains, with tp-finetune --continual seq | replay | ewc (+ replay) |
# cf (+ replay) | multitask, over seeds and two task orders.
#
# Usage: scripts/continual_demo.sh STAGE OUT_DIR      (stages in order; each reuses what exists)
#   tasks   OUT_DIR/tasks/<name>/{train,dev,test}.tsv + labels.txt: at most 400 training, 50 dev and
#           100 test quotes per category (scripts/make_fortunes_task.sh's split)
#   tune    find_lambda for ewc and cf: LAMBDAS on the first two tasks (forward order, seed 1),
#           judged by the dev accuracy over both tasks (test sets untouched); prints the table
#   grid    every run of MODES x SEEDS x ORDERS (multitask once per seed, the reference for
#           intransigence), JOBS at a time, one thread each, in OUT_DIR/runs/<mode>_<order>_s<seed>;
#           finished runs (a summary line in continual.jsonl) are kept, unfinished ones redone.
#           A mode may name its lambda: cf@5000 is cf with find_lambda 5000 (its own rows)
#   table   mean and standard deviation over the finished runs of each mode: average accuracy,
#           forgetting, intransigence (markdown, as in docs/continual.md)
# Environment (defaults): BUILD (build), SEEDS ("1 2 3"), ORDERS ("forward reverse"),
#   MODES ("seq replay ewc cf"), JOBS (2), EWC_LAMBDA and CF_LAMBDA (the values docs/continual.md
#   chose with `tune`), LAMBDAS ("50 500 5000 50000"), EPOCHS (3), PRETRAINED (the tiny BERT's
#   step-1000 weights).
set -euo pipefail
stage=${1:?usage: continual_demo.sh tasks|tune|grid|table OUT_DIR}
out=${2:?usage: continual_demo.sh tasks|tune|grid|table OUT_DIR}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD:-$repo/build}
seeds=${SEEDS:-1 2 3}
orders=${ORDERS:-forward reverse}
modes=${MODES:-seq replay ewc cf}
jobs=${JOBS:-2}
ewc_lambda=${EWC_LAMBDA:-5000}
cf_lambda=${CF_LAMBDA:-50}
epochs=${EPOCHS:-3}
pretrained=${PRETRAINED:-$repo/runs/bert_tiny/checkpoints/step-00001000/model.safetensors}
# The tasks in the forward order; the reverse order is the same list backwards.
task_names=(comp_pol people_def songs_work sci_mw art_wisdom)
declare -A categories=(
    [comp_pol]="computers politics" [people_def]="people definitions" [songs_work]="songs-poems work"
    [sci_mw]="science men-women" [art_wisdom]="art wisdom")

# cap FILE LIMIT: at most LIMIT examples of each label (the header kept).
cap() { awk -F'\t' -v limit="$2" 'NR == 1 || ++seen[$1] <= limit' "$1" >"$1.cap" && mv "$1.cap" "$1"; }

make_tasks() {
    for name in "${task_names[@]}"; do
        [ -f "$out/tasks/$name/test.tsv" ] && continue
        # shellcheck disable=SC2086 # the categories are separate arguments
        bash "$repo/scripts/make_fortunes_task.sh" "$out/tasks/$name.tmp" ${categories[$name]} >/dev/null
        cap "$out/tasks/$name.tmp/train.tsv" 400
        cap "$out/tasks/$name.tmp/dev.tsv" 50
        cap "$out/tasks/$name.tmp/test.tsv" 100
        rm -rf "$out/tasks/$name"
        mv "$out/tasks/$name.tmp" "$out/tasks/$name"
        echo "$name (${categories[$name]}): $(($(wc -l <"$out/tasks/$name/train.tsv") - 1)) train," \
            "$(($(wc -l <"$out/tasks/$name/dev.tsv") - 1)) dev, $(($(wc -l <"$out/tasks/$name/test.tsv") - 1)) test"
    done
}

task_list() { # ORDER [COUNT]: the task directories, comma-separated
    local names=("${task_names[@]}") list="" i
    [ "$1" = reverse ] && names=(art_wisdom sci_mw songs_work people_def comp_pol)
    for ((i = 0; i < ${2:-${#names[@]}}; i++)); do list+="${list:+,}$out/tasks/${names[$i]}"; done
    echo "$list"
}

write_config() {
    [ -f "$pretrained" ] || { echo "continual_demo.sh: $pretrained missing: run scripts/setup.sh" >&2; exit 1; }
    cat >"$out/run.json" <<JSON
{ "model": "$repo/models/bert/tiny_config.json", "pretrained_model_path": "$pretrained",
  "vocab_path": "$repo/data/vocab/bert-base-uncased-vocab.txt", "epochs_num": $epochs, "batch_size": 32,
  "seq_length": 32, "learning_rate": 1e-4, "threads": 1, "report_steps": 1000 }
JSON
}

finished() { grep -qs '"event":"summary"' "$1/continual.jsonl"; }

# run DIR ARGS...: one tp-finetune run unless DIR holds a finished one.
run() {
    local dir=$1
    shift
    finished "$dir" && return 0
    rm -rf "$dir"
    "$build/tp-finetune" --config "$out/run.json" --output_dir "$dir" "$@" >"$dir.out" 2>"$dir.log" ||
        { echo "continual_demo.sh: $dir failed: $(tail -1 "$dir.log")" >&2; return 1; }
    echo "$dir: $(tail -1 "$dir.out")"
}

# mode_args MODE: the options of one mode (ewc and cf with replay; MODE@LAMBDA: that find_lambda).
mode_args() {
    local mode=${1%@*} lambda=""
    [ "$mode" != "$1" ] && lambda=${1#*@}
    case $mode in
    ewc) echo "--continual ewc --replay true --find_lambda ${lambda:-$ewc_lambda}" ;;
    cf) echo "--continual cf --find_lambda ${lambda:-$cf_lambda}" ;;
    *) echo "--continual $mode" ;;
    esac
}

# parallel: runs the lines of stdin (commands) JOBS at a time.
parallel() {
    local line
    while read -r line; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
        eval "$line" &
    done
    wait
}

tune() {
    write_config
    mkdir -p "$out/tune"
    for lambda in ${LAMBDAS:-50 500 5000 50000}; do
        for mode in ewc cf; do
            extra=""
            [ "$mode" = ewc ] && extra="--replay true"
            echo "run $out/tune/${mode}_$lambda --continual $mode $extra --find_lambda $lambda --seed 1 --tasks $(task_list forward 2)"
        done
    done | parallel
    /usr/bin/python3 - "$out/tune" <<'PY'
import json, pathlib, sys
print("| mode | find_lambda | dev accuracy over both tasks (best-on-dev, task 2) | test: task 1 after task 1 / after task 2 |")
print("|---|---|---|---|")
rows = []
for path in pathlib.Path(sys.argv[1]).glob("*/continual.jsonl"):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    dev = max(l["dev_selection"] for l in lines if l.get("event") == "epoch" and l["task"] == lines[-1]["tasks"][1])
    acc = lines[-1]["accuracy"]
    mode, lam = path.parent.name.split("_")
    rows.append((mode, float(lam), dev, acc[0][0], acc[1][0]))
for mode, lam, dev, first, after in sorted(rows):
    print(f"| {mode} | {lam:g} | {dev:.4f} | {first:.4f} / {after:.4f} |")
PY
}

grid() {
    write_config
    mkdir -p "$out/runs"
    for seed in $seeds; do
        echo "run $out/runs/multitask_s$seed --continual multitask --seed $seed --tasks $(task_list forward)"
    done | parallel
    for seed in $seeds; do
        for order in $orders; do
            for mode in $modes; do
                echo "run $out/runs/${mode}_${order}_s$seed $(mode_args "$mode") --seed $seed --tasks $(task_list "$order")" \
                    "--multitask_results $out/runs/multitask_s$seed/continual.jsonl"
            done
        done
    done | parallel
}

table() {
    /usr/bin/python3 - "$out/runs" <<'PY'
import json, pathlib, statistics, sys
runs = {}  # by the run names' mode part: seq, cf, cf@5000, multitask, ...
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/continual.jsonl")):
    summary = [json.loads(l) for l in path.read_text().splitlines() if '"event":"summary"' in l]
    name = path.parent.name
    mode = name.rsplit("_", 1)[0] if name.startswith("multitask") else name.rsplit("_", 2)[0]
    if summary:
        runs.setdefault(mode, []).append((name, summary[-1]))
order = ["seq", "replay", "ewc", "cf", "multitask"]
modes = [m for m in order if m in runs] + sorted(m for m in runs if m not in order)
def cell(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"
print("| method | runs | average accuracy | forgetting | intransigence |")
print("|---|---|---|---|---|")
for mode in modes:
    s = [r for _, r in runs[mode]]
    print(f"| {mode} | {len(s)} | {cell([r['average_accuracy'] for r in s])} | "
          f"{cell([r['forgetting'] for r in s])} | {cell([r['intransigence'] for r in s])} |")
print()
print("| run | average accuracy | forgetting | intransigence |")
print("|---|---|---|---|")
fmt = lambda v: "-" if v is None else f"{v:.3f}"
for mode in modes:
    for name, r in runs[mode]:
        print(f"| {name} | {fmt(r['average_accuracy'])} | {fmt(r['forgetting'])} | {fmt(r['intransigence'])} |")
PY
}

mkdir -p "$out"
out=$(cd "$out" && pwd)
case $stage in
tasks) make_tasks ;;
tune) tune ;;
grid) grid ;;
table) table ;;
*) echo "continual_demo.sh: unknown stage '$stage' (tasks, tune, grid, table)" >&2; exit 2 ;;
esac
