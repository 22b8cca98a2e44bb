"""Side-by-side corpus preprocessing: tp-preprocess against a straightforward Python pipeline
(Hugging Face tokenizers' BertWordPieceTokenizer + numpy) that writes the same instances, and
the bytes on disk per token of each one's dataset.

The work is tp-preprocess's mlm processor with dynamic masking (docs/data.md): every non-blank
line becomes [CLS] ids [SEP], cut into --seq_length pieces (a last piece of one token dropped),
no masks stored.  The Python pipeline reads the corpus, encodes all non-blank lines with one
encode_batch call (rayon, RAYON_NUM_THREADS threads), builds the pieces and writes the token ids
(uint16), the instance offsets (int64) and the segment lengths (uint16) with numpy.savez.  Both
datasets' token streams must be equal (checked).  tokens/s = dataset tokens / wall time of the
whole process (start-up, reading, tokenizing, writing), and per CPU second of the process (user +
system of all its threads: on a loaded machine the 1-thread row's CPU-time ratio is the robust
one); each run is one untimed process and --runs timed ones (median), tp and Python alternate
for --rounds rounds, and the ratios are taken pair by pair (median of the pairs).  The 1-minute
load average is read before every run.

Bytes per token: the .tpd file, the .npz file, and TencentPretrain's dataset.pt for the same
instances, computed by pickling each instance as its MlmDataset does with dynamic masking
(pickle.dump(((src, pad_num), [len(src)]), f) per instance, this Python's default protocol).

Usage (the reference venv's python, which has tokenizers and numpy):
  data/venv-ref/bin/python bench/run_preprocess.py [--corpus data/corpus/pretrain.txt]
      [--vocab data/vocab/bert-base-uncased-vocab.txt] [--seq_length 128] [--rounds 3] [--runs 5]
      [--threads 1,2] [--build build]
"""
import argparse
import datetime
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASCII_WHITESPACE = " \t\n\r\v\f"


def python_pieces(args):
    """The mlm processor's pieces of the corpus, as lists of ids."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(args.vocab, lowercase=True)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    with open(args.corpus, encoding="utf-8") as f:
        lines = [line for line in f.read().split("\n") if line.strip(ASCII_WHITESPACE)]
    pieces = []
    for encoding in tokenizer.encode_batch(lines, add_special_tokens=False):
        document = [cls_id] + encoding.ids + [sep_id]
        for start in range(0, len(document), args.seq_length):
            piece = document[start:start + args.seq_length]
            if len(piece) > 1:
                pieces.append(piece)
    return pieces


def python_side(args):
    """One run of the Python pipeline; writes args.output (.npz)."""
    pieces = python_pieces(args)
    lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
    offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.fromiter((i for p in pieces for i in p), dtype=np.uint16, count=int(offsets[-1]))
    np.savez(args.output, tokens=tokens, offsets=offsets, segment_a_length=lengths.astype(np.uint16))


def tpd_tokens(path):
    """The token stream of a .tpd file (docs/data.md: header fields at 16 and 40, tokens_pos at 64)."""
    with open(path, "rb") as f:
        header = f.read(128)
    token_bytes = int.from_bytes(header[16:20], "little")
    count = int.from_bytes(header[40:48], "little")
    tokens_pos = int.from_bytes(header[64:72], "little")
    dtype = np.uint16 if token_bytes == 2 else np.uint32
    return np.fromfile(path, dtype=dtype, count=count, offset=tokens_pos)


def tencentpretrain_pickle_bytes(args):
    """Bytes of TencentPretrain's MlmDataset dataset.pt (dynamic masking) for the same instances."""
    total = 0
    for piece in python_pieces(args):
        total += len(pickle.dumps(((piece, args.seq_length - len(piece)), [len(piece)])))
    return total


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command, env):
    """(wall seconds, CPU seconds) of one run of command."""
    start, cpu_start = time.perf_counter(), children_cpu_seconds()
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - start, children_cpu_seconds() - cpu_start


def compare(args, threads, workdir):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), RAYON_NUM_THREADS=str(threads),
               TOKENIZERS_PARALLELISM="true")
    tp_out, py_out = os.path.join(workdir, "tp.tpd"), os.path.join(workdir, "py.npz")
    tp_command = [os.path.join(args.build, "tp-preprocess"), "--corpus_path", args.corpus, "--vocab_path", args.vocab,
                  "--dataset_path", tp_out, "--data_processor", "mlm", "--seq_length", str(args.seq_length),
                  "--dynamic_masking", "--processes_num", str(threads)]
    py_command = [sys.executable, os.path.abspath(__file__), "--side", "python", "--output", py_out, "--corpus",
                  args.corpus, "--vocab", args.vocab, "--seq_length", str(args.seq_length)]
    tp_runs, py_runs, loads = [], [], []
    for _ in range(args.rounds):
        for command, runs in ((tp_command, tp_runs), (py_command, py_runs)):
            loads.append(os.getloadavg()[0])
            timed(command, env)
            seconds = [timed(command, env) for _ in range(args.runs)]
            runs.append((statistics.median(s[0] for s in seconds), statistics.median(s[1] for s in seconds)))
    tp_tokens = tpd_tokens(tp_out)
    with np.load(py_out) as saved:
        same = np.array_equal(tp_tokens, saved["tokens"])
    count = len(tp_tokens)
    row = {"threads": threads, "tokens": count, "same": same, "loads": (min(loads), max(loads)),
           "tp_bytes": os.path.getsize(tp_out), "py_bytes": os.path.getsize(py_out)}
    for index, clock in enumerate(("wall", "cpu")):
        ratios = [p[index] / t[index] for t, p in zip(tp_runs, py_runs)]
        row[clock] = {"tp": count / statistics.median(t[index] for t in tp_runs),
                      "python": count / statistics.median(p[index] for p in py_runs),
                      "ratio": statistics.median(ratios), "ratios": ratios}
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=os.path.join(REPO, "data/corpus/pretrain.txt"))
    parser.add_argument("--vocab", default=os.path.join(REPO, "data/vocab/bert-base-uncased-vocab.txt"))
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each side per round (default 5)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts, one row each")
    parser.add_argument("--build", default="build")
    parser.add_argument("--side", choices=["compare", "python"], default="compare", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "python":
        return python_side(args)
    started = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory() as workdir:
        rows = [compare(args, int(t), workdir) for t in args.threads.split(",")]
    pickle_bytes = tencentpretrain_pickle_bytes(args)
    tokens = rows[0]["tokens"]
    print(f"Measured {started}: mlm processor, seq_length {args.seq_length}, dynamic masking, "
          f"{os.path.relpath(args.corpus, REPO)} -> {tokens} dataset tokens; {args.rounds} rounds of "
          f"{args.runs} timed runs after one untimed run.\n")
    print("| threads | clock | tp-preprocess tokens/s | Python pipeline tokens/s | tp / Python (median of pairs) "
          "| pairs | same tokens | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        for clock in ("wall", "cpu"):
            c = r[clock]
            print(f"| {r['threads']} | {clock} | {c['tp']:,.0f} | {c['python']:,.0f} | {c['ratio']:.1f}x | "
                  + ", ".join(f"{x:.1f}" for x in c["ratios"])
                  + f" | {'yes' if r['same'] else 'NO'} | {r['loads'][0]:.1f}-{r['loads'][1]:.1f} |")
    print("\n| dataset | bytes | bytes per token |")
    print("|---|---|---|")
    for name, size in (("tp (.tpd)", rows[0]["tp_bytes"]), ("Python pipeline (.npz, numpy)", rows[0]["py_bytes"]),
                       (f"TencentPretrain dataset.pt (pickle protocol {pickle.DEFAULT_PROTOCOL}, computed)",
                        pickle_bytes)):
        print(f"| {name} | {size:,} | {size / tokens:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
