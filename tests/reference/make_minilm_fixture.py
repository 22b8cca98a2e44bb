#!/usr/bin/env python3
"""Writes tests/fixtures/minilm/{sentences.txt,expected.safetensors}: the published
sentence-transformers/all-MiniLM-L6-v2 model's outputs on real English sentences, the values
tp must reproduce when it loads data/models/all-MiniLM-L6-v2/model.safetensors.

Needs the data fetched by scripts/fetch_data.sh and the environment of
tests/reference/setup_env.sh (transformers, tokenizers, safetensors, sentence-transformers):
    data/venv-ref/bin/python tests/reference/make_minilm_fixture.py           # write, then check
    data/venv-ref/bin/python tests/reference/make_minilm_fixture.py --check   # only check the files

The outputs are computed with transformers' BertModel (float32, CPU, eval mode) plus the
pooling and normalisation that the model's modules.json declares, and are checked against
sentence-transformers' own SentenceTransformer.encode.  The format is described in
docs/reference.md ("all-MiniLM-L6-v2").
"""
import argparse
import hashlib
import json
import os
import re
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.numpy import load_file, save  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL_DIR = os.path.join(REPO_ROOT, "data", "models", "all-MiniLM-L6-v2")
FORTUNES_DIR = os.path.join(REPO_ROOT, "data", "corpus", "fortunes")
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "minilm")
SENTENCES_FILE = "sentences.txt"
EXPECTED_FILE = "expected.safetensors"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

# 50 sentences keep the three [N, 384] float32 outputs plus the token ids under 300 KB.
SENTENCE_COUNT = 50
MIN_CHARS, MAX_CHARS = 20, 200
ENCODE_TOLERANCE = 1e-6


def fortune_entries(path):
    """The fortunes of one strfile source file: blocks of lines separated by a line '%'."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    entries, block = [], []
    for line in lines + ["%"]:
        if line == "%":
            if any(part.strip() for part in block):
                entries.append(block)
            block = []
        else:
            block.append(line)
    return entries


def select_sentences():
    """Deterministic choice from the fortunes files (sorted by name, entries in file order):
    every fortune with a non-ASCII character whose whitespace-collapsed text has 20-200
    characters, then single-line fortunes of 20-200 printable characters at a fixed stride
    over all categories, without duplicates."""
    categories = sorted(name for name in os.listdir(FORTUNES_DIR) if not name.startswith("."))
    non_ascii, single_line = [], []
    for category in categories:
        for block in fortune_entries(os.path.join(FORTUNES_DIR, category)):
            collapsed = " ".join(" ".join(block).split())
            if not MIN_CHARS <= len(collapsed) <= MAX_CHARS:
                continue
            if re.search(r"[^\x00-\x7f]", collapsed):
                non_ascii.append(collapsed)
            lines = [line for line in block if line.strip()]
            if len(lines) == 1 and not re.search(r"[\x00-\x1f\x7f-\uffff]", lines[0]):
                single_line.append(lines[0].strip())
    chosen = list(dict.fromkeys(non_ascii))
    wanted = SENTENCE_COUNT - len(chosen)
    stride = len(single_line) / wanted
    for i in range(wanted):
        sentence = single_line[int(i * stride)]
        if sentence in chosen:
            raise SystemExit(f"make_minilm_fixture: duplicate sentence at stride index {i}: {sentence!r}")
        chosen.append(sentence)
    return chosen


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def max_seq_length():
    with open(os.path.join(MODEL_DIR, "sentence_bert_config.json")) as f:
        return int(json.load(f)["max_seq_length"])


def check_model_layout():
    """The pipeline this script reimplements is exactly Transformer -> mean Pooling -> Normalize."""
    with open(os.path.join(MODEL_DIR, "modules.json")) as f:
        types = [m["type"] for m in json.load(f)]
    assert types == ["sentence_transformers.models.Transformer",
                     "sentence_transformers.models.Pooling",
                     "sentence_transformers.models.Normalize"], types
    with open(os.path.join(MODEL_DIR, "1_Pooling", "config.json")) as f:
        pooling = json.load(f)
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    assert modes == ["pooling_mode_mean_tokens"], modes


def compute(sentences):
    tokenizer = transformers.AutoTokenizer.from_pretrained(MODEL_DIR)
    model = transformers.BertModel.from_pretrained(MODEL_DIR, torch_dtype=torch.float32,
                                                   attn_implementation="eager").eval()
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=max_seq_length(),
                      return_tensors="pt")
    with torch.no_grad():
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       token_type_ids=torch.zeros_like(batch["input_ids"])).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    # sentence_transformers.models.Pooling: sum over real tokens / max(count, 1e-9)
    mean_pooled = (hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
    # sentence_transformers.models.Normalize: torch.nn.functional.normalize(p=2, dim=1)
    sentence_embedding = torch.nn.functional.normalize(mean_pooled, p=2, dim=1)
    return {
        "input_ids": batch["input_ids"].to(torch.int32).numpy(),
        "attention_mask": batch["attention_mask"].to(torch.int32).numpy(),
        "cls_hidden": hidden[:, 0, :].contiguous().numpy(),
        "mean_pooled": mean_pooled.numpy(),
        "sentence_embedding": sentence_embedding.numpy(),
    }


def metadata(sentences_path):
    import tokenizers
    return {
        "model": MODEL_NAME,
        "model_safetensors_sha256": sha256_of(os.path.join(MODEL_DIR, "model.safetensors")),
        "sentences_sha256": sha256_of(sentences_path),
        "max_seq_length": str(max_seq_length()),
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "torch": torch.__version__,
    }


def encode_with_sentence_transformers(sentences):
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    model = SentenceTransformer(MODEL_DIR, device="cpu")
    assert model.max_seq_length == max_seq_length()
    # One batch, so the padding equals the fixture's; also the default batching (length-sorted
    # batches of 32, different padding) to see that padding does not change the result.
    whole = model.encode(sentences, batch_size=len(sentences), convert_to_numpy=True)
    default = model.encode(sentences, convert_to_numpy=True)
    return whole, default


def check(out_dir):
    sentences_path = os.path.join(out_dir, SENTENCES_FILE)
    with open(sentences_path, encoding="utf-8") as f:
        sentences = f.read().split("\n")[:-1]
    assert sentences == select_sentences(), "sentences.txt differs from the fortunes selection"
    stored = load_file(os.path.join(out_dir, EXPECTED_FILE))
    fresh = compute(sentences)
    assert sorted(stored) == sorted(fresh), sorted(stored)
    n = len(sentences)
    for name, value in fresh.items():
        assert stored[name].dtype == value.dtype and stored[name].shape == value.shape, name
        assert stored[name].shape[0] == n, name
        assert np.array_equal(stored[name], value), f"{name} is not reproduced bit for bit"
    with open(os.path.join(out_dir, EXPECTED_FILE), "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    assert header["__metadata__"] == metadata(sentences_path), header["__metadata__"]

    mask = stored["attention_mask"]
    assert mask[:, 0].all() and (mask.sum(1) < mask.shape[1]).any(), "batch needs padding"
    assert np.allclose(np.linalg.norm(stored["sentence_embedding"], axis=1), 1.0, atol=1e-6)
    encoded = encode_with_sentence_transformers(sentences)
    if encoded is None:
        print("make_minilm_fixture: sentence-transformers not installed; encode() not compared")
        return
    for label, embedding in zip(("one batch", "default batches"), encoded):
        diff = float(np.abs(embedding - stored["sentence_embedding"]).max())
        print(f"make_minilm_fixture: SentenceTransformer.encode ({label}) max |diff| = {diff:.3g}")
        assert diff <= ENCODE_TOLERANCE, f"encode ({label}) differs by {diff}"


def safetensors_bytes(tensors, meta):
    """safetensors.numpy.save, with the header rewritten so that __metadata__ comes first with
    its keys sorted: the package serialises metadata from a Rust HashMap, whose order changes
    from run to run, and the fixture must be byte-identical when regenerated."""
    blob = save(tensors, metadata=meta)
    header_len = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + header_len])
    header = {"__metadata__": dict(sorted(header.pop("__metadata__").items())), **header}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data stays 8-byte aligned, as the package pads it
    return len(text).to_bytes(8, "little") + text + blob[8 + header_len:]


def write(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    sentences = select_sentences()
    sentences_path = os.path.join(out_dir, SENTENCES_FILE)
    with open(sentences_path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(s + "\n" for s in sentences))
    blob = safetensors_bytes(compute(sentences), metadata(sentences_path))
    with open(os.path.join(out_dir, EXPECTED_FILE), "wb") as f:
        f.write(blob)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the existing files")
    parser.add_argument("--out", default=OUT_DIR, help="output directory (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    check_model_layout()
    if not args.check:
        write(args.out)
    check(args.out)
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in (SENTENCES_FILE, EXPECTED_FILE))
    print(f"make_minilm_fixture: {args.out} ok ({total} bytes)")


if __name__ == "__main__":
    sys.exit(main())
