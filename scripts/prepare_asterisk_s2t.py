#!/usr/bin/env python3
"""Writes data/s2t/asterisk/{train,dev}.tsv and vocab.txt: the Asterisk core prompts (Debian's
asterisk-core-sounds-en-wav, 8 kHz WAV, one speaker; transcripts in asterisk-core-sounds-en's
core-sounds-en.txt.gz) as TencentPretrain's s2t lists (`text<TAB>path`) for tp-finetune's
speech2text task (configs/s2t_asterisk.json).

    apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en
    /usr/bin/python3 scripts/prepare_asterisk_s2t.py [--out data/s2t/asterisk]

Transcripts are normalised: lower case, digits kept, every other character but letters and
apostrophes becomes a space, spaces collapsed.  Prompts whose transcript is a bracketed description
([this is a simple beep tone]) or empty, longer than --max-chars (100) characters (the 5% longest:
whole menus of up to 30 s), or whose WAV is missing, are left out.  Every 10th prompt
in name order is held out (dev.tsv).  vocab.txt: [PAD] [UNK] [CLS] [SEP] [MASK], "|" (the word
delimiter: the char tokenizer's vocabulary has no space), then the characters of the training
transcripts.  The audio is CC-BY-SA-3.0: nothing here is committed.
"""
import argparse
import gzip
import os
import re

TRANSCRIPTS = "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
SOUNDS = "/usr/share/asterisk/sounds/en_US_f_Allison"


def normalise(text):
    text = re.sub(r"[^a-z0-9']+", " ", text.lower())
    return " ".join(text.split())


def prompts(max_chars):
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, text = line.split(":", 1)
            text = text.strip()
            path = os.path.join(SOUNDS, name.strip() + ".wav")
            if text.startswith("[") or not os.path.exists(path):
                continue
            text = normalise(text)
            if text and len(text) <= max_chars:
                yield name.strip(), text, path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join("data", "s2t", "asterisk"))
    parser.add_argument("--max-chars", type=int, default=100)
    args = parser.parse_args()
    items = sorted(prompts(args.max_chars))
    dev = [item for i, item in enumerate(items) if i % 10 == 9]
    train = [item for i, item in enumerate(items) if i % 10 != 9]
    os.makedirs(args.out, exist_ok=True)
    for name, part in (("train.tsv", train), ("dev.tsv", dev)):
        with open(os.path.join(args.out, name), "w") as f:
            for _, text, path in part:
                f.write("%s\t%s\n" % (text, path))
    characters = sorted(set("".join(text for _, text, _ in train)) - {" "})
    with open(os.path.join(args.out, "vocab.txt"), "w") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "|"] + characters) + "\n")
    print("%d training and %d held-out prompts, %d characters -> %s" % (len(train), len(dev), len(characters),
                                                                         args.out))


if __name__ == "__main__":
    main()
