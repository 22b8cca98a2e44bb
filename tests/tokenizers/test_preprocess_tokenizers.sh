#!/bin/bash
# tp-preprocess with each tokenizer kind: the hf kind on BERT's published tokenizer.json makes the
# same dataset, byte for byte, as the bert kind on its vocab.txt; char and space run; tokenizers
# without [CLS] [SEP] [MASK] [PAD] (GPT-2's BPE, a T5-style Unigram) are refused with a message
# naming what is missing; a kind without its files is a usage error.
source "$(dirname "$0")/../e2e/common.sh"
tp="$build/tp-preprocess"
gpt2="$repo/data/vocab/gpt2"
minilm="$repo/data/models/all-MiniLM-L6-v2/tokenizer.json"
unigram="$repo/data/tokenizers/unigram/tokenizer.json"
[ -f "$gpt2/merges.txt" ] && [ -f "$unigram" ] || fail "data missing: run scripts/fetch_data.sh"
awk 'BEGIN { docs = 0 } /^$/ { if (++docs == 40) exit } { print }' "$corpus" >"$work/corpus.txt"
common=(--corpus_path "$work/corpus.txt" --seq_length 64 --dup_factor 2 --seed 3)

"$tp" "${common[@]}" --vocab_path "$vocab" --dataset_path "$work/bert.tpd" 2>/dev/null || fail "bert kind failed"
"$tp" "${common[@]}" --tokenizer hf --tokenizer_json_path "$minilm" --dataset_path "$work/hf.tpd" \
    2>"$work/stderr" || fail "hf kind failed: $(cat "$work/stderr")"
cmp -s "$work/bert.tpd" "$work/hf.tpd" || fail "the hf kind's dataset differs from the bert kind's"
for kind in char space; do
    "$tp" "${common[@]}" --processor mlm --tokenizer $kind --vocab_path "$vocab" --dataset_path "$work/$kind.tpd" \
        2>"$work/stderr" || fail "$kind kind failed: $(cat "$work/stderr")"
    [ -s "$work/$kind.tpd" ] || fail "$kind kind wrote no dataset"
done

# expect STATUS MESSAGE ARGS...: tp-preprocess ARGS exits with STATUS, MESSAGE on stderr, no dataset.
expect() {
    local status=$1 message=$2
    shift 2
    local actual=0
    "$tp" "${common[@]}" --dataset_path "$work/refused.tpd" "$@" 2>"$work/stderr" || actual=$?
    [ "$actual" = "$status" ] || fail "tp-preprocess $*: exit $actual, expected $status ($(cat "$work/stderr"))"
    grep -qF -- "$message" "$work/stderr" || fail "tp-preprocess $*: expected \"$message\", got: $(cat "$work/stderr")"
    [ ! -e "$work/refused.tpd" ] || fail "tp-preprocess $*: wrote a dataset"
}
expect 1 "vocab.json: the vocabulary lacks [CLS] (needed by the bert processor); it lacks [SEP] [MASK] [PAD]" \
    --tokenizer bpe --vocab_path "$gpt2/vocab.json" --merges_path "$gpt2/merges.txt"
expect 1 "tokenizer.json: the vocabulary lacks [MASK] (needed by the mlm processor); tokenizer 'hf' suits" \
    --processor mlm --tokenizer hf --tokenizer_json_path "$unigram"
expect 2 "--tokenizer gpt2 needs --merges_path" --tokenizer gpt2 --vocab_path "$gpt2/vocab.json"
expect 2 "--tokenizer sentencepiece needs --spm_model_path" --tokenizer sentencepiece
expect 2 "--tokenizer hf needs --tokenizer_json_path" --tokenizer hf --vocab_path "$vocab"
expect 2 "--vocab_path is required with --tokenizer char" --tokenizer char
expect 1 "/nonexistent/tokenizer.json" --tokenizer hf --tokenizer_json_path /nonexistent/tokenizer.json
echo "$test_name: 2 datasets compared, 2 kinds run, 7 refusals checked"
