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
