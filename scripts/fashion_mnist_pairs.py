#!/usr/bin/python3
"""Fashion-MNIST as image-text pairs for the clip processor (docs/media.md, CLIP):

    /usr/bin/python3 scripts/fashion_mnist_pairs.py SOURCE_DIR OUT_DIR [--train N] [--test N]

SOURCE_DIR holds Fashion-MNIST's IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
t10k-...; data/media/fashion-mnist from scripts/fetch_data.sh, or scripts/cut_fashion_mnist.py's cut).
OUT_DIR gets the first N images of each split as PNG files (lossless: the IDX bytes) and
  train.tsv, t10k.tsv   TencentPretrain's clip corpus: a `text<TAB>path` header, then one line per image
                        with its caption "a photo of a <class name>" (paths absolute)
  classes.txt           the 10 captions, class i on line i + 1 (the zero-shot candidates)
  vocab.txt             a vocabulary for the space tokenizer: [PAD] [UNK] [CLS] [SEP] [MASK] and the
                        captions' words
Uses Debian's python3-pil.
"""
import argparse
import gzip
import os
import struct

from PIL import Image

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
CAPTIONS = [f"a photo of {'an' if name[0] in 'aeiou' else 'a'} {name}" for name in CLASSES]


def read_idx(stem):
    path = stem if os.path.exists(stem) else stem + ".gz"
    data = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def write_split(source, out, split, limit):
    (count, height, width), pixels = read_idx(f"{source}/{split}-images-idx3-ubyte")
    _, labels = read_idx(f"{source}/{split}-labels-idx1-ubyte")
    count = min(count, limit) if limit else count
    os.makedirs(f"{out}/{split}", exist_ok=True)
    size = height * width
    with open(f"{out}/{split}.tsv", "w") as listing:
        listing.write("text\tpath\n")
        for i in range(count):
            path = os.path.abspath(f"{out}/{split}/{i}.png")
            Image.frombytes("L", (width, height), pixels[i * size:(i + 1) * size]).save(path)
            listing.write(f"{CAPTIONS[labels[i]]}\t{path}\n")
    print(f"{out}/{split}.tsv: {count} image-text pairs")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=0, help="only the first N training images (0: all)")
    parser.add_argument("--test", type=int, default=0, help="only the first N test images (0: all)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    write_split(args.source, args.out, "train", args.train)
    write_split(args.source, args.out, "t10k", args.test)
    with open(f"{args.out}/classes.txt", "w") as f:
        f.write("".join(caption + "\n" for caption in CAPTIONS))
    words = sorted({word for caption in CAPTIONS for word in caption.split()})
    with open(f"{args.out}/vocab.txt", "w") as f:
        f.write("".join(token + "\n" for token in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words))


if __name__ == "__main__":
    main()
