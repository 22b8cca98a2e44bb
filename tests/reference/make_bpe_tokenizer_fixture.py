#!/usr/bin/env python3
"""Writes the GPT-2 byte-level BPE parity fixture in tests/fixtures/bpe/.

  sample.ids.gz      per line of tests/fixtures/wordpiece/sample.txt (220 KB of real text:
                     Python docs, CPython's CJK test texts, hard cases): the ids of tiktoken's
                     GPT-2 encoding (encode_ordinary), space-separated, gzip -n
  cases.txt          "<input bytes in hex><TAB><ids>": inputs aimed at the pre-tokenisation regex
                     and at bytes a text file cannot hold; invalid UTF-8 is decoded with
                     errors="replace" first (tp's documented convention)
  special_cases.txt  the same with <|endoftext|> recognised in the text (allowed_special="all")

The reference is tiktoken (the library OpenAI's GPT-2 encoding lives in) built from
data/vocab/gpt2/gpt2.tiktoken with GPT-2's pattern; Hugging Face's GPT2TokenizerFast on the
vocab.json/merges.txt that scripts/fetch_data.sh derives must give the same ids on every input
(checked here), which also checks the derivation.  Deterministic.

Usage (from the repository root):
  scripts/fetch_data.sh && tests/reference/setup_env.sh
  data/venv-ref/bin/pip install tiktoken==0.14.0     # not in setup_env.sh's pins (yet)
  data/venv-ref/bin/python tests/reference/make_bpe_tokenizer_fixture.py
"""
import base64
import gzip
import os
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE_DIR = os.path.join(REPO, "tests", "fixtures", "bpe")
SAMPLE = os.path.join(REPO, "tests", "fixtures", "wordpiece", "sample.txt")
GPT2_DIR = os.path.join(REPO, "data", "vocab", "gpt2")
# GPT-2's pattern as tiktoken spells it (r50k_base): the same matches as the original
# 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

# Inputs for the regex and the byte-level map (written for tp).
CASES = [
    b"", b" ", b"  ", b"\n", b"\n\n\n", b"a", b" a", b"  a", b"   a b  c   ", b"a\n\nb", b"a \n b", b"\t\ta",
    b"trailing spaces   ", b"  leading", b"a\r\nb", b"tab\there", b"x \t\n y",
    b"I'm you're we've they'll he'd it's don't", b"I'M YOU'RE DON'T 'S 'T", b"''s '' ' 's", b"rock'n'roll",
    b"'sx 'llama 'ree 'vex 'd", b"x's", b" 's", b"'", b"''",
    b"hello world", b"Hello World!", b"12345 678 9.5e10 3,000", b"$100 50% a+b=c", b"====== ------ ******",
    b"foo.bar(baz)", b"def f(x):\n    return x ** 2\n", b"<|endoftext|>", b"a<|endoftext|>b", b"<|endoftext",
    "na\u00efve caf\u00e9 \u00a0nbsp \u2003em\u3000ideographic".encode(),
    "\u4e2d\u6587\u5206\u8bcd\u6d4b\u8bd5 \u6771\u4eac 123\u4e2d".encode(),
    "\U0001f600\U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467 \u2764\ufe0f".encode(),
    "\u0661\u0662\u0663 \u0967\u0968 \u2167 \u00bd x\u00b2".encode(),
    "e\u0301 a\u0308 \u0915\u094d\u0937".encode(),
    "\u0085next\u2028line\u2029para\u001cfs\u001fus".encode(),
    b"ab\x00cd nul", b"ab\xffcd invalid byte", b"\xe4\xb8 truncated \xe4\xb8\x41", b"\xc0\xafx overlong",
    b"\xed\xa0\x80x surrogate", b"caf\xc3", b"\x80\x80 stray \xbf", b"\xfe\xff",
    b"x" * 300, b"ab" * 200, "\u4e2d".encode() * 300, b" " * 100 + b"x",
]
SPECIAL_CASES = [
    b"<|endoftext|>", b"a<|endoftext|>b", b" <|endoftext|> ", b"<|endoftext|><|endoftext|>", b"<|endoftext",
    b"text <|endoftext|>\n\nnext document", b"<|endoftext|>\xff",
]


def load_tiktoken():
    try:
        import tiktoken
    except ImportError:
        sys.exit("tiktoken is missing: data/venv-ref/bin/pip install tiktoken==0.14.0")
    ranks = {}
    with open(os.path.join(GPT2_DIR, "gpt2.tiktoken"), "rb") as f:
        for line in f.read().splitlines():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    encoding = tiktoken.Encoding(name="gpt2_from_whisper", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                 special_tokens={"<|endoftext|>": 50256})
    return tiktoken, encoding


def main():
    if not os.path.exists(os.path.join(GPT2_DIR, "merges.txt")):
        sys.exit(f"{GPT2_DIR} is missing: run scripts/fetch_data.sh")
    tiktoken, encoding = load_tiktoken()
    from transformers import GPT2TokenizerFast

    hf = GPT2TokenizerFast(vocab_file=os.path.join(GPT2_DIR, "vocab.json"),
                           merges_file=os.path.join(GPT2_DIR, "merges.txt"))

    def ordinary(text):
        ids = encoding.encode_ordinary(text)
        # HF recognises <|endoftext|> always: compare only where it is absent.
        if "<|endoftext|>" not in text and hf.encode(text) != ids:
            sys.exit(f"tiktoken and GPT2TokenizerFast differ on {text[:80]!r}")
        return ids

    with open(SAMPLE, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    body = "".join(" ".join(map(str, ordinary(line))) + "\n" for line in lines).encode()
    with open(os.path.join(FIXTURE_DIR, "sample.ids.gz"), "wb") as f:
        f.write(gzip.compress(body, compresslevel=9, mtime=0))

    def write_cases(name, cases, encode):
        with open(os.path.join(FIXTURE_DIR, name), "w", encoding="utf-8", newline="\n") as f:
            for case in cases:
                ids = encode(case.decode("utf-8", errors="replace"))
                f.write(case.hex() + "\t" + " ".join(map(str, ids)) + "\n")

    write_cases("cases.txt", CASES, ordinary)
    write_cases("special_cases.txt", SPECIAL_CASES, lambda text: encoding.encode(text, allowed_special="all"))
    print(f"wrote {len(lines)} lines ({body.count(b' ') + len(lines)} ids at most) with tiktoken "
          f"{tiktoken.__version__} to {FIXTURE_DIR}")


if __name__ == "__main__":
    main()
