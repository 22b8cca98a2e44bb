#!/usr/bin/env bash
# A tiny GPT-2 pre-trained by tp-pretrain on real text (the Python documentation corpus) with
# GPT-2's own tokenizer and vocabulary (data/vocab/gpt2):
#   - tp-preprocess --data_processor lm makes the training windows from the corpus's first 400 KB
#     and validation windows from 100 KB it never sees (its last lines);
#   - 200 steps of models/gpt2/tiny_config.json (2 layers, hidden 64, 3.3 M parameters, 2.6 M
#     of them the tied 50257-row embedding) bring the validation perplexity, measured by
#     tp-generate --eval_dataset, below 1500 (uniform guessing: 50257): measured 1100 (200 steps of 8 x 32 tokens);
#   - the trained checkpoint converts to a Hugging Face GPT-2 directory (tp-convert --to-hf), which
#     tp-generate reads back and, greedy, continues a prompt identically with and without the
#     key/value cache.
# TP_TEST_QUICK=1 (sanitizer runs): 10 steps on less data, no perplexity threshold.
# Usage: tests/e2e/test_gpt2_pretrain.sh BUILD_DIR   (ctest passes it)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
gpt2="$repo/data/vocab/gpt2"
[ -f "$gpt2/vocab.json" ] && [ -f "$gpt2/merges.txt" ] || fail "data missing: run scripts/fetch_data.sh"
tokenizer=(--tokenizer bpe --vocab_path "$gpt2/vocab.json" --merges_path "$gpt2/merges.txt")

train_bytes=200000 steps=200 threshold=1500
[ "$quick" = 1 ] && train_bytes=30000 steps=5
head -c "$train_bytes" "$corpus" | sed '$d' >"$work/train.txt" # whole lines only
tail -c 50000 "$corpus" | sed '1d' >"$work/valid.txt"
for split in train valid; do
    "$build/tp-preprocess" --corpus_path "$work/$split.txt" "${tokenizer[@]}" --data_processor lm --seq_length 32 \
        --full_sentences --dataset_path "$work/$split.tpd" 2>"$work/$split.log" ||
        fail "tp-preprocess $split: $(tail -2 "$work/$split.log")"
done

"$build/tp-pretrain" --config "$repo/configs/gpt2_tiny.json" --dataset_path "$work/train.tpd" \
    --output_dir "$work/run" --total_steps "$steps" --save_checkpoint_steps 0 --report_steps 10 \
    --batch_size 8 --seq_length 32 \
    --vocab_path "$gpt2/vocab.json" --merges_path "$gpt2/merges.txt" 2>"$work/train.log" ||
    fail "tp-pretrain: $(tail -3 "$work/train.log")"
checkpoint=$(ls -d "$work"/run/checkpoints/step-* | tail -1)

perplexity() { # MODEL_CONFIG WEIGHTS
    "$build/tp-generate" --model "$1" --pretrained_model_path "$2" --eval_dataset "$work/valid.tpd" \
        --batch_size 16 | sed -E 's/.*perplexity ([0-9.]+).*/\1/'
}
trained=$(perplexity "$repo/models/gpt2/tiny_config.json" "$checkpoint/model.safetensors") ||
    fail "tp-generate --eval_dataset failed"
echo "validation perplexity after $steps steps: $trained" >&2
if [ "$quick" != 1 ]; then
    awk -v p="$trained" -v t="$threshold" 'BEGIN { exit !(p < t) }' ||
        fail "validation perplexity $trained is not below $threshold"
fi

# ---- the trained model as a Hugging Face GPT-2, generating with and without the cache ----
"$build/tp-convert" --to-hf --model "$repo/models/gpt2/tiny_config.json" --weights "$checkpoint/model.safetensors" \
    --vocab "$gpt2/vocab.json" --vocab "$gpt2/merges.txt" --to "$work/hf" 2>"$work/convert.log" ||
    fail "tp-convert --to-hf: $(tail -2 "$work/convert.log")"
grep -Eq '"model_type":[[:space:]]*"gpt2"' "$work/hf/config.json" || fail "config.json is not GPT-2's"
generate() {
    "$build/tp-generate" --hf_model_dir "$work/hf" "${tokenizer[@]}" --prompt "The Python documentation" \
        --new_tokens 20 "$@" 2>>"$work/generate.log"
}
with_cache=$(generate) || fail "tp-generate: $(tail -2 "$work/generate.log")"
without=$(generate --kv_cache false) || fail "tp-generate --kv_cache false: $(tail -2 "$work/generate.log")"
echo "greedy continuation: $with_cache" >&2
[ -n "$with_cache" ] && [ "$with_cache" = "$without" ] || fail "cache and recomputation differ: '$with_cache' / '$without'"
echo "$test_name.sh: ok"
