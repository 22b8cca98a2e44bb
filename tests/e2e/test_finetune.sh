#!/usr/bin/env bash
# tp-finetune end to end on real labelled text (four fortune categories, scripts/make_fortunes_task.sh):
#   - all-MiniLM-L6-v2 (published weights, fetched by scripts/fetch_data.sh) fine-tuned for one
#     epoch on 600 training quotes reaches dev accuracy >= 0.70 (the bag-of-words naive Bayes
#     baseline on the full training set: 0.71 dev);
#   - a 2-epoch run stopped after epoch 1 (SIGKILL) and resumed logs the same losses and dev
#     scores as an uninterrupted run;
#   - bad TSV input gets one error naming the file and line, exit status 1, nothing written.
# Usage: tests/e2e/test_finetune.sh BUILD_DIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
minilm="$repo/data/models/all-MiniLM-L6-v2"
[ -f "$minilm/model.safetensors" ] || fail "$minilm is missing: run scripts/fetch_data.sh"
bash "$repo/scripts/make_fortunes_task.sh" "$work/task" >/dev/null
# Every third training quote (the file is ordered by class, so all four stay represented).
awk 'NR == 1 || (NR % 3 == 0 && ++kept <= 600)' "$work/task/train.tsv" >"$work/task/train_small.tsv"
cp "$work/task/train_small.tsv" "$work/task/train_minilm.tsv"
cp "$work/task/dev.tsv" "$work/task/dev_minilm.tsv"
if [ "$quick" = 1 ]; then
    awk 'NR == 1 || NR % 12 == 0' "$work/task/train_small.tsv" >"$work/task/train_minilm.tsv"
    awk 'NR == 1 || NR % 4 == 0' "$work/task/dev.tsv" >"$work/task/dev_minilm.tsv"
fi

# ---- MiniLM reaches the stated accuracy (quick: 50 quotes, a quarter of dev, no threshold) ----
cat >"$work/minilm.json" <<JSON
{ "hf_model_dir": "$minilm", "train_path": "$work/task/train_minilm.tsv", "dev_path": "$work/task/dev_minilm.tsv",
  "output_dir": "$work/minilm", "pooling": "mean", "epochs_num": 1, "batch_size": 16, "seq_length": 48,
  "learning_rate": 1e-4, "report_steps": 10 }
JSON
"$build/tp-finetune" --config "$work/minilm.json" 2>"$work/minilm.log" || fail "MiniLM run: $(tail -3 "$work/minilm.log")"
accuracy=$(grep '"split":"dev"' "$work/minilm/metrics.jsonl" | tail -1 | sed -E 's/.*"accuracy":([0-9.e-]+).*/\1/')
[ "$quick" = 1 ] || awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.70) }' || fail "MiniLM dev accuracy $accuracy < 0.70"
[ -f "$work/minilm/best/latest" ] || fail "no best-on-dev weights saved"

# ---- resume between epochs equals the uninterrupted run (tiny BERT from scratch: fast) ----
cat >"$work/tiny.json" <<JSON
{ "model": "$repo/models/bert/tiny_config.json", "vocab_path": "$vocab",
  "train_path": "$work/task/train_small.tsv", "dev_path": "$work/task/dev.tsv", "test_path": "$work/task/test.tsv",
  "epochs_num": 2, "batch_size": 32, "seq_length": 32, "learning_rate": 1e-3, "report_steps": 5 }
JSON
"$build/tp-finetune" --config "$work/tiny.json" --output_dir "$work/full" 2>"$work/full.log" || fail "tiny run: $(tail -3 "$work/full.log")"
grep -q '"split":"test"' "$work/full/metrics.jsonl" || fail "no test evaluation"
"$build/tp-finetune" --config "$work/tiny.json" --output_dir "$work/killed" 2>"$work/killed.log" &
pid=$!
wait_until epoch_saved "$work/killed" || true
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
"$build/tp-finetune" --config "$work/tiny.json" --output_dir "$work/killed" --resume 2>"$work/resume.log" ||
    fail "resume: $(tail -3 "$work/resume.log")"
diff <(losses "$work/full/metrics.jsonl") <(losses "$work/killed/metrics.jsonl") >"$work/diff" ||
    fail "resumed run differs: $(head -4 "$work/diff")"

# ---- bad TSV input ----
expect() { # NAME FILE-CONTENT FRAGMENT: the file replaces dev.tsv
    printf "$2" >"$work/bad.tsv"
    local status=0
    "$build/tp-finetune" --config "$work/tiny.json" --output_dir "$work/bad" --dev_path "$work/bad.tsv" \
        2>"$work/bad.log" || status=$?
    [ "$status" -eq 1 ] || fail "$1: exit status $status"
    grep -qF -- "$3" "$work/bad.log" || fail "$1: expected '$3' in: $(cat "$work/bad.log")"
    [ ! -e "$work/bad" ] || fail "$1: left output behind"
}
expect "wrong column count" 'label\ttext_a\n1\tfine\n2\ttoo\tmany\n' "bad.tsv: line 3: expected 2 columns"
expect "label outside the label set" 'label\ttext_a\n7\tseven\n' "bad.tsv: line 2: label '7'"
expect "non-numeric label" 'label\ttext_a\nabc\ttext\n' "bad.tsv: line 2"
expect "empty text" 'label\ttext_a\n1\t\n' "bad.tsv: line 2: empty text_a"
expect "invalid UTF-8" 'label\ttext_a\n1\tbad \xff byte\n' "bad.tsv: line 2: invalid UTF-8"
echo "test_finetune.sh: 1 passed, 0 failed"
