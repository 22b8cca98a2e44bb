#!/bin/bash
# Builds a libFuzzer harness (tests/fuzz/fuzz_<target>.c) with clang, ASan and UBSan against the
# library sources it needs, and runs it for <seconds> from the seed corpus in
# tests/fuzz/corpus/<target>/.  New inputs go to build-fuzz/corpus-<target>/, crashes to
# build-fuzz/crash-*.  Usage: tests/fuzz/run.sh safetensors 120
set -euo pipefail
target=${1:?usage: tests/fuzz/run.sh <target> <seconds>}
seconds=${2:-60}
cd "$(dirname "$0")/../.."

case "$target" in
safetensors)
    sources="core/safetensors.c core/fileio.c core/error.c"
    libs="-lcjson -lutf8proc"
    ;;
config)
    sources="core/config.c core/fileio.c core/error.c"
    libs="-lcjson -lm"
    ;;
*)
    echo "run.sh: unknown target '$target' (known: safetensors, config)" >&2
    exit 2
    ;;
esac

out=build-fuzz
mkdir -p "$out/corpus-$target"
clang -std=gnu11 -g -O1 -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    "tests/fuzz/fuzz_$target.c" $sources $libs -o "$out/fuzz_$target"
dict=()
[ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")
"$out/fuzz_$target" -max_total_time="$seconds" -max_len=4096 -artifact_prefix="$out/" "${dict[@]}" \
    "$out/corpus-$target" "tests/fuzz/corpus/$target"
