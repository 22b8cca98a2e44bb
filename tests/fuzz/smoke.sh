#!/bin/bash
# Fuzz smoke test: builds every libFuzzer harness (tests/fuzz/run.sh, clang with ASan and UBSan,
# into build-fuzz/) and runs each for <seconds> (default 10) from its seed corpus.  Prints one
# line per target and "N passed, N failed"; exits non-zero when any target crashed, leaked,
# timed out or tripped a sanitizer.  Logs: build-fuzz/smoke-<target>.log.
# With --record every run goes into the fuzzing ledger (docs/fuzz-ledger.md): a campaign that adds
# fuzzing hours, e.g. nice -n 19 tests/fuzz/smoke.sh --record 600.
# Usage (from anywhere): tests/fuzz/smoke.sh [--record] [seconds]
set -uo pipefail
record=()
[ "${1:-}" = --record ] && record=(--record) && shift
seconds=${1:-10}
cd "$(dirname "$0")/../.." || exit 2
# Every harness tests/fuzz/fuzz_<target>.c: one that run.sh cannot build yet fails here.
targets=$(for harness in tests/fuzz/fuzz_*.c; do basename "$harness" .c; done | sed 's/^fuzz_//')
mkdir -p build-fuzz

# The builds are independent: run them together, then fuzz one target at a time.
declare -A build_pid
for target in $targets; do
    tests/fuzz/run.sh --build-only "$target" >"build-fuzz/smoke-$target.log" 2>&1 &
    build_pid[$target]=$!
done

passed=0
failed=0
for target in $targets; do
    log=build-fuzz/smoke-$target.log
    if ! wait "${build_pid[$target]}"; then
        echo "FAIL $target: build failed (see $log)"
        failed=$((failed + 1))
        continue
    fi
    if tests/fuzz/run.sh --no-build "${record[@]}" "$target" "$seconds" >>"$log" 2>&1; then
        echo "PASS $target: $(grep -o 'Done [0-9]* runs' "$log" | tail -1) in ${seconds} s"
        passed=$((passed + 1))
    else
        echo "FAIL $target: $(grep -m1 -E 'ERROR|runtime error|internal error|SUMMARY' "$log") (see $log)"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
