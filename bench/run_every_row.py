#!/usr/bin/python3
"""A/B of the marked-rows last layer: bench-bert as it runs (the last layer computes only the rows
the targets read: each sequence's first and last, and the masked ones) against bench-bert
--every_row (every row of the last layer), alternating, pair by pair, for each mode and config.
Prints a Markdown table: tokens per wall-clock second, median of --steps timed steps per run, the
speed-up of each pair and their median.

Usage: /usr/bin/python3 bench/run_every_row.py [--modes train,finetune,infer] [--configs tiny,small,base]
                                               [--rounds 3] [--steps 5] [--threads 2] [--build build]
"""
import argparse
import json
import os
import statistics
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tokens_per_s(command, env):
    out = subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["tokens_per_s_median"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="train,finetune,infer")
    parser.add_argument("--configs", default="tiny,small,base")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--build", default="build")
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    print("| mode | config | marked rows tokens/s | every row tokens/s | speed-up (median of pairs) | pairs |")
    print("|---|---|---|---|---|---|")
    for mode in args.modes.split(","):
        for config in args.configs.split(","):
            command = [os.path.join(args.build, "bench-bert"), "--configs", config, "--mode", mode,
                       "--steps", str(args.steps), "--threads", str(args.threads)]
            marked, every = [], []
            for _ in range(args.rounds):
                marked.append(tokens_per_s(command, env))
                every.append(tokens_per_s(command + ["--every_row"], env))
            pairs = [m / e for m, e in zip(marked, every)]
            print(f"| {mode} | {config} | {statistics.median(marked):.0f} | {statistics.median(every):.0f} | "
                  f"{statistics.median(pairs):.2f}x | {', '.join(f'{p:.2f}' for p in pairs)} |", flush=True)


if __name__ == "__main__":
    main()
