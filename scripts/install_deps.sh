#!/usr/bin/env bash
# Installs the Debian packages tp needs (idempotent: does nothing when all are present).
set -euo pipefail
packages=(build-essential cmake pkg-config libopenblas-openmp-dev libcjson-dev libutf8proc-dev clang)
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
