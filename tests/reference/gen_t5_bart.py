#!/usr/bin/env python3
"""Writes tests/fixtures/{t5,t5_v1_1,bart,pegasus}/: small RANDOM-INIT Hugging Face encoder-decoder models,
saved with save_pretrained (config.json, model.safetensors), and what transformers computes with
them, plus T5's relative position buckets.

    data/venv-ref/bin/python tests/reference/gen_t5_bart.py [--tp-convert build/tp-convert]

The models (eval mode, float32), each 2 encoder and 2 decoder layers, d_model 32, 4 heads, a
vocabulary of 96 ids:
  t5        T5ForConditionalGeneration, d_ff 48, relu, tied embeddings (decoder output scaled by
            d_model^-0.5 before the head), 8 relative-position buckets, max distance 20
  t5_v1_1   the same with feed_forward_proj "gated-gelu" (gelu_new), an untied lm_head and d_kv 6, so
            that the heads' inner width 4 x 6 = 24 differs from d_model 32 (as t5-v1_1-small's 6 x 64
            differs from 512: tp's attention_head_size)
  bart      BartForConditionalGeneration, ffn 48, gelu, 64 positions (+2 offset rows)
  pegasus   PegasusForConditionalGeneration, ffn 48, relu, 64 sinusoidal positions, scale_embedding
Every parameter is perturbed after transformers' initialisation (matrices N(0, 0.3), biases
N(0, 0.1), norm gains 1 + N(0, 0.1)) so that the numbers spread; Pegasus's fixed sinusoidal tables
are left as they are, and BART's and Pegasus's final_logits_bias buffer (zero in released models)
is set to N(0, 0.5) so that tp's lm bias is checked.

expected.safetensors (float32; ids are exact in float32):
  input_ids [2, 9]          encoder ids; sequence 1 ends in 3 padding ids
  attention_mask [2, 9]     1 = real token
  decoder_input_ids [2, 6]
  logits [2, 6, 96]         model(input_ids, attention_mask, decoder_input_ids).logits
BART and Pegasus also (dropout off, eval mode):
  labels [2, 6]             decoder labels, -100 (ignored) at the last 2 positions of sequence 1
  loss [1]                  the model's mean cross-entropy with those labels
  final_logits_bias_grad [96]  d loss / d final_logits_bias (tp: the lm bias's gradient)
With --tp-convert, each directory is also converted HF -> tp -> HF with that program and loaded
back into transformers, whose logits must equal the original model's exactly (Pegasus's fixed
position tables, which tp does not write, are the only weights transformers fills in).
t5/buckets.safetensors: distance [401] (-200..200) and, for bidirectional 32 buckets and causal 32
buckets (max distance 128, T5's defaults), and for the fixture's 8 buckets / max distance 20,
transformers' T5Attention._relative_position_bucket of each.
"""
import argparse
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")
VOCAB = 96


def perturb(model):
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "embed_positions" in name and not param.requires_grad:
                continue
            noise = torch.randn(param.shape, generator=generator)
            if "layer_norm" in name or "layernorm" in name:
                param.copy_((1 + 0.1 * noise) if name.endswith("weight") else 0.1 * noise)
            elif param.dim() == 1:
                param.copy_(0.1 * noise)
            else:
                param.copy_(0.3 * noise)
        if hasattr(model, "final_logits_bias"):
            model.final_logits_bias.copy_(0.5 * torch.randn(model.final_logits_bias.shape, generator=generator))
    return model.eval()


def t5(gated):
    torch.manual_seed(0)
    config = transformers.T5Config(vocab_size=VOCAB, d_model=32, d_kv=6 if gated else 8, d_ff=48, num_layers=2,
                                   num_decoder_layers=2, num_heads=4, relative_attention_num_buckets=8,
                                   relative_attention_max_distance=20, dropout_rate=0.1,
                                   feed_forward_proj="gated-gelu" if gated else "relu",
                                   tie_word_embeddings=not gated, pad_token_id=0, eos_token_id=1,
                                   decoder_start_token_id=0)
    return perturb(transformers.T5ForConditionalGeneration(config))


def bart():
    torch.manual_seed(0)
    config = transformers.BartConfig(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2,
                                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=48,
                                     decoder_ffn_dim=48, max_position_embeddings=64, activation_function="gelu",
                                     pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
                                     forced_eos_token_id=2)
    return perturb(transformers.BartForConditionalGeneration(config))


def pegasus():
    torch.manual_seed(0)
    config = transformers.PegasusConfig(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2,
                                        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=48,
                                        decoder_ffn_dim=48, max_position_embeddings=64, activation_function="relu",
                                        scale_embedding=True, pad_token_id=0, eos_token_id=1,
                                        decoder_start_token_id=0, forced_eos_token_id=1)
    return perturb(transformers.PegasusForConditionalGeneration(config))


def inputs(pad_id):
    generator = torch.Generator().manual_seed(7)
    input_ids = torch.randint(3, VOCAB, (2, 9), generator=generator)
    attention_mask = torch.ones(2, 9, dtype=torch.long)
    attention_mask[1, 6:] = 0
    input_ids[1, 6:] = pad_id
    decoder_input_ids = torch.randint(3, VOCAB, (2, 6), generator=generator)
    return input_ids, attention_mask, decoder_input_ids


def logits_of(model, pad_id):
    input_ids, attention_mask, decoder_input_ids = inputs(pad_id)
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids).logits


def check_round_trip(name, model, pad_id, tp_convert):
    """HF -> tp -> HF with tp-convert; transformers must compute the same logits from the result."""
    with tempfile.TemporaryDirectory() as work:
        tp_dir, back_dir = os.path.join(work, "tp"), os.path.join(work, "hf")
        subprocess.run([tp_convert, "--from-hf", os.path.join(FIXTURES, name), "--to", tp_dir], check=True)
        subprocess.run([tp_convert, "--to-hf", "--model", os.path.join(tp_dir, "model_config.json"), "--weights",
                        os.path.join(tp_dir, "model.safetensors"), "--to", back_dir], check=True)
        back, info = transformers.AutoModelForSeq2SeqLM.from_pretrained(back_dir, output_loading_info=True)
        missing = [key for key in info["missing_keys"] if "embed_positions" not in key or name != "pegasus"]
        if missing or info["unexpected_keys"]:
            sys.exit(f"{name}: transformers reports missing {missing}, unexpected {info['unexpected_keys']}")
        difference = float((logits_of(back.eval(), pad_id) - logits_of(model, pad_id)).abs().max())
        if difference != 0.0:
            sys.exit(f"{name}: tp-convert's round trip changes the logits by {difference}")
        print(f"{name}: tp-convert round trip loads in transformers {transformers.__version__} with identical logits")


def bias_gradient(model, pad_id):
    """BART / Pegasus: labels, the mean cross-entropy and its gradient with respect to final_logits_bias."""
    input_ids, attention_mask, decoder_input_ids = inputs(pad_id)
    labels = torch.randint(3, VOCAB, decoder_input_ids.shape, generator=torch.Generator().manual_seed(11))
    labels[1, 4:] = -100  # ignored, as tp's -1 tags
    model.final_logits_bias.requires_grad_(True)
    loss = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                 labels=labels).loss
    (grad,) = torch.autograd.grad(loss, model.final_logits_bias)
    model.final_logits_bias.requires_grad_(False)
    return {"labels": labels.float(), "loss": loss.detach().reshape(1), "final_logits_bias_grad": grad.reshape(-1)}


def write(name, model, pad_id):
    out = os.path.join(FIXTURES, name)
    model.save_pretrained(out, safe_serialization=True)
    input_ids, attention_mask, decoder_input_ids = inputs(pad_id)
    tensors = {"input_ids": input_ids.float(), "attention_mask": attention_mask.float(),
               "decoder_input_ids": decoder_input_ids.float(), "logits": logits_of(model, pad_id).float().contiguous()}
    if hasattr(model, "final_logits_bias"):
        tensors.update(bias_gradient(model, pad_id))
    save_file(tensors, os.path.join(out, "expected.safetensors"))


def write_buckets():
    bucket = transformers.models.t5.modeling_t5.T5Attention._relative_position_bucket
    distance = torch.arange(-200, 201)
    tensors = {"distance": distance.float()}
    for label, bidirectional, buckets, max_distance in (("bidirectional_32", True, 32, 128),
                                                        ("causal_32", False, 32, 128),
                                                        ("bidirectional_8", True, 8, 20), ("causal_8", False, 8, 20)):
        tensors[label] = bucket(distance, bidirectional=bidirectional, num_buckets=buckets,
                                max_distance=max_distance).float()
    save_file(tensors, os.path.join(FIXTURES, "t5", "buckets.safetensors"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tp-convert", help="path of the tp-convert program: also check its round trip")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name, model, pad_id in (("t5", t5(False), 0), ("t5_v1_1", t5(True), 0), ("bart", bart(), 1),
                                ("pegasus", pegasus(), 0)):
        write(name, model, pad_id)
        if args.tp_convert:
            check_round_trip(name, model, pad_id, args.tp_convert)
    write_buckets()


if __name__ == "__main__":
    main()
