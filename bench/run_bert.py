#!/usr/bin/python3
"""Side-by-side BERT step benchmark: tp (build/bench-bert) against PyTorch
(bench/bert_torch.py, Debian's torch 1.13) on the same machine, 2 threads each.
--mode picks the work (both programs' --mode): train (pre-training step, MLM + SP; the
default), finetune (classifier fine-tuning step) or infer (the classifier's forward, eval mode).

PyTorch gets its best set-up here: Debian's torch links OpenBLAS through the libblas.so.3
alternative, which is the pthread build, whose threads then fight torch's OpenMP threads over
the 2 cores (1.6-2x slower); LD_LIBRARY_PATH points it at the OpenMP build of the same
OpenBLAS, so that BLAS and torch share one pool, as tp does.

The two run alternately, config by config, for --rounds rounds, so both see the same
machine load; each run reports the median step time of --steps timed steps after warm-up.
The ratio is taken pair by pair (tp / PyTorch within a round), then the median over rounds.
The 1-minute load average is read before every run (the machine is shared).  On a loaded
machine, --clock cpu with --threads 1 compares CPU time per step instead of wall time (each
program's process CPU time around each step: time slices lost to other jobs do not count).
Writes a Markdown table to stdout, and with --write into docs/benchmarks.md between the
markers '<!-- bert-MODE begin -->' and '<!-- bert-MODE end -->' (bert-MODE-cpu with --clock cpu).

Usage: /usr/bin/python3 bench/run_bert.py [--mode train|finetune|infer] [--configs tiny,small,base]
                                          [--rounds 3] [--steps 5] [--build build] [--write]
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPENBLAS_OPENMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp"


def run_json(command, env):
    out = subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", default="train", choices=["train", "finetune", "infer"])
    parser.add_argument("--configs", default="tiny,small,base")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--build", default="build")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="tokens per wall-clock second (default) or per CPU second of the process")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    started = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    torch_env = dict(env, LD_LIBRARY_PATH=OPENBLAS_OPENMP)
    key = "tokens_per_s_median" if args.clock == "wall" else "tokens_per_cpu_s_median"
    rows = []
    for config in args.configs.split(","):
        tp_runs, torch_runs, loads = [], [], []
        common = ["--configs", config, "--mode", args.mode, "--steps", str(args.steps), "--threads", str(args.threads)]
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            tp_runs.append(run_json([os.path.join(args.build, "bench-bert")] + common, env))
            loads.append(os.getloadavg()[0])
            # Both MFUs over the peak bench-bert measured (bench/cpu_peak.h) with these threads.
            peak = ["--peak-flops", str(tp_runs[-1]["peak_flops"])]
            torch_runs.append(run_json(["/usr/bin/python3", "bench/bert_torch.py"] + common + peak, torch_env))
        ratios = [a[key] / b[key] for a, b in zip(tp_runs, torch_runs)]
        rows.append({
            "config": config,
            "tp": statistics.median(r[key] for r in tp_runs),
            "torch": statistics.median(r[key] for r in torch_runs),
            "tp_mfu": statistics.median(r["mfu"] for r in tp_runs),
            "torch_mfu": statistics.median(r["mfu"] for r in torch_runs),
            "ratio": statistics.median(ratios),
            "peak": statistics.median(r["peak_flops"] for r in tp_runs),
            "ratios": ratios,
            "loads": (min(loads), max(loads)),
        })
    unit = "s" if args.clock == "wall" else "CPU s"
    lines = [f"| config | tp tokens/{unit} | tp MFU (wall) | PyTorch tokens/{unit} | PyTorch MFU (wall) "
             "| tp / PyTorch (median of pairs) | pairs "
             "| load (1 min) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['tp']:.0f} | {100 * r['tp_mfu']:.0f}% | {r['torch']:.0f} | "
                     f"{100 * r['torch_mfu']:.0f}% | {r['ratio']:.2f}x | "
                     + ", ".join(f"{x:.2f}" for x in r["ratios"]) + f" | {r['loads'][0]:.1f}-{r['loads'][1]:.1f} |")
    table = (f"Measured {started} (`--mode {args.mode}`), {args.rounds} rounds of {args.steps} timed steps "
             f"after 2 warm-up steps, {args.threads} thread{'s' if args.threads > 1 else ''} each, tokens per {args.clock} second; "
             f"MFU over the measured fp32 peak of {statistics.median(r['peak'] for r in rows) / 1e9:.0f} GFLOP/s "
             f"({args.threads} thread{'s' if args.threads > 1 else ''}, bench/cpu_peak.h).\n\n" + "\n".join(lines))
    print(table)
    if args.write:
        path = os.path.join(REPO, "docs", "benchmarks.md")
        text = open(path).read()
        marker = f"bert-{args.mode}" + ("-cpu" if args.clock == "cpu" else "")
        begin, end = f"<!-- {marker} begin -->", f"<!-- {marker} end -->"
        head, rest = text.split(begin)
        _, tail = rest.split(end)
        open(path, "w").write(head + begin + "\n" + table + "\n" + end + tail)


if __name__ == "__main__":
    sys.exit(main())
