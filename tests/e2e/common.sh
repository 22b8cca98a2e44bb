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
