#!/usr/bin/env python3
"""Writes tests/fixtures/s2t/: a small RANDOM-INIT Hugging Face Speech2TextForConditionalGeneration,
saved with save_pretrained (config.json, model.safetensors), what transformers computes with it, and
the parameter count of facebook/s2t-small-librispeech-asr's architecture (from its config values,
no weights downloaded).

    data/venv-ref/bin/python tests/reference/gen_s2t.py

The tiny model (eval mode, float32): 2 encoder and 2 decoder layers, d_model 32, 4 heads, ffn 48,
relu, 2 convolutions (kernels 5 and 3, conv_channels 24) over 12 input features, scale_embedding
(sqrt(32)), a vocabulary of 40 ids, tied lm_head (no bias).  Every parameter is perturbed after
transformers' initialisation (matrices N(0, 0.3), biases N(0, 0.1), norm gains 1 + N(0, 0.1)), but
the sinusoidal position tables, which transformers keeps as parameters without gradient.

expected.safetensors (float32; ids and masks are exact):
  input_features [2, 23, 12]    utterance 1 has 17 real frames, then zeros
  attention_mask [2, 23]        1 = real frame
  encoder_mask [2, 6]           transformers' subsampled mask (_get_feature_vector_attention_mask)
  decoder_input_ids [2, 5]
  logits [2, 5, 40]             model(input_features, attention_mask, decoder_input_ids).logits
  small_parameters [2]          Speech2TextForConditionalGeneration(s2t-small config).num_parameters()
                                with only_trainable False (the sinusoid tables included) and True

generate.safetensors (float32 holding ids): model.generate(input_features=one utterance alone, its
real frames only, max_new_tokens=MAX_NEW, and each search of SEARCHES) for utterance u (0: all 23
frames, 1: its 17 real frames): "u<u>.<search name>" = the generated sequence, the decoder start id
first (transformers' output as returned).
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(REPO_ROOT, "tests", "fixtures", "s2t")
VOCAB = 40
MAX_NEW = 12
# name: generate() keyword arguments
# (the random model repeats one id: no_repeat_ngram_size 2 makes the searches choose among others)
SEARCHES = {
    "greedy": {"num_beams": 1},
    "beams4": {"num_beams": 4},
    "greedy_ngram2": {"num_beams": 1, "no_repeat_ngram_size": 2},
    "beams4_ngram2": {"num_beams": 4, "no_repeat_ngram_size": 2},
    "beams3_lp0.5_early_ngram2": {"num_beams": 3, "length_penalty": 0.5, "early_stopping": True,
                                  "no_repeat_ngram_size": 2},
    "beams5_lp2_ngram2": {"num_beams": 5, "length_penalty": 2.0, "no_repeat_ngram_size": 2},
}


def perturb(model):
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "embed_positions" in name:  # fixed sinusoids (a parameter without gradient)
                continue
            noise = torch.randn(param.shape, generator=generator)
            if "layer_norm" in name:
                param.copy_((1 + 0.1 * noise) if name.endswith("weight") else 0.1 * noise)
            elif param.dim() == 1:
                param.copy_(0.1 * noise)
            else:
                param.copy_(0.3 * noise)
    return model.eval()


def tiny():
    torch.manual_seed(0)
    config = transformers.Speech2TextConfig(
        vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48, activation_function="relu",
        max_source_positions=64, max_target_positions=32, num_conv_layers=2, conv_kernel_sizes=[5, 3],
        conv_channels=24, input_feat_per_channel=12, input_channels=1, scale_embedding=True,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    return perturb(transformers.Speech2TextForConditionalGeneration(config))


def small_parameters():
    # facebook/s2t-small-librispeech-asr's config.json values (Speech2TextConfig's defaults but the
    # vocabulary and layer counts): 10000 ids, d_model 256, 12 + 6 layers, 4 heads, ffn 2048,
    # 2 convolutions of kernel 5 over 80 features with 1024 channels.
    config = transformers.Speech2TextConfig(
        vocab_size=10000, d_model=256, encoder_layers=12, decoder_layers=6, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=2048, decoder_ffn_dim=2048, activation_function="relu",
        max_source_positions=6000, max_target_positions=1024, num_conv_layers=2, conv_kernel_sizes=[5, 5],
        conv_channels=1024, input_feat_per_channel=80, input_channels=1, scale_embedding=True)
    model = transformers.Speech2TextForConditionalGeneration(config)
    counts = [model.num_parameters(), model.num_parameters(only_trainable=True)]
    assert all(float(torch.tensor(float(n))) == n for n in counts)  # exact in float32
    return counts


def main():
    torch.set_num_threads(1)
    model = tiny()
    model.save_pretrained(OUT, safe_serialization=True)
    generator = torch.Generator().manual_seed(7)
    features = torch.randn(2, 23, 12, generator=generator)
    attention_mask = torch.ones(2, 23, dtype=torch.long)
    attention_mask[1, 17:] = 0
    features[1, 17:] = 0
    decoder_input_ids = torch.randint(3, VOCAB, (2, 5), generator=generator)
    counts = small_parameters()
    with torch.no_grad():
        logits = model(input_features=features, attention_mask=attention_mask,
                       decoder_input_ids=decoder_input_ids).logits
        encoder_mask = model.model.encoder._get_feature_vector_attention_mask(6, attention_mask)
    save_file({"input_features": features, "attention_mask": attention_mask.float(),
               "encoder_mask": encoder_mask.float(), "decoder_input_ids": decoder_input_ids.float(),
               "logits": logits.float().contiguous(),
               "small_parameters": torch.tensor([float(n) for n in counts])},
              os.path.join(OUT, "expected.safetensors"))
    generated = {}
    for u, frames in ((0, 23), (1, 17)):
        for name, search in SEARCHES.items():
            with torch.no_grad():
                # synced_gpus given: transformers would otherwise import torch.distributed.fsdp, which
                # Debian's torch 1.13 cannot import under Python 3.11
                ids = model.generate(input_features=features[u : u + 1, :frames], max_new_tokens=MAX_NEW,
                                     do_sample=False, synced_gpus=False, **search)
            generated["u%d.%s" % (u, name)] = ids[0].float().contiguous()
            print("utterance %d, %s: %s" % (u, name, ids[0].tolist()))
    save_file(generated, os.path.join(OUT, "generate.safetensors"))
    print("s2t-small parameters (all, trainable):", counts)


if __name__ == "__main__":
    main()
