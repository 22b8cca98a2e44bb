#!/usr/bin/env python3
"""Writes tests/fixtures/bleu.json: sacreBLEU 2.4.3's 13a tokenization of tricky lines and its
corpus BLEU (sacrebleu.corpus_bleu(hypotheses, [references]), all defaults) of small corpora, for
tests/unit/test_bleu.c.

    data/venv-ref/bin/python tests/reference/make_bleu_fixture.py

The corpora are built from real text, lines of Debian's /usr/share/common-licenses/GPL-3
(references), with hypotheses made from them by seeded random edits (dropped, swapped and
replaced words, changed punctuation); plus edge cases: one empty hypothesis, no matching word,
hypotheses longer than the references, a single short pair.
"""
import json
import os
import random

import sacrebleu
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(REPO_ROOT, "tests", "fixtures", "bleu.json")

TRICKY = [
    "Hello, world.", "It costs $3.50, or 3,000 yen.", "1990-2000 and well-known e-mail", "a.b,c .d ,e 5.x x.5",
    "&quot;quoted&quot; &amp; &lt;tag&gt;", "line one-\nline two\nline three", "<skipped> gone", "tabs\tand  spaces   ",
    "(parens) [brackets] {braces} ~tilde~ `back` ^caret^ _under_ |pipe|", "x@y.com #tag 100% a+b=c; d:e? f!",
    "naïve café, déjà-vu.", "non\u00a0breaking\u2003em space", "trailing dash- 5- -5", "..., .,. 3..4 3,,4",
    "path/to/file", "", "   ", "ü.ö,ä", "digits 1.2.3 and 1,2,3.", "end with period.",
]


def edit(words, rng):
    words = list(words)
    for i in range(len(words)):
        r = rng.random()
        if r < 0.1 and len(words) > 1:
            words[i] = ""
        elif r < 0.2 and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
        elif r < 0.28:
            words[i] = rng.choice(["the", "program", "License", "of", "and", "software,", "you."])
    return " ".join(w for w in words if w)


def corpus(name, hyps, refs):
    bleu = sacrebleu.corpus_bleu(hyps, [refs])
    return {"name": name, "hypotheses": hyps, "references": refs, "score": bleu.score, "counts": bleu.counts,
            "totals": bleu.totals, "sys_len": bleu.sys_len, "ref_len": bleu.ref_len,
            "precisions": bleu.precisions, "bp": bleu.bp}


def main():
    with open("/usr/share/common-licenses/GPL-3", encoding="utf-8") as f:
        lines = [line.strip() for line in f if len(line.split()) >= 6]
    rng = random.Random(5)
    refs = lines[20:60]
    hyps = [edit(ref.split(), rng) for ref in refs]
    tokenizer = Tokenizer13a()
    cases = [
        corpus("gpl3_edited_40", hyps, refs),
        corpus("gpl3_edited_5", hyps[:5], refs[:5]),
        corpus("one_empty_hypothesis", [""] + hyps[1:6], refs[:6]),
        corpus("no_match", ["zzz yyy", "qqq"], refs[:2]),
        corpus("longer_hypotheses", [r + " " + r for r in refs[:4]], refs[:4]),
        corpus("short_pair", ["the cat"], ["the cat sat"]),
        corpus("tricky_lines", TRICKY[:10], TRICKY[10:]),
    ]
    data = {"sacrebleu": sacrebleu.__version__, "tokenize_13a": [[t, tokenizer(t.rstrip())] for t in TRICKY + refs[:5]],
            "corpora": cases}
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
