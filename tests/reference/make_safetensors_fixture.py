#!/usr/bin/env python3
"""Writes tests/fixtures/safetensors/reference.safetensors with the official `safetensors`
package, plus reference.json describing what a correct reader must find in it.

Run from the repository root with a Python that has `safetensors` and `numpy`
(safetensors.numpy needs no torch), e.g. the one tests/reference/setup_env.sh makes:
    data/venv-ref/bin/python tests/reference/make_safetensors_fixture.py

reference.json holds, all taken from the official library's output and numpy:
  metadata: [key, value] pairs in the order the header lists them,
  tensors:  name, dtype, shape, data_offsets and the raw little-endian bytes (hex) of each
            tensor, in data order (the order of data_offsets),
  values:   the F32 tensors' values as decimals (checks float decoding independently of hex).
BF16 is absent: numpy has no bfloat16.
The same run writes a few small valid files as the seed corpus of the fuzz harness
(tests/fuzz/corpus/safetensors/).
"""
import json
import os

import numpy as np
import safetensors
from safetensors.numpy import save_file

OUT_DIR = os.path.join("tests", "fixtures", "safetensors")
SEED_DIR = os.path.join("tests", "fuzz", "corpus", "safetensors")


def make_tensors():
    return {
        "embedding.word.weight": (np.arange(12, dtype=np.float32) * 0.25 - 1.5).reshape(3, 4),
        "half": np.array([1.0, -2.5, 65504.0, 6.103515625e-05], dtype=np.float16),
        "double": np.array([np.pi, -1e300], dtype=np.float64),
        "i64": np.array([-(2**62), 7, 2**40], dtype=np.int64),
        "i32": np.array([[1, -2], [2**31 - 1, -(2**31)]], dtype=np.int32),
        "i16": np.array([-32768, 0, 32767], dtype=np.int16),
        "i8": np.array([-128, -1, 0, 1, 127], dtype=np.int8),
        "u8": np.arange(6, dtype=np.uint8).reshape(2, 3, 1),
        "mask": np.array([True, False, False, True]),
        "u16": np.array([0, 65535], dtype=np.uint16),
        "u32": np.array([4294967295, 1], dtype=np.uint32),
        "u64": np.array([2**64 - 1], dtype=np.uint64),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "scalar": np.array(-7, dtype=np.int32),
        "layer.0/gr\u00fc\u00dfe \"quoted\"": np.array([[0.5], [-0.125]], dtype=np.float32),
    }


METADATA = {"format": "np", "source": "make_safetensors_fixture.py", "note": "Gr\u00fc\u00dfe \u2713"}


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    tensors = make_tensors()
    path = os.path.join(OUT_DIR, "reference.safetensors")
    save_file(tensors, path, metadata=METADATA)

    with open(path, "rb") as f:
        blob = f.read()
    header_len = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + header_len])  # dicts keep the file's key order
    entries = [(name, info) for name, info in header.items() if name != "__metadata__"]
    entries.sort(key=lambda item: item[1]["data_offsets"])
    described = []
    for name, info in entries:
        array = tensors[name]
        assert list(array.shape) == info["shape"]
        described.append({
            "name": name,
            "dtype": info["dtype"],
            "shape": info["shape"],
            "data_offsets": info["data_offsets"],
            "hex": array.astype(array.dtype.newbyteorder("<")).tobytes().hex(),
        })
    values = {name: [float(v) for v in array.ravel()] for name, array in tensors.items()
              if array.dtype == np.float32}
    reference = {
        "generator": "tests/reference/make_safetensors_fixture.py",
        "safetensors_version": safetensors.__version__,
        "numpy_version": np.__version__,
        "file_bytes": len(blob),
        "metadata": [[key, value] for key, value in header["__metadata__"].items()],
        "tensors": described,
        "values": values,
    }
    with open(os.path.join(OUT_DIR, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(reference, f, indent=1, ensure_ascii=False)
        f.write("\n")


def write_fuzz_seeds():
    os.makedirs(SEED_DIR, exist_ok=True)
    seeds = {
        "empty.safetensors": ({}, None),
        "one_f32.safetensors": ({"w": np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)}, {"format": "np"}),
        "mixed.safetensors": ({"a": np.arange(3, dtype=np.int64), "b": np.zeros((2, 0), dtype=np.float16),
                               "c": np.array(True), "d": np.arange(4, dtype=np.uint8).reshape(2, 1, 2)}, None),
    }
    for name, (tensors, metadata) in seeds.items():
        save_file(tensors, os.path.join(SEED_DIR, name), metadata=metadata)


if __name__ == "__main__":
    main()
    write_fuzz_seeds()
