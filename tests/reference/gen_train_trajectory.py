#!/usr/bin/env python3
"""Writes tests/fixtures/trajectory_{t5,gpt2}/: tp's initial weights of a tiny T5 and a tiny GPT-2,
exported to Hugging Face by tp-convert, and what PyTorch / transformers computes when it trains them.

    data/venv-ref/bin/python tests/reference/gen_train_trajectory.py BUILD_DIR

BUILD_DIR holds tp-convert and test_train_trajectory, whose --write-initial mode saves tp's
initialisation (seed 7) of a model config as a checkpoint.  The models are the tiny recipes'
(models/t5/tiny_config.json, models/gpt2/tiny_config.json: their activations, norms, relative
positions, tied heads) narrowed to hidden 24, 2 heads, a vocabulary of 64 ids, so that the weights
stay small (T5: feed-forward 48; GPT-2: 96 and 16 positions).  tp-convert --to-hf writes the
Hugging Face directory (config.json, model.safetensors) straight into the fixture.

Training, as tp's trainer does it with the run config of tests/models/test_train_trajectory.c:
STEPS optimizer steps on one fixed batch, float32, dropout 0 (eval mode), the loss the models
compute with labels (mean cross-entropy over the scored tokens), then
transformers.optimization.AdamW -- the optimizer TencentPretrain (and tp's default variant) uses:
the bias-corrected Adam update, then p -= lr * weight_decay * p -- with lr 1e-2 (constant),
betas (0.9, 0.999), eps 1e-6, correct_bias True, weight decay 0.01 except on TencentPretrain's
no-decay parameters (see no_decay: biases and norm gains, but not T5's decoder layer_norm_3).

expected.safetensors (float32; ids are exact in float32):
  input_ids [4, S], attention_mask [4, S]   the batch (T5: encoder ids, rows 1 and 3 padded; GPT-2: no padding)
  decoder_input_ids [4, 8]                  T5: the labels shifted right after the start id 0, 0 at padding
  labels [4, T]                             the ids each position is scored against, -100 where none:
                                            T5: the decoder's targets (rows 1 and 3 padded);
                                            GPT-2: the next input id (what transformers' labels=input_ids
                                            shifts to), -100 at the last position
  losses [STEPS + 1]                        the loss before each update and after the last one
  final.<tp name>                           a few parameters after the STEPS updates, in tp's layout
  init_std.<tp name> [1]                    T5: the standard deviation of that tensor in a T5 of the same
                                            config that transformers initialises (T5's _init_weights), for
                                            tp's `initializer: t5`
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")
VOCAB, SEED, STEPS, BATCH = 64, 7, 6, 4
LEARNING_RATE, WEIGHT_DECAY = 1e-2, 0.01


def tp_config(base, **overrides):
    with open(os.path.join(REPO_ROOT, base)) as f:
        config = json.load(f)
    config.update(overrides)
    return config


def export_initial(build, name, config, work):
    """tp's initial weights of config, converted by tp-convert into tests/fixtures/trajectory_<name>."""
    config_path = os.path.join(work, name + ".json")
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)
    root = os.path.join(work, name + "_init")
    subprocess.run([os.path.join(build, "test_train_trajectory"), "--write-initial", config_path, str(VOCAB),
                    str(SEED), root], check=True)
    out = os.path.join(FIXTURES, "trajectory_" + name)
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([os.path.join(build, "tp-convert"), "--to-hf", "--model", config_path, "--weights",
                    os.path.join(root, "step-00000000", "model.safetensors"), "--to", out], check=True)
    return out


def no_decay(hf_name):
    """TencentPretrain's no-decay parameters (trainer.py: names containing bias, gamma, beta,
    layer_norm.weight, layer_norm_1.weight or layer_norm_2.weight; tp's core/params.c) under their
    Hugging Face names: biases (T5's relative_attention_bias too, whose tp name holds 'bias') and the
    norm gains -- but not a T5 decoder block's third norm (layer.2.layer_norm, tp's layer_norm_3),
    which that list leaves out, so TencentPretrain and tp decay it."""
    if "bias" in hf_name or ".ln_" in hf_name or hf_name.startswith("ln_"):
        return True
    return "layer_norm" in hf_name and not (hf_name.startswith("decoder.block.") and ".layer.2.layer_norm" in hf_name)


def train(model, batch, final):
    """STEPS updates; returns the STEPS + 1 losses and the final tensors {tp name: tensor}."""
    params = list(model.named_parameters())
    groups = [{"params": [p for n, p in params if not no_decay(n)], "weight_decay": WEIGHT_DECAY},
              {"params": [p for n, p in params if no_decay(n)], "weight_decay": 0.0}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' AdamW is deprecated, not changed
        optimizer = transformers.optimization.AdamW(groups, lr=LEARNING_RATE, betas=(0.9, 0.999), eps=1e-6,
                                                    correct_bias=True)
    losses = []
    for step in range(STEPS + 1):
        loss = model(**batch).loss
        losses.append(loss.item())
        if step == STEPS:
            break
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    state = dict(model.named_parameters())
    return losses, {"final." + tp_name: fn(state).detach().clone().contiguous() for tp_name, fn in final.items()}


def t5_batch(generator):
    src_len, tgt_len = 12, 8
    input_ids = torch.randint(2, VOCAB, (BATCH, src_len), generator=generator)
    attention_mask = torch.ones(BATCH, src_len, dtype=torch.long)
    labels = torch.randint(2, VOCAB, (BATCH, tgt_len), generator=generator)
    for row, (src_pad, tgt_pad) in {1: (3, 2), 3: (5, 4)}.items():
        input_ids[row, src_len - src_pad:] = 0
        attention_mask[row, src_len - src_pad:] = 0
        labels[row, tgt_len - tgt_pad:] = -100
    decoder_input_ids = torch.zeros_like(labels)
    decoder_input_ids[:, 1:] = labels[:, :-1].clamp(min=0)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "decoder_input_ids": decoder_input_ids,
            "labels": labels}


def gpt2_batch(generator):
    input_ids = torch.randint(0, VOCAB, (BATCH, 12), generator=generator)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": input_ids}


def run_t5(build, work, generator):
    config = tp_config("models/t5/tiny_config.json", emb_size=24, hidden_size=24, feedforward_size=48, heads_num=2)
    out = export_initial(build, "t5", config, work)
    model = transformers.T5ForConditionalGeneration.from_pretrained(out, dropout_rate=0.0).eval()
    batch = t5_batch(generator)
    final = {
        "embedding.word.embedding.weight": lambda s: s["shared.weight"],
        "encoder.relative_pos_emb.relative_attention_bias.weight":
            lambda s: s["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"],
        "decoder.self_pos_emb.relative_attention_bias.weight":
            lambda s: s["decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"],
        "encoder.transformer.1.self_attn.linear_layers.0.weight":
            lambda s: s["encoder.block.1.layer.0.SelfAttention.q.weight"],
        "decoder.transformer_decoder.1.context_attn.linear_layers.1.weight":
            lambda s: s["decoder.block.1.layer.1.EncDecAttention.k.weight"],
        "decoder.transformer_decoder.1.layer_norm_3.weight": lambda s: s["decoder.block.1.layer.2.layer_norm.weight"],
        "decoder.layer_norm.weight": lambda s: s["decoder.final_layer_norm.weight"],
    }
    losses, tensors = train(model, batch, final)
    tensors.update(t5_init_stds(model.config))
    return out, batch, batch, (losses, tensors)


def t5_init_stds(config):
    """The standard deviation of a few tensors of a T5 that transformers initialises itself (its
    _init_weights: what tp's `initializer: t5` must give), under tp's names."""
    torch.manual_seed(3)
    state = dict(transformers.T5ForConditionalGeneration(config).named_parameters())
    names = {
        "embedding.word.embedding.weight": "shared.weight",
        "encoder.relative_pos_emb.relative_attention_bias.weight":
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "encoder.transformer.0.self_attn.linear_layers.0.weight": "encoder.block.0.layer.0.SelfAttention.q.weight",
        "encoder.transformer.0.self_attn.linear_layers.1.weight": "encoder.block.0.layer.0.SelfAttention.k.weight",
        "encoder.transformer.0.self_attn.linear_layers.2.weight": "encoder.block.0.layer.0.SelfAttention.v.weight",
        "encoder.transformer.0.self_attn.final_linear.weight": "encoder.block.0.layer.0.SelfAttention.o.weight",
        "decoder.transformer_decoder.1.context_attn.linear_layers.0.weight":
            "decoder.block.1.layer.1.EncDecAttention.q.weight",
        "encoder.transformer.1.feed_forward.linear_1.weight": "encoder.block.1.layer.1.DenseReluDense.wi.weight",
        "encoder.transformer.1.feed_forward.linear_2.weight": "encoder.block.1.layer.1.DenseReluDense.wo.weight",
    }
    return {"init_std." + tp_name: state[hf_name].detach().std().reshape(1) for tp_name, hf_name in names.items()}


def run_gpt2(build, work, generator):
    config = tp_config("models/gpt2/tiny_config.json", emb_size=24, hidden_size=24, feedforward_size=96, heads_num=2,
                       max_seq_length=16)
    out = export_initial(build, "gpt2", config, work)
    model = transformers.GPT2LMHeadModel.from_pretrained(out, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0).eval()
    batch = gpt2_batch(generator)
    hidden = 24
    final = {
        "embedding.word.embedding.weight": lambda s: s["transformer.wte.weight"],
        "embedding.pos.embedding.weight": lambda s: s["transformer.wpe.weight"],
        # Conv1D stores [in, out]: tp's [out, in] is the transpose; c_attn's first third is the query
        "encoder.transformer.1.self_attn.linear_layers.0.weight":
            lambda s: s["transformer.h.1.attn.c_attn.weight"][:, :hidden].t(),
        "encoder.transformer.0.feed_forward.linear_1.bias": lambda s: s["transformer.h.0.mlp.c_fc.bias"],
        "encoder.layer_norm.weight": lambda s: s["transformer.ln_f.weight"],
    }
    fixture_batch = dict(batch)
    labels = torch.full_like(batch["input_ids"], -100)
    labels[:, :-1] = batch["input_ids"][:, 1:]
    fixture_batch["labels"] = labels
    return out, batch, fixture_batch, train(model, batch, final)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", help="build directory with tp-convert and test_train_trajectory")
    args = parser.parse_args()
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    with tempfile.TemporaryDirectory() as work:
        for name, run in (("t5", run_t5), ("gpt2", run_gpt2)):
            out, _, fixture_batch, (losses, final) = run(args.build, work, generator)
            tensors = {key: value.float().contiguous() for key, value in fixture_batch.items()}
            tensors["losses"] = torch.tensor(losses, dtype=torch.float32)
            tensors.update(final)
            save_file(tensors, os.path.join(out, "expected.safetensors"))
            print(f"{name}: losses " + " ".join(f"{x:.6f}" for x in losses), file=sys.stderr)


if __name__ == "__main__":
    main()
