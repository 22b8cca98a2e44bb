#!/usr/bin/env bash
# tp-infer end to end on tp-finetune checkpoints (same weights, same inputs => same numbers):
#   - classification (four fortune categories, scripts/make_fortunes_task.sh; tiny BERT, 1 epoch):
#     tp-infer on the dev file prints exactly the dev loss, scores and confusion matrix that
#     tp-finetune logged for its best epoch; the accuracy recomputed from the predictions TSV
#     against the gold labels equals the logged one to 9 digits; --output_prob rows sum to 1 and
#     their argmax is the predicted label; the output_dir, its best/ and best/step-N give the same file;
#   - multi-label and regression (Debian packages, scripts/make_debian_task.sh) and tagging (Python
#     docs, scripts/make_pydoc_tagging_task.sh): the same consistency of the printed scores; the
#     MSE recomputed from the regression TSV equals the logged one; each tagging line has at most
#     as many tags as its text has words;
#   - bad input: one error naming the file / line / key, exit status 1, no predictions file.
# (tp-infer --dump against transformers' logits: tests/models/test_infer_dump.c.)
# Usage: tests/e2e/test_infer.sh BUILD_DIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bash "$repo/scripts/make_fortunes_task.sh" "$work/fortunes" >/dev/null
bash "$repo/scripts/make_debian_task.sh" "$work/debian" >/dev/null
bash "$repo/scripts/make_pydoc_tagging_task.sh" "$work/tagging" >/dev/null
# Every other training quote (the file is ordered by class, so all four stay represented).
awk 'NR == 1 || NR % 2 == 0' "$work/fortunes/train.tsv" >"$work/cls_train.tsv"
for kind in multi_label regression; do
    head -n 201 "$work/debian/$kind/train.tsv" >"$work/${kind}_train.tsv"
    head -n 61 "$work/debian/$kind/dev.tsv" >"$work/${kind}_dev.tsv"
done
head -n 201 "$work/tagging/train.tsv" >"$work/tagging_train.tsv"
head -n 61 "$work/tagging/dev.tsv" >"$work/tagging_dev.tsv"
cp "$work/fortunes/dev.tsv" "$work/classification_dev.tsv"

# finetune KIND TRAIN [--KEY VALUE ...]: a tiny BERT from scratch, 1 epoch, into $work/KIND.
finetune() {
    local kind=$1 train=$2
    shift 2
    "$build/tp-finetune" --task "$kind" --model "$repo/models/bert/tiny_config.json" --vocab_path "$vocab" \
        --train_path "$train" --dev_path "$work/${kind}_dev.tsv" --output_dir "$work/$kind" --epochs_num 1 \
        --batch_size 32 --seq_length 32 --learning_rate 5e-4 --adam_epsilon 1e-8 --model.dropout 0 --report_steps 1000 \
        "$@" --config <(echo '{}') 2>"$work/$kind.log" || fail "tp-finetune $kind: $(tail -3 "$work/$kind.log")"
}
# infer NAME [--KEY VALUE ...]: tp-infer, stderr in $work/NAME.log.
infer() {
    local name=$1
    shift
    "$build/tp-infer" "$@" 2>"$work/$name.log" || fail "tp-infer $name: $(tail -3 "$work/$name.log")"
}
# The dev scores tp-finetune printed for its (one, hence best) epoch, and those tp-infer printed.
finetune_scores() { awk '/^epoch 1 \| dev / { on = 1; sub(/^epoch 1 \| dev /, "") } /^(step|tp-)/ { on = 0 } on' "$1"; }
infer_scores() { awk '/ \| loss / { on = 1; sub(/^.* \| loss /, "loss ") } /^tp-infer:/ { on = 0 } on' "$1"; }
same_scores() { # KIND
    local expected actual
    expected=$(finetune_scores "$work/$1.log")
    actual=$(infer_scores "$work/$1_infer.log")
    [ -n "$expected" ] || fail "$1: no dev scores in the tp-finetune log"
    [ "$expected" = "$actual" ] || fail "$1: tp-infer printed
$actual
but tp-finetune logged
$expected"
    echo "$1: tp-infer reproduces tp-finetune's dev scores: $(head -1 <<<"$actual")"
}
dev_value() { grep '"split":"dev"' "$work/$1/metrics.jsonl" | sed -E "s/.*\"$2\":([-0-9.e]+).*/\1/"; }

# ---- classification ----
finetune classification "$work/cls_train.tsv"
infer classification_infer --checkpoint "$work/classification" --test_path "$work/classification_dev.tsv" \
    --prediction_path "$work/cls.tsv" --output_logits --output_prob
same_scores classification
[ "$(head -1 "$work/cls.tsv")" = "$(printf 'label\tlogits\tprob')" ] || fail "header: $(head -1 "$work/cls.tsv")"
accuracy=$(paste <(tail -n +2 "$work/classification_dev.tsv" | cut -f1) <(tail -n +2 "$work/cls.tsv") |
    awk -F'\t' '{ n++; right += ($1 == $2); classes[$2] = 1 } END { if (length(classes) < 2) print "degenerate"; else printf "%.9g\n", right / n }')
[ "$accuracy" != degenerate ] || fail "classification: the model predicts one class only (the test needs more)"
[ "$accuracy" = "$(dev_value classification accuracy)" ] ||
    fail "accuracy from the predictions TSV $accuracy, tp-finetune logged $(dev_value classification accuracy)"
tail -n +2 "$work/cls.tsv" | awk -F'\t' '{
    n = split($3, p, " "); sum = 0; best = 1
    for (i = 1; i <= n; i++) { sum += p[i]; if (p[i] > p[best]) best = i }
    if (n != 4 || sum < 1 - 1e-6 || sum > 1 + 1e-6 || best - 1 != $1) { print NR ": " $0; exit 1 } }' >"$work/bad_rows" ||
    fail "--output_prob: row $(cat "$work/bad_rows") does not sum to 1 or disagrees with the label"
for dir in "$work/classification/best" "$(ls -d "$work"/classification/best/step-*)"; do
    infer variant --checkpoint "$dir" --test_path "$work/classification_dev.tsv" --prediction_path "$work/variant.tsv" \
        --output_logits --output_prob
    cmp -s "$work/cls.tsv" "$work/variant.tsv" || fail "--checkpoint $dir gives other predictions"
done

# ---- multi-label, regression, tagging ----
for kind in multi_label regression tagging; do
    finetune "$kind" "$work/${kind}_train.tsv"
    infer "${kind}_infer" --checkpoint "$work/$kind" --test_path "$work/${kind}_dev.tsv" \
        --prediction_path "$work/$kind.tsv" $([ "$kind" = tagging ] || echo --output_logits)
    same_scores "$kind"
    [ "$(($(wc -l <"$work/$kind.tsv")))" -eq "$(($(wc -l <"$work/${kind}_dev.tsv")))" ] || fail "$kind: line count"
done
mse=$(paste <(tail -n +2 "$work/regression_dev.tsv" | cut -f1) <(tail -n +2 "$work/regression.tsv" | cut -f1) |
    awk -F'\t' '{ n++; s += ($2 - $1) ^ 2 } END { printf "%.9g\n", s / n }')
awk -v a="$mse" -v b="$(dev_value regression mse)" 'BEGIN { d = a - b; exit !(d * d <= 1e-12 * b * b) }' ||
    fail "regression: MSE from the predictions TSV $mse, tp-finetune logged $(dev_value regression mse)"
paste <(tail -n +2 "$work/tagging_dev.tsv" | cut -f2) <(tail -n +2 "$work/tagging.tsv") |
    awk -F'\t' '{ if (split($2, tags, " ") > split($1, words, " ")) { print NR; exit 1 } }' >"$work/bad_rows" ||
    fail "tagging: line $(cat "$work/bad_rows") has more tags than words"

# ---- bad input ----
expect() { # NAME FRAGMENT TP-INFER-OPTIONS...
    local name=$1 fragment=$2 status=0
    shift 2
    rm -f "$work/out.tsv"
    "$build/tp-infer" --prediction_path "$work/out.tsv" "$@" 2>"$work/bad.log" || status=$?
    [ "$status" -eq 1 ] || fail "$name: exit status $status"
    grep -qF -- "$fragment" "$work/bad.log" || fail "$name: expected '$fragment' in: $(cat "$work/bad.log")"
    [ ! -e "$work/out.tsv" ] || fail "$name: wrote predictions"
}
printf 'label\ttext_a\n7\tseven\n' >"$work/bad_label.tsv"
printf 'label\ttext_a\n1\tfine\n2\ttoo\tmany\n' >"$work/bad_columns.tsv"
mkdir "$work/no_config"
expect "missing checkpoint" "$work/nope: no checkpoint" --checkpoint "$work/nope" --test_path "$work/classification_dev.tsv"
expect "label outside the model's set" "bad_label.tsv: line 2: label '7'" --checkpoint "$work/classification" \
    --test_path "$work/bad_label.tsv"
expect "wrong column count" "bad_columns.tsv: line 3: expected 2 columns" --checkpoint "$work/classification" \
    --test_path "$work/bad_columns.tsv"
expect "model dir without config" "no_config/config.json: No such file or directory" --hf_model_dir "$work/no_config" \
    --test_path "$work/classification_dev.tsv"
expect "task key with a checkpoint" "key 'task': a checkpoint brings its own" --checkpoint "$work/classification" \
    --task regression --test_path "$work/classification_dev.tsv"
expect "no inputs" "key 'test_path': give either test_path or inputs_path" --checkpoint "$work/classification"
expect "prob for regression" "key 'output_prob': regression has no probabilities" --checkpoint "$work/regression" \
    --test_path "$work/regression_dev.tsv" --output_prob
echo "test_infer.sh: 1 passed, 0 failed"
