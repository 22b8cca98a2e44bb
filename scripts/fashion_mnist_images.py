#!/usr/bin/python3
"""Writes Fashion-MNIST's IDX files as image files and label<TAB>path lists, the input of the vit
processor's image-list path (docs/media.md measures it against the pre-decoded file):

    /usr/bin/python3 scripts/fashion_mnist_images.py [--format png|jpg] [--limit N] [OUT]

OUT (default data/media/fashion-mnist-<format>) gets train/<i>.<format>, t10k/<i>.<format>,
train.tsv and t10k.tsv (paths relative to the repository root, as tp-finetune reads them from
there).  PNG is lossless: its pixels are the IDX bytes; JPEG (quality 95) is not.  Uses Debian's
python3-pil and the IDX files of scripts/fetch_data.sh.
"""
import argparse
import gzip
import os
import struct

from PIL import Image

SOURCE = "data/media/fashion-mnist"


def read_idx(path):
    data = gzip.open(path).read()
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?")
    parser.add_argument("--format", choices=["png", "jpg"], default="png")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images of each split")
    args = parser.parse_args()
    out = args.out or f"{SOURCE}-{args.format}"
    for split in ("train", "t10k"):
        (count, height, width), pixels = read_idx(f"{SOURCE}/{split}-images-idx3-ubyte.gz")
        _, labels = read_idx(f"{SOURCE}/{split}-labels-idx1-ubyte.gz")
        count = min(count, args.limit) if args.limit else count
        os.makedirs(f"{out}/{split}", exist_ok=True)
        size = height * width
        with open(f"{out}/{split}.tsv", "w") as listing:
            listing.write("label\tpath\n")
            for i in range(count):
                path = f"{out}/{split}/{i}.{args.format}"
                image = Image.frombytes("L", (width, height), pixels[i * size:(i + 1) * size])
                image.save(path, quality=95) if args.format == "jpg" else image.save(path)
                listing.write(f"{labels[i]}\t{path}\n")
        print(f"{out}/{split}.tsv: {count} images")


if __name__ == "__main__":
    main()
