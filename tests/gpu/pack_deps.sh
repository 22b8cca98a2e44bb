#!/usr/bin/env bash
# Packs the host libraries libtp links (OpenBLAS OpenMP build, cJSON, utf8proc) from THIS Debian
# machine into build-gpu-deps/ (gitignored, about 40 MiB), for a GPU machine that lacks the Debian
# packages and has no network: pass it along (the run tool's carry: ["build-gpu-deps"]) and
# tests/gpu/run.sh uses it for whatever the GPU machine is missing.  The libraries need glibc >= 2.29.
#   tests/gpu/pack_deps.sh [BIN_DIR]   with prebuilt binaries (TP_GPU_BIN): also every shared library
#                                      they load from the Debian system (the media, SentencePiece and
#                                      Fortran libraries...), except glibc's, libstdc++/libgcc_s (the
#                                      GPU image's newer ones serve) and CUDA's.
#   tests/gpu/pack_deps.sh --loaded-only DEST BIN_DIR
#                                      only the libraries BIN_DIR's programs load, into DEST/lib (the
#                                      fuzz harnesses: tests/fuzz/smoke.sh --no-build, docs/fuzz-ledger.md)
set -eu
cd "$(dirname "$0")/../.."
deps=build-gpu-deps
multiarch=/usr/lib/x86_64-linux-gnu
# copy_loaded_libraries BIN_DIR: what the programs load from the Debian system into $deps/lib.
copy_loaded_libraries() {
    for library in $(ldd "$1"/* | awk '$3 ~ /^\// { print $3 }' | sort -u); do
        case "$library" in
        /usr/local/* | */libc.so.* | */libm.so.* | */libpthread.so.* | */libdl.so.* | */librt.so.* | \
            */ld-linux* | */libstdc++.so.* | */libgcc_s.so.* | */libgomp.so.*) ;;
        *) [ -e "$deps/lib/$(basename "$library")" ] || cp -L "$library" "$deps/lib/" ;;
        esac
    done
}
if [ "${1:-}" = --loaded-only ]; then
    deps=${2:?usage: pack_deps.sh --loaded-only DEST BIN_DIR}
    mkdir -p "$deps/lib"
    copy_loaded_libraries "${3:?usage: pack_deps.sh --loaded-only DEST BIN_DIR}"
    du -sh "$deps"
    exit 0
fi
rm -rf "$deps"
mkdir -p "$deps/include/cjson" "$deps/lib"
cp /usr/include/x86_64-linux-gnu/openblas-openmp/{cblas.h,openblas_config.h} "$deps/include/"
cp /usr/include/cjson/cJSON.h "$deps/include/cjson/"
cp /usr/include/utf8proc.h "$deps/include/"
# OpenBLAS and the Fortran runtime it needs; libgomp comes with the GPU machine's gcc.
cp -L "$multiarch/openblas-openmp/libopenblas.so.0" "$deps/lib/libopenblas.so.0"
ln -s libopenblas.so.0 "$deps/lib/libopenblas.so"
cp -L "$multiarch/libgfortran.so.5" "$multiarch/libquadmath.so.0" "$deps/lib/"
cp -L "$multiarch/libcjson.so.1" "$deps/lib/libcjson.so.1"
ln -s libcjson.so.1 "$deps/lib/libcjson.so"
cp -L "$multiarch/libutf8proc.so.2" "$deps/lib/libutf8proc.so.2"
ln -s libutf8proc.so.2 "$deps/lib/libutf8proc.so"
[ -n "${1:-}" ] && copy_loaded_libraries "$1"
du -sh "$deps"
