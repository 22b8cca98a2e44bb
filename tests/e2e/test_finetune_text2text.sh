#!/usr/bin/env bash
# tp-finetune's text2text task end to end (docs/finetune.md gives the numbers):
#   - a real task from the English words of the corpus (scripts/make_text2text_task.sh): a word of
#     3-6 letters -> its letters reversed, space-separated ("debian" -> "n a i b e d"), with a
#     57-token WordPiece vocabulary; a tiny BART (models/bart/tiny_config.json, random init) learns
#     it in 2 epochs of 3418 words: on 100 dev words exact match >= 0.5 and corpus BLEU >= 50 must
#     beat the trivial baseline of spelling the word forwards (exact match 0.012, BLEU 10.2 on all
#     260 dev words, sacreBLEU 2.4.3) -- measured: exact match 0.88, BLEU 96.1;
#   - tp-infer with the best weights writes one generated text per line (prediction column label);
#   - a 2-epoch run with num_beams 2, killed after epoch 1 and resumed, logs the same losses and
#     scores as the run straight through;
#   - bad input: an empty label, a vocabulary without an end token: one error naming the file, exit 1.
# TP_TEST_QUICK=1 (sanitizer runs): a tenth of the data, no thresholds.
# Usage: tests/e2e/test_finetune_text2text.sh BUILD_DIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bash "$repo/scripts/make_text2text_task.sh" "$work/task" >/dev/null
head -n 101 "$work/task/dev.tsv" >"$work/dev.tsv"
cp "$work/task/train.tsv" "$work/train.tsv"
if [ "$quick" = 1 ]; then
    for file in train dev; do
        awk 'NR == 1 || NR % 10 == 0' "$work/$file.tsv" >"$work/$file.cut" && mv "$work/$file.cut" "$work/$file.tsv"
    done
fi
head -n 301 "$work/train.tsv" >"$work/small_train.tsv"
head -n 21 "$work/dev.tsv" >"$work/small_dev.tsv"
cat >"$work/run.json" <<JSON
{ "task": "text2text", "model": "$repo/models/bart/tiny_config.json", "vocab_path": "$work/task/vocab.txt",
  "train_path": "$work/train.tsv", "dev_path": "$work/dev.tsv", "test_path": "$work/dev.tsv",
  "epochs_num": 2, "batch_size": 32, "seq_length": 12, "tgt_seq_length": 12, "learning_rate": 1e-3,
  "report_steps": 50, "seed": 7, "threads": 1 }
JSON
value() { sed -E "s/.*\"$1\":([-0-9.e]+).*/\1/" <<<"$2"; }
at_least() { [ "$quick" = 1 ] || awk -v a="$2" -v b="$3" 'BEGIN { exit !(a >= b) }' || fail "$1 $2 < $3"; }

# ---- learning ----
"$build/tp-finetune" --config "$work/run.json" --output_dir "$work/out" 2>"$work/out.log" ||
    fail "training: $(tail -3 "$work/out.log")"
line=$(grep '"split":"dev"' "$work/out/metrics.jsonl" | tail -1)
echo "text2text: $line"
at_least "exact match" "$(value exact_match "$line")" 0.5
at_least "BLEU" "$(value bleu "$line")" 50
grep -q '"split":"test"' "$work/out/metrics.jsonl" || fail "no test evaluation"

# ---- tp-infer: the generated texts, scored as tp-finetune scores them ----
"$build/tp-infer" --checkpoint "$work/out" --test_path "$work/dev.tsv" --prediction_path "$work/pred.tsv" \
    --threads 1 2>"$work/infer.log" || fail "tp-infer: $(tail -3 "$work/infer.log")"
[ "$(head -1 "$work/pred.tsv")" = label ] || fail "prediction header: $(head -1 "$work/pred.tsv")"
[ "$(wc -l <"$work/pred.tsv")" = "$(wc -l <"$work/dev.tsv")" ] || fail "prediction count"
exact=$(paste <(tail -n +2 "$work/dev.tsv" | cut -f2) <(tail -n +2 "$work/pred.tsv") |
    awk -F'\t' '{ n++; c += $1 == $2 } END { print c / n }')
best=$(grep '"split":"test"' "$work/out/metrics.jsonl")
awk -v a="$exact" -v b="$(value exact_match "$best")" 'BEGIN { exit !(a - b < 1e-6 && b - a < 1e-6) }' ||
    fail "tp-infer exact match $exact != tp-finetune's $(value exact_match "$best")"

# ---- exact resume, with beam search ----
args=(--train_path "$work/small_train.tsv" --dev_path "$work/small_dev.tsv" --test_path "$work/small_dev.tsv"
    --num_beams 2 --batch_size 16)
"$build/tp-finetune" --config "$work/run.json" "${args[@]}" --output_dir "$work/straight" 2>"$work/straight.log" ||
    fail "beam run: $(tail -3 "$work/straight.log")"
"$build/tp-finetune" --config "$work/run.json" "${args[@]}" --output_dir "$work/killed" 2>"$work/killed.log" &
pid=$!
wait_until epoch_saved "$work/killed" || true
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
"$build/tp-finetune" --config "$work/run.json" "${args[@]}" --output_dir "$work/killed" --resume \
    2>"$work/resume.log" || fail "resume: $(tail -3 "$work/resume.log")"
diff <(losses "$work/straight/metrics.jsonl") <(losses "$work/killed/metrics.jsonl") >"$work/diff" ||
    fail "resumed run differs: $(head -4 "$work/diff")"

# ---- bad input ----
expect() { # NAME FRAGMENT [--KEY VALUE ...]
    local name=$1 fragment=$2 status=0
    shift 2
    "$build/tp-finetune" --config "$work/run.json" --output_dir "$work/bad" "$@" 2>"$work/bad.log" || status=$?
    [ "$status" -eq 1 ] || fail "$name: exit status $status"
    grep -qF -- "$fragment" "$work/bad.log" || fail "$name: expected '$fragment' in: $(cat "$work/bad.log")"
    [ ! -e "$work/bad" ] || fail "$name: left output behind"
}
printf 'text_a\tlabel\nword\td r o w\nempty\t\n' >"$work/bad.tsv"
expect "empty label" "bad.tsv: line 3: empty label" --dev_path "$work/bad.tsv"
grep -v '^\[SEP\]$' "$work/task/vocab.txt" >"$work/no_sep.txt"
expect "no end token" "no_sep.txt: text2text needs an end token (eos or [SEP]) in the vocabulary" \
    --vocab_path "$work/no_sep.txt"
echo "test_finetune_text2text.sh: 1 passed, 0 failed"
