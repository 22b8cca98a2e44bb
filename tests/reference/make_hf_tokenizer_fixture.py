#!/usr/bin/env python3
"""The reference ids for tests/tokenizers/test_hf_tokenizer.c, made at test time by Hugging
Face's tokenizers library (the wheel scripts/fetch_data.sh unpacks) from the same
tokenizer.json that tp reads:

  OUT/sample.ids   per line of TEXT: Tokenizer.from_file(JSON).encode(line, add_special_tokens=False).ids
  OUT/cases.txt    "<input bytes in hex><TAB><ids>" for the inputs below (added tokens, white space,
                   normalisation, bytes a text file cannot hold; invalid UTF-8 decoded with
                   errors="replace" first, tp's documented convention)

Padding and truncation settings in the file are switched off (tp's encode neither pads nor cuts).

Usage: PYTHONPATH=data/cache/python/tokenizers-0.20.3 /usr/bin/python3 \\
           tests/reference/make_hf_tokenizer_fixture.py JSON TEXT OUT
"""
import os
import sys

from tokenizers import Tokenizer

CASES = [
    b"", b" ", b"  ", b"a", b" a", b"a  b", b"  lead and trail  ", b"Hello, WORLD!", b"tab\there\nnewline",
    b"[CLS] x [SEP] y [MASK] [PAD] [UNK] [cls]", b"<s> a </s> b <pad> <unk> <mask> c<mask>d  <mask>",
    b"<|endoftext|>x <|endoftext|> ", b"don't I'M 'll", b"na\xc3\xafve caf\xc3\xa9 \xef\xbc\xa1\xef\xbc\xa2 \xef\xac\x81",
    "\u4e2d\u6587\u5206\u8bcd \u6771\u4eac\u3000\u3042 \ud55c\uad6d\uc5b4".encode(),
    "\U0001f600\U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469 e\u0301 \uff21\u0301 \u2460 \u00bd".encode(),
    "\u0085x\u2028y\u00a0z\u200bw\u00adv".encode(), b"ab\x00cd", b"ab\xffcd", b"\xe4\xb8 truncated", b"caf\xc3",
    b"x" * 300, "\u4e2d".encode() * 200, b"   \xe2\x96\x81 meta\xe2\x96\x81space",
]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    json_path, text_path, out = sys.argv[1:]
    tokenizer = Tokenizer.from_file(json_path)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    with open(text_path, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    os.makedirs(out, exist_ok=True)
    encode = lambda text: " ".join(map(str, tokenizer.encode(text, add_special_tokens=False).ids))
    with open(os.path.join(out, "sample.ids"), "w", encoding="utf-8") as f:
        f.write("".join(encode(line) + "\n" for line in lines))
    with open(os.path.join(out, "cases.txt"), "w", encoding="utf-8") as f:
        f.write("".join(case.hex() + "\t" + encode(case.decode("utf-8", errors="replace")) + "\n" for case in CASES))


if __name__ == "__main__":
    main()
