"""The first TRAIN training and TEST test images and labels of Fashion-MNIST's gzip IDX files
(data/media/fashion-mnist, scripts/fetch_data.sh), as plain IDX files with MNIST's names in OUT_DIR
(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-...): small real image sets for tests.
Usage: /usr/bin/python3 scripts/cut_fashion_mnist.py SOURCE_DIR OUT_DIR TRAIN TEST"""
import gzip
import struct
import sys

source, out, counts = sys.argv[1], sys.argv[2], {"train": int(sys.argv[3]), "t10k": int(sys.argv[4])}
for split, n in counts.items():
    for kind, item in (("images-idx3", 784), ("labels-idx1", 1)):
        data = gzip.open(f"{source}/{split}-{kind}-ubyte.gz").read()
        ndim = data[3]
        dims = list(struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim]))
        dims[0] = n
        header = data[:4] + struct.pack(f">{ndim}I", *dims)
        body = data[4 + 4 * ndim:4 + 4 * ndim + n * item]
        with open(f"{out}/{split}-{kind}-ubyte", "wb") as f:
            f.write(header + body)
