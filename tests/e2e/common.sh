# Sourced by the end-to-end tests (tests/e2e/test_*.sh), whose first argument is the build
# directory (ctest passes it).  Sets build, repo, vocab, corpus and work (a fresh temporary
# directory removed at exit, together with any background job), and defines fail and losses.
set -euo pipefail
test_name=$(basename "$0" .sh)
build=${1:?usage: $test_name.sh BUILD_DIR}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
vocab="$repo/data/vocab/bert-base-uncased-vocab.txt"
corpus="$repo/data/corpus/pretrain.txt"

fail() {
    echo "$test_name.sh: FAIL: $*" >&2
    exit 1
}
[ -f "$vocab" ] && [ -f "$corpus" ] || fail "data missing: run scripts/fetch_data.sh"

work=$(mktemp -d "/tmp/tp_$test_name.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# TP_TEST_QUICK=1 (scripts/test.sh --sanitize sets it): tests that train to an accuracy threshold
# run the same programs over the same code paths on a fraction of the data and skip the
# thresholds, which the Release run checks: under the sanitizers they would take many minutes.
quick=${TP_TEST_QUICK:-0}

# wait_until COMMAND...: polls COMMAND every 0.05 s until it succeeds or 120 s pass (generous:
# CI machines may be loaded, and a slow start must not look like a failure).
wait_until() {
    local deadline=$((SECONDS + 120))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.05
    done
}

# epoch_saved DIR: a tp-finetune run in DIR has logged a dev evaluation and saved a checkpoint.
epoch_saved() { grep -q '"split":"dev"' "$1/metrics.jsonl" 2>/dev/null && [ -f "$1/checkpoints/latest" ]; }

# The metrics of a run without their timings: what must be identical between two runs.
losses() { sed -E 's/,"(tokens_per_s|step_seconds)":[^,}]*//g' "$1"; }

# make_dataset DOCUMENTS SEQ_LENGTH: the first DOCUMENTS documents of the corpus, preprocessed
# (bert processor, dynamic masking) into $work/data.tpd.
make_dataset() {
    awk -v limit="$1" 'BEGIN { docs = 0 } /^$/ { if (++docs == limit) exit } { print }' "$corpus" >"$work/corpus.txt"
    "$build/tp-preprocess" --corpus_path "$work/corpus.txt" --vocab_path "$vocab" --dataset_path "$work/data.tpd" \
        --seq_length "$2" --dup_factor 1 --dynamic_masking 2>/dev/null || fail "tp-preprocess failed"
}

# pretrain_resumes RUN_DIR SAVE FINAL TP_PRETRAIN_ARGS...: a copy of tp-pretrain's RUN_DIR keeping only
# its step-SAVE checkpoint, resumed with the arguments, must log RUN_DIR's losses and end with its
# step-FINAL weights, bit for bit.
pretrain_resumes() {
    local run=$1 save=$2 final_step=$3 resumed="$1-resumed"
    shift 3
    cp -r "$run" "$resumed"
    find "$resumed/checkpoints" -mindepth 1 -maxdepth 1 -name 'step-*' ! -name "step-$(printf %08d "$save")" \
        -exec rm -r {} +
    "$build/tp-pretrain" "$@" --output_dir "$resumed" --resume 2>"$resumed.log" ||
        { cat "$resumed.log" >&2; fail "resume failed"; }
    grep -q "resumed from step $save" "$resumed.log" || fail "did not resume from step $save: $(head -3 "$resumed.log")"
    [ "$(losses "$run/metrics.jsonl")" = "$(losses "$resumed/metrics.jsonl")" ] ||
        fail "the resumed run's losses differ from the uninterrupted run's"
    local final="checkpoints/step-$(printf %08d "$final_step")/model.safetensors"
    cmp -s "$run/$final" "$resumed/$final" || fail "the resumed run's final weights differ"
    echo "resumed from step $save: the same losses and final weights"
}

# zero_shot_accuracy CHECKPOINT PREDECODED LIST CANDIDATES COUNT TP_INFER_ARGS...: tp-infer's zero-shot
# classification of COUNT images, from their pre-decoded file and from their text<TAB>path list:
# the same predictions, one line per image; prints the accuracy tp-infer reports.
zero_shot_accuracy() {
    local checkpoint=$1 predecoded=$2 list=$3 candidates=$4 count=$5 source output
    shift 5
    for source in "$predecoded" "$list"; do
        output="$work/zero_shot_$(basename "$source")"
        "$build/tp-infer" --checkpoint "$checkpoint" --test_path "$source" --candidates_path "$candidates" "$@" \
            --prediction_path "$output.tsv" --threads 1 2>"$output.log" || { cat "$output.log" >&2; fail "tp-infer on $source failed"; }
    done
    cmp -s "$work/zero_shot_$(basename "$predecoded").tsv" "$work/zero_shot_$(basename "$list").tsv" ||
        fail "zero-shot predictions from the list and the pre-decoded file differ"
    [ "$(wc -l <"$output.tsv")" = $((count + 1)) ] || fail "$output.tsv: not one line per test image"
    grep -oE 'zero-shot accuracy [0-9.]+' "$work/zero_shot_$(basename "$predecoded").log" | grep -oE '[0-9.]+$' ||
        { cat "$work/zero_shot_$(basename "$predecoded").log" >&2; fail "tp-infer reported no zero-shot accuracy"; }
}

# media_pairs: vocab.txt and pairs.tsv in the current directory, 8 image-text pairs of the committed
# media images with short captions (TencentPretrain's text<TAB>path lines, a header first).
media_pairs() {
    local media="$repo/tests/fixtures/media"
    printf '%s\n' '[PAD]' '[UNK]' '[CLS]' '[SEP]' '[MASK]' the cat sat on mat dog a red gray small photo >vocab.txt
    {
        printf 'text\tpath\n'
        printf 'a photo of the cat\t%s/s444.jpg\n' "$media"
        printf 'a gray photo\t%s/gray.jpg\n' "$media"
        printf 'the red mat\t%s/rgb16.png\n' "$media"
        printf 'a small dog\t%s/adam7.png\n' "$media"
        printf 'the gray cat sat\t%s/gray2.png\n' "$media"
        printf 'a dog on a mat\t%s/graya.png\n' "$media"
        printf 'the small red photo\t%s/progressive.jpg\n' "$media"
        printf 'a cat on the mat\t%s/s422.jpg\n' "$media"
    } >pairs.tsv
}

# fashion_pairs PROCESSOR CONFIG SEQ_LENGTH TRAIN TEST: the first TRAIN training and TEST test images of
# Fashion-MNIST captioned "a photo of a <class name>" ($work/pairs, scripts/fashion_mnist_pairs.py),
# made pre-decoded files $work/train.tpimg and $work/t10k.tpimg by tp-preprocess --data_processor
# PROCESSOR; sets tokenizer (the run's tokenizer arguments).
fashion_pairs() {
    local processor=$1 config=$2 seq=$3 train=$4 test=$5 fashion="$repo/data/media/fashion-mnist" split
    [ -f "$fashion/train-images-idx3-ubyte.gz" ] || fail "data missing: run scripts/fetch_data.sh"
    /usr/bin/python3 "$repo/scripts/cut_fashion_mnist.py" "$fashion" "$work" "$train" "$test"
    /usr/bin/python3 "$repo/scripts/fashion_mnist_pairs.py" "$work" "$work/pairs" >/dev/null
    tokenizer=(--tokenizer space --vocab_path "$work/pairs/vocab.txt")
    for split in train t10k; do
        "$build/tp-preprocess" --data_processor "$processor" --corpus_path "$work/pairs/$split.tsv" \
            --config_path "$config" "${tokenizer[@]}" --seq_length "$seq" --dataset_path "$work/$split.tpimg" \
            2>"$work/pre.log" || { cat "$work/pre.log" >&2; fail "tp-preprocess --data_processor $processor failed"; }
    done
    grep -q "wrote $work/t10k.tpimg: $test image-text pairs of 3 x 28 x 28" "$work/pre.log" ||
        { cat "$work/pre.log" >&2; fail "tp-preprocess did not report the pairs"; }
}
