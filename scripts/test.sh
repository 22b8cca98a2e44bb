#!/usr/bin/env bash
# README command 2: installs what is missing, fetches the test data, builds tp (with the CUDA
# backend whenever nvcc exists) and runs every test with ctest.
#   scripts/test.sh              Release build in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install_deps.sh
bash scripts/fetch_data.sh >/dev/null
if [ "${1:-}" = "--sanitize" ]; then
    # The CUDA sources are compiled by the plain build; the sanitizer build checks the C code.
    build_dir=build-asan
    options=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTP_SANITIZE=ON -DTP_CUDA=OFF)
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    # Learning tests run shortened (tests/e2e/common.sh): the Release run checks their thresholds.
    export TP_TEST_QUICK=1
else
    build_dir=build
    options=(-DCMAKE_BUILD_TYPE=Release)
fi
cmake -S . -B "$build_dir" "${options[@]}" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
ctest --test-dir "$build_dir" --output-on-failure
