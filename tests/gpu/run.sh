#!/usr/bin/env bash
# The GPU suite, in one call on a bare lent GPU machine (about 3-6 minutes; nothing is installed):
#   tests/gpu/run.sh            from anywhere; builds into build-gpu/ at the repository root
# Stages: device, toolchain (nvcc, cuBLAS, cmake), host libraries, configure (sm_90), build,
# test_gpu_ops (every kernel against the CPU, fp32 and reduced precision), test_gpu_train (BERT
# tiny: 20 steps CPU vs GPU, fp32 and bf16), test_gpu_programs (tp-pretrain device cuda on real
# text vs the CPU, kill + resume, bf16, gradients over NCCL), test_gpu_media (CLIP and ViLT
# pre-training and ViLT zero-shot, device cuda vs cpu), test_gpu_nccl (the NCCL collectives on
# one GPU; SKIP without libnccl.so.2), test_gpu_finetune (tp-finetune's six task kinds, tp-infer and
# seq2seq tp-pretrain, device cuda vs cpu), bench fp32/tf32/bf16 (BERT-base training steps in tp and in
# PyTorch on the same GPU: tokens/s, MFU, ratio), memcheck (test_gpu_ops under compute-sanitizer).
# TP_GPU_PROFILE=1 adds a profile of BERT-base training steps (Nsight Compute, tests/gpu/profile.py).
# Every stage prints PASS, FAIL or SKIP and the script always reaches the summary.
# TP_GPU_BIN=DIR runs binaries built elsewhere (for sm_90) instead of building: test_gpu_ops,
# test_gpu_train, test_gpu_nccl, tp-pretrain, tp-preprocess, tp-finetune, tp-infer.  test_gpu_programs
# and test_gpu_finetune need data/vocab and data/corpus (carry them); test_gpu_finetune also its task
# files, made by tests/gpu/make_gpu_tasks.sh where the data is (TP_GPU_TASKS=DIR names them; carry
# them too).  With $OUT set, the log and the summary go there too.
# Host libraries missing on the machine are taken from build-gpu-deps/ when it was carried along
# (made by tests/gpu/pack_deps.sh; TP_FORCE_DEPS=1 uses it even where the machine has the libraries).
# Exit status: 0 when no stage failed.
set -u
cd "$(dirname "$0")/../.." || exit 2
root=$PWD
build=$root/build-gpu
deps=$root/build-gpu-deps
arch=${TP_CUDA_ARCH:-90}
bench_steps=${TP_BENCH_STEPS:-20}
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    exec > >(tee "$OUT/gpu_suite.log") 2>&1
fi

names=()
results=()
notes=()
record() { # name result note
    names+=("$1")
    results+=("$2")
    notes+=("$3")
    echo "--- $1: $2${3:+ ($3)}"
}
# run_stage NAME TIMEOUT_S COMMAND...: PASS on exit 0
run_stage() {
    local name=$1 limit=$2 start rc
    shift 2
    echo
    echo "=== $name: $*"
    start=$(date +%s)
    timeout "$limit" "$@"
    rc=$?
    local took=$(($(date +%s) - start))s
    if [ $rc -eq 0 ]; then
        record "$name" PASS "$took"
    elif [ $rc -eq 124 ]; then
        record "$name" FAIL "timed out after ${limit}s"
    else
        record "$name" FAIL "exit $rc, $took"
    fi
    return $rc
}
skip() { record "$1" SKIP "$2"; }

# ---- device and toolchain ---------------------------------------------------------------
echo "=== device"
if command -v nvidia-smi > /dev/null && nvidia-smi; then
    record device PASS "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
else
    record device FAIL "nvidia-smi missing or failing"
fi

echo
echo "=== toolchain"
missing_tools=()
if ! command -v nvcc > /dev/null; then
    for candidate in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
        [ -x "$candidate/nvcc" ] && export PATH=$candidate:$PATH && break
    done
fi
if command -v nvcc > /dev/null; then nvcc --version | tail -2; else missing_tools+=(nvcc); fi
cuda_home=$(dirname "$(dirname "$(command -v nvcc 2> /dev/null || echo /usr/local/cuda/bin/nvcc)")")
cublas=$(find "$cuda_home/lib64/" "$cuda_home"/targets/*/lib/ -maxdepth 1 -name 'libcublas.so*' 2> /dev/null | head -1)
[ -z "$cublas" ] && cublas=$(ldconfig -p 2> /dev/null | grep -o '/[^ ]*libcublas\.so[^ ]*' | head -1)
if [ -n "$cublas" ]; then echo "cuBLAS: $cublas"; else missing_tools+=(cuBLAS); fi
for tool in cmake gcc make; do
    if command -v $tool > /dev/null; then echo "$tool: $($tool --version | head -1)"; else missing_tools+=("$tool"); fi
done
if [ ${#missing_tools[@]} -eq 0 ]; then record toolchain PASS "nvcc, cuBLAS, cmake, gcc"; else
    record toolchain FAIL "missing: ${missing_tools[*]}"; fi

# ---- host libraries (Debian: libopenblas-openmp-dev, libcjson-dev, libutf8proc-dev) ------
echo
echo "=== host libraries"
cmake_args=()
missing_libs=()
from_deps=()
multiarch=/usr/lib/x86_64-linux-gnu
# need NAME CACHE_VAR SYSTEM_FILE DEPS_FILE: the system file, else the carried one, else missing
need() {
    if [ -e "$3" ] && [ -z "${TP_FORCE_DEPS:-}" ]; then
        echo "$1: $3"
    elif [ -e "$deps/$4" ]; then
        echo "$1: missing on this machine; using $deps/$4"
        [ -n "$2" ] && cmake_args+=("-D$2=$deps/$4")
        from_deps+=("$1")
    else
        echo "$1: MISSING ($3)"
        missing_libs+=("$1")
    fi
}
need "OpenBLAS library (libopenblas-openmp-dev)" OPENBLAS_LIB "$multiarch/openblas-openmp/libopenblas.so" lib/libopenblas.so
need "OpenBLAS cblas.h (libopenblas-openmp-dev)" OPENBLAS_INCLUDE \
    /usr/include/x86_64-linux-gnu/openblas-openmp/cblas.h include
need "cJSON library (libcjson-dev)" CJSON_LIB "$multiarch/libcjson.so" lib/libcjson.so
need "cJSON header (libcjson-dev)" "" /usr/include/cjson/cJSON.h include/cjson/cJSON.h
need "utf8proc library (libutf8proc-dev)" UTF8PROC_LIB "$multiarch/libutf8proc.so" lib/libutf8proc.so
need "utf8proc header (libutf8proc-dev)" "" /usr/include/utf8proc.h include/utf8proc.h
if [ ${#from_deps[@]} -gt 0 ]; then
    export CPATH=$deps/include${CPATH:+:$CPATH}
    export LIBRARY_PATH=$deps/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
    export LD_LIBRARY_PATH=$deps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
if [ ${#missing_libs[@]} -eq 0 ]; then
    record "host libraries" PASS "${#from_deps[@]} taken from build-gpu-deps"
else
    record "host libraries" FAIL "missing: ${missing_libs[*]}; carry build-gpu-deps (tests/gpu/pack_deps.sh)"
fi

# NCCL is loaded at run time (cuda/cuda_nccl.cu): the system's, CUDA's, else the nvidia-nccl wheel
# that PyTorch brings.
if [ -z "${TP_NCCL_LIBRARY:-}" ]; then
    TP_NCCL_LIBRARY=$({
        ldconfig -p 2> /dev/null | grep -o '/[^ ]*libnccl\.so\.2$'
        ls "$cuda_home"/lib*/libnccl.so.2 "$cuda_home"/targets/*/lib/libnccl.so.2 2> /dev/null
        for site in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2> /dev/null); do
            ls "$site"/nvidia/nccl/lib/libnccl.so.2 "$site"/nvidia/cu*/lib/libnccl.so.2 2> /dev/null
        done
    } | head -1)
fi
if [ -n "$TP_NCCL_LIBRARY" ]; then
    export TP_NCCL_LIBRARY
    echo "NCCL: $TP_NCCL_LIBRARY"
else
    echo "NCCL: libnccl.so.2 not found (the NCCL stage will skip)"
fi

# ---- build ----------------------------------------------------------------------------
# TP_GPU_BIN=DIR: test binaries built elsewhere for this GPU's architecture (saves the lease's
# minutes); used when every library they need resolves here, else the suite builds as usual.
built=0
gpu_programs=(test_gpu_ops test_gpu_train test_gpu_nccl tp-pretrain tp-preprocess tp-finetune tp-infer)
if [ -n "${TP_GPU_BIN:-}" ] && (cd "$TP_GPU_BIN" && ls "${gpu_programs[@]}" > /dev/null && ! ldd "${gpu_programs[@]}" |
    grep -q "not found"); then
    build=$(cd "$TP_GPU_BIN" && pwd)
    skip configure "prebuilt binaries in $TP_GPU_BIN"
    record build PASS "prebuilt, libraries resolve"
    built=1
elif [ ${#missing_tools[@]} -ne 0 ] || [ ${#missing_libs[@]} -ne 0 ]; then
    skip configure "toolchain or libraries missing"
    skip build "toolchain or libraries missing"
elif run_stage configure 180 cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES="$arch" -DTP_MPI=OFF -DTP_SENTENCEPIECE=OFF "${cmake_args[@]}"; then
    if ! grep -q TP_HAVE_CUDA "$build/CMakeFiles/tp.dir/flags.make" 2> /dev/null; then
        echo "warning: CMake did not enable the CUDA backend (see the configure output): the GPU tests will skip"
    fi
    run_stage build 300 cmake --build "$build" -j"$(nproc)" --target "${gpu_programs[@]}" && built=1
else
    skip build "configure failed"
fi

# ---- GPU stages ---------------------------------------------------------------------------
# A test that prints "skipped:" found no device or no CUDA build: that is a FAIL here.
gpu_test() { # name limit command...
    local name=$1 limit=$2 log
    shift 2
    log=$(mktemp)
    # shellcheck disable=SC2016 # $0 and $@ belong to the inner bash
    # The test's output goes to the screen and to $log; pipefail gives its exit status.
    run_stage "$name" "$limit" bash -c 'set -o pipefail; "$@" 2>&1 | tee "$0"' "$log" "$@"
    local rc=$?
    if [ "$rc" -eq 0 ] && grep -q "^skipped:" "$log"; then
        results[${#results[@]} - 1]=FAIL
        notes[${#notes[@]} - 1]="skipped: no device or no CUDA build"
        echo "--- $name: FAIL (the test skipped itself)"
    fi
    [ -n "${OUT:-}" ] && cp "$log" "$OUT/$name.txt"
    rm -f "$log"
}
# bench_precision PRECISION: BERT-base training steps in tp, then the same model in PyTorch (the
# TencentPretrain-semantics reference, bench/bert_torch.py) on the same GPU; the ratio is tp/torch.
bench_precision() {
    local precision=$1 log tp_tokens peak torch_tokens note
    log=$(mktemp)
    echo
    echo "=== bench $precision: BERT-base, batch 32 x seq 128, $bench_steps steps after 2 warm-up steps"
    timeout 240 "$build/test_gpu_train" --bench models/bert/base_config.json "$bench_steps" 32 128 "$precision" |
        tee "$log"
    tp_tokens=$(grep -o '[0-9]* tokens/s' "$log" | head -1 | cut -d' ' -f1)
    peak=$(grep -o 'of [0-9]* TFLOP/s' "$log" | head -1 | cut -d' ' -f2)
    if [ -z "$tp_tokens" ]; then
        record "bench $precision" FAIL "tp bench failed"
    else
        note="tp $tp_tokens tok/s$(grep -o ', MFU [0-9.]*%' "$log" | head -1)"
        if [ "$torch_ok" = 1 ]; then
            timeout 300 python3 bench/bert_torch.py --configs base --device cuda --batch-size 32 \
                --precision "$precision" --steps "$bench_steps" --peak-flops "${peak:-1}e12" | tee -a "$log"
            torch_tokens=$(grep -o '"tokens_per_s_median": [0-9.]*' "$log" | head -1 | cut -d' ' -f2)
            [ -n "$torch_tokens" ] && note="$note; torch $torch_tokens tok/s; tp/torch $(awk -v a="$tp_tokens" \
                -v b="$torch_tokens" 'BEGIN { printf "%.2f", a / b }')"
        fi
        record "bench $precision" PASS "$note"
    fi
    [ -n "${OUT:-}" ] && cat "$log" >> "$OUT/bench.txt"
    rm -f "$log"
}

if [ $built -eq 1 ]; then
    gpu_test test_gpu_ops 120 "$build/test_gpu_ops"
    gpu_test test_gpu_train 240 "$build/test_gpu_train"
    gpu_test test_gpu_programs 300 bash tests/gpu/test_gpu_programs.sh "$build"
    gpu_test test_gpu_media 180 bash tests/gpu/test_gpu_media.sh "$build"
    if [ -n "$TP_NCCL_LIBRARY" ]; then
        gpu_test test_gpu_nccl 120 "$build/test_gpu_nccl"
    else
        skip test_gpu_nccl "libnccl.so.2 not found"
    fi
    gpu_test test_gpu_finetune 300 bash tests/gpu/test_gpu_finetune.sh "$build" "${TP_GPU_TASKS:-}"
    torch_ok=0
    python3 -c 'import torch; assert torch.cuda.is_available()' 2> /dev/null && torch_ok=1
    for precision in fp32 tf32 bf16; do bench_precision "$precision"; done
    # TP_GPU_PROFILE=1: one BERT-base training step under Nsight Compute, kernels by total time.
    if [ -n "${TP_GPU_PROFILE:-}" ] && command -v ncu > /dev/null; then
        profile_csv=$(mktemp)
        profile_table=$(mktemp)
        run_stage profile 240 bash -c 'ncu --csv --clock-control none --metrics gpu__time_duration.sum \
            --launch-skip 4000 --launch-count 4000 "$1" --bench models/bert/base_config.json 3 32 128 \
            "${TP_GPU_PROFILE_PRECISION:-tf32}" > "$2" && python3 tests/gpu/profile.py "$2" > "$3"' _ \
            "$build/test_gpu_train" "$profile_csv" "$profile_table"
        cat "$profile_table"
        [ -n "${OUT:-}" ] && cp "$profile_table" "$OUT/profile.txt"
        rm -f "$profile_csv" "$profile_table"
    fi
    # Out-of-bounds and uninitialised accesses that a lucky comparison would not show.
    if command -v compute-sanitizer > /dev/null; then
        gpu_test memcheck 120 compute-sanitizer --error-exitcode 3 --print-limit 20 "$build/test_gpu_ops"
    else
        skip memcheck "no compute-sanitizer"
    fi
else
    for name in test_gpu_ops test_gpu_train test_gpu_programs test_gpu_media test_gpu_nccl bench memcheck; do
        skip "$name" "not built"
    done
fi

# ---- summary ------------------------------------------------------------------------------
failed=0
{
    echo
    echo "=== summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -1))"
    for i in "${!names[@]}"; do
        printf '%-18s %-5s %s\n' "${names[$i]}" "${results[$i]}" "${notes[$i]}"
        [ "${results[$i]}" = FAIL ] && failed=$((failed + 1))
    done
    echo "$failed stage(s) failed"
} | tee ${OUT:+"$OUT/summary.txt"}
for r in "${results[@]}"; do [ "$r" = FAIL ] && exit 1; done
exit 0
