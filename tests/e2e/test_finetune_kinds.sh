#!/usr/bin/env bash
# tp-finetune's task kinds end to end on real data (docs/finetune.md gives the numbers), each
# against a trivial baseline that a broken head, loss or encoding could not beat:
#   - multi_label: 8 debtags of Debian packages from name + description (scripts/make_debian_task.sh),
#     tiny BERT from scratch, 1 epoch on 2000 packages: dev loss <= 0.85 x the BCE of the best
#     constant predictor (the label frequencies, ~0.43 here) and micro-F1 >= 0.32 (every label: 0.31,
#     no label: 0, the most frequent label set: 0.26);
#   - regression: log10 Installed-Size of the same packages, tiny BERT, 2 epochs: dev Spearman >= 0.35
#     and MSE <= 0.9 x the variance of the dev targets (the MSE of the best constant);
#   - tagging: FUNC/CLASS/MOD/CODE entities in the Python docs' reST (scripts/make_pydoc_tagging_task.sh),
#     all-MiniLM-L6-v2, 1 epoch on 600 sentences: entity F1 >= 0.10 (every word O: 0); the CRF head
#     ("crf": true, Viterbi prediction) runs on 60 sentences, or with TP_E2E_CRF=1 on all 600 with
#     the same threshold;
#   - a 2-epoch regression run killed after epoch 1 and resumed logs the same losses and scores;
#   - bad input: a non-numeric regression label, a class outside the label set, a tag-count
#     mismatch, an unknown tag, text_b in a tagging file: one error naming the file and line, exit 1.
# Usage: tests/e2e/test_finetune_kinds.sh BUILD_DIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ -f "$repo/data/corpus/debian-packages.tsv" ] || fail "data/corpus/debian-packages.tsv missing: run scripts/fetch_data.sh"
bash "$repo/scripts/make_debian_task.sh" "$work/debian" >/dev/null
bash "$repo/scripts/make_pydoc_tagging_task.sh" "$work/tagging" >/dev/null
# file prefixes (both files are ordered by a hash, so a prefix is a fair sample)
head -n 2001 "$work/debian/multi_label/train.tsv" >"$work/ml_train.tsv"
head -n 401 "$work/debian/multi_label/dev.tsv" >"$work/ml_dev.tsv"
head -n 2001 "$work/debian/regression/train.tsv" >"$work/rg_train.tsv"
head -n 401 "$work/debian/regression/dev.tsv" >"$work/rg_dev.tsv"
head -n 601 "$work/tagging/train.tsv" >"$work/tag_train.tsv"
head -n 151 "$work/tagging/dev.tsv" >"$work/tag_dev.tsv"
if [ "$quick" = 1 ]; then # (tests/e2e/common.sh) the same runs on a tenth of the data, no thresholds
    for file in ml_train ml_dev rg_train rg_dev tag_train tag_dev; do
        awk 'NR == 1 || NR % 10 == 0' "$work/$file.tsv" >"$work/$file.cut" && mv "$work/$file.cut" "$work/$file.tsv"
    done
fi
minilm="$repo/data/models/all-MiniLM-L6-v2"

# config NAME TASK TRAIN DEV: a tiny BERT from scratch (Adam eps 1e-8: with 1e-6 the small gradients
# that BCE's mean over batch x labels gives the encoder barely move it).
config() {
    cat >"$work/$1.json" <<JSON
{ "task": "$2", "model": "$repo/models/bert/tiny_config.json", "vocab_path": "$vocab",
  "train_path": "$3", "dev_path": "$4", "epochs_num": 1, "batch_size": 32, "seq_length": 32,
  "learning_rate": 3e-4, "adam_epsilon": 1e-8, "report_steps": 20, "seed": 7 }
JSON
}
# run NAME [--KEY VALUE ...]: prints the last dev line of the run's metrics.
run() {
    local name=$1
    shift
    "$build/tp-finetune" --config "$work/$name.json" --output_dir "$work/$name" "$@" 2>"$work/$name.log" ||
        fail "$name: $(tail -3 "$work/$name.log")"
    grep '"split":"dev"' "$work/$name/metrics.jsonl" | tail -1
}
# value KEY LINE
value() { sed -E "s/.*\"$1\":([-0-9.e]+).*/\1/" <<<"$2"; }
at_least() { [ "$quick" = 1 ] || awk -v a="$2" -v b="$3" 'BEGIN { exit !(a >= b) }' || fail "$1 $2 < $3"; }

# ---- multi-label ----
config multi_label multi_label "$work/ml_train.tsv" "$work/ml_dev.tsv"
line=$(run multi_label --model.dropout 0)
constant=$(/usr/bin/python3 - "$work/ml_dev.tsv" <<'PY'
import math, sys
rows = [set(l.split("\t")[0].split(",")) for l in open(sys.argv[1]).read().splitlines()[1:]]
p = [min(max(sum(str(c) in r for r in rows) / len(rows), 1e-6), 1 - 1e-6) for c in range(8)]  # clamped: a small sample may lack a label
print(sum(-(q * math.log(q) + (1 - q) * math.log(1 - q)) for q in p) / 8)
PY
)
echo "multi_label: $line (constant predictor's BCE $constant)"
at_least "multi_label: 0.85 x constant BCE $constant vs loss" "$(awk -v c="$constant" 'BEGIN { print 0.85 * c }')" "$(value loss "$line")"
at_least "multi_label: micro-F1" "$(value micro_f1 "$line")" 0.32

# ---- regression, and an exact resume between epochs ----
config regression regression "$work/rg_train.tsv" "$work/rg_dev.tsv"
line=$(run regression --epochs_num 2 --model.dropout 0)
variance=$(awk -F'\t' 'NR > 1 { s += $1; q += $1 * $1; n++ } END { m = s / n; print q / n - m * m }' "$work/rg_dev.tsv")
echo "regression: $line (dev variance $variance)"
at_least "regression: Spearman" "$(value spearman "$line")" 0.35
at_least "regression: 0.9 x variance $variance vs MSE" "$(awk -v v="$variance" 'BEGIN { print 0.9 * v }')" "$(value mse "$line")"
"$build/tp-finetune" --config "$work/regression.json" --epochs_num 2 --model.dropout 0 --output_dir "$work/killed" \
    2>"$work/killed.log" &
pid=$!
wait_until epoch_saved "$work/killed" || true
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
"$build/tp-finetune" --config "$work/regression.json" --epochs_num 2 --model.dropout 0 --output_dir "$work/killed" \
    --resume 2>"$work/resume.log" || fail "resume: $(tail -3 "$work/resume.log")"
diff <(losses "$work/regression/metrics.jsonl") <(losses "$work/killed/metrics.jsonl") >"$work/diff" ||
    fail "resumed regression run differs: $(head -4 "$work/diff")"

# ---- tagging (a pre-trained encoder: the tiny model from scratch stays at all-O for epochs) ----
cat >"$work/tagging.json" <<JSON
{ "task": "tagging", "hf_model_dir": "$minilm", "train_path": "$work/tag_train.tsv", "dev_path": "$work/tag_dev.tsv",
  "epochs_num": 1, "batch_size": 16, "seq_length": 48, "learning_rate": 1e-4, "report_steps": 10, "seed": 7 }
JSON
line=$(run tagging)
echo "tagging: $line"
at_least "tagging: entity F1" "$(value f1 "$line")" 0.10
# The same run with a CRF head (docs/finetune.md: F1 0.238 on the full 600 sentences).  The full
# run costs as much again as the one above, so by default the CRF trains on a tenth of the
# sentences and is checked for running, not for F1; TP_E2E_CRF=1 runs it all with the threshold.
sed 's/"seed": 7 }/"seed": 7, "crf": true }/' "$work/tagging.json" >"$work/tagging_crf.json"
if [ "${TP_E2E_CRF:-0}" = 1 ]; then
    line=$(run tagging_crf)
    echo "tagging with crf: $line"
    at_least "tagging with crf: entity F1" "$(value f1 "$line")" 0.10
else
    cp "$work/tag_train.tsv" "$work/tag_train_crf.tsv" # quick runs: already a tenth (a hundredth lacks tags)
    [ "$quick" = 1 ] || awk 'NR == 1 || NR % 10 == 0' "$work/tag_train.tsv" >"$work/tag_train_crf.tsv"
    line=$(run tagging_crf --train_path "$work/tag_train_crf.tsv")
    echo "tagging with crf (a tenth of the sentences, no threshold): $line"
fi

# ---- bad input ----
expect() { # NAME CONFIG FILE-CONTENT FRAGMENT: the file replaces dev_path
    printf "$3" >"$work/bad.tsv"
    local status=0
    "$build/tp-finetune" --config "$work/$2.json" --output_dir "$work/bad" --dev_path "$work/bad.tsv" \
        2>"$work/bad.log" || status=$?
    [ "$status" -eq 1 ] || fail "$1: exit status $status"
    grep -qF -- "$4" "$work/bad.log" || fail "$1: expected '$4' in: $(cat "$work/bad.log")"
    [ ! -e "$work/bad" ] || fail "$1: left output behind"
}
expect "non-numeric regression label" regression 'label\ttext_a\ttext_b\n1.5\ta\tb\nbig\tc\td\n' \
    "bad.tsv: line 3: regression label 'big' is not a number"
expect "class outside the label set" multi_label 'label\ttext_a\ttext_b\n0,8\ta\tb\n' \
    "bad.tsv: line 2: label '0,8' is not in the label set of the model (0..7)"
expect "tag count mismatch" tagging 'label\ttext_a\nO B-CODE\tcall len ( )\n' "bad.tsv: line 2: 2 tags for 4 tokens"
expect "unknown tag" tagging 'label\ttext_a\nO B-PER\tcall Guido\n' "bad.tsv: line 2: tag 'B-PER' is not in the tag set"
expect "text_b in tagging" tagging 'label\ttext_a\ttext_b\nO\ta\tb\n' "bad.tsv: header: tagging takes text_a only"
echo "test_finetune_kinds.sh: 1 passed, 0 failed"
