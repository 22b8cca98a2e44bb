"""Side-by-side WordPiece encode throughput: tp (build/bench-wordpiece) against Hugging Face
tokenizers' BertWordPieceTokenizer (the Rust tokenizer behind BertTokenizerFast) on the same
text file, bert-base-uncased's vocabulary, lower-cased, special tokens not added.

Every line of the corpus is encoded; both sides count the tokens and a checksum of the ids
(sum of id x (position in its line + 1)), which must agree.  Rows:
  1 thread, HF one encode() per line   tp one call per line vs HF's Python loop over encode();
  1 thread, HF encode_batch            the same tp run vs encode_batch(all lines) with
                                       RAYON_NUM_THREADS=1 (no Python call per line);
  N threads, HF encode_batch           tp's lines over N OpenMP threads vs encode_batch with
                                       RAYON_NUM_THREADS=N (HF parallelises batches with rayon).
Each run does one untimed pass and --passes timed passes and reports the median, in tokens
per wall-clock second and per CPU second of the process (all its threads; on a loaded machine
the 1-thread rows' CPU-time ratio is the robust one: time slices lost to other jobs do not
count); tp and HF run alternately for --rounds rounds and the ratios are taken pair by pair
(median of the pairs).  The 1-minute load average is read before every run (the machine is
shared).

Usage (the reference venv's python, which has tokenizers):
  data/venv-ref/bin/python bench/run_wordpiece.py [--corpus data/corpus/pretrain.txt]
      [--vocab data/vocab/bert-base-uncased-vocab.txt] [--rounds 3] [--passes 5] [--threads 2]
      [--build build]
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hf_side(args):
    """One HF run in this process (RAYON_NUM_THREADS is set by the caller before the pool starts)."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(args.vocab, lowercase=True)
    with open(args.corpus, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()

    def encode_all():
        if args.hf_method == "batch":
            return [e.ids for e in tokenizer.encode_batch(lines, add_special_tokens=False)]
        return [tokenizer.encode(line, add_special_tokens=False).ids for line in lines]

    seconds, cpu_seconds = [], []
    for attempt in range(args.passes + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        encoded = encode_all()
        if attempt > 0:
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu_start)
    tokens = sum(len(ids) for ids in encoded)
    checksum = sum(i * (k + 1) for ids in encoded for k, i in enumerate(ids))
    median = statistics.median(seconds)
    print(json.dumps({"impl": "hf", "method": args.hf_method, "threads": int(os.environ.get("RAYON_NUM_THREADS", 0)),
                      "lines": len(lines), "bytes": len(text.encode()), "tokens": tokens, "checksum": checksum,
                      "tokens_per_s_median": round(tokens / median),
                      "tokens_per_cpu_s_median": round(tokens / statistics.median(cpu_seconds)), "pass_s": [round(s, 4) for s in seconds]}))


def run_json(command, env):
    out = subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(args, threads, hf_method):
    """Alternating tp / HF runs; returns the row's numbers."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), RAYON_NUM_THREADS=str(threads),
               TOKENIZERS_PARALLELISM="true")
    tp_command = [os.path.join(args.build, "bench-wordpiece"), "--vocab_path", args.vocab, "--corpus_path",
                  args.corpus, "--passes", str(args.passes), "--threads", str(threads)]
    hf_command = [sys.executable, os.path.abspath(__file__), "--side", "hf", "--hf-method", hf_method, "--vocab",
                  args.vocab, "--corpus", args.corpus, "--passes", str(args.passes)]
    tp_runs, hf_runs, loads = [], [], []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        tp_runs.append(run_json(tp_command, env))
        loads.append(os.getloadavg()[0])
        hf_runs.append(run_json(hf_command, env))
    same = all((a["tokens"], a["checksum"]) == (b["tokens"], b["checksum"]) for a, b in zip(tp_runs, hf_runs))
    row = {"threads": threads, "method": hf_method, "tokens": tp_runs[0]["tokens"], "same_ids": same,
           "loads": (min(loads), max(loads))}
    for clock, key in (("wall", "tokens_per_s_median"), ("cpu", "tokens_per_cpu_s_median")):
        ratios = [a[key] / b[key] for a, b in zip(tp_runs, hf_runs)]
        row[clock] = {"tp": statistics.median(r[key] for r in tp_runs), "hf": statistics.median(r[key] for r in hf_runs),
                      "ratio": statistics.median(ratios), "ratios": ratios}
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=os.path.join(REPO, "data/corpus/pretrain.txt"))
    parser.add_argument("--vocab", default=os.path.join(REPO, "data/vocab/bert-base-uncased-vocab.txt"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passes", type=int, default=5, help="timed passes over the corpus per run (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="threads of the parallel row (default 2)")
    parser.add_argument("--build", default="build")
    parser.add_argument("--side", choices=["compare", "hf"], default="compare", help=argparse.SUPPRESS)
    parser.add_argument("--hf-method", choices=["encode", "batch"], default="encode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "hf":
        return hf_side(args)
    started = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    rows = [compare(args, 1, "encode"), compare(args, 1, "batch"), compare(args, args.threads, "batch")]
    print(f"Measured {started}, {args.rounds} rounds of {args.passes} timed passes over "
          f"{os.path.relpath(args.corpus, REPO)} ({rows[0]['tokens']} tokens).\n")
    print("| threads | HF call | clock | tp tokens/s | HF tokens/s | tp / HF (median of pairs) | pairs | same ids "
          "| load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        call = "encode() per line" if r["method"] == "encode" else "encode_batch"
        for clock in ("wall", "cpu"):
            c = r[clock]
            print(f"| {r['threads']} | {call} | {clock} | {c['tp']:,.0f} | {c['hf']:,.0f} | {c['ratio']:.1f}x | "
                  + ", ".join(f"{x:.1f}" for x in c["ratios"])
                  + f" | {'yes' if r['same_ids'] else 'NO'} | {r['loads'][0]:.1f}-{r['loads'][1]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
