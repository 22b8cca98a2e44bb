#!/usr/bin/env python3
"""Writes the WordPiece parity fixture in tests/fixtures/wordpiece/.

  sample.txt         real text (Python docs + CPython's CJK test texts) and hand-picked
                     hard cases; built only with --rebuild-sample (it is committed)
  sample.ids         per line of sample.txt: the ids of Hugging Face's slow BertTokenizer
                     (transformers) with bert-base-uncased's vocab, do_lower_case=True
  sample.cased.ids   the same with do_lower_case=False (the cased pipeline: NFC, no accent
                     stripping) and the same vocabulary
  byte_cases.txt     inputs that cannot live in a text file (NUL, invalid UTF-8, CR LF):
                     "<input bytes in hex><TAB><ids>" per line; the reference decodes the
                     bytes with errors="replace" (tp's documented convention) before HF sees them

Lines are split on "\\n" only (not str.splitlines(), which also breaks at \\x0b, \\x1c,
U+2028, ...), exactly as the C test reads them.  Deterministic: rerunning it with the
same inputs rewrites identical files.

Usage (from the repository root):
  scripts/fetch_data.sh && tests/reference/setup_env.sh
  data/venv-ref/bin/python tests/reference/make_wordpiece_fixture.py [--rebuild-sample]
"""
import argparse
import glob
import hashlib
import logging
import os
import subprocess
import sys
import unicodedata

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE_DIR = os.path.join(REPO, "tests", "fixtures", "wordpiece")
VOCAB = os.path.join(REPO, "data", "vocab", "bert-base-uncased-vocab.txt")
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
DEB_CACHE = os.path.join(REPO, "data", "cache", "debs")

# Python documentation pages (python3.11-doc, PSF licence) rich in non-ASCII examples.
DOC_PAGES = ["howto/unicode.rst.txt", "library/unicodedata.rst.txt", "library/codecs.rst.txt",
             "whatsnew/3.3.rst.txt"]
DOC_ROOT = "/usr/share/doc/python3.11/html/_sources"
# CPython's CJK codec test texts (libpython3.11-testsuite, PSF licence), duplicates left out.
CJK_TEXTS = ["gb2312", "gbk", "gb18030", "hz", "big5", "big5hkscs", "euc_jp", "euc_jisx0213", "euc_kr",
             "cp949"]
CJK_ROOT = "/usr/lib/python3.11/test/cjkencodings"

# Hand-picked hard cases (written for tp).  Each string is one line of the sample.
HARD_CASES = [
    "Héllo Wörld! Ça va? Señor Müller's café: naïve coöperation, façade, résumé, Ångström.",
    "İstanbul, IĞDIR, ŞİŞLİ; Iıİi — dotted and dotless i; İ̇ (capital I with dot plus U+0307).",
    "中文分词测试：北京大学的学生在学习自然语言处理。abc中def，数字123和English混排。",
    "東京は日本の首都です。カタカナとひらがなとEnglish mixedテキスト、ｶﾀｶﾅ（半角）も。",
    "한국어 텍스트도 포함합니다. 조합형 한글: 한국어.",
    "Emoji: I ❤️ NLP 😀👍🏽 👨‍👩‍👧 🇫🇷🇯🇵 ☕️ 🎉✨ 🙂🙃 — and a keycap 1️⃣.",
    "Control characters: tab\there, vertical\x0btab, form\x0cfeed, unit\x1fseparator, delete\x7fchar, "
    "next\x85line, bell\x07ring, escape\x1b[0m, lone\rreturn.",
    "Invisible: zero\u200bwidth, joiner\u200d, soft\u00adhyphen, byte\ufefforder mark, "
    "word\u2060joiner, left\u200eto\u200fright, private\ue000use, unassigned\u0378code point, "
    "replacement\ufffdcharacter.",
    "Spaces: non\u00a0breaking, en\u2002space, em\u2003space, thin\u2009space, ideographic\u3000space, "
    "line\u2028separator, paragraph\u2029separator, narrow\u202fno-break, ogham\u1680mark.",
    "Long words: " + "a" * 99 + " " + "b" * 100 + " " + "c" * 101 + " " + "x" * 150,
    "Pneumonoultramicroscopicsilicovolcanoconiosis and antidisestablishmentarianism, "
    "and " + "ab" * 60 + "-hyphenated, and " + "é" * 101 + ".",
    "Punctuation: don't, won't, rock'n'roll, U.S.A., e.g., i.e., etc., «quotes», „Anführungszeichen“, "
    "“curly” ‘single’, ‹angle›, 「鉤括弧」, — em dash, – en dash, ‐ hyphen, …, ¿Qué? ¡Sí!",
    "ASCII symbols: $100, ^caret, `backtick`, ~tilde, @user, #hashtag, 50%, a&b, a|b, a\\b, "
    "C++ and C# and F#, x<=y>=z, {braces} [brackets] (parens), under_score, ==> <-- ...",
    "Greek: Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο. ΟΔΟΣ, Σίσυφος, ΣΟΦΟΣ, ᾼ ᾳ ᾈ ΐ.",
    "Cyrillic: Съешь же ещё этих мягких французских булок, да выпей чаю. Ёлка, ЁЛКА, Їжак, Ґанок.",
    "Combining: e\u0301 a\u0308 n\u0303 o\u0302\u0323 (decomposed) vs é ä ñ ộ (precomposed); "
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349A\u036b\u0357L\u0357G\u0351O!",
    "Scripts: हिन्दी भाषा, ภาษาไทย, العربية الفصحى, עִבְרִית, Tiếng Việt có dấu, ქართული, Հայերեն, "
    "ᏣᎳᎩ, 𐐷𐐏 Deseret, ᬅᬓ᭄ᬱᬭ Balinese.",
    "Compatibility: ＡＢＣ１２３！ fullwidth, ﬁnance ﬂow ligatures, ½ ¾ ², ℃ ℉, Ω (ohm) Å (angstrom), "
    "Ⅻ ⅻ, ① ⑴, ™ ©, ﹖ small, ︵ vertical.",
    "Case: Straße STRASSE ẞ, ǅ ǈ ǋ titlecase, ʼn, ﬀ, ΐ, ΰ, Ǆ, ǲ.",
    "CJK compatibility and extensions: \uf900\uf901\ufa0e \U0002f800\U0002f801 𠀀𠀁 𪜀 𫝀 𫠠 ㊀ ㈱ ⺀ 〇 々.",
    "Math and arrows: ∑ x² ≤ ∞, √2 ≈ 1.414, ∀ε>0 ∃δ, α→β ⇒ γ, 3×4÷2, ±1, ‰, ∂f/∂x.",
    "Special tokens: [CLS] text [SEP] more [MASK] and [UNK] [PAD], but [cls] [Mask] [ SEP ] "
    "[SEP][SEP] x[MASK]y [[CLS]] [MASK.",
    "Digits: Ⅷ ٣ ١٢٣ ۴۵ ५ ๓ ５ 𝟓, and currency: € £ ¥ ₹ ₩ ₿ ¢.",
    "Quotes in other scripts: 《书名》 〈括号〉 『引用』 ״ ׳ ، ؛ ؟ ۔ । ॥ ၊ ။ ។ ៕ ՝ ՞ ܀ ፡ ። ፣.",
    "",
    "   \t  ",
    "Trailing and leading spaces    ",
]

# A hard-case line may hold code points unassigned in Python's Unicode database only if
# they are unassigned in every later version too (utf8proc may know a newer Unicode).
ALLOWED_UNASSIGNED = {0x0378}

BYTE_CASES = [
    b"ab\x00cd nul",
    b"ab\xffcd invalid byte",
    b"\xe4\xb8 truncated \xe4\xb8\x41",
    b"\xc0\xafx overlong slash",
    b"\xe0\x80\xafx overlong 3-byte",
    b"\xed\xa0\x80x encoded surrogate",
    b"\xf4\x90\x80\x80x above U+10FFFF",
    b"\xf8\x88\x80\x80\x80x five-byte form",
    b"caf\xc3",
    b"smile \xf0\x9f\x98",
    b"\x80\x80 stray continuation bytes \xbf",
    b"\xfe\xff bom-like bytes",
    b"crlf line\r\nend",
    b"[CLS]\xff[SEP]",
    b"[CL\xffS] broken special token",
    b"x" * 100 + b"\xff" + b"y",
    b"x" * 99 + b"\xff" + b"y",
    "Héllo".encode("utf-8") + b"\xc3\x28",
    b"",
]


def package_root(package, probe):
    """Root under which the package's files lie: / if installed, else data/cache/debs/<package>."""
    if os.path.exists(probe):
        return "/"
    root = os.path.join(DEB_CACHE, package)
    if not os.path.exists(root + probe):
        os.makedirs(DEB_CACHE, exist_ok=True)
        for old in glob.glob(os.path.join(DEB_CACHE, package + "_*.deb")):
            os.remove(old)
        subprocess.run(["apt-get", "download", package], cwd=DEB_CACHE, check=True)
        (deb,) = glob.glob(os.path.join(DEB_CACHE, package + "_*.deb"))
        subprocess.run(["dpkg", "-x", deb, root], check=True)
    return root


def read_text(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def build_sample():
    docs = package_root("python3.11-doc", os.path.join(DOC_ROOT, DOC_PAGES[0]))
    cjk = package_root("libpython3.11-testsuite", os.path.join(CJK_ROOT, "gb2312-utf8.txt"))
    parts = [read_text(docs + os.path.join(DOC_ROOT, page)) for page in DOC_PAGES]
    parts += [read_text(cjk + os.path.join(CJK_ROOT, name + "-utf8.txt")) for name in CJK_TEXTS]
    parts.append("\n".join(HARD_CASES) + "\n")
    text = "".join(part if part.endswith("\n") else part + "\n" for part in parts)
    check_sample(text)
    with open(os.path.join(FIXTURE_DIR, "sample.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(text)


def check_sample(text):
    size = len(text.encode("utf-8"))
    if not 100_000 <= size <= 300_000:
        sys.exit(f"sample.txt would be {size} bytes; keep it within 100-300 KB")
    if "\x00" in text or "\r\n" in text:
        sys.exit("sample.txt must not hold NUL or CR LF (they belong in byte_cases.txt)")
    for ch in set(text):
        if unicodedata.category(ch) == "Cn" and ord(ch) not in ALLOWED_UNASSIGNED:
            sys.exit(f"sample.txt holds U+{ord(ch):04X}, unassigned in Python's Unicode "
                     f"{unicodedata.unidata_version}: utf8proc may know it; leave it out")


def ids_line(tokenizer, text):
    return " ".join(str(i) for i in tokenizer.encode(text, add_special_tokens=False))


def write_lines(name, lines):
    with open(os.path.join(FIXTURE_DIR, name), "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(line + "\n" for line in lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rebuild-sample", action="store_true",
                        help="rebuild sample.txt from the Debian packages (it is committed; normally reused)")
    args = parser.parse_args()

    try:
        import transformers
        from transformers import BertTokenizer
    except ImportError:
        sys.exit("transformers is missing: run tests/reference/setup_env.sh and use data/venv-ref/bin/python")
    if not os.path.exists(VOCAB):
        sys.exit(f"{VOCAB} is missing: run scripts/fetch_data.sh")
    with open(VOCAB, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != VOCAB_SHA256:
            sys.exit(f"{VOCAB}: sha256 differs from bert-base-uncased's; rerun scripts/fetch_data.sh")
    logging.getLogger("transformers").setLevel(logging.ERROR)  # "sequence longer than 512" warnings

    os.makedirs(FIXTURE_DIR, exist_ok=True)
    if args.rebuild_sample or not os.path.exists(os.path.join(FIXTURE_DIR, "sample.txt")):
        build_sample()
    with open(os.path.join(FIXTURE_DIR, "sample.txt"), "rb") as f:
        sample = f.read().decode("utf-8")
    check_sample(sample)
    lines = sample.split("\n")
    if lines[-1] == "":
        lines.pop()

    uncased = BertTokenizer(VOCAB, do_lower_case=True)
    cased = BertTokenizer(VOCAB, do_lower_case=False)
    write_lines("sample.ids", [ids_line(uncased, line) for line in lines])
    write_lines("sample.cased.ids", [ids_line(cased, line) for line in lines])
    write_lines("byte_cases.txt", [case.hex() + "\t" + ids_line(uncased, case.decode("utf-8", errors="replace"))
                                   for case in BYTE_CASES])
    print(f"wrote {len(lines)} lines of ids (transformers {transformers.__version__}, "
          f"Python {sys.version.split()[0]}, Unicode {unicodedata.unidata_version}) to {FIXTURE_DIR}")


if __name__ == "__main__":
    main()
