"""Compares two tp runs that must agree up to the order of floating-point sums (tests/e2e/test_mpi.sh).

usage: mpi_compare.py weights A.safetensors B.safetensors TOLERANCE
       mpi_compare.py metrics A.jsonl B.jsonl TOLERANCE [FLOOR]

weights: every tensor present in both with the same shape, and ||a - b|| / ||b|| <= TOLERANCE
         per tensor (Frobenius norms).  Not element by element: AdamW divides each gradient by
         its own running magnitude, so an element whose gradient is a sum of cancelling terms
         (the attention key bias's is zero up to rounding) turns a different summation order into
         a visible difference of that element alone.
metrics: the same lines with the same keys; every number except the timings within TOLERANCE
         relative (|a - b| <= TOLERANCE * max(|b|, FLOOR), FLOOR 1e-12 unless given), also inside
         lists (tp-finetune's confusion matrices); strings and nulls equal.  FLOOR 1 compares
         scores in [-1, 1] absolutely: a correlation near 0 has no meaningful relative error.
Reads safetensors with the standard library and numpy only (its format: an 8-byte little-endian
header length, a JSON header, then the raw little-endian data)."""
import json
import struct
import sys

import numpy as np

TIMINGS = {"tokens_per_s", "step_seconds", "wait_seconds"}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_length])
    base = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name}: dtype {entry['dtype']}, expected F32")
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[base + begin:base + end], dtype="<f4").reshape(entry["shape"])
    return tensors


def compare_weights(path_a, path_b, tolerance):
    a, b = read_safetensors(path_a), read_safetensors(path_b)
    if sorted(a) != sorted(b):
        sys.exit(f"tensor names differ: {sorted(set(a) ^ set(b))}")
    worst_name, worst = None, 0.0
    for name in sorted(a):
        if a[name].shape != b[name].shape:
            sys.exit(f"{name}: shape {a[name].shape} vs {b[name].shape}")
        reference = b[name].astype(np.float64)
        error = float(np.linalg.norm(a[name] - reference)) / max(float(np.linalg.norm(reference)), 1e-30)
        if error >= worst:
            worst_name, worst = name, error
    print(f"weights: {len(a)} tensors, worst relative error {worst:.3g} ({worst_name})")
    if worst > tolerance:
        sys.exit(f"weights differ: {worst_name} by {worst:.3g} > {tolerance}")


def compare_metrics(path_a, path_b, tolerance, floor=1e-12):
    lines_a = [json.loads(line) for line in open(path_a)]
    lines_b = [json.loads(line) for line in open(path_b)]
    if len(lines_a) != len(lines_b):
        sys.exit(f"{path_a} has {len(lines_a)} lines, {path_b} {len(lines_b)}")
    worst = 0.0
    for a, b in zip(lines_a, lines_b):
        keys_a, keys_b = set(a) - TIMINGS, set(b) - TIMINGS
        if keys_a != keys_b:
            sys.exit(f"step {a.get('step')}: keys differ: {sorted(keys_a ^ keys_b)}")
        for key in keys_a:
            error = difference(a[key], b[key], floor)
            worst = max(worst, error)
            if error > tolerance:
                sys.exit(f"step {a.get('step')}: {key} {a[key]!r} vs {b[key]!r} (relative {error:.3g} > {tolerance})")
    print(f"metrics: {len(lines_a)} lines, worst relative difference {worst:.3g}")


def difference(a, b, floor):
    """The largest relative difference of two metric values (inf where they cannot match)."""
    if isinstance(a, list) and isinstance(b, list):
        return max((difference(x, y, floor) for x, y in zip(a, b)), default=0.0) if len(a) == len(b) else float("inf")
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return abs(a - b) / max(abs(b), floor)
    return 0.0 if a == b else float("inf")


def main():
    if not 5 <= len(sys.argv) <= 6 or sys.argv[1] not in ("weights", "metrics") or \
            (len(sys.argv) == 6 and sys.argv[1] != "metrics"):
        sys.exit(__doc__)
    compare = compare_weights if sys.argv[1] == "weights" else compare_metrics
    compare(sys.argv[2], sys.argv[3], *map(float, sys.argv[4:]))


if __name__ == "__main__":
    main()
