#!/usr/bin/env bash
# Builds a real tagging task from the Python documentation's reST sources (Debian's python3.11-doc,
# the same pages as data/corpus/pretrain.txt; scripts/fetch_data.sh fetches it): in the prose, the
# inline roles mark real entities.  Words inside :func:`...` / :meth:`...` become FUNC,
# :class:`...` / :exc:`...` CLASS, :mod:`...` MOD and ``...`` CODE (BIO tags: B- on the first word,
# I- on the others); every other word is O.  The markup is stripped as the reader sees it
# (`~a.b` -> b, `title <target>` -> title, `!x` -> x); other roles (:ref:, :term:, :pep:, ...) keep
# their text as O words, and sentences holding a role of unclear kind (:attr:, :data:, :const:,
# :c:..., ...) are dropped rather than tagged wrongly.
# Output: TencentPretrain's tagging TSV (run_ner.py: header "label<TAB>text_a", label = one tag per
# space-separated word) in OUT_DIR/{train,dev,test}.tsv.  Sentences of 4..48 words with at least
# one entity.  Split by page: the k-th page (sorted paths) goes to dev when k % 10 == 8, to test
# when k % 10 == 9, else to train.
# Usage: scripts/make_pydoc_tagging_task.sh OUT_DIR
set -euo pipefail
out=${1:?usage: make_pydoc_tagging_task.sh OUT_DIR}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sources=/usr/share/doc/python3.11/html/_sources
[ -d "$sources" ] || sources="$repo/data/cache/debs/python3.11-doc/usr/share/doc/python3.11/html/_sources"
[ -d "$sources" ] || { echo "make_pydoc_tagging_task.sh: python3.11-doc sources missing (run scripts/fetch_data.sh)" >&2; exit 1; }
mkdir -p "$out"
/usr/bin/python3 - "$sources" "$out" <<'PY'
import os, re, sys

KINDS = {"func": "FUNC", "meth": "FUNC", "class": "CLASS", "exc": "CLASS", "mod": "MOD"}
AS_TEXT = {"ref", "term", "pep", "rfc", "dfn", "file", "program", "option", "envvar", "samp", "keyword",
           "abbr", "doc", "mailheader", "manpage", "kbd", "menuselection", "guilabel", "source", "emphasis",
           "strong", "newsgroup", "mimetype", "makevar", "token", "numref", "sub", "sup"}
ROLE = re.compile(r":([\w:.-]+):`([^`]*)`|``(.+?)``")


def shown(content):
    """What Sphinx shows for a role's content."""
    content = re.sub(r"\s*<[^>]*>$", "", content.strip()) if content.strip().endswith(">") else content.strip()
    content = content.lstrip("!")
    if content.startswith("~"):
        content = content[1:].split(".")[-1]
    return content


def plain(text):
    """Plain words of text between roles: other inline markup stripped."""
    text = re.sub(r"`([^`<]*?)\s*<[^`>]*>`__?", r"\1", text)
    text = re.sub(r"`([^`]+)`(__?)?", r"\1", text)
    text = re.sub(r"\*\*(.+?)\*\*|\*(\S(?:.*?\S)?)\*", lambda m: m.group(1) or m.group(2), text)
    text = re.sub(r"\[(#\w*|\d+)\]_", "", text).replace("\\ ", "").replace("\\", "")
    return text.split()


def tagged_words(paragraph):
    """(word, tag) pairs of a paragraph, or None when it holds a role of unclear kind."""
    words, last = [], 0
    for m in ROLE.finditer(paragraph):
        words += [(w, "O") for w in plain(paragraph[last:m.start()])]
        last = m.end()
        role, content = m.group(1), m.group(2) if m.group(1) else m.group(3)
        if role is None:
            kind, text = "CODE", content.strip()
        elif role in KINDS:
            kind, text = KINDS[role], shown(content)
        elif role in AS_TEXT:
            words += [(w, "O") for w in shown(content).split()]
            continue
        else:
            return None
        for i, word in enumerate(text.split()):
            words.append((word, ("B-" if i == 0 else "I-") + kind))
    return words + [(w, "O") for w in plain(paragraph[last:])]


def paragraphs(lines):
    """Unindented prose paragraphs: no titles, directives, literal blocks, tables or lists."""
    para = []
    for line in lines + [""]:
        if line.strip() and not line.startswith((" ", "\t", "..", ">>>", "+", "|", "=", "-", "*", "#")) \
                and not re.match(r"^([=\-~^*#\"'+`:.])\1{2,}$", line.strip()):
            para.append(line.strip())
            continue
        if len(para) >= 1 and not para[-1].endswith("::"):
            yield " ".join(para)
        para = []


def sentences(words):
    """Split after an O word ending in . ! ? when the next word starts with a capital letter."""
    start = 0
    for i, (word, tag) in enumerate(words):
        if tag == "O" and word[-1] in ".!?" and i + 1 < len(words) and words[i + 1][0][:1].isupper():
            yield words[start:i + 1]
            start = i + 1
    yield words[start:]


source_root, out = sys.argv[1], sys.argv[2]
pages = sorted(os.path.join(d, f) for d, _, fs in os.walk(source_root) for f in fs if f.endswith(".rst.txt"))
files = {s: open(os.path.join(out, s + ".tsv.tmp"), "w", encoding="utf-8") for s in ("train", "dev", "test")}
for f in files.values():
    f.write("label\ttext_a\n")
counts = dict.fromkeys(files, 0)
for k, page in enumerate(pages):
    split = {8: "dev", 9: "test"}.get(k % 10, "train")
    with open(page, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for paragraph in paragraphs(lines):
        words = tagged_words(paragraph)
        if not words:
            continue
        for sentence in sentences(words):
            if not 4 <= len(sentence) <= 48 or all(tag == "O" for _, tag in sentence):
                continue
            if any("\t" in w for w, _ in sentence):
                continue
            files[split].write(" ".join(t for _, t in sentence) + "\t" + " ".join(w for w, _ in sentence) + "\n")
            counts[split] += 1
for name, f in files.items():
    f.close()
    os.replace(f.name, f.name[:-4])
print(f"make_pydoc_tagging_task.sh: {counts['train']} train, {counts['dev']} dev, {counts['test']} test sentences in {out}")
PY
