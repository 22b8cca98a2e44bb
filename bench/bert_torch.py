#!/usr/bin/python3
"""PyTorch side of the BERT step benchmarks (bench/bench_bert.c is tp's side).

Times the TencentPretrain-semantics reference model (tests/reference/tencentpretrain_bert.py:
vocab 30522, post-LN, gelu, dropout 0.1, random data from a fixed seed) in one of three modes:
  --mode train     forward + backward + AdamW (+ linear schedule), MLM at 15% of the positions
                   + SP, tied MLM weights (the default);
  --mode finetune  the same step for a classifier: BERT + run_classifier.py's head (first token
                   -> linear -> tanh -> linear, 2 labels, NLL of log-softmax), which is the
                   reference's SP target;
  --mode infer     that classifier's forward alone, model.eval() (no dropout) under no_grad.
Prints one JSON line per config:
  {"impl": "pytorch", "mode": "train", "config": "tiny", "tokens_per_s_median": ..., "step_s": [...], "mfu": ..., ...}
MFU = 3 x forward matmul FLOPs / median step time / peak FLOP/s (1 x for infer), counting QKV
(3*2*T*H*H), attention output (2*T*H*H), FFN (2*2*T*H*F), QK^T and AV (2*2*B*S*S*H) per layer,
and in train mode the MLM dense layer on all tokens (2*T*H*H) and the vocabulary projection on
masked tokens (2*M*H*V), with T = B*S tokens per step and M masked tokens (the classifier's head,
two products on B rows, is left out).

Run with Debian's python (torch 1.13):  /usr/bin/python3 bench/bert_torch.py --configs tiny,small
On a GPU (tests/gpu/run.sh): --device cuda --batch-size 32 --precision fp32|tf32|bf16 --peak-flops P,
where bf16 is torch.autocast (bf16 products, fp32 master weights) and tf32 allows TF32 products;
the optimizer is then torch's fused AdamW (the fastest PyTorch has; the step's cost is the same
as the reference's loop over the parameters, minus the launches).
"""
import contextlib
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import tencentpretrain_bert as tpb  # noqa: E402

VOCAB_SIZE = 30522
MASK_FRACTION = 0.15
SEED = 7

# name: (layers, hidden, heads, feed-forward, seq_length, batch_size)
CONFIGS = {
    "tiny": (2, 128, 2, 512, 128, 16),
    "small": (4, 512, 8, 2048, 128, 8),
    "base": (12, 768, 12, 3072, 128, 8),
}


def model_config(layers, hidden, heads, feed_forward, mode):
    """A TencentPretrain models/bert/*.json config (target: the classifier's head unless train)."""
    return {
        "emb_size": hidden, "feedforward_size": feed_forward, "hidden_size": hidden, "hidden_act": "gelu",
        "heads_num": heads, "layers_num": layers, "max_seq_length": 512, "dropout": 0.1,
        "data_processor": "bert", "embedding": ["word", "pos", "seg"], "encoder": "transformer",
        "mask": "fully_visible", "target": ["mlm", "sp"] if mode == "train" else ["sp"], "tie_weights": True,
    }


def masked_per_sequence(seq_length):
    return max(1, round(MASK_FRACTION * seq_length))


def make_batch(generator, batch_size, seq_length, device):
    """Full-length sentence pairs (segments A/B of half the length), 15% of positions masked."""
    src = torch.randint(5, VOCAB_SIZE, (batch_size, seq_length), generator=generator)
    seg = torch.ones(batch_size, seq_length, dtype=torch.long)
    seg[:, seq_length // 2:] = 2
    tgt_mlm = torch.zeros(batch_size, seq_length, dtype=torch.long)
    count = masked_per_sequence(seq_length)
    for row in range(batch_size):
        positions = torch.randperm(seq_length, generator=generator)[:count]
        tgt_mlm[row, positions] = torch.randint(5, VOCAB_SIZE, (count,), generator=generator)
    tgt_sp = torch.randint(0, 2, (batch_size,), generator=generator)
    batch = {"src": src, "seg": seg, "tgt_mlm": tgt_mlm, "tgt_sp": tgt_sp}
    return {key: value.to(device) for key, value in batch.items()}


def matmul_flops(layers, hidden, feed_forward, seq_length, batch_size, mode):
    """Forward matmul FLOPs of one step (see the module docstring)."""
    tokens = batch_size * seq_length
    masked = batch_size * masked_per_sequence(seq_length)
    per_layer = (3 * 2 * tokens * hidden * hidden + 2 * tokens * hidden * hidden
                 + 2 * 2 * tokens * hidden * feed_forward + 2 * 2 * batch_size * seq_length * seq_length * hidden)
    heads = 2 * tokens * hidden * hidden + 2 * masked * hidden * VOCAB_SIZE if mode == "train" else 0
    return layers * per_layer + heads


def bench_config(name, steps, warmup_steps, peak_flops, args):
    layers, hidden, heads, feed_forward, seq_length, batch_size = CONFIGS[name]
    batch_size = args.batch_size or batch_size
    device = torch.device(args.device)
    load_before = round(os.getloadavg()[0], 2)
    generator = torch.Generator().manual_seed(SEED)
    model = tpb.Model(tpb.Config(model_config(layers, hidden, heads, feed_forward, args.mode), VOCAB_SIZE))
    tpb.tencentpretrain_init(model, generator)
    model.to(device).train(args.mode != "infer")
    total = warmup_steps + steps
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-6, weight_decay=0.01, fused=True)
    else:
        optimizer = tpb.make_optimizer(model, 1e-4)
    scheduler = tpb.make_scheduler(optimizer, 0.1 * total, total)
    batches = [make_batch(generator, batch_size, seq_length, device) for _ in range(total)]
    if args.mode != "train":
        for batch in batches:
            del batch["tgt_mlm"]
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    step_seconds, cpu_seconds = [], []
    for step, batch in enumerate(batches):
        synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        if args.mode == "infer":
            with torch.no_grad(), autocast:
                out = model(**batch)
        else:
            model.zero_grad()
            with autocast:
                out = model(**batch)
            out["loss"].backward()
            optimizer.step()
            scheduler.step()
        synchronize()
        elapsed, cpu_elapsed = time.perf_counter() - start, time.process_time() - cpu_start
        if step >= warmup_steps:
            step_seconds.append(elapsed)
            cpu_seconds.append(cpu_elapsed)

    median = statistics.median(step_seconds)
    passes = 1 if args.mode == "infer" else 3
    flops = passes * matmul_flops(layers, hidden, feed_forward, seq_length, batch_size, args.mode)
    return {
        "impl": "pytorch",
        "mode": args.mode,
        "config": name,
        "device": args.device,
        "precision": args.precision,
        "tokens_per_s_median": round(batch_size * seq_length / median, 1),
        "tokens_per_cpu_s_median": round(batch_size * seq_length / statistics.median(cpu_seconds), 1),
        "step_s": [round(value, 4) for value in step_seconds],
        "mfu": round(flops / median / peak_flops, 4),
        "batch_size": batch_size,
        "seq_length": seq_length,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "last_loss": round(out["loss"].item(), 4),
        # Other processes on the cores stall every multi-threaded op (OpenMP waits for its
        # descheduled threads): a load above ~0.5 on an idle-looking box makes timings unreliable.
        "loadavg_1m_before": load_before,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,small", help="comma-separated: " + ", ".join(CONFIGS))
    parser.add_argument("--mode", default="train", choices=["train", "finetune", "infer"],
                        help="train (MLM + SP step), finetune (classifier step) or infer (classifier forward)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per config (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--peak-flops", type=float, default=198e9,
                        help="peak FLOP/s for the MFU (default 198e9, the first machine's; run_bert.py passes the peak "
                             "bench-bert measured)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--batch-size", type=int, default=0, help="sequences per step (default: the config's)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"],
                        help="products on cuda: fp32, tf32, or bf16 autocast (default fp32)")
    args = parser.parse_args()
    names = [name for name in args.configs.split(",") if name]
    unknown = [name for name in names if name not in CONFIGS]
    if args.device == "cpu" and args.precision != "fp32":
        parser.error("--precision %s needs --device cuda" % args.precision)
    if unknown or args.steps < 1 or args.warmup < 0 or args.threads < 1 or args.batch_size < 0:
        parser.error("need known configs (%s), --steps >= 1, --warmup >= 0, --threads >= 1" % ", ".join(CONFIGS))
    torch.set_num_threads(args.threads)
    for name in names:
        print(json.dumps(bench_config(name, args.steps, args.warmup, args.peak_flops, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
