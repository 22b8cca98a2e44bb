#!/usr/bin/env bash
# tp-generate with encoder-decoder models (the random tiny fixtures of tests/fixtures/{t5_v1_1,bart}):
#   - --prompt_ids with num_beams 1 / 4 / 3 and the settings of tests/fixtures/seq2seq_generate.json
#     print exactly the ids transformers' generate produced (tests/reference/gen_seq2seq_generate.py),
#     with the caches and with kv_cache false (with TP_TEST_QUICK: greedy only); the ids come from
#     the model's generation_config.json;
#   - text sources from source_file (a char vocabulary written here) with output_path: one line per
#     source, the same tokens as the ids of the same source, eos not printed;
#   - sampling with beams is refused by name.
# Usage: tests/models/test_tp_generate_seq2seq.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: test_tp_generate_seq2seq.sh BUILD_DIR}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
generate="$build/tp-generate"
expected="$repo/tests/fixtures/seq2seq_generate.json"
work=$(mktemp -d /tmp/tp_test_generate_seq2seq.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$repo"

fail() {
    echo "test_tp_generate_seq2seq.sh: FAIL: $*" >&2
    exit 1
}

# case MODEL SCALE SETTING FIELD: the fixture's source 0 / output 0 of that case, space-separated.
case_field() {
    /usr/bin/python3 - "$expected" "$1" "$2" "$3" "$4" <<'PY'
import json, sys
path, model, scale, setting, field = sys.argv[1:]
for c in json.load(open(path))["cases"]:
    if c["model"] == model and c["eos_scale"] == float(scale) and c["setting"] == setting:
        print(" ".join(map(str, c[field][0])))
PY
}

check() {
    local model=$1 setting=$2
    shift 2
    local source want got
    source=$(case_field "$model" 1 "$setting" sources)
    want=$(case_field "$model" 1 "$setting" outputs)
    [ -n "$source" ] || fail "no case $model $setting in $expected"
    # TP_TEST_QUICK (the sanitizer run): the full recomputation only for greedy.
    local caches="true false"
    [ "${TP_TEST_QUICK:-0}" = 0 ] || [ "$setting" = greedy ] || caches=true
    for cache in $caches; do
        got=$("$generate" --hf_model_dir "tests/fixtures/$model" --prompt_ids "$source" --new_tokens 24 \
            --output_ids true --kv_cache "$cache" "$@" 2>"$work/err") || fail "$model $setting: $(cat "$work/err")"
        [ "$got" = "$want" ] || fail "$model $setting (kv_cache $cache): got '$got', transformers '$want'"
    done
}

check t5_v1_1 greedy
check t5_v1_1 beam --num_beams 4
check t5_v1_1 beam_early --num_beams 4 --early_stopping true --length_penalty 0.6 --no_repeat_ngram_size 2
check bart beam_never --num_beams 3 --early_stopping never --length_penalty 1.5 --repetition_penalty 1.3

# Text in, text out: a char vocabulary of the model's 96 ids (0 <pad>, 1 </s>, 2 [UNK], then characters).
{
    printf '<pad>\n</s>\n[UNK]\n'
    /usr/bin/python3 -c 'print("\n".join(chr(c) for c in range(ord("!"), ord("!") + 93)))'
} >"$work/vocab.txt"
printf 'hello\nworld peace\n' >"$work/sources.txt"
"$generate" --hf_model_dir tests/fixtures/t5_v1_1 --tokenizer char --vocab_path "$work/vocab.txt" \
    --source_file "$work/sources.txt" --output_path "$work/out.txt" --num_beams 4 --new_tokens 12 2>"$work/err" \
    || fail "source_file: $(cat "$work/err")"
[ "$(wc -l <"$work/out.txt")" = 2 ] || fail "source_file: $(wc -l <"$work/out.txt") lines, expected 2"
# "hello" is ids h e l l o (the char's line number - 1) then eos 1.
ids=$(/usr/bin/python3 -c 'print(" ".join(str(ord(c) - ord("!") + 3) for c in "hello") + " 1")')
"$generate" --hf_model_dir tests/fixtures/t5_v1_1 --prompt_ids "$ids" --num_beams 4 --new_tokens 12 \
    --output_ids true >"$work/ids.txt" 2>"$work/err" || fail "ids: $(cat "$work/err")"
want=$(/usr/bin/python3 - "$work/vocab.txt" "$work/ids.txt" <<'PY'
import sys
vocab = open(sys.argv[1]).read().split("\n")
ids = [int(i) for i in open(sys.argv[2]).read().split()]
print(" ".join(vocab[i] for i in ids if i > 2))
PY
)
[ "$(head -n 1 "$work/out.txt")" = "$want" ] || fail "source_file line 1 '$(head -n 1 "$work/out.txt")', expected '$want'"

# Refusals.
"$generate" --hf_model_dir tests/fixtures/t5 --prompt_ids "5 6" --num_beams 2 --do_sample true 2>"$work/err" \
    >/dev/null && fail "sampling with beams accepted"
grep -q "do_sample" "$work/err" || fail "sampling with beams: '$(cat "$work/err")'"
echo "test_tp_generate_seq2seq.sh: ok"
