#!/usr/bin/env bash
# Creates (or reuses) data/venv-ref: the Python environment that the fixture
# generators in tests/reference/ run in.  It is built on Debian's /usr/bin/python3
# with --system-site-packages so that Debian's python3-torch 1.13 and numpy stay
# visible; only the reference libraries below come from PyPI.
#
# Idempotent: the installed pins are recorded in data/venv-ref/.tp-requirements;
# a rerun with the same pins does nothing.  Safe to run concurrently (flock).
#
# Usage: tests/reference/setup_env.sh        then  data/venv-ref/bin/python script.py
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv="$repo_root/data/venv-ref"
# transformers 4.46 is the last minor series whose PyTorch models accept torch 1.13
# (later ones require torch >= 2.0); tokenizers/safetensors/huggingface-hub match it.
# sentence-transformers 3.0.1 (accepts transformers 4.46 and torch 1.13) checks
# make_minilm_fixture.py; tiktoken regenerates the GPT-2 BPE fixture; sacrebleu checks core/bleu.c (make_bleu_fixture.py); numpy is pinned to Debian's 1.24.2 because its scipy/scikit-learn
# dependencies would otherwise pull numpy 2.x, which Debian's torch 1.13 cannot use.
requirements="transformers==4.46.3
tokenizers==0.20.3
safetensors==0.4.5
huggingface-hub==0.26.5
numpy==1.24.2
sentence-transformers==3.0.1
scipy==1.11.4
scikit-learn==1.3.2
joblib==1.3.2
threadpoolctl==3.2.0
tiktoken==0.14.0
sacrebleu==2.4.3"

fail() { echo "setup_env.sh: error: $*" >&2; exit 1; }

[ -x /usr/bin/python3 ] || fail "/usr/bin/python3 not found (Debian's python3 is required)"
mkdir -p "$repo_root/data"
exec 9>"$repo_root/data/.venv-ref.lock"
flock 9

stamp="$venv/.tp-requirements"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$requirements" ] && [ -x "$venv/bin/python" ]; then
    echo "setup_env.sh: $venv is up to date"
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "setup_env.sh: creating $venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv" || fail "python3 -m venv failed (apt-get install python3-venv)"
fi
echo "setup_env.sh: installing into $venv:" $requirements
printf '%s\n' "$requirements" >"$venv/requirements.txt"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$venv/requirements.txt" \
    || fail "pip install into $venv failed"
"$venv/bin/python" -c "import torch, transformers, tokenizers, safetensors, sentence_transformers" \
    || fail "the reference packages do not import in $venv"
printf '%s\n' "$requirements" >"$stamp"
echo "setup_env.sh: $venv ready (torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)'))"
