#!/bin/bash
# Fuzz smoke test: builds every libFuzzer harness (tests/fuzz/run.sh, clang with ASan and UBSan,
# into build-fuzz/) and runs each for <seconds> (default 10) from its seed corpus.  Prints one
# line per target and "N passed, N failed"; exits non-zero when any target crashed, leaked,
# timed out or tripped a sanitizer.  Logs: build-fuzz/smoke-<target>.log.
# With --record every run goes into the fuzzing ledger (docs/fuzz-ledger.md): a campaign that adds
# fuzzing hours, e.g. nice -n 19 tests/fuzz/smoke.sh --record 600.
# --parallel fuzzes every target at once (one process each: for a machine with a core per
# harness); --no-build runs the harnesses already in build-fuzz/ (built elsewhere and carried to a
# machine without clang, e.g. a lent GPU machine's 16 cores: docs/fuzz-ledger.md).
# Usage (from anywhere): tests/fuzz/smoke.sh [--record] [--parallel] [--no-build] [seconds]
set -uo pipefail
record=()
parallel=0
build=1
while [ $# -gt 0 ]; do
    case "$1" in
    --record) record=(--record) && shift ;;
    --parallel) parallel=1 && shift ;;
    --no-build) build=0 && shift ;;
    *) break ;;
    esac
done
seconds=${1:-10}
cd "$(dirname "$0")/../.." || exit 2
# Every harness tests/fuzz/fuzz_<target>.c: one that run.sh cannot build yet fails here.
targets=$(for harness in tests/fuzz/fuzz_*.c; do basename "$harness" .c; done | sed 's/^fuzz_//')
mkdir -p build-fuzz

# The builds are independent: run them together, then fuzz one target at a time (or all at once).
declare -A build_pid built fuzz_pid
for target in $targets; do
    if [ "$build" = 1 ]; then
        tests/fuzz/run.sh --build-only "$target" >"build-fuzz/smoke-$target.log" 2>&1 &
        build_pid[$target]=$!
    else
        echo "--no-build: build-fuzz/fuzz_$target" >"build-fuzz/smoke-$target.log"
    fi
done
for target in $targets; do
    if [ "$build" = 1 ]; then
        wait "${build_pid[$target]}" && built[$target]=1
    else
        [ -x "build-fuzz/fuzz_$target" ] && built[$target]=1
    fi
done
fuzz() { tests/fuzz/run.sh --no-build "${record[@]}" "$1" "$seconds" >>"build-fuzz/smoke-$1.log" 2>&1; }
if [ "$parallel" = 1 ]; then
    for target in $targets; do
        [ -n "${built[$target]:-}" ] || continue
        fuzz "$target" &
        fuzz_pid[$target]=$!
    done
fi
# fuzzed TARGET: the target's fuzzing run (started above, or now) succeeded.
fuzzed() { if [ "$parallel" = 1 ]; then wait "${fuzz_pid[$1]}"; else fuzz "$1"; fi; }

passed=0
failed=0
for target in $targets; do
    log=build-fuzz/smoke-$target.log
    if [ -z "${built[$target]:-}" ]; then
        echo "FAIL $target: build failed (see $log)"
        failed=$((failed + 1))
    elif fuzzed "$target"; then
        echo "PASS $target: $(grep -o 'Done [0-9]* runs' "$log" | tail -1) in ${seconds} s"
        passed=$((passed + 1))
    else
        echo "FAIL $target: $(grep -m1 -E 'ERROR|runtime error|internal error|SUMMARY' "$log") (see $log)"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
