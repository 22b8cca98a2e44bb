#!/usr/bin/env python3
"""Writes tests/fixtures/gpt2/: a small RANDOM-INIT Hugging Face GPT2LMHeadModel (tied lm head),
saved with save_pretrained (config.json, model.safetensors), and what transformers computes with it.

    data/venv-ref/bin/python tests/reference/make_gpt2_fixture.py
    data/venv-ref/bin/python tests/reference/make_gpt2_fixture.py --tp-convert build/tp-convert

The model: 2 layers, n_embd 32, 4 heads, n_inner 64 (not 4 * n_embd, so that the feed-forward
size is read, not assumed), 64 positions, a vocabulary of 256 ids (GPT-2's real 50257 would make
the fixture 13 MB), in eval mode, float32.  Every parameter is perturbed after transformers'
initialisation (weights N(0, 0.3), biases N(0, 0.1), layer-norm gains 1 + N(0, 0.1)) so that the
logits spread widely: greedy decoding then has no near-ties that rounding could flip.

expected.safetensors (all float32; ids are exact in float32):
  input_ids [2, 16]            two sequences (no padding)
  logits [2, 16, 256]          GPT2LMHeadModel(input_ids).logits
  loss [1]                     its language-modelling loss with labels = input_ids (shifted inside)
  prompt [8]                   a prompt for generation
  greedy [32]                  generate(prompt, do_sample=False, max_new_tokens=32): the new ids
  greedy_penalty [32]          the same with repetition_penalty=1.3
  warp_logits [2, 256]         logits of the first input's last two positions, and what
  warped [2, 256]              transformers' TemperatureLogitsWarper(0.7), TopKLogitsWarper(20) and
                               TopPLogitsWarper(0.9) make of them in that order (-inf = removed)

With --tp-convert, the directory is also converted HF -> tp -> HF with that program, loaded back
with transformers (no missing or unexpected weights allowed) and must give bit-identical
parameters and logits.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "gpt2")
VOCAB, SEQ, NEW_TOKENS = 256, 16, 32


def build():
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4, n_inner=64,
                                      bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    model = transformers.GPT2LMHeadModel(config).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                param.copy_(1 + 0.1 * noise)
            elif param.dim() == 1:
                param.copy_(0.1 * noise)
            else:
                param.copy_(0.3 * noise)
    return model


def warp(logits):
    processors = transformers.LogitsProcessorList([
        transformers.TemperatureLogitsWarper(0.7),
        transformers.TopKLogitsWarper(20),
        transformers.TopPLogitsWarper(0.9),
    ])
    return processors(None, logits.clone())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tp-convert", help="path of the tp-convert program: also check its round trip")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = build()
    shutil.rmtree(OUT_DIR, ignore_errors=True)
    model.save_pretrained(OUT_DIR, safe_serialization=True)
    os.remove(os.path.join(OUT_DIR, "generation_config.json"))
    generator = torch.Generator().manual_seed(2)
    input_ids = torch.randint(0, VOCAB - 1, (2, SEQ), generator=generator)
    prompt = torch.randint(0, VOCAB - 1, (1, 8), generator=generator)
    with torch.no_grad():
        out = model(input_ids, labels=input_ids)
        # synced_gpus given: transformers would otherwise import torch.distributed.fsdp, which Debian's torch
        # 1.13 cannot import under Python 3.11
        options = dict(do_sample=False, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, pad_token_id=0,
                       synced_gpus=False)
        greedy = model.generate(prompt, **options)[0, prompt.shape[1]:]
        penalty = model.generate(prompt, repetition_penalty=1.3, **options)[0, prompt.shape[1]:]
    warp_logits = out.logits[0, -2:].clone()
    expected = {
        "input_ids": input_ids.float(),
        "logits": out.logits.contiguous(),
        "loss": out.loss.reshape(1),
        "prompt": prompt[0].float(),
        "greedy": greedy.float(),
        "greedy_penalty": penalty.float(),
        "warp_logits": warp_logits,
        "warped": warp(warp_logits),
    }
    save_file(expected, os.path.join(OUT_DIR, "expected.safetensors"),
              metadata={"transformers": transformers.__version__, "torch": torch.__version__})
    if args.tp_convert:
        check_round_trip(model, input_ids, args.tp_convert)
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR))
    print(f"wrote {OUT_DIR} ({total / 1024:.0f} KB); greedy {greedy.tolist()}")


def check_round_trip(model, input_ids, tp_convert):
    """HF -> tp -> HF with tp-convert; transformers must load the result exactly."""
    with tempfile.TemporaryDirectory() as tmp:
        tp_dir, hf_dir = os.path.join(tmp, "tp"), os.path.join(tmp, "hf")
        subprocess.run([tp_convert, "--from-hf", OUT_DIR, "--to", tp_dir], check=True)
        subprocess.run([tp_convert, "--to-hf", "--model", os.path.join(tp_dir, "model_config.json"), "--weights",
                        os.path.join(tp_dir, "model.safetensors"), "--to", hf_dir], check=True)
        back, info = transformers.GPT2LMHeadModel.from_pretrained(hf_dir, output_loading_info=True)
        problems = {k: v for k, v in info.items() if v}
        if problems:
            sys.exit(f"transformers reports {problems} loading tp-convert's output")
        original, converted = model.state_dict(), back.eval().state_dict()
        for key, value in original.items():
            if not torch.equal(value, converted[key]):
                sys.exit(f"{key} differs after HF -> tp -> HF")
        with torch.no_grad():
            if not torch.equal(model(input_ids).logits, back(input_ids).logits):
                sys.exit("logits differ after HF -> tp -> HF")
        print(f"tp-convert round trip loads in transformers {transformers.__version__} with identical weights and "
              "logits")


if __name__ == "__main__":
    main()
