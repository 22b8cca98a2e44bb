#!/usr/bin/env bash
# Bad inputs to every program (tp-preprocess, tp-pretrain, tp-finetune, tp-infer, tp-convert,
# tp-select): malformed configs, unknown module names, wrong shapes, missing files, truncated
# checkpoints, corrupt datasets, hostile safetensors, broken vocabularies, absurd sizes.
# Each case runs one program on one bad input and asserts
#   - the exact exit status (1: bad input; 2: bad usage, for the programs that tell them apart),
#   - the exact error line, and that it is the only one,
#   - that nothing was written: no output file or directory (or, for a failed --resume, the
#     output directory exactly as it was), no temporary file left anywhere.
# The hostile files are made here, byte by byte, next to the case that reads them.
# Usage: tests/bad_inputs/test_bad_inputs.sh BUILD_DIR   (ctest passes it)
#        TP_BAD_INPUTS_SHOW=1 tests/bad_inputs/test_bad_inputs.sh BUILD_DIR
#            prints every case's exit status and error line instead (to write new cases).
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/common.sh"
source "$repo/tests/e2e/tiny_inputs.sh"
show=${TP_BAD_INPUTS_SHOW:-0}
cases=0
failed=0
build=$(cd "$build" && pwd)
cd "$work"

# ---- the harness ---------------------------------------------------------------------------------

# matches TEXT PATTERN: PATTERN is TEXT's exact expected value, where '<any>' stands for any text
# (sizes that depend on the machine).
matches() {
    local glob="" rest=$2 piece
    while [[ $rest == *'<any>'* ]]; do
        piece=${rest%%'<any>'*}
        glob+=$(printf '%s' "$piece" | sed 's/[][*?\\]/\\&/g')'*'
        rest=${rest#*'<any>'}
    done
    glob+=$(printf '%s' "$rest" | sed 's/[][*?\\]/\\&/g')
    # shellcheck disable=SC2053 # the right side is a pattern on purpose
    [[ $1 == $glob ]]
}

case_failed() {
    echo "FAIL $1: $2" >&2
    failed=$((failed + 1))
}

# expect NAME STATUS LINE PROGRAM [ARGS...]: runs $build/PROGRAM in $work.  Outputs go to 'out';
# when 'out' exists before the case (a checkpoint to resume), it must be left exactly as it was.
expect() {
    local name=$1 want_status=$2 want_line=$3 program=$4
    shift 4
    cases=$((cases + 1))
    [ -e out ] && cp -a out out.before
    local status=0
    "$build/$program" "$@" >stdout 2>stderr </dev/null || status=$?
    local line errors
    line=$(grep -m1 -E "^($program|tp): error: " stderr || grep -m1 "^$program: " stderr || true)
    errors=$(grep -c -E ": error: " stderr || true)
    if [ "$show" = 1 ]; then
        printf '%-50s %s  %s\n' "$name" "$status" "$line"
    elif [ "$status" != "$want_status" ]; then
        case_failed "$name" "exit status $status, expected $want_status; stderr: $(tail -3 stderr)"
    elif ! matches "$line" "$want_line"; then
        case_failed "$name" "expected the error line
    $want_line
got
    $line"
    elif [ "$errors" -gt 1 ]; then
        case_failed "$name" "$errors error lines: $(cat stderr)"
    elif [ -e out.before ] && ! diff -r out.before out >/dev/null 2>&1; then
        case_failed "$name" "changed the output directory: $(diff -r out.before out 2>&1 | head -3)"
    elif [ ! -e out.before ] && [ -e out ]; then
        case_failed "$name" "left output behind: $(ls -R out | head -5)"
    elif find . -name '*.tmp.*' | grep -q .; then
        case_failed "$name" "left a temporary file: $(find . -name '*.tmp.*' | head -3)"
    fi
    rm -rf out out.before stdout stderr
}

# le BYTES VALUE: VALUE as a BYTES-byte little-endian integer.
le() {
    local value=$2 i
    for ((i = 0; i < $1; i++)); do
        printf "\\x$(printf %02x $((value & 255)))"
        value=$((value >> 8))
    done
}

# safetensors FILE HEADER [DATA_BYTES]: the 8-byte header length, HEADER, DATA_BYTES zero bytes.
safetensors() {
    { le 8 "${#2}" && printf '%s' "$2" && head -c "${3:-0}" /dev/zero; } >"$1"
}

# patch FILE OFFSET BYTES VALUE: overwrites BYTES bytes at OFFSET with VALUE (little-endian).
patch() {
    le "$3" "$4" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# variant SOURCE TARGET SED_SCRIPT: TARGET is SOURCE edited.
variant() {
    sed "$3" "$1" >"$2"
}

# ---- valid inputs every case starts from ---------------------------------------------------------

tiny_pretraining_inputs
"$build/tp-preprocess" --corpus_path corpus.txt --vocab_path vocab.txt --dataset_path mlm.tpd --seq_length 16 \
    --data_processor mlm --dup_factor 1 2>/dev/null || fail "tp-preprocess --data_processor mlm failed"
cp "$repo/models/bert/tiny_config.json" model.json
cat >run.json <<'JSON'
{
  "model": "model.json",
  "vocab_path": "vocab.txt",
  "dataset_path": "data.tpd",
  "output_dir": "out",
  "batch_size": 2,
  "seq_length": 16,
  "total_steps": 2,
  "save_checkpoint_steps": 1,
  "threads": 1
}
JSON
"$build/tp-pretrain" --config run.json --output_dir pretrained 2>/dev/null || fail "tp-pretrain on the valid inputs failed"
checkpoint=out/checkpoints/step-00000002
# resume_from_broken_checkpoint: 'out' holds the finished run, to be broken by the case.
resume_from_broken_checkpoint() { cp -r pretrained out; }

tiny_classifier_inputs
cp train.tsv dev.tsv
cat >finetune.json <<'JSON'
{ "hf_model_dir": "hf", "train_path": "train.tsv", "dev_path": "dev.tsv", "output_dir": "out",
  "epochs_num": 1, "batch_size": 2, "seq_length": 16, "threads": 1 }
JSON
"$build/tp-finetune" --config finetune.json --output_dir finetuned 2>/dev/null || fail "tp-finetune on the valid inputs failed"
cp -r "$repo/tests/fixtures/select/synthetic" zoo

# hf_with FILE: a copy of the HF classifier in hf_bad/ whose FILE the case then replaces.
hf_with() {
    rm -rf hf_bad
    cp -r hf hf_bad
    rm -f "hf_bad/$1"
}

# ==== tp-preprocess ===============================================================================
pp() { expect "tp-preprocess: $1" "$2" "tp-preprocess: error: $3" tp-preprocess --dataset_path out "${@:4}"; }
bad="$repo/tests/bad_inputs/preprocess"
cp "$bad"/*.txt .
pp "corpus: missing" 1 "nowhere.txt: No such file or directory" --corpus_path nowhere.txt --vocab_path vocab.txt
pp "corpus: empty" 1 "empty.txt: empty corpus (0 bytes)" --corpus_path empty.txt --vocab_path vocab.txt
pp "corpus: a directory" 1 "zoo: Is a directory" --corpus_path zoo --vocab_path vocab.txt
pp "corpus: one document for bert" 1 \
    "one_document.txt: the bert processor needs documents separated by blank lines; found 1 document" \
    --corpus_path one_document.txt --vocab_path vocab.txt
pp "corpus: only blank lines" 1 "blank_lines.txt: no tokens: all 4 lines are blank or tokenize to nothing" \
    --corpus_path blank_lines.txt --vocab_path vocab.txt --data_processor mlm
pp "corpus: invalid UTF-8" 1 "invalid_utf8.txt: line 3: invalid UTF-8 at byte 8 of the line" \
    --corpus_path invalid_utf8.txt --vocab_path vocab.txt
pp "vocab: missing" 1 "nowhere.txt: No such file or directory" --corpus_path corpus.txt --vocab_path nowhere.txt
vit_config="$repo/models/vit/fashion_mnist_config.json"
pp "vit: no --config_path" 2 "--data_processor vit needs --config_path (the model config) (see --help)" \
    --corpus_path corpus.txt --data_processor vit
{ printf 'TPIMAGES' && head -c 42 /dev/zero; } >cut.tpimg
pp "vit: pre-decoded file cut in its header" 1 "cut.tpimg: pre-decoded image file ends at byte 50, its header needs 128" \
    --corpus_path cut.tpimg --data_processor vit --config_path "$vit_config"
printf 'label\tpath\ncat\tx.png\n' >images.tsv
pp "vit: image list with a bad label" 1 "images.tsv: line 2: label 'cat' is not a class id (0, 1, ...)" \
    --corpus_path images.tsv --data_processor vit --config_path "$vit_config"
clip_config="$repo/models/clip/tiny_config.json"
pp "clip: no --config_path" 2 "--data_processor clip needs --config_path (the model config) (see --help)" \
    --corpus_path corpus.txt --vocab_path vocab.txt --data_processor clip
printf 'text\tpath\na cat %s\n' "$repo/tests/fixtures/media/gray.jpg" >tabless.tsv
pp "clip: a line without a tab" 1 "tabless.tsv: line 2: expected 2 tab-separated columns (text, path)" \
    --corpus_path tabless.tsv --vocab_path vocab.txt --data_processor clip --config_path "$clip_config"
printf 'text\tpath\na cat\t%s\nthe mat\tnowhere.png\n' "$repo/tests/fixtures/media/gray.jpg" >pairs.tsv
pp "clip: a missing image" 1 "pairs.tsv: line 3: nowhere.png: No such file or directory" \
    --corpus_path pairs.tsv --vocab_path vocab.txt --data_processor clip --config_path "$clip_config"
pp "clip: a model config without a vision stream" 1 \
    "$vit_config: key 'stream_1': missing or not an object (a two-stream model needs stream_0 and stream_1)" \
    --corpus_path pairs.tsv --vocab_path vocab.txt --data_processor clip --config_path "$vit_config"
pp "vocab: without [MASK]" 1 "vocab_without_mask.txt: the vocabulary lacks [MASK] (needed by the bert processor)" \
    --corpus_path corpus.txt --vocab_path vocab_without_mask.txt
: >empty_vocab.txt
pp "vocab: empty" 1 "empty_vocab.txt: empty vocabulary" --corpus_path corpus.txt --vocab_path empty_vocab.txt
{ cat vocab.txt && printf 'c\xe4t\n'; } >utf8_vocab.txt
pp "vocab: invalid UTF-8" 1 "utf8_vocab.txt: line 17: invalid UTF-8 in token at byte 1" \
    --corpus_path corpus.txt --vocab_path utf8_vocab.txt
{ cat vocab.txt && echo cat; } >duplicate_vocab.txt
pp "vocab: duplicate token" 1 "duplicate_vocab.txt: line 17: duplicate token 'cat' (first at line 7)" \
    --corpus_path corpus.txt --vocab_path duplicate_vocab.txt
variant vocab.txt blank_vocab.txt '7s/.*//'
pp "vocab: empty line" 1 "blank_vocab.txt: line 7: empty token" --corpus_path corpus.txt --vocab_path blank_vocab.txt
echo '{"the": 0,' >vocab.json
: >merges.txt
pp "bpe: vocab.json not JSON" 1 "vocab.json: line 2, column 1: invalid JSON" --corpus_path corpus.txt --tokenizer bpe \
    --vocab_path vocab.json --merges_path merges.txt
echo '{"the": 0, "cat": 0}' >vocab.json
printf '#version: 0.2\nt h e\n' >merges.txt
pp "bpe: two tokens with one id" 1 "vocab.json: key '(top level)': id 0 is given to both 'the' and 'cat'" \
    --corpus_path corpus.txt --tokenizer bpe --vocab_path vocab.json --merges_path merges.txt
echo '{"the": 0, "cat": 1}' >vocab.json
pp "bpe: merges line of three tokens" 1 "merges.txt: line 2: expected two tokens separated by one space, found 3 fields" \
    --corpus_path corpus.txt --tokenizer bpe --vocab_path vocab.json --merges_path merges.txt
echo '{"version": "1.0", "model": {"type": "WordPiece", "vocab": {"[UNK]": 7}}}' >tokenizer.json
pp "hf: tokenizer.json id beyond its vocabulary" 1 \
    "tokenizer.json: key 'model.vocab': id 7 is out of range: 1 tokens have ids 0 to 0" --corpus_path corpus.txt --tokenizer hf \
    --tokenizer_json_path tokenizer.json
printf 'not a sentencepiece model' >garbage.model
pp "sentencepiece: not a model" 1 "garbage.model: not a SentencePiece model: <any>" --corpus_path corpus.txt --tokenizer sentencepiece \
    --spm_model_path garbage.model
cp "$repo/tests/fuzz/corpus/spm/regression_empty_trie_59a9447b.model" empty_trie.model
pp "sentencepiece: a character map with an empty trie" 1 \
    "empty_trie.model: normalizer_spec.precompiled_charsmap (byte 225): the trie is empty" --corpus_path corpus.txt \
    --tokenizer sentencepiece --spm_model_path empty_trie.model
pp "output: directory missing" 1 "nowhere/data.tpd: No such file or directory" --corpus_path corpus.txt \
    --vocab_path vocab.txt --dataset_path nowhere/data.tpd
pp "option: unknown processor" 2 "--processor: 'gpt' is not one of bert|mlm|lm|vit|clip|vilt|t5|bart|mt|prefixlm (see --help)" --corpus_path corpus.txt \
    --vocab_path vocab.txt --processor gpt
pp "option: seq_length not a number" 2 "--seq_length: 'abc' is not an integer (see --help)" --corpus_path corpus.txt \
    --vocab_path vocab.txt --seq_length abc
pp "option: seq_length too short for bert" 1 "seq_length 4 outside [5, 65535] for the bert processor" \
    --corpus_path corpus.txt --vocab_path vocab.txt --seq_length 4
pp "option: absurd seq_length" 2 "--seq_length: 1000000000 is out of range (see --help)" \
    --corpus_path corpus.txt --vocab_path vocab.txt --seq_length 1000000000
pp "option: short_seq_prob above 1" 2 "--short_seq_prob: 1.5 is out of range (see --help)" --corpus_path corpus.txt \
    --vocab_path vocab.txt --short_seq_prob 1.5
pp "option: dup_factor 0" 2 "--dup_factor: 0 is out of range (see --help)" --corpus_path corpus.txt --vocab_path vocab.txt --dup_factor 0
pp "option: unknown" 2 "unknown option '--whole_word_masking' (see --help)" --corpus_path corpus.txt \
    --vocab_path vocab.txt --whole_word_masking
pp "option: corpus_path missing" 2 "--corpus_path is required (see --help)" --vocab_path vocab.txt
# -- encoder-decoder and prefix-LM processors (core/preprocess_seq2seq.h) --
pp "t5: vocabulary without sentinels" 1 "vocab.txt: the vocabulary lacks the sentinel <extra_id_0> (needed by the t5 \
processor: add <extra_id_0>, <extra_id_1>, ... lines to a vocab.txt, docs/data.md)" --corpus_path corpus.txt \
    --vocab_path vocab.txt --data_processor t5
pp "bart: vocabulary without [MASK]" 1 "vocab_without_mask.txt: the vocabulary lacks [MASK] (needed by the bart processor)" \
    --corpus_path corpus.txt --vocab_path vocab_without_mask.txt --data_processor bart
pp "mt: line without a tab" 1 "corpus.txt: line 1: no tab: the mt processor reads source<TAB>target lines" \
    --corpus_path corpus.txt --vocab_path vocab.txt --data_processor mt
pp "prefixlm: seq_length too short" 1 "seq_length 2 outside [3, 65535] for the prefixlm processor" \
    --corpus_path corpus.txt --vocab_path vocab.txt --data_processor prefixlm --seq_length 2
pp "t5: span_geo_prob 0" 2 "--span_geo_prob: 0 is out of range (see --help)" --corpus_path corpus.txt \
    --vocab_path vocab.txt --data_processor t5 --span_masking --span_geo_prob 0

# ==== tp-pretrain =================================================================================
pt() { expect "tp-pretrain: $1" "$2" "tp-pretrain: error: $3" tp-pretrain --config "${@:4}"; }
# -- run config --
echo '{"model": "model.json",' >broken.json
pt "run config: not JSON" 1 "broken.json: line 2, column 1: unexpected end of file" broken.json
pt "run config: missing" 1 "nowhere.json: No such file or directory" nowhere.json
expect "tp-pretrain: run config: not given" 2 "tp-pretrain: error: --config is required" tp-pretrain
pt "run config: wrong type" 1 "run.json: key 'batch_size': expected an integer, got a string (\"two\")" run.json \
    --batch_size two
variant run.json typo.json 's/"total_steps"/"totl_steps"/'
pt "run config: unknown key" 1 "typo.json: key 'totl_steps': unknown key (did you mean 'total_steps'?)" typo.json
variant run.json no_dataset.json '/"dataset_path"/d'
pt "run config: dataset_path missing" 1 "no_dataset.json: key 'dataset_path': missing" no_dataset.json
pt "run config: out of range" 1 "run.json: key 'learning_rate': value -1 out of range [0, 10]" run.json --learning_rate -1
pt "run config: absurd batch_size" 1 "run.json: key 'batch_size': value 1000000000000 out of range [1, 1048576]" run.json \
    --batch_size 1e12
pt "run config: unknown scheduler" 1 "run.json: key 'scheduler': unknown scheduler 'cosin' (expected one of: <any>)" run.json \
    --scheduler cosin
pt "run config: seq_length above max_seq_length" 1 \
    "run.json: key 'seq_length': 600 exceeds the model's max_seq_length 512" run.json --seq_length 600
pt "run config: seq_length above the dataset's" 1 \
    "run.json: key 'seq_length': 32 exceeds the dataset's sequence length 16" run.json --seq_length 32
pt "command line: option without a value" 2 "command line: option '--batch_size' needs a value" run.json --batch_size
pt "device: unknown" 1 "run.json: key 'device': unknown value 'tpu' (expected one of: cpu, cuda)" run.json --device tpu
pt "precision: bf16 on the CPU" 1 "run.json: precision \"bf16\" needs device \"cuda\" (the CPU computes in fp32)" \
    run.json --precision bf16
pt "precision: unknown" 1 "run.json: key 'precision': unknown value 'fp8' (expected one of: fp32, tf32, bf16)" \
    run.json --precision fp8
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi >/dev/null 2>&1; then # with a GPU this case trains
    pt "device: cuda without a GPU" 1 "run.json: device \"cuda\": no CUDA<any>" run.json --device cuda
fi
pt "tokenizer: unknown kind" 1 "run.json: unknown tokenizer kind 'wordpeice' (known: <any>)" run.json --tokenizer wordpeice
pt "tokenizer: bpe without merges" 1 \
    "run.json: tokenizer 'bpe': needs vocab_path (vocab.json) and merges_path (merges.txt)" run.json --tokenizer bpe
pt "tokenizer: sentencepiece without a model" 1 \
    "run.json: tokenizer 'sentencepiece': no model file given (spm_model_path)" run.json --tokenizer sentencepiece
pt "tokenizer: hf without tokenizer.json" 1 "run.json: tokenizer 'hf': no tokenizer.json given (tokenizer_json_path)" \
    run.json --tokenizer hf
pt "vocab: duplicate token" 1 "run.json: duplicate_vocab.txt: line 17: duplicate token 'cat' (first at line 7)" \
    run.json --vocab_path duplicate_vocab.txt
# -- model config --
model_case() { # NAME LINE SED_SCRIPT: model.json edited into bad_model.json
    variant model.json bad_model.json "$3"
    pt "model: $1" 1 "bad_model.json: $2" run.json --model bad_model.json
}
model_case "unknown encoder" "key 'encoder': unknown encoder 'transfomer' (known: <any>)" \
    's/"encoder": "transformer"/"encoder": "transfomer"/'
model_case "unknown embedding" "key 'embedding': unknown embedding 'position' (known: <any>)" \
    's/"word", "pos", "seg"/"word", "position", "seg"/'
model_case "unknown target" "key 'target': unknown target 'nsp' (known: <any>)" 's/"mlm", "sp"/"mlm", "nsp"/'
model_case "unknown mask" "key 'mask': unknown value 'visible' (expected one of: <any>)" 's/"fully_visible"/"visible"/'
model_case "wrong type" "key 'hidden_size': expected an integer, got a string (\"128\")" \
    's/"hidden_size": 128/"hidden_size": "128"/'
model_case "heads do not divide hidden_size" "key 'heads_num': hidden_size 128 is not divisible by 3 heads" \
    's/"heads_num": 2/"heads_num": 3/'
model_case "unknown activation" "key 'hidden_act': unknown value 'gleu' (expected one of: <any>)" \
    's/"hidden_act": "gelu"/"hidden_act": "gleu"/'
model_case "unknown key" "key 'tie_weight': unknown key (did you mean 'tie_weights'?)" \
    's/"tie_weights": true/"tie_weights": true, "tie_weight": true/'
model_case "missing key" "key 'layers_num': missing (the model needs it)" '/"layers_num"/d'
model_case "a module listed twice" "key 'embedding': 'word' is listed twice" 's/"word", "pos", "seg"/"word", "pos", "word"/'
model_case "layers_num out of range" "key 'layers_num': value 5000 out of range [1, 1024]" \
    's/"layers_num": 2/"layers_num": 5000/'
model_case "negative size" "key 'feedforward_size': value -512 out of range [1, 1048576]" \
    's/"feedforward_size": 512/"feedforward_size": -512/'
# Refused before anything is allocated, whatever the machine: 1024 layers of 1 Mi-wide feed-forwards.
model_case "absurd size" \
    "the model has 2.76e+11 parameters: weights, gradients and AdamW moments need 4113.0 GiB, more than this machine's <any> GiB (check hidden_size, feedforward_size, layers_num, vocabulary)" \
    's/"feedforward_size": 512/"feedforward_size": 1048576/; s/"layers_num": 2/"layers_num": 1024/'
model_case "no target" "key 'target': missing (pre-training needs at least one target, e.g. [\"mlm\"])" '/"target"/d'
pt "model: override of a wrong type" 1 "model.json: key 'dropout': expected a number, got a string (\"high\")" \
    run.json --model.dropout high
pt "model: missing" 1 "nowhere.json: No such file or directory" run.json --model nowhere.json
pt "model: sp target on an mlm dataset" 1 \
    "model.json: target 'sp' needs sentence pairs, but the dataset was not made by the bert processor" \
    run.json --dataset_path mlm.tpd
# -- dataset --
pt "dataset: missing" 1 "nowhere.tpd: No such file or directory" run.json --dataset_path nowhere.tpd
head -c 500 data.tpd >truncated.tpd
pt "dataset: truncated" 1 "truncated.tpd: truncated or extended: header says 920 bytes, file has 500" run.json \
    --dataset_path truncated.tpd
head -c 100 data.tpd >stub.tpd
pt "dataset: shorter than its header" 1 "stub.tpd: file has 100 bytes, less than the 128-byte header" run.json \
    --dataset_path stub.tpd
dataset_case() { # NAME LINE OFFSET BYTES VALUE: data.tpd with one header field overwritten
    cp data.tpd bad.tpd
    patch bad.tpd "$3" "$4" "$5"
    pt "dataset: $1" 1 "bad.tpd: $2" run.json --dataset_path bad.tpd
}
dataset_case "wrong magic" "offset 0: bad magic (not a tp dataset)" 0 8 0x5858585858585858
dataset_case "newer version" "offset 8: unsupported version 2 (this build reads version 1)" 8 4 2
dataset_case "unknown kind" "offset 12: unknown dataset kind 9 (1 = bert, 2 = mlm, 3 = lm, 4 = seq2seq, 5 = prefixlm)" 12 4 9
dataset_case "token width" "offset 16: token_bytes 3 is not 2 or 4" 16 4 3
dataset_case "token id beyond its vocabulary" "offset 130: instance 0: token id 5 >= vocab_size 5" 24 8 5
dataset_case "absurd instance count" "offset 32: instance_count 1000000000000 impossible in a 920-byte file" \
    32 8 1000000000000
dataset_case "section overlapping the header" "offset 56: offsets section at 64 overlaps the header" 56 8 64
dataset_case "unaligned section" "offset 64: tokens section at 3 is not 64-byte aligned" 64 8 3
pt "dataset: made with another vocabulary" 1 \
    "data.tpd: made with a vocabulary of 16 tokens, but vocab_without_mask.txt has 7" run.json \
    --vocab_path vocab_without_mask.txt
printf 'the cat sat\ta dog\nthe mat\tcat\n' >pairs.txt
"$build/tp-preprocess" --corpus_path pairs.txt --vocab_path vocab.txt --dataset_path mt.tpd --data_processor mt \
    2>/dev/null || fail "tp-preprocess --data_processor mt on valid pairs failed"
pt "dataset: seq2seq for an encoder-only model" 1 \
    "model.json: the dataset (t5, bart or mt processor) needs an encoder-decoder model ('decoder' and 'tgt_embedding')" \
    run.json --dataset_path mt.tpd
printf 'text\tpath\na cat\t%s\n' "$repo/tests/fixtures/media/gray.jpg" >pairs.tsv
"$build/tp-preprocess" --corpus_path pairs.tsv --vocab_path vocab.txt --dataset_path pairs.tpimg --data_processor clip \
    --config_path "$repo/models/clip/tiny_config.json" 2>/dev/null || fail "tp-preprocess --data_processor clip failed"
pt "dataset: image-text pairs for a text model" 1 \
    "pairs.tpimg: holds images (tp-preprocess --data_processor vit, clip or vilt): tp-pretrain trains a CLIP model (target clr) or a ViLT model (embedding word_patch) on image-text pairs" \
    run.json --dataset_path pairs.tpimg
pt "model: a CLIP model on token sequences" 1 \
    "$repo/models/clip/tiny_config.json: target 'clr' trains on image-text pairs (a dataset of tp-preprocess --data_processor clip), not on data.tpd" \
    run.json --model "$repo/models/clip/tiny_config.json"
vilt_config="$repo/models/vilt/fashion_mnist_config.json"
pt "dataset: CLIP's pairs for a ViLT model" 1 \
    "pairs.tpimg: holds image-text pairs of the clip processor; this model reads image-text pairs of the vilt processor (run tp-preprocess with --data_processor vilt)" \
    run.json --dataset_path pairs.tpimg --model "$vilt_config" --seq_length 8
"$build/tp-preprocess" --corpus_path pairs.tsv --vocab_path vocab.txt --dataset_path vilt.tpimg --data_processor vilt \
    --config_path "$vilt_config" 2>/dev/null || fail "tp-preprocess --data_processor vilt failed"
pt "dataset: ViLT's pairs for a CLIP model" 1 \
    "vilt.tpimg: holds image-text pairs of the vilt processor; this model reads image-text pairs of the clip processor (run tp-preprocess with --data_processor clip)" \
    run.json --dataset_path vilt.tpimg --model "$repo/models/clip/tiny_config.json"
pt "model: ViLT's text and image rows beyond max_seq_length" 1 \
    "run.json: key 'seq_length': 16 text rows + the image's 17 rows exceed the model's max_seq_length 32" \
    run.json --dataset_path vilt.tpimg --model "$vilt_config" --seq_length 16
pt "model: image_preprocess without normalize" 1 \
    "$vilt_config: key 'image_preprocess': without \"normalize\" (pixels in [0, 1]): tp always normalizes as the image processor does, so the list must include it" \
    run.json --dataset_path vilt.tpimg --model "$vilt_config" --seq_length 8 --model.image_preprocess '["crop"]'
pt "model: an unknown image_preprocess step" 1 \
    "$vilt_config: key 'image_preprocess': unknown step \"rotate\" (crop, horizontal_flip, normalize)" \
    run.json --dataset_path vilt.tpimg --model "$vilt_config" --seq_length 8 --model.image_preprocess '["rotate", "normalize"]'
pt "model: a ViLT model on token sequences" 1 \
    "$vilt_config: embedding 'word_patch' does not read token ids, and data.tpd holds token ids: a ViLT model trains on image-text pairs (tp-preprocess --data_processor vilt)" \
    run.json --model "$vilt_config" --seq_length 8
pt "model: a ViT on token sequences" 1 \
    "$repo/models/vit/fashion_mnist_config.json: embedding 'patch' does not read token ids, and data.tpd holds token ids: a ViT trains with tp-finetune on labelled images" \
    run.json --model "$repo/models/vit/fashion_mnist_config.json"
pt "model: a ViLT model with a target other than mlm and sp" 1 \
    "$vilt_config: target 'cls': a ViLT model (embedding word_patch) trains on image-text pairs with the mlm and sp targets" \
    run.json --dataset_path vilt.tpimg --model "$vilt_config" --model.target '["mlm", "cls"]' --model.labels_num 2
# -- output --
echo "a file" >file
pt "output: output_dir is a file" 1 "file: Not a directory" run.json --output_dir file/run
mkdir -p out && cp -r pretrained/checkpoints out/
pt "output: a fresh run over existing checkpoints" 1 \
    "out: holds checkpoints of an earlier run; pass --resume to continue it, or choose another output_dir" run.json
# -- checkpoints on --resume --
resume_from_broken_checkpoint
truncate -s 5000 "$checkpoint/model.safetensors"
pt "checkpoint: truncated weights" 1 \
    "$checkpoint/model.safetensors: offset 0: header length 5352 exceeds the 4992 bytes after it" run.json --resume
resume_from_broken_checkpoint
patch "$checkpoint/model.safetensors" 0 8 0xffffffffffff
pt "checkpoint: header length beyond the file" 1 \
    "$checkpoint/model.safetensors: offset 0: header length 281474976710655 exceeds the 1998640 bytes after it" \
    run.json --resume
resume_from_broken_checkpoint
sed -i '0,/"F32"/s//"F16"/' "$checkpoint/model.safetensors" # the first tensor's dtype, header length unchanged
pt "checkpoint: dtype does not match the data" 1 \
    "$checkpoint/model.safetensors: tensor 'embedding.word.embedding.weight': data_offsets [0, 8192] span 8192 bytes but F16 [16, 128] needs 4096" \
    run.json --resume
resume_from_broken_checkpoint
cp pretrained/checkpoints/step-00000001/model.safetensors "$checkpoint/optimizer.safetensors"
pt "checkpoint: weights instead of the optimizer state" 1 \
    "$checkpoint/optimizer.safetensors: tensor 'exp_avg.embedding.word.embedding.weight' is missing" run.json --resume
resume_from_broken_checkpoint
pt "checkpoint: shapes do not match the model" 1 \
    "$checkpoint/model.safetensors: tensor 'encoder.transformer.0.feed_forward.linear_1.weight': expected F32 [256, 128], found F32 [512, 128]" \
    run.json --resume --model.feedforward_size 256
resume_from_broken_checkpoint
pt "checkpoint: another seed" 1 \
    "$checkpoint/trainer_state.json: the checkpoint was trained with seed 7, this run has seed 8: resuming would not reproduce the run" \
    run.json --resume --seed 8
resume_from_broken_checkpoint
echo '{"step": ' >"$checkpoint/trainer_state.json"
pt "checkpoint: trainer state not JSON" 1 "$checkpoint/trainer_state.json: not a valid trainer state (not JSON)" \
    run.json --resume
state_case() { # NAME KEY SED_SCRIPT: trainer_state.json edited
    resume_from_broken_checkpoint
    sed -i "$3" "$checkpoint/trainer_state.json"
    pt "checkpoint: $1" 1 "$checkpoint/trainer_state.json: key '$2': not a whole number from 0 to 2^53" run.json --resume
}
state_case "negative step" step 's/"step":[^,]*/"step": -5/'
state_case "step beyond int64" step 's/"step":[^,]*/"step": 1e300/'
state_case "fractional bad_steps" bad_steps 's/"bad_steps":[^,]*/"bad_steps": 0.5/'
resume_from_broken_checkpoint
sed -i 's/"cursor":[^,}]*/"cursor": 1e300/' "$checkpoint/trainer_state.json"
pt "checkpoint: data position beyond the dataset" 1 \
    "out/checkpoints: the newest checkpoint's data position (epoch 0, cursor 1e+300) is not one of this dataset (epoch >= 0, cursor in [0, 10))" \
    run.json --resume

# ==== tp-finetune =================================================================================
ft() { expect "tp-finetune: $1" "$2" "tp-finetune: error: $3" tp-finetune --config finetune.json "${@:4}"; }
ft "task: unknown" 1 \
    "finetune.json: key 'task': unknown value 'classify' (expected one of: classification, multi_label, regression, tagging, text2text, speech2text)" \
    --task classify
cat >vilt_finetune.json <<JSON
{ "model": "$repo/models/vilt/fashion_mnist_config.json", "vocab_path": "hf/vocab.txt", "train_path": "train.tsv",
  "dev_path": "dev.tsv", "output_dir": "out", "epochs_num": 1, "batch_size": 2, "seq_length": 8, "threads": 1 }
JSON
expect "tp-finetune: model: a ViLT model on a text task" 1 \
    "tp-finetune: error: vilt_finetune.json: key 'task': embedding 'word_patch' does not read token ids, and this task's files hold text: a ViLT model pre-trains on image-text pairs (tp-pretrain) and classifies images zero-shot (tp-infer --candidates_path); tp has no ViLT fine-tuning task" \
    tp-finetune --config vilt_finetune.json
ft "model: both hf_model_dir and model" 1 \
    "finetune.json: key 'hf_model_dir': give either hf_model_dir or model (+ pretrained_model_path)" --model model.json
ft "hf_model_dir: missing" 1 "nowhere/config.json: No such file or directory" --hf_model_dir nowhere
hf_with config.json && echo '{"model_type": "gpt5"}' >hf_bad/config.json
ft "hf_model_dir: unsupported model_type" 1 \
    "hf_bad/config.json: key 'model_type': 'gpt5' is not supported (supported: <any>)" --hf_model_dir hf_bad
hf_with model.safetensors && printf 'junk' >hf_bad/model.safetensors
ft "hf_model_dir: weights shorter than a header" 1 \
    "hf_bad/model.safetensors: offset 0: file has 4 bytes, fewer than the 8-byte header length" --hf_model_dir hf_bad
hf_with vocab.txt && { cat hf/vocab.txt && echo w5; } >hf_bad/vocab.txt
ft "hf_model_dir: vocabulary with a duplicate" 1 \
    "finetune.json: hf_bad/vocab.txt: line 41: duplicate token 'w5' (first at line 6)" --hf_model_dir hf_bad
variant finetune.json finetune_tp.json 's/"hf_model_dir": "hf"/"model": "model.json", "vocab_path": "vocab.txt"/'
ft_tp() { expect "tp-finetune: $1" "$2" "tp-finetune: error: $3" tp-finetune --config finetune_tp.json "${@:4}"; }
ft_tp "pretrained_model_path: missing" 1 "nowhere.safetensors: No such file or directory" \
    --pretrained_model_path nowhere.safetensors
ft_tp "pretrained_model_path: another model's weights" 1 \
    "hf/model.safetensors: tensor 'embedding.word.embedding.weight' is missing" --pretrained_model_path hf/model.safetensors
ft "train_path: missing" 1 "nowhere.tsv: No such file or directory" --train_path nowhere.tsv
: >empty.tsv
ft "train_path: empty" 1 "empty.tsv: empty file (expected a header line such as 'label<TAB>text_a')" --train_path empty.tsv
printf 'label\ttext_a\n' >header_only.tsv
ft "train_path: header only" 1 "header_only.tsv: no examples after the header" --train_path header_only.tsv
tsv_case() { # NAME LINE CONTENT: a train.tsv with CONTENT
    printf "$3" >bad.tsv
    ft "train_path: $1" 1 "bad.tsv: $2" --train_path bad.tsv
}
tsv_case "unknown column" "header: unknown column 'text' (expected label, text_a, text_b)" 'label\ttext\n0\tw5\n'
tsv_case "wrong column count" "line 3: expected 2 columns (label, text_a), found 3" 'label\ttext_a\n1\tw5\n2\tw6\tw7\n'
tsv_case "negative label" "line 2: label '-1' is not a class id (a whole number from 0)" 'label\ttext_a\n-1\tw5\n'
tsv_case "label beyond int64" "line 2: label '99999999999999999999' is not a class id (a whole number from 0)" \
    'label\ttext_a\n99999999999999999999\tw5\n'
tsv_case "absurd label" "line 2: label '1000000': class id above 65535 without the model's number of labels" \
    'label\ttext_a\n1000000\tw5\n0\tw6\n'
tsv_case "empty text" "line 2: empty text_a" 'label\ttext_a\n1\t\n'
tsv_case "invalid UTF-8" "line 2: invalid UTF-8 at byte 6" 'label\ttext_a\n1\tw5 \xff w6\n'
printf 'label\ttext_a\n7\tw5\n' >bad.tsv
ft "dev_path: a label train does not have" 1 "bad.tsv: line 2: label '7' is not in the label set of the model (0..2)" \
    --dev_path bad.tsv
printf 'label\ttext_a\nbig\tw5\n' >bad.tsv
ft "regression: a label that is no number" 1 "bad.tsv: line 2: regression label 'big' is not a number" --task regression \
    --train_path bad.tsv
ft "run config: absurd seq_length" 1 "finetune.json: key 'seq_length': value 100000000 out of range [2, 1048576]" \
    --seq_length 100000000
ft "run config: zero epochs" 1 "finetune.json: key 'epochs_num': value 0 out of range [1, 100000]" --epochs_num 0
ft "run config: learning_rate not a number" 1 \
    "finetune.json: key 'learning_rate': expected a number, got a string (\"nan\")" --learning_rate nan
# -- checkpoints on --resume: the epoch state against the run --
# resume_finetuned [KEY VALUE]: 'out' holds the finished 1-epoch run (2 steps), KEY of its state set to VALUE.
resume_finetuned() {
    cp -r finetuned out
    [ $# = 0 ] || sed -i -E "s/\"$1\":[[:space:]]*[-0-9.e+]+/\"$1\": $2/" out/checkpoints/step-00000002/trainer_state.json
}
ft_state="out/checkpoints/step-00000002/trainer_state.json"
resume_finetuned epochs_done 0.5
ft "checkpoint: fractional epochs_done" 1 \
    "$ft_state: key 'data.epochs_done': 0.5 is not a whole number of epochs from 0 to epochs_num 1" --resume
resume_finetuned epochs_done 3
ft "checkpoint: epochs_done beyond epochs_num" 1 \
    "$ft_state: key 'data.epochs_done': 3 is not a whole number of epochs from 0 to epochs_num 1" --resume
resume_finetuned epochs_done 0
ft "checkpoint: epochs_done behind the step" 1 \
    "$ft_state: key 'data.epochs_done': 0 epochs of 2 steps end by step 0, but the checkpoint is at step 2 (another batch_size or training set?)" \
    --resume
resume_finetuned
ft "checkpoint: resumed with another batch_size" 1 \
    "$ft_state: key 'data.epochs_done': 1 epochs of 1 steps end by step 1, but the checkpoint is at step 2 (another batch_size or training set?)" \
    --resume --batch_size 4
resume_finetuned best_dev 7
ft "checkpoint: best_dev no score" 1 "$ft_state: key 'data.best_dev': 7 is no score (from -1 to 1)" --resume

# -- speech2text: the speech list and the model config's data keys --
printf 'a gliding vowel\t%s\n' "$repo/tests/fixtures/media/s2t/glide.wav" >speech.tsv
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n|\n' >chars.txt && printf '%s\n' a d e g i l n o v w >>chars.txt
cat >speech_model.json <<'JSON'
{ "emb_size": 16, "hidden_size": 16, "feedforward_size": 32, "heads_num": 2, "layers_num": 1,
  "decoder_layers_num": 1, "max_seq_length": 32, "embedding": ["speech", "fairseq_sinusoidalpos"],
  "tgt_embedding": ["word", "fairseq_sinusoidalpos"], "encoder": "transformer", "decoder": "transformer",
  "mask": "fully_visible", "target": ["lm"], "conv_channels": 16,
  "specaugment": {"freq_mask_N": 2, "freq_mask_F": 27, "time_mask_N": 2, "time_mask_T": 40} }
JSON
cat >speech.json <<'JSON'
{ "task": "speech2text", "model": "speech_model.json", "tokenizer": "char", "vocab_path": "chars.txt",
  "word_delimiter": "|", "train_path": "speech.tsv", "dev_path": "speech.tsv", "output_dir": "out", "threads": 1 }
JSON
expect "tp-finetune: speech2text: specaugment without time_mask_p" 1 \
    "tp-finetune: error: speech_model.json: key 'specaugment.time_mask_p': missing" tp-finetune --config speech.json
expect "tp-finetune: speech2text: a text model" 1 \
    "tp-finetune: error: speech.json: key 'task': speech-to-text needs a model whose embedding starts with speech (models/s2t/)" \
    tp-finetune --config speech.json --model model.json --tokenizer bert --vocab_path vocab.txt --word_delimiter w5
printf 'a gliding vowel\t%s\n' "$repo/tests/fixtures/media/s2t/absent.wav" >speech_missing.tsv
expect "tp-finetune: speech2text: a missing audio file" 1 \
    "tp-finetune: error: speech_missing.tsv: line 1: $repo/tests/fixtures/media/s2t/absent.wav: No such file or directory" \
    tp-finetune --config speech.json --train_path speech_missing.tsv --model.specaugment.time_mask_p 1

# ==== tp-infer ====================================================================================
ti() { expect "tp-infer: $1" "$2" "tp-infer: error: $3" tp-infer --prediction_path out "${@:4}"; }
ti "checkpoint: missing" 1 "nowhere: no checkpoint (model.safetensors, best/latest or latest)" --checkpoint nowhere \
    --test_path dev.tsv
rm -rf broken_finetuned && cp -r finetuned broken_finetuned && echo '{' >broken_finetuned/task.json
ti "checkpoint: task.json not JSON" 1 "broken_finetuned/task.json: line 2, column 1: unexpected end of file" \
    --checkpoint broken_finetuned \
    --test_path dev.tsv
ti "test_path: missing" 1 "nowhere.tsv: No such file or directory" --checkpoint finetuned --test_path nowhere.tsv
printf 'label\ttext_a\n7\tw5\n' >bad.tsv
ti "test_path: label outside the model's set" 1 "bad.tsv: line 2: label '7' is not in the label set of the model (0..2)" \
    --checkpoint finetuned \
    --test_path bad.tsv
printf 'label\ttext_a\n1\tw5\n2\tw6\tw7\n' >bad.tsv
ti "test_path: wrong column count" 1 "bad.tsv: line 3: expected 2 columns (label, text_a), found 3" --checkpoint finetuned \
    --test_path bad.tsv
printf 'a cat\nthe mat\n' >candidates.txt
ti "zero-shot: a model neither CLIP nor ViLT" 1 \
    "command line: key 'candidates_path': zero-shot classification needs a CLIP model (target clr) or a ViLT model (embedding word_patch, target sp); pretrained/checkpoints/step-00000002/model.safetensors is neither" \
    --checkpoint pretrained --test_path pairs.tsv --candidates_path candidates.txt --vocab_path vocab.txt
ids_header() { # SHAPE_IDS DTYPE_IDS SHAPE_SEG: a safetensors header of input_ids and seg (4 bytes per element)
    local ids_bytes=$(($(echo "$1" | tr ',' '*'))) seg_bytes=$(($(echo "$3" | tr ',' '*')))
    echo "{\"input_ids\":{\"dtype\":\"$2\",\"shape\":[$1],\"data_offsets\":[0,$((4 * ids_bytes))]},\"seg\":{\"dtype\":\"I32\",\"shape\":[$3],\"data_offsets\":[$((4 * ids_bytes)),$((4 * ids_bytes + 4 * seg_bytes))]}}"
}
inputs() { # HEADER INT32 VALUES...: an inputs_path file
    { le 8 "${#1}" && printf '%s' "$1" && for value in "${@:2}"; do le 4 "$value"; done; } >inputs.safetensors
}
inputs "$(ids_header 1,4 I32 1,4)" 2 99999 3 0 1 1 1 0
ti "inputs_path: a token id beyond the vocabulary" 1 \
    "inputs.safetensors: input_ids[0][1]: token id 99999 outside the vocabulary [0, 40)" --checkpoint finetuned \
    --inputs_path inputs.safetensors
inputs "$(ids_header 1,4 I32 1,4)" 2 5 3 0 1 7 1 0
ti "inputs_path: a segment that is none" 1 \
    "inputs.safetensors: seg[0][1]: segment 7 is not 0 (padding), 1 (text_a) or 2 (text_b)" --checkpoint finetuned \
    --inputs_path inputs.safetensors
inputs "$(ids_header 1,4 F32 1,4)" 2 5 3 0 1 1 1 0
ti "inputs_path: ids of the wrong dtype" 1 "inputs.safetensors: tensor 'input_ids': expected int32 [N, seq >= 2]" \
    --checkpoint finetuned --inputs_path inputs.safetensors
inputs "$(ids_header 1,4 I32 2,2)" 2 5 3 0 1 1 1 0
ti "inputs_path: segments of another shape" 1 "inputs.safetensors: tensor 'seg': expected int32 with input_ids' shape" \
    --checkpoint finetuned --inputs_path inputs.safetensors
inputs "$(ids_header 1,20 I32 1,20)" $(for i in $(seq 40); do echo 1; done)
ti "inputs_path: sequences longer than the model's" 1 \
    "inputs.safetensors: tensor 'input_ids': sequences of 20 tokens, more than the model's max_seq_length 16" \
    --checkpoint finetuned --inputs_path inputs.safetensors
safetensors inputs.safetensors '{"input_ids":{"dtype":"I32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'
ti "inputs_path: shape product overflowing int64" 1 \
    "inputs.safetensors: tensor 'input_ids': element count of the shape overflows int64" --checkpoint finetuned \
    --inputs_path inputs.safetensors
ti "output: output_prob for regression" 1 "command line: key 'output_prob': regression has no probabilities" \
    --hf_model_dir hf --task regression \
    --test_path dev.tsv --output_prob
hf_config_case() { # NAME LINE SED_SCRIPT: the classifier with its config.json edited
    hf_with config.json
    sed "$3" hf/config.json >hf_bad/config.json
    ti "hf_model_dir: $1" 1 "hf_bad/config.json: $2" --hf_model_dir hf_bad --test_path dev.tsv --seq_length 16
}
hf_config_case "absurd layer count" "key 'num_hidden_layers': value 100000 out of range [1, 1024]" \
    's/"num_hidden_layers": 2/"num_hidden_layers": 100000/'
hf_config_case "absurd position count" \
    "key 'max_position_embeddings': value 100000000000 out of range [1, 1048576]" \
    's/"max_position_embeddings": 16/"max_position_embeddings": 100000000000/'
hf_config_case "a size beyond any integer" "key 'intermediate_size': expected an integer" \
    's/"intermediate_size": 32/"intermediate_size": 1e300/'
hf_config_case "vocab_size not the vocabulary's" "key 'vocab_size': 41 does not match the vocabulary's 40 tokens" \
    's/"vocab_size": 40/"vocab_size": 41/'
hf_config_case "unsupported architecture" "key 'architectures': 'Foo' is not supported (supported: <any>)" \
    's/"BertForSequenceClassification"/"Foo"/'
ti "labels_path: missing" 1 "nowhere.txt: No such file or directory" --hf_model_dir hf --labels_path nowhere.txt \
    --test_path dev.tsv
cut -f 2 dev.tsv >unlabelled.tsv
expect "tp-infer: nothing to do" 1 \
    "tp-infer: error: command line: key 'prediction_path': nothing to do (no prediction_path, no dump, and unlabelled.tsv has no labels<any>" \
    tp-infer --checkpoint finetuned --test_path unlabelled.tsv

# ==== tp-convert ==================================================================================
tc() { expect "tp-convert: $1" "$2" "tp-convert: $3" tp-convert "${@:4}"; }
tc "usage: no arguments" 2 "give exactly one of --from-hf HF_DIR and --to-hf"
tc "usage: unknown option" 2 "unknown option: --form-hf" --form-hf hf --to out
tc "usage: --to-hf without --weights" 2 "--to-hf needs --model and --weights" --to-hf --model model.json --to out
mkdir -p existing
tc "output exists" 1 "existing: already exists (the output must be a new directory)" --from-hf hf --to existing
tc "config.json missing" 1 "nowhere/config.json: No such file or directory" --from-hf nowhere --to out
hf_with config.json && echo '{"model_type": "bert",' >hf_bad/config.json
tc "config.json not JSON" 1 "hf_bad/config.json: not a JSON object" --from-hf hf_bad --to out
st_case() { # NAME LINE HEADER [DATA_BYTES]: a hostile model.safetensors in an otherwise valid HF directory
    hf_with model.safetensors
    safetensors hf_bad/model.safetensors "$3" "${4:-0}"
    tc "safetensors: $1" 1 "hf_bad/model.safetensors: $2" --from-hf hf_bad --to out
}
word=bert.embeddings.word_embeddings.weight
hf_with model.safetensors && { le 8 100000 && printf '{}'; } >hf_bad/model.safetensors
tc "safetensors: header larger than the file" 1 \
    "hf_bad/model.safetensors: offset 0: header length 100000 exceeds the 2 bytes after it" --from-hf hf_bad --to out
hf_with model.safetensors && printf '\x01\x02' >hf_bad/model.safetensors
tc "safetensors: shorter than the length field" 1 \
    "hf_bad/model.safetensors: offset 0: file has 2 bytes, fewer than the 8-byte header length" --from-hf hf_bad --to out
hf_with model.safetensors && { le 8 200000000 && printf '{}' && head -c 200000000 /dev/zero; } >hf_bad/model.safetensors
tc "safetensors: absurd header length" 1 \
    "hf_bad/model.safetensors: offset 0: header length 200000000 exceeds the limit of 100000000 bytes" \
    --from-hf hf_bad --to out
rm -rf hf_bad
st_case "shape product overflowing int64" "tensor '$word': element count of the shape overflows int64" \
    "{\"$word\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}"
st_case "dimension beyond 2^53" "tensor 'a': shape[0] is beyond 2^53" '{"a":{"dtype":"F32","shape":[1e16],"data_offsets":[0,8]}}' 8
st_case "negative dimension" "tensor 'a': negative dimension 0 (-2)" '{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}' 8
st_case "overlapping tensors" "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]" \
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}' 12
st_case "offsets past the end" "tensor 'a': data_offsets end 8 is past the end of the data section (4 bytes; file truncated?)" \
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 4
st_case "offsets that do not match the shape" "tensor 'a': data_offsets [0, 8] span 8 bytes but F32 [3] needs 12" \
    '{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}' 8
st_case "begin after end" "tensor 'a': data_offsets begin 8 > end 0" '{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}' 8
st_case "bytes belonging to no tensor" "offset 70: 8 bytes after the last tensor belong to no tensor" \
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 16
st_case "unknown dtype" "tensor 'a': unknown dtype 'Q4' (known: F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL U16 U32 U64)" \
    '{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}' 8
st_case "header not JSON" "offset 12: header is not valid JSON" '{"a":' 0
st_case "metadata twice" "'__metadata__' appears twice in the header" \
    '{"__metadata__":{"a":"b"},"__metadata__":{"c":"d"}}' 0
st_case "the model's tensor in F16" "tensor '$word': expected F32 [40, 16], found F16 [40, 16]" \
    "{\"$word\":{\"dtype\":\"F16\",\"shape\":[40,16],\"data_offsets\":[0,1280]}}" 1280
st_case "the model's tensor of another shape" "tensor '$word': expected F32 [40, 16], found F32 [40, 15]" \
    "{\"$word\":{\"dtype\":\"F32\",\"shape\":[40,15],\"data_offsets\":[0,2400]}}" 2400
"$build/tp-convert" --from-hf hf --to converted 2>/dev/null || fail "tp-convert --from-hf on the valid classifier failed"
variant converted/model_config.json converted_ff64.json 's/"feedforward_size":[[:space:]]*32/"feedforward_size": 64/'
tc "to-hf: weights of another shape" 1 \
    "converted/model.safetensors: tensor 'encoder.transformer.0.feed_forward.linear_1.weight': expected F32 [64, 16], found F32 [32, 16]" \
    --to-hf --model converted_ff64.json --weights converted/model.safetensors --to out
tc "to-hf: a config Hugging Face cannot express" 1 \
    "model.json: key 'layernorm': needs normal_torch (Hugging Face's models have no equivalent)" \
    --to-hf --model model.json --weights pretrained/checkpoints/step-00000002/model.safetensors --to out

# ==== tp-select ===================================================================================
ts() { expect "tp-select: $1" "$2" "tp-select: $3" tp-select "${@:4}"; }
ts "usage: unknown command" 2 "unknown command 'clustr' (tp-select --help)" clustr --zoo zoo/zoo.json
ts "usage: option without a value" 2 "option '--zoo' needs a value (tp-select --help)" cluster --zoo
ts "usage: required option missing" 2 "error: the command needs --outputs" leep
ts "usage: negative tau" 2 "error: option --tau: '-1' is not a number >= 0" cluster --zoo zoo/zoo.json --tau -1
ts "zoo: missing" 1 "error: nowhere.json: No such file or directory" cluster --zoo nowhere.json
zoo_case() { # NAME LINE FILE SED_SCRIPT: the zoo with FILE edited
    rm -rf bad_zoo && cp -r zoo bad_zoo && sed -i "$4" "bad_zoo/$3"
    ts "zoo: $1" 1 "error: bad_zoo/$2" cluster --zoo bad_zoo/zoo.json
}
zoo_case "manifest version" "zoo.json: key 'version': expected an integer in 1..1" zoo.json 's/"version": 1/"version": 7/'
zoo_case "absurd epochs" "zoo.json: key 'epochs': expected an integer in 1..10000" zoo.json 's/"epochs": 5/"epochs": 1000000000000/'
zoo_case "matrix missing" "nomatrix.tsv: No such file or directory" zoo.json 's/"matrix.tsv"/"nomatrix.tsv"/'
zoo_case "matrix NaN" \
    "matrix.tsv: line 2, column 3 (model 'f0-m0', benchmark 'debian'): not a number (write NA for a score not measured)" \
    matrix.tsv 's/0.5577/nan/'
zoo_case "matrix row too short" "matrix.tsv: line 3: expected 9 tab-separated fields (model + 8 benchmarks), found 8" \
    matrix.tsv '3s/\t0.5720//'
zoo_case "matrix model twice" "matrix.tsv: line 3: model 'f0-m1' has a row already (line 2)" matrix.tsv '2s/f0-m0/f0-m1/'
zoo_case "matrix model not in the manifest" "matrix.tsv: line 2: model 'zz' is not in the manifest" matrix.tsv '2s/f0-m0/zz/'
ts "recall: unknown target" 1 \
    "error: zoo/zoo.json: no LEEP scores for target 'nowhere' (the zoo's LEEP table has 8 targets)" recall \
    --zoo zoo/zoo.json --target nowhere
printf 'label\tz0\tz1\npos\t0.75\t0.35\n' >outputs.tsv
ts "leep: probabilities not summing to 1" 1 \
    "error: outputs.tsv: line 2: the probabilities sum to 1.1, not 1 (softmax outputs expected)" leep --outputs outputs.tsv
printf 'label\tz0\tz1\npos\t1.5\t-0.5\n' >outputs.tsv
ts "leep: not a probability" 1 "error: outputs.tsv: line 2, column 2: '1.5' is not a probability in [0, 1]" \
    leep --outputs outputs.tsv
printf 'label\tz0\tz1\npos\t0.5\t0.5\n' >outputs.tsv
ts "leep: head size mismatch" 1 "error: outputs.tsv: line 1: 2 source labels, but the model's head has 3" \
    leep --outputs outputs.tsv --zoo zoo/zoo.json --model f0-m0
ts "output: directory missing" 1 "error: nowhere/clusters.json: No such file or directory" cluster --zoo zoo/zoo.json \
    --output nowhere/clusters.json

[ "$show" = 1 ] && exit 0
echo "test_bad_inputs.sh: $cases cases: $((cases - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
