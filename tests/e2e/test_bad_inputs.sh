#!/usr/bin/env bash
# Every bad input to tp-pretrain gets one clear error naming the file and the key
# (or offset), exit status 1, and leaves no output behind: no checkpoint, no metrics.
# (tp-preprocess's bad inputs are in test_preprocess.sh, the parsers' own in tests/unit.)
# Usage: tests/e2e/test_bad_inputs.sh BUILD_DIR   (ctest passes it)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
passed=0
failed=0

# A small valid setup every case starts from.
printf 'The cat sat on the mat.\nIt was warm there.\n\nDogs bark at night.\nThe moon was bright.\n\nA third document.\nWith two lines.\n' >"$work/corpus.txt"
"$build/tp-preprocess" --corpus_path "$work/corpus.txt" --vocab_path "$vocab" --dataset_path "$work/data.tpd" \
    --seq_length 32 --dup_factor 2 2>/dev/null
cp "$repo/models/bert/tiny_config.json" "$work/model.json"
write_run() {
    cat >"$work/run.json" <<JSON
{
  "model": "$work/model.json",
  "vocab_path": "$vocab",
  "dataset_path": "$work/data.tpd",
  "output_dir": "$work/out",
  "batch_size": 2,
  "seq_length": 32,
  "total_steps": 2,
  "save_checkpoint_steps": 1
}
JSON
}

# expect NAME EXPECTED_FRAGMENT [tp-pretrain options...]: runs, checks status, message, and no output.
expect() {
    local name=$1 fragment=$2
    shift 2
    local status=0
    "$build/tp-pretrain" --config "$work/run.json" "$@" >"$work/stdout" 2>"$work/stderr" || status=$?
    local lines
    lines=$(grep -c . "$work/stderr" || true)
    if [ "$status" -eq 0 ]; then
        echo "FAIL $name: exit status 0" >&2
        failed=$((failed + 1))
    elif ! grep -qF -- "$fragment" "$work/stderr"; then
        echo "FAIL $name: expected '$fragment' in: $(cat "$work/stderr")" >&2
        failed=$((failed + 1))
    elif [ "$lines" -gt 2 ]; then
        echo "FAIL $name: more than one error: $(cat "$work/stderr")" >&2
        failed=$((failed + 1))
    elif [ -n "${KEEP_OUTPUT:-}" ]; then
        passed=$((passed + 1))
    elif [ -e "$work/out/metrics.jsonl" ] || ls "$work/out/checkpoints" 2>/dev/null | grep -q .; then
        echo "FAIL $name: left output behind: $(ls -R "$work/out")" >&2
        failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
    rm -rf "$work/out"
    write_run
    cp "$repo/models/bert/tiny_config.json" "$work/model.json"
}

# edit FILE PYTHON-FREE-SED-EXPRESSION
edit() { sed -i "$2" "$1"; }

write_run
# -- run config --
echo '{"model": "x",' >"$work/run.json"
expect "run config: bad JSON" "run.json: line 2, column 1"
expect "run config: missing file" "nope.json: No such file or directory" --config "$work/nope.json"
edit "$work/run.json" 's/"batch_size": 2/"batch_size": "two"/'
expect "run config: wrong type" "run.json: key 'batch_size': expected an integer"
edit "$work/run.json" 's/"total_steps": 2/"totl_steps": 2/'
expect "run config: unknown key" "run.json: key 'totl_steps': unknown key (did you mean 'total_steps'?)"
expect "run config: out of range" "key 'learning_rate': value -1 out of range" --learning_rate -1
expect "run config: unknown scheduler" "key 'scheduler': unknown scheduler 'cosin'" --scheduler cosin
expect "run config: seq_length above max_seq_length" "key 'seq_length': 600 exceeds the model's max_seq_length 512" --seq_length 600
expect "run config: seq_length above the dataset's" "key 'seq_length': 64 exceeds the dataset's sequence length 32" --seq_length 64
expect "command line: option without value" "option '--batch_size' needs a value" --batch_size
# -- model config --
edit "$work/model.json" 's/"encoder": "transformer"/"encoder": "transfomer"/'
expect "model: unknown encoder" "model.json: key 'encoder': unknown encoder 'transfomer' (known: transformer)"
edit "$work/model.json" 's/"word", "pos", "seg"/"word", "position", "seg"/'
expect "model: unknown embedding" "model.json: key 'embedding': unknown embedding 'position' (known: word, pos, seg)"
edit "$work/model.json" 's/"mlm", "sp"/"mlm", "nsp"/'
expect "model: unknown target" "model.json: key 'target': unknown target 'nsp' (known: mlm, sp, cls, multi_label, regression, tagging)"
edit "$work/model.json" 's/"hidden_size": 128/"hidden_size": "128"/'
expect "model: wrong type" "model.json: key 'hidden_size': expected an integer"
edit "$work/model.json" 's/"heads_num": 2/"heads_num": 3/'
expect "model: heads do not divide hidden" "model.json: key 'heads_num': hidden_size 128 is not divisible by 3 heads"
edit "$work/model.json" 's/"hidden_act": "gelu"/"hidden_act": "gleu"/'
expect "model: unknown activation" "model.json: key 'hidden_act': unknown value 'gleu'"
edit "$work/model.json" 's/"tie_weights": true/"tie_weights": true, "tie_weight": true/'
expect "model: unknown key" "model.json: key 'tie_weight': unknown key"
edit "$work/model.json" '/"layers_num"/d'
expect "model: missing key" "model.json: key 'layers_num': missing"
edit "$work/model.json" 's/"word", "pos", "seg"/"word", "pos", "word"/'
expect "model: a module listed twice" "model.json: key 'embedding': 'word' is listed twice"
edit "$work/model.json" 's/"feedforward_size": 512/"feedforward_size": 1048576/; s/"layers_num": 2/"layers_num": 1000/'
expect "model: absurd size" "model.json: the model has"
edit "$work/model.json" '/"target"/d'
expect "model: no target" "model.json: key 'target': missing (pre-training needs at least one target"
expect "model: override of a wrong type" "key 'dropout': expected a number" --model.dropout high
# -- vocabulary and dataset --
expect "vocab: missing file" "missing_vocab.txt" --vocab_path "$work/missing_vocab.txt"
head -c "$(($(stat -c %s "$work/data.tpd") / 2))" "$work/data.tpd" >"$work/truncated.tpd"
expect "dataset: truncated" "truncated.tpd" --dataset_path "$work/truncated.tpd"
{ printf 'XXXXXXXX'; tail -c +9 "$work/data.tpd"; } >"$work/magic.tpd"
expect "dataset: wrong magic" "magic.tpd" --dataset_path "$work/magic.tpd"
head -n 1000 "$vocab" >"$work/small_vocab.txt"
expect "dataset: made with another vocabulary" "made with a vocabulary of 30522 tokens, but $work/small_vocab.txt has 1000" --vocab_path "$work/small_vocab.txt"
expect "dataset: missing file" "missing.tpd" --dataset_path "$work/missing.tpd"
expect "device: unknown" "run.json: key 'device': unknown value 'tpu' (expected one of: cpu, cuda)" --device tpu
expect "precision: bf16 on the CPU" "run.json: precision \"bf16\" needs device \"cuda\" (the CPU computes in fp32)" --precision bf16
expect "precision: unknown" "run.json: key 'precision': unknown value 'fp8'" --precision fp8
# With a GPU this case trains: it belongs to machines without one (CI).
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi >/dev/null 2>&1; then
    expect "device: cuda without a GPU" "run.json: device \"cuda\": no CUDA" --device cuda
fi
expect "tokenizer: unknown kind" "run.json: unknown tokenizer kind 'wordpeice'" --tokenizer wordpeice
expect "tokenizer: bpe without merges" "run.json: tokenizer 'bpe': needs vocab_path (vocab.json) and merges_path (merges.txt)" --tokenizer bpe
expect "tokenizer: sentencepiece without a model" "run.json: tokenizer 'sentencepiece': no model file given (spm_model_path)" --tokenizer sentencepiece
expect "tokenizer: hf without tokenizer.json" "run.json: tokenizer 'hf': no tokenizer.json given (tokenizer_json_path)" --tokenizer hf

# -- checkpoints on --resume: make a real one first --
"$build/tp-pretrain" --config "$work/run.json" 2>/dev/null
cp -r "$work/out" "$work/good_out"
checkpoint="$work/out/checkpoints/step-00000002"
resume_case() { # NAME FRAGMENT  (the checkpoint in $work/out was corrupted by the caller)
    KEEP_OUTPUT=1 expect "$1" "$2" --resume
    cp -r "$work/good_out" "$work/out"
}
cp -r "$work/good_out" "$work/out"
truncate -s 5000 "$checkpoint/model.safetensors"
resume_case "checkpoint: truncated weights" "model.safetensors"
printf '\xff\xff\xff\xff\xff\xff\x00\x00' | dd of="$checkpoint/model.safetensors" conv=notrunc status=none
resume_case "checkpoint: header length beyond the file" "model.safetensors"
echo '{"step": "two"}' >"$checkpoint/trainer_state.json"
resume_case "checkpoint: bad trainer state" "trainer_state.json"
KEEP_OUTPUT=1 expect "checkpoint: shapes do not match the model" "tensor 'encoder.transformer.0.feed_forward.linear_1.weight'" --resume --model.feedforward_size 256
cp -r "$work/good_out" "$work/out"
KEEP_OUTPUT=1 expect "checkpoint: another seed" "trained with seed 7, this run has seed 8" --resume --seed 8
cp -r "$work/good_out" "$work/out"
KEEP_OUTPUT=1 expect "fresh run over existing checkpoints" "pass --resume to continue it"

echo "test_bad_inputs.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
