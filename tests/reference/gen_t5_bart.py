#!/usr/bin/env python3
"""Writes tests/fixtures/{t5,t5_v1_1,bart}/: small RANDOM-INIT Hugging Face encoder-decoder models,
saved with save_pretrained (config.json, model.safetensors), and what transformers computes with
them, plus T5's relative position buckets.

    data/venv-ref/bin/python tests/reference/gen_t5_bart.py

The models (eval mode, float32), each 2 encoder and 2 decoder layers, d_model 32, 4 heads, a
vocabulary of 96 ids:
  t5        T5ForConditionalGeneration, d_ff 48, relu, tied embeddings (decoder output scaled by
            d_model^-0.5 before the head), 8 relative-position buckets, max distance 20
  t5_v1_1   the same with feed_forward_proj "gated-gelu" (gelu_new) and an untied lm_head
  bart      BartForConditionalGeneration, ffn 48, gelu, 64 positions (+2 offset rows)
Every parameter is perturbed after transformers' initialisation (matrices N(0, 0.3), biases
N(0, 0.1), norm gains 1 + N(0, 0.1)) so that the numbers spread.

expected.safetensors (float32; ids are exact in float32):
  input_ids [2, 9]          encoder ids; sequence 1 ends in 3 padding ids
  attention_mask [2, 9]     1 = real token
  decoder_input_ids [2, 6]
  logits [2, 6, 96]         model(input_ids, attention_mask, decoder_input_ids).logits
t5/buckets.safetensors: distance [401] (-200..200) and, for bidirectional 32 buckets and causal 32
buckets (max distance 128, T5's defaults), and for the fixture's 8 buckets / max distance 20,
transformers' T5Attention._relative_position_bucket of each.
"""
import os

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
            noise = torch.randn(param.shape, generator=generator)
            if "layer_norm" in name or "layernorm" in name:
                param.copy_((1 + 0.1 * noise) if name.endswith("weight") else 0.1 * noise)
            elif param.dim() == 1:
                param.copy_(0.1 * noise)
            else:
                param.copy_(0.3 * noise)
    return model.eval()


def t5(gated):
    torch.manual_seed(0)
    config = transformers.T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=48, num_layers=2,
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


def inputs(pad_id):
    generator = torch.Generator().manual_seed(7)
    input_ids = torch.randint(3, VOCAB, (2, 9), generator=generator)
    attention_mask = torch.ones(2, 9, dtype=torch.long)
    attention_mask[1, 6:] = 0
    input_ids[1, 6:] = pad_id
    decoder_input_ids = torch.randint(3, VOCAB, (2, 6), generator=generator)
    return input_ids, attention_mask, decoder_input_ids


def write(name, model, pad_id):
    out = os.path.join(FIXTURES, name)
    model.save_pretrained(out, safe_serialization=True)
    input_ids, attention_mask, decoder_input_ids = inputs(pad_id)
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask,
                       decoder_input_ids=decoder_input_ids).logits
    save_file({"input_ids": input_ids.float(), "attention_mask": attention_mask.float(),
               "decoder_input_ids": decoder_input_ids.float(), "logits": logits.float().contiguous()},
              os.path.join(out, "expected.safetensors"))


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
    torch.set_num_threads(1)
    write("t5", t5(False), 0)
    write("t5_v1_1", t5(True), 0)
    write("bart", bart(), 1)
    write_buckets()


if __name__ == "__main__":
    main()
