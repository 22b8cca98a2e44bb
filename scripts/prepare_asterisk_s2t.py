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

--augment also writes the two training lists of the two-stage recipe
(configs/s2t_asterisk_synthetic.json, then configs/s2t_asterisk_pretrained.json; docs/media.md):
  * train_synthetic.tsv: --synthetic (6000) utterances spoken by espeak-ng (apt-get install
    espeak-ng sox) in a seeded draw of its English voices and variants, rates and pitches,
    resampled to 8 kHz, into <out>/synthetic/.  Their texts: 70% sentences of the fortunes corpus
    (scripts/fetch_data.sh; normalised as above, 2 to 12 words, no digits), 30% the words any
    telephone system says -- numbers written out (cardinals to the billions, ordinals, digit
    strings), dates, letters and the NATO alphabet -- drawn from a grammar here, never from a
    transcript.
    A draw that equals a held-out transcript is dropped.
  * train_speed.tsv: each training prompt as recorded and sped up or slowed down by --speeds
    (0.9,1.1: tempo and pitch together, sox's `speed`, as Kaldi's speed perturbation), into
    <out>/speed/.
The held-out list is the same with or without --augment.
"""
import argparse
import gzip
import hashlib
import os
import random
import re
import subprocess

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


ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = ((10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand"), (100, "hundred"))
ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
            "nine": "ninth", "twelve": "twelfth"}
MONTHS = ("january february march april may june july august september october november "
          "december").split()
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
NATO = ("alfa bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
        "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()
LETTERS = list("abcdefghijklmnopqrstuvwxyz")


def cardinal(number):
    for scale, name in SCALES:
        if number >= scale:
            rest = number % scale
            return cardinal(number // scale) + " " + name + (" " + cardinal(rest) if rest else "")
    if number < 20:
        return ONES[number]
    return TENS[number // 10] + (" " + ONES[number % 10] if number % 10 else "")


def ordinal(number):
    words = cardinal(number).split()
    last = words[-1]
    if last in ORDINALS:
        words[-1] = ORDINALS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def telephone_words(draw):
    """One phrase of the grammar: a number, an ordinal, a date, or letters spelled out."""
    kind = draw.randrange(6)
    if kind == 0:
        return cardinal(draw.choice((draw.randrange(100), draw.randrange(1000), draw.randrange(10 ** 6),
                                     draw.randrange(10 ** 10))))
    if kind == 1:
        return ordinal(draw.randrange(1, 100))
    if kind == 2:
        return "%s %s %s" % (draw.choice(WEEKDAYS), draw.choice(MONTHS), ordinal(draw.randrange(1, 32)))
    if kind == 3:
        return " ".join(draw.choice(LETTERS) for _ in range(draw.randrange(1, 5)))
    if kind == 4:
        return " ".join(draw.choice(NATO) for _ in range(draw.randrange(1, 4)))
    return " ".join(ONES[draw.randrange(10)] for _ in range(draw.randrange(2, 8)))


def fortune_sentences(folder):
    """The fortunes' sentences, normalised, of 2 to 12 words and without digits."""
    sentences = set()
    for name in sorted(os.listdir(folder)):
        if name.startswith(".") or "art" in name:
            continue
        with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
            for entry in f.read().split("\n%\n"):
                entry = re.sub(r"\n\s*--.*", "", entry)  # the attribution line
                for sentence in re.split(r"[.!?;:]+", entry):
                    text = normalise(sentence)
                    if 2 <= len(text.split()) <= 12 and not re.search(r"[0-9]", text):
                        sentences.add(text)
    return sorted(sentences)


# No dither (-D): sox's dither draws fresh noise on every run, so the same command would write other
# bytes; -V1: errors only (resampling espeak-ng's loudest samples clips a few, harmlessly).
SOX = ["sox", "-D", "-V1"]


def make_wav(out, *commands):
    """Runs the commands (lists of arguments) as one pipeline, the last writing out + ".tmp.wav",
    and renames that to out; a failure names out.  Nothing runs when out already exists."""
    if os.path.exists(out):
        return
    processes = []
    for i, command in enumerate(commands):
        source = processes[-1].stdout if processes else None
        last = i == len(commands) - 1
        processes.append(subprocess.Popen(command, stdin=source, stdout=None if last else subprocess.PIPE))
        if source:
            source.close()  # the next command holds it now
    for process in processes:
        if process.wait() != 0:
            raise SystemExit("%s: %s failed (exit %d)" % (out, process.args[0], process.returncode))
    os.replace(out + ".tmp.wav", out)


def speed_perturbed(train, speeds, folder):
    os.makedirs(folder, exist_ok=True)
    items = []
    for speed in speeds:
        for name, text, path in train:
            out = os.path.join(folder, "%s_speed%s.wav" % (name.replace("/", "_"), speed))
            make_wav(out, SOX + [path, out + ".tmp.wav", "speed", speed, "rate", "8000"])
            items.append((text, out))
    return items


ENGLISH_VOICES = ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-scotland", "en-us-nyc", "en-gb-x-gbclan")
VARIANTS = ("f1", "f2", "f3", "f4", "f5", "m1", "m2", "m3", "m4", "m7")


def synthetic(count, held_out, fortunes, folder, seed):
    os.makedirs(folder, exist_ok=True)
    draw = random.Random(seed)
    sentences = fortune_sentences(fortunes)
    items = []
    while len(items) < count:
        text = draw.choice(sentences) if draw.random() < 0.7 else telephone_words(draw)
        voice = "%s+%s" % (draw.choice(ENGLISH_VOICES), draw.choice(VARIANTS))
        rate, pitch = draw.randrange(130, 181), draw.randrange(30, 76)
        if text in held_out:
            continue
        # Named by what it holds, so that a draw with other settings never reuses a stale file.
        key = hashlib.sha1(("%s|%d|%d|%s" % (voice, rate, pitch, text)).encode()).hexdigest()[:16]
        out = os.path.join(folder, "%05d_%s.wav" % (len(items), key))
        make_wav(out, ["espeak-ng", "--stdout", "-v", voice, "-s", str(rate), "-p", str(pitch), text],
                 SOX + ["-t", "wav", "-", "-r", "8000", "-b", "16", "-c", "1", out + ".tmp.wav"])
        items.append((text, out))
    return items


def write_file(path, lines):
    """Writes the lines to a temporary name, then renames it to path."""
    with open(path + ".tmp", "w") as f:
        f.write("".join(line + "\n" for line in lines))
    os.replace(path + ".tmp", path)


def write_list(path, items):
    write_file(path, ("%s\t%s" % (text, audio) for text, audio in items))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join("data", "s2t", "asterisk"))
    parser.add_argument("--max-chars", type=int, default=100)
    parser.add_argument("--augment", action="store_true", help="also write train_speed.tsv and train_synthetic.tsv")
    parser.add_argument("--speeds", default="0.9,1.1")
    parser.add_argument("--synthetic", type=int, default=6000)
    parser.add_argument("--fortunes", default=os.path.join("data", "corpus", "fortunes"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    items = sorted(prompts(args.max_chars))
    dev = [item for i, item in enumerate(items) if i % 10 == 9]
    train = [item for i, item in enumerate(items) if i % 10 != 9]
    os.makedirs(args.out, exist_ok=True)
    recorded = [(text, path) for _, text, path in train]
    write_list(os.path.join(args.out, "train.tsv"), recorded)
    write_list(os.path.join(args.out, "dev.tsv"), [(text, path) for _, text, path in dev])
    characters = sorted(set("".join(text for _, text, _ in train)) - {" "})
    write_file(os.path.join(args.out, "vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "|"] + characters)
    print("%d training and %d held-out prompts, %d characters -> %s" % (len(train), len(dev), len(characters),
                                                                         args.out))
    if args.augment:
        perturbed = speed_perturbed(train, args.speeds.split(","), os.path.join(args.out, "speed"))
        spoken = synthetic(args.synthetic, {text for _, text, _ in dev}, args.fortunes,
                           os.path.join(args.out, "synthetic"), args.seed)
        extra = sorted(set("".join(text for text, _ in spoken)) - {" "} - set(characters))
        if extra:
            raise SystemExit("synthetic texts hold characters the vocabulary lacks: %r" % extra)
        write_list(os.path.join(args.out, "train_speed.tsv"), recorded + perturbed)
        write_list(os.path.join(args.out, "train_synthetic.tsv"), spoken)
        print("train_speed.tsv: %d recorded, %d sped up or down; train_synthetic.tsv: %d synthesised" % (
            len(recorded), len(perturbed), len(spoken)))


if __name__ == "__main__":
    main()
