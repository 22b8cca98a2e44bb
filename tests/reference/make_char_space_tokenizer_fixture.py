#!/usr/bin/env python3
"""Writes the char / space tokenizer fixture in tests/fixtures/char_space/.

TencentPretrain's CharTokenizer and SpaceTokenizer (tencentpretrain/utils/tokenizers.py) are,
with its vocabulary lookup,
    char:  [vocab.get(t, UNK) for t in list(text.strip())]
    space: [vocab.get(t, UNK) for t in text.strip().split(" ")]
TencentPretrain is not on PyPI; these two lines are its code, and everything they do is
Python's own str.strip / str.split / list, which are the reference here.

  char.ids.gz, space.ids.gz   per line of tests/fixtures/wordpiece/sample.txt, with
                              bert-base-uncased's vocabulary ([UNK] = 100), gzip -n
  char_cases.txt, space_cases.txt
                              "<input bytes in hex><TAB><ids>": white space and bytes a text file
                              cannot hold; invalid UTF-8 is decoded with errors="replace" first

Usage (from the repository root; any Python 3):
  scripts/fetch_data.sh && /usr/bin/python3 tests/reference/make_char_space_tokenizer_fixture.py
"""
import gzip
import os
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE_DIR = os.path.join(REPO, "tests", "fixtures", "char_space")
SAMPLE = os.path.join(REPO, "tests", "fixtures", "wordpiece", "sample.txt")
VOCAB = os.path.join(REPO, "data", "vocab", "bert-base-uncased-vocab.txt")

CASES = [
    b"", b" ", b"   ", b"a", b" a ", b"a  b", b"a b c", b"  leading and trailing  ", b"\ttab\tinside\t",
    b"\x1c\x1dinformation separators\x1e\x1f", "\u00a0nbsp\u3000ideographic\u2003em\u0085".encode(),
    "\u4e2d\u6587 \u5206\u8bcd".encode(), b"[CLS] [SEP] [MASK]", b"hello world the of and",
    b"ab\xffcd", b"\xe4\xb8 truncated", b"caf\xc3", b"\xed\xa0\x80 surrogate", b"x\x00y",
]


def main():
    if not os.path.exists(VOCAB):
        sys.exit(f"{VOCAB} is missing: run scripts/fetch_data.sh")
    with open(VOCAB, encoding="utf-8", newline="") as f:
        vocab = {token: i for i, token in enumerate(f.read().split("\n")[:-1])}
    unk = vocab["[UNK]"]
    kinds = {
        "char": lambda text: [vocab.get(t, unk) for t in list(text.strip())],
        "space": lambda text: [vocab.get(t, unk) for t in text.strip().split(" ")],
    }
    with open(SAMPLE, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    for name, tokenize in kinds.items():
        body = "".join(" ".join(map(str, tokenize(line))) + "\n" for line in lines).encode()
        with open(os.path.join(FIXTURE_DIR, name + ".ids.gz"), "wb") as f:
            f.write(gzip.compress(body, compresslevel=9, mtime=0))
        with open(os.path.join(FIXTURE_DIR, name + "_cases.txt"), "w", encoding="utf-8", newline="\n") as f:
            for case in CASES:
                ids = tokenize(case.decode("utf-8", errors="replace"))
                f.write(case.hex() + "\t" + " ".join(map(str, ids)) + "\n")
    print(f"wrote {len(lines)} lines per kind to {FIXTURE_DIR}")


if __name__ == "__main__":
    main()
