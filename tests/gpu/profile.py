#!/usr/bin/env python3
"""Where a BERT training step spends its GPU time: Nsight Compute's per-launch durations
(`ncu --csv --metrics gpu__time_duration.sum`, one training step) summed by kernel name.

    ncu --csv --clock-control none --metrics gpu__time_duration.sum --launch-skip S --launch-count C \\
        test_gpu_train --bench CONFIG 1 32 128 PRECISION > launches.csv
    python3 tests/gpu/profile.py launches.csv

Prints the kernels by total time: launches, total ms, share of the step."""
import csv
import sys
from collections import defaultdict


def main(path):
    with open(path, newline="") as handle:
        lines = [line for line in handle if line.startswith('"')]  # ncu's own log lines are not CSV
    totals, counts = defaultdict(float), defaultdict(int)
    for row in csv.DictReader(lines):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name = row["Kernel Name"].split("(")[0][:70]
        scale = {"nsecond": 1e-6, "ns": 1e-6, "usecond": 1e-3, "us": 1e-3, "msecond": 1.0, "ms": 1.0}[
            row.get("Metric Unit", "nsecond")]
        totals[name] += float(row["Metric Value"].replace(",", "")) * scale
        counts[name] += 1
    step = sum(totals.values())
    print("%-70s %8s %10s %7s" % ("kernel", "launches", "total ms", "share"))
    for name, ms in sorted(totals.items(), key=lambda item: -item[1]):
        print("%-70s %8d %10.3f %6.1f%%" % (name, counts[name], ms, 100 * ms / step))
    print("%-70s %8d %10.3f" % ("all kernels", sum(counts.values()), step))
    return 0 if totals else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
