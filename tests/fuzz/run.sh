#!/bin/bash
# Builds a libFuzzer harness (tests/fuzz/fuzz_<target>.c) with clang, ASan and UBSan against the
# library sources it needs, and runs it for <seconds> from the seed corpus in
# tests/fuzz/corpus/<target>/.  New inputs go to build-fuzz/corpus-<target>/, crashes to
# build-fuzz/crash-* (also timeout-*, oom-*, leak-*: an input running over 20 s or allocating over
# 2 GB counts as a failure).  Exits non-zero on any failure.
# --record adds the run to the fuzzing ledger, docs/fuzz-ledger.md (tests/fuzz/ledger.sh: CPU time,
# executions and result), so that fuzzing hours add up over sessions.
# Usage: tests/fuzz/run.sh [--build-only | --no-build] [--record] <target> [seconds (default 60)]
# Targets: safetensors config dataset vocab model_config tsv select image idx wav bpe hf_json spm (docs/robustness.md).
set -euo pipefail
do_build=1
do_run=1
record=0
while [ $# -gt 0 ]; do
    case "$1" in
    --build-only) do_run=0 && shift ;;
    --no-build) do_build=0 && shift ;;
    --record) record=1 && shift ;;
    *) break ;;
    esac
done
target=${1:?usage: tests/fuzz/run.sh [--build-only | --no-build] <target> [seconds]}
seconds=${2:-60}
cd "$(dirname "$0")/../.."
cflags=""

case "$target" in
safetensors)
    sources="core/safetensors.c core/fileio.c core/error.c"
    libs="-lcjson -lutf8proc"
    ;;
config)
    sources="core/config.c core/fileio.c core/error.c"
    libs="-lcjson -lm"
    ;;
dataset)
    sources="core/dataset.c core/rng.c core/fileio.c core/error.c"
    libs="-lm"
    ;;
vocab | bpe | hf_json)
    # tokenizer.c registers every kind, so every tokenizer source is needed.
    sources="$(ls tokenizers/*.c) core/fileio.c core/error.c"
    libs="-lutf8proc -lcjson"
    ;;
spm)
    # libsentencepiece is C++: its shim is compiled with clang++ and linked in.
    sources="$(ls tokenizers/*.c) build-fuzz/sentencepiece_shim.o core/fileio.c core/error.c"
    libs="-lutf8proc -lcjson -lsentencepiece -lstdc++"
    cflags="-DTP_HAVE_SENTENCEPIECE=1"
    if [ "$do_build" = 1 ]; then
        mkdir -p build-fuzz
        clang++ -std=c++17 -g -O1 -I. -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=vptr \
            -c tokenizers/sentencepiece_shim.cc \
            -o build-fuzz/sentencepiece_shim.o
    fi
    ;;
model_config)
    # Every module, as CMake globs them: the registry names them all.  The speech embedding checks
    # the s2t data keys (core/preprocess_s2t.c, with the audio code), the patch embeddings
    # image_preprocess (core/image_augment.c); clr gathers over the ranks
    # (core/distributed.c without MPI: a world of one).
    sources="core/model.c core/init_t5.c core/params.c core/ops.c core/arena.c core/rng.c core/config.c core/fileio.c core/error.c
             core/image_augment.c core/preprocess_s2t.c core/audio.c core/fft.c core/distributed.c core/cpu_kernels.c core/cpu_smoothing.c core/optim.c
             $(find modules -name '*.c' | sort)"
    libs="-lcjson -lsndfile -lopenblas -lm"
    cflags="-fopenmp"
    ;;
tsv)
    sources="core/tsv.c core/fileio.c core/error.c"
    libs="-lm"
    ;;
select)
    sources="core/select_zoo.c core/select_recall.c core/select_cluster.c core/select_fine.c core/config.c core/fileio.c core/error.c"
    libs="-lcjson -lm"
    ;;
image | idx)
    sources="core/image.c core/preprocess_vit.c core/image_augment.c core/rng.c core/config.c core/fileio.c core/error.c"
    libs="-lturbojpeg -lpng16 -lz -lcjson -lm"
    ;;
wav)
    sources="core/audio.c core/fft.c core/rng.c core/fileio.c core/error.c"
    libs="-lsndfile -lm"
    ;;
*)
    echo "run.sh: unknown target '$target' (known: safetensors, config, dataset, vocab, model_config, tsv, select, image, idx, wav, bpe, hf_json, spm)" >&2
    exit 2
    ;;
esac

out=build-fuzz
mkdir -p "$out/corpus-$target"
# shellcheck disable=SC2086 # the source and library lists are word lists
[ "$do_build" = 1 ] && clang -std=gnu11 -g -O1 -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    $cflags "tests/fuzz/fuzz_$target.c" $sources $libs -o "$out/fuzz_$target"
[ "$do_run" = 0 ] && exit 0
dict=()
[ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")
fuzz=("$out/fuzz_$target" -max_total_time="$seconds" -max_len=4096 -timeout=20 -rss_limit_mb=2048
    -artifact_prefix="$out/" "${dict[@]}" "$out/corpus-$target" "tests/fuzz/corpus/$target")
[ "$record" = 0 ] && exec "${fuzz[@]}"

# Recorded: the fuzzer's output also goes to a log (its executions), bash's 'time' gives its CPU time.
log="$out/record-$target.log"
artifacts_before=$(ls "$out" | grep -cE '^(crash|leak|timeout|oom)-' || true)
status=0
TIMEFORMAT='%U %S %R'
{ time "${fuzz[@]}" > >(tee "$log") 2>&1; } 2>"$out/record-$target.time" || status=$?
read -r user_s system_s wall_s <"$out/record-$target.time"
runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
artifact=$(ls -t "$out" | grep -E '^(crash|leak|timeout|oom)-' | head -1 || true)
if [ "$status" = 0 ]; then
    result=clean
elif [ "$(ls "$out" | grep -cE '^(crash|leak|timeout|oom)-' || true)" -gt "$artifacts_before" ]; then
    result="FAILED: $artifact"
else
    result="FAILED: exit status $status (see $log)"
fi
tests/fuzz/ledger.sh --add "$target" "$(awk -v u="$user_s" -v s="$system_s" 'BEGIN { printf "%.0f", u + s }')" \
    "${wall_s%.*}" "${runs:-0}" "$result"
exit "$status"
