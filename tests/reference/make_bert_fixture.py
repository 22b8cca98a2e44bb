#!/usr/bin/python3
"""Writes tests/fixtures/bert/<case>.safetensors from the TencentPretrain-semantics reference
(tests/reference/tencentpretrain_bert.py), then reloads each file and checks it.

Run with Debian's python (torch 1.13 CPU + numpy, nothing else):
    /usr/bin/python3 tests/reference/make_bert_fixture.py            # write all cases, then check
    /usr/bin/python3 tests/reference/make_bert_fixture.py --check    # only check the committed files

Weights are not stored: every parameter is a function of its name (tp_rng, seed 1234),
so the C test rebuilds them.  Gradients of big parameters are stored as fingerprints.
The file format is specified in docs/reference.md ("BERT fixtures").
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tencentpretrain_bert as tpb  # noqa: E402
from tp_rng import MASK64, tp_fnv1a64, tp_hash3, tp_hash3_scalar, tp_uniform  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "fixtures", "bert")

WEIGHT_SEED = 1234
PROJ_SEED = 99        # projection vectors of fingerprints
SAMPLE_SEED = 77      # sampled indices of fingerprints
PROJ_COUNT = 8
SAMPLE_COUNT = 512
FULL_LIMIT = 4096     # tensors with at most this many values are stored in full
VOCAB_SIZE = 300
STEPS = 5
LEARNING_RATE = 1e-3
# At lr 1e-3 the 768-wide case diverges within 5 steps (loss 0.49 -> 14.7), which would make
# the comparison ill-conditioned; it trains at 1e-4 instead (recorded in its metadata).
CASE_LEARNING_RATE = {"base_width_2layer": 1e-4}
WARMUP_STEPS = 2
TOTAL_STEPS = 10

# The sizes of models/bert/tiny_config.json (UER-py / TencentPretrain), with a small max_seq_length, dropout 0
# (the fixtures are computed without dropout) and tie_weights as in its BERT configs.
TINY = {
    "emb_size": 128,
    "feedforward_size": 512,
    "hidden_size": 128,
    "hidden_act": "gelu",
    "heads_num": 2,
    "layers_num": 2,
    "max_seq_length": 64,
    "dropout": 0.0,
    "data_processor": "bert",
    "embedding": ["word", "pos", "seg"],
    "encoder": "transformer",
    "mask": "fully_visible",
    "target": ["mlm", "sp"],
    "tie_weights": True,
}


def variant(**changes):
    config = dict(TINY)
    config.update(changes)
    return config


CASES = {
    "tiny": TINY,
    "base_width_2layer": variant(emb_size=768, hidden_size=768, feedforward_size=3072, heads_num=12),
    # TencentPretrain's pre-LN configs (GPT-2, ViT, LLaMA) all remove the embedding layer norm.
    "tiny_preln_torchln": variant(hidden_act="gelu_fast", tie_weights=False, remove_embedding_layernorm=True,
                                  layernorm_positioning="pre", layernorm="normal_torch", layernorm_eps=1e-6),
    "tiny_relu": variant(hidden_act="relu", layers_num=1),
    "tiny_silu": variant(hidden_act="silu", layers_num=1),
}



def case_learning_rate(case):
    return CASE_LEARNING_RATE.get(case, LEARNING_RATE)


# The batch: B=2, S=16; sequence 1 is padded (seg 0, src 0) after 11 tokens.
BATCH_SIZE, SEQ_LENGTH = 2, 16
SEGMENT_LENGTHS = [(8, 8), (6, 5)]          # tokens of segment A and B per sequence
MASKED_POSITIONS = [(0, 2), (0, 7), (0, 12), (1, 3), (1, 9)]
TGT_SP = [0, 1]
DATA_SEED = 4321


def make_batch():
    """src ids in [5, 300), seg 1/2/0, tgt_mlm (0 = not masked, else the label id), tgt_sp."""
    index = np.arange(BATCH_SIZE * SEQ_LENGTH)
    src = (5 + tp_hash3(DATA_SEED, 1, index) % np.uint64(VOCAB_SIZE - 5)).astype(np.int64)
    src = src.reshape(BATCH_SIZE, SEQ_LENGTH)
    seg = np.zeros((BATCH_SIZE, SEQ_LENGTH), dtype=np.int64)
    for row, (len_a, len_b) in enumerate(SEGMENT_LENGTHS):
        seg[row, :len_a] = 1
        seg[row, len_a:len_a + len_b] = 2
    src[seg == 0] = 0
    labels = (5 + tp_hash3(DATA_SEED, 2, index) % np.uint64(VOCAB_SIZE - 5)).astype(np.int64)
    tgt_mlm = np.zeros_like(src)
    for row, col in MASKED_POSITIONS:
        tgt_mlm[row, col] = labels[row * SEQ_LENGTH + col]
    return {"src": src, "seg": seg, "tgt_mlm": tgt_mlm, "tgt_sp": np.array(TGT_SP, dtype=np.int64)}


def is_layer_norm_scale(name):
    return "layer_norm" in name and (name.endswith(".gamma") or name.endswith(".weight"))


def is_layer_norm_shift(name):
    return "layer_norm" in name and (name.endswith(".beta") or name.endswith(".bias"))


def deterministic_values(name, numel, uniform=tp_uniform):
    """Fixture weights of parameter `name` (flat, row-major), computed in float64, cast to float32."""
    u = uniform(WEIGHT_SEED, tp_fnv1a64(name), np.arange(numel))
    if is_layer_norm_scale(name):
        values = 1.0 + 0.1 * (2.0 * u - 1.0)
    elif is_layer_norm_shift(name):
        values = 0.1 * (2.0 * u - 1.0)
    else:
        values = 0.04 * (2.0 * u - 1.0)
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def build_model(model_config, vocab_size):
    model = tpb.Model(tpb.Config(model_config, vocab_size))
    with torch.no_grad():
        for name, param in model.named_parameters():
            values = deterministic_values(name, param.numel())
            param.copy_(torch.from_numpy(values).view(param.shape))
    return model


def projection_fingerprint(name, values):
    """proj_k = sum_i v_i * (2 * tp_uniform(99, fnv1a64(name) + k, i) - 1), in float64."""
    flat = np.asarray(values, dtype=np.float32).reshape(-1).astype(np.float64)
    stream = tp_fnv1a64(name)
    index = np.arange(flat.size)
    return np.array([np.dot(flat, 2.0 * tp_uniform(PROJ_SEED, (stream + k) & MASK64, index) - 1.0)
                     for k in range(PROJ_COUNT)], dtype=np.float64)


def sample_indices(name, numel):
    return (tp_hash3(SAMPLE_SEED, tp_fnv1a64(name), np.arange(SAMPLE_COUNT)) % np.uint64(numel)).astype(np.int64)


def gradient_entries(name, grad):
    """grad.<name> in full for small tensors, else the gradfp.<name>.* fingerprint."""
    if grad.size <= FULL_LIMIT:
        return {"grad." + name: grad.astype(np.float32)}
    flat = grad.reshape(-1)
    idx = sample_indices(name, flat.size)
    wide = flat.astype(np.float64)
    return {
        "gradfp.%s.proj" % name: projection_fingerprint(name, flat),
        "gradfp.%s.sumsq" % name: np.array([np.dot(wide, wide)], dtype=np.float64),
        "gradfp.%s.idx" % name: idx,
        "gradfp.%s.val" % name: flat[idx].astype(np.float32),
    }


def as_tensor(array):
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))


def scalar(value):
    return np.array([float(value)], dtype=np.float32)


def compute_case(model_config, batch, learning_rate):
    """Forward/backward at the fixture weights, then STEPS AdamW updates: the fixture's tensors."""
    torch.manual_seed(0)  # no randomness is drawn (dropout 0); fixed anyway
    model = build_model(model_config, VOCAB_SIZE)
    model.train()
    inputs = {key: as_tensor(value) for key, value in batch.items()}
    out = model(**inputs)
    out["loss"].backward()

    tensors = {key: value.astype(np.int32) for key, value in batch.items()}
    tensors["hidden"] = out["hidden"].detach().numpy().astype(np.float32)
    tensors["mlm_logits"] = out["mlm_logits"].detach().numpy().astype(np.float32)
    tensors["sp_logits"] = out["sp_logits"].detach().numpy().astype(np.float32)
    for key in ("loss_mlm", "loss_sp", "loss", "mlm_correct"):
        tensors[key] = scalar(out[key].item())
    for name, param in model.named_parameters():
        tensors.update(gradient_entries(name, param.grad.numpy()))

    optimizer = tpb.make_optimizer(model, learning_rate)
    scheduler = tpb.make_scheduler(optimizer, WARMUP_STEPS, TOTAL_STEPS)
    losses = []
    for step in range(STEPS):
        if step > 0:
            model.zero_grad()
            out = model(**inputs)
            out["loss"].backward()
        losses.append(out["loss"].item())
        optimizer.step()
        scheduler.step()
    tensors["losses"] = np.array(losses, dtype=np.float32)
    for name, param in model.named_parameters():
        values = param.detach().numpy()
        tensors["param_fp_after.%s.proj" % name] = projection_fingerprint(name, values)
        if values.size <= FULL_LIMIT:
            tensors["param_after." + name] = values.astype(np.float32)
    return tensors


def metadata_for(model_config, learning_rate):
    return {
        "model_config": json.dumps(model_config, indent=2),
        "vocab_size": str(VOCAB_SIZE),
        "batch_size": str(BATCH_SIZE),
        "seq_length": str(SEQ_LENGTH),
        "learning_rate": repr(learning_rate),
        "warmup_steps": str(WARMUP_STEPS),
        "total_steps": str(TOTAL_STEPS),
        "weight_seed": str(WEIGHT_SEED),
        "steps": str(STEPS),
    }


# safetensors, written and read here so that no extra package is needed.
DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
          np.dtype(np.int32): "I32", np.dtype(np.int64): "I64"}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    chunks, offset = [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    temporary = path + ".tmp"
    with open(temporary, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def read_safetensors(path):
    with open(path, "rb") as handle:
        blob = handle.read()
    (header_length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_length].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    names = {value: key for key, value in DTYPES.items()}
    data = blob[8 + header_length:]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = names[entry["dtype"]].newbyteorder("<")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(entry["shape"])
    return tensors, metadata


class Checker:
    def __init__(self, path):
        self.path = path
        self.failures = []

    def close(self, name, found, expected, rtol, atol):
        found, expected = np.asarray(found, dtype=np.float64), np.asarray(expected, dtype=np.float64)
        if found.shape != expected.shape or not np.allclose(found, expected, rtol=rtol, atol=atol):
            diff = np.max(np.abs(found - expected)) if found.shape == expected.shape else "shape"
            self.failures.append("%s: %s: max difference %s" % (self.path, name, diff))

    def true(self, name, condition):
        if not condition:
            self.failures.append("%s: %s" % (self.path, name))


def exact_projection(name, flat):
    """The projection fingerprint again, written independently: exact sums (math.fsum) over
    projection values built from the hash bits."""
    stream = tp_fnv1a64(name)
    wide = np.asarray(flat, dtype=np.float64).reshape(-1)
    result = []
    for k in range(PROJ_COUNT):
        bits = tp_hash3(PROJ_SEED, (stream + k) & MASK64, np.arange(wide.size)) >> np.uint64(40)
        signs = bits.astype(np.float64) / 8388608.0 - 1.0  # 2 * bits / 2^24 - 1
        result.append(math.fsum(wide * signs))
    return np.array(result)


def check_weights(check, model):
    """The vectorised weight generator against pure-Python hashing, on a sample of each parameter."""
    for name, param in model.named_parameters():
        flat = param.detach().numpy().reshape(-1)
        stream = tp_fnv1a64(name)
        for i in sorted({0, flat.size // 2, flat.size - 1}):
            u = (tp_hash3_scalar(WEIGHT_SEED, stream, i) >> 40) / 16777216.0
            expected = deterministic_values(name, 1, uniform=lambda *_: np.array([u]))[0]
            check.true("weight %s[%d]" % (name, i), flat[i] == expected)


def check_gradients(check, tensors, model):
    """What the C test does with the file: full gradients compared, fingerprints recomputed."""
    for name, param in model.named_parameters():
        grad = param.grad.numpy()
        if grad.size <= FULL_LIMIT:
            check.close("grad." + name, tensors["grad." + name], grad, 1e-4, 1e-6)
            continue
        flat = grad.reshape(-1)
        idx = tensors["gradfp.%s.idx" % name]
        stream = tp_fnv1a64(name)
        check.true("gradfp.%s.idx hash" % name, all(
            int(idx[j]) == tp_hash3_scalar(SAMPLE_SEED, stream, j) % flat.size for j in range(SAMPLE_COUNT)))
        check.close("gradfp.%s.val" % name, tensors["gradfp.%s.val" % name], flat[idx], 1e-4, 1e-6)
        scale = math.sqrt(math.fsum(flat.astype(np.float64) ** 2))
        check.close("gradfp.%s.sumsq" % name, tensors["gradfp.%s.sumsq" % name], [scale * scale], 1e-4, 0)
        check.close("gradfp.%s.proj" % name, tensors["gradfp.%s.proj" % name], exact_projection(name, flat),
                    0, 1e-4 * scale)


def check_case(path, case):
    """Reload a fixture and check it the way the C side will, from a recomputation on the stored inputs."""
    tensors, metadata = read_safetensors(path)
    check = Checker(path)
    model_config = json.loads(metadata["model_config"])
    check.true("model_config is the case's", model_config == CASES[case])
    learning_rate = case_learning_rate(case)
    for key, value in metadata_for(model_config, learning_rate).items():
        check.true("metadata %s" % key, metadata.get(key) == value)
    batch = {key: tensors[key].astype(np.int64) for key in ("src", "seg", "tgt_mlm", "tgt_sp")}
    check.true("inputs are the documented batch", all(np.array_equal(batch[k], v) for k, v in make_batch().items()))

    model = build_model(model_config, int(metadata["vocab_size"]))
    check_weights(check, model)
    out = model(**{key: as_tensor(value) for key, value in batch.items()})
    out["loss"].backward()
    check.close("hidden", tensors["hidden"], out["hidden"].detach().numpy(), 1e-4, 1e-5)
    check.close("mlm_logits", tensors["mlm_logits"], out["mlm_logits"].detach().numpy(), 1e-4, 1e-5)
    check.close("sp_logits", tensors["sp_logits"], out["sp_logits"].detach().numpy(), 1e-4, 1e-5)
    for key in ("loss_mlm", "loss_sp", "loss", "mlm_correct"):
        check.close(key, tensors[key], [out[key].item()], 1e-5, 1e-6)
    check.true("mlm_logits rows", tensors["mlm_logits"].shape[0] == int(np.count_nonzero(batch["tgt_mlm"])))
    check.close("loss = loss_mlm + loss_sp", tensors["loss"], tensors["loss_mlm"] + tensors["loss_sp"], 1e-6, 1e-6)
    check_gradients(check, tensors, model)

    # Training: recomputed, and the after-update fingerprints checked independently.
    fresh = compute_case(model_config, batch, learning_rate)
    check.true("same tensor names", sorted(fresh) == sorted(tensors))
    check.close("losses", tensors["losses"], fresh["losses"], 1e-5, 1e-6)
    check.close("losses[0] = loss", tensors["losses"][0], tensors["loss"][0], 1e-6, 1e-6)
    check.true("losses fall", tensors["losses"][-1] < tensors["losses"][0])
    for name, param in model.named_parameters():
        key = "param_fp_after.%s.proj" % name
        check.close(key, tensors[key], fresh[key], 1e-5, 1e-6)
        if param.numel() <= FULL_LIMIT:
            key = "param_after." + name
            check.close(key, tensors[key], fresh[key], 1e-5, 1e-7)
            check.close(key + " fingerprint", tensors["param_fp_after.%s.proj" % name],
                        exact_projection(name, tensors[key]), 0, 1e-9)
    return check.failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: tests/fixtures/bert)")
    parser.add_argument("--check", action="store_true", help="only check the existing files")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: the same float results on every machine
    cases = [name for name in args.cases.split(",") if name]
    unknown = [name for name in cases if name not in CASES]
    if unknown:
        parser.error("unknown cases %s (known: %s)" % (unknown, ", ".join(CASES)))
    os.makedirs(args.out, exist_ok=True)
    failures = []
    for name in cases:
        path = os.path.join(args.out, name + ".safetensors")
        if not args.check:
            learning_rate = case_learning_rate(name)
            tensors = compute_case(CASES[name], make_batch(), learning_rate)
            write_safetensors(path, tensors, metadata_for(CASES[name], learning_rate))
        problems = check_case(path, name)
        failures += problems
        print("%-22s %8d bytes  %s" % (name, os.path.getsize(path), "ok" if not problems else "FAILED"))
    for problem in failures:
        print(problem, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
