#!/usr/bin/env python3
"""Writes tests/fixtures/beit_hf/<name>/: small RANDOM-INIT Hugging Face BEiT models as
save_pretrained writes them (config.json, model.safetensors) and what transformers computes with
them (expected.safetensors), for tp's Hugging Face BEiT loading (core/hf_beit.c), its relative
position bias and layer scale (tests/models/test_beit_hf.c).

    data/venv-ref/bin/python tests/reference/gen_beit_hf_fixture.py

All: 3 x 32 x 32 images, 8-pixel patches (a 4 x 4 grid), hidden 16, 2 layers, 2 heads, feed-forward
32, exact GELU, layer_norm_eps 1e-12, layer scale 0.1, eval mode, float32; every parameter perturbed
by N(0, 0.05) after transformers' initialisation, the relative position tables by N(0, 0.5) and the
layer scales by N(0, 0.3) (so that they matter).

  mim         BeitForMaskedImageModeling as microsoft/beit-base-patch16-224-pt22k: one relative
              position bias table shared by the layers (use_shared_relative_position_bias), mask
              token, no absolute positions, mean pooling (the backbone's own final norm an
              identity; the top-level layernorm before the visual-token head, vocab_size 24)
  classifier  BeitForImageClassification (3 labels) with a relative position table per layer
              (use_relative_position_bias), absolute positions, no mean pooling (the class token
              into the classifier)
  mean        BeitForImageClassification (3 labels) as microsoft/beit-base-patch16-224: a table per
              layer, no absolute positions, mean pooling (no final norm; the classifier reads the
              layer-normed mean of the patch rows)
expected.safetensors:
  pixel_values     float32 [2, 3, 32, 32]
  hidden           float32 [2, 17, 16]  mim: layernorm(beit(pixels).last_hidden_state) (the head's
                   input); classifier, mean: beit(pixels).last_hidden_state
  logits           float32 [2, 3]       classifier, mean
  bool_masked_pos  float32 [2, 16]      mim: 1 = masked
  masked_hidden    float32 [2, 17, 16]  mim: hidden with bool_masked_pos
  metadata parameters.beit.base-16-pt22k: mim only: the parameters of
                   BeitForMaskedImageModeling(BeitConfig(use_mask_token, shared relative position bias,
                   layer scale 0.1, mean pooling)) but its lm_head (microsoft/beit-base-patch16-224-pt22k's
                   shape), for models/beit/base-16-pt22k_config.json
  grid_index_2x3   float32 [7, 7]       mim: BeitRelativePositionBias's table index for a 2 x 3 grid
                   (rows x columns; a non-square grid tells them apart)
"""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "beit_hf")
IMAGE, PATCH = 32, 8


def config(**overrides):
    settings = dict(image_size=IMAGE, patch_size=PATCH, num_channels=3, hidden_size=16, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=32, hidden_act="gelu", layer_norm_eps=1e-12,
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, drop_path_rate=0.0,
                    layer_scale_init_value=0.1)
    settings.update(overrides)
    return transformers.BeitConfig(**settings)


def perturbed(model):
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            scale = 0.5 if "relative_position_bias_table" in name else 0.3 if ".lambda_" in name else 0.05
            parameter.add_(torch.randn_like(parameter) * scale)
    return model.eval()


def write(name, model, expected, metadata=None):
    directory = os.path.join(OUT, name)
    model.save_pretrained(directory, safe_serialization=True)
    save_file({key: value.contiguous() for key, value in expected.items()},
              os.path.join(directory, "expected.safetensors"), metadata=metadata)
    sizes = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
    print(f"{directory}: {sizes} bytes")


def masked_image_modeling(pixels):
    model = perturbed(transformers.BeitForMaskedImageModeling(config(
        vocab_size=24, use_mask_token=True, use_shared_relative_position_bias=True, use_mean_pooling=True)))
    masked = torch.rand(2, (IMAGE // PATCH) ** 2) < 0.4
    with torch.no_grad():
        hidden = model.layernorm(model.beit(pixel_values=pixels).last_hidden_state)
        masked_hidden = model.layernorm(model.beit(pixel_values=pixels, bool_masked_pos=masked).last_hidden_state)
    index = model.beit.encoder.relative_position_bias.generate_relative_position_index((2, 3))
    base = transformers.BeitForMaskedImageModeling(transformers.BeitConfig(
        use_mask_token=True, use_shared_relative_position_bias=True, layer_scale_init_value=0.1, use_mean_pooling=True))
    count = sum(p.numel() for name, p in base.named_parameters() if not name.startswith("lm_head."))
    write("mim", model, {"pixel_values": pixels, "hidden": hidden, "bool_masked_pos": masked.float(),
                         "masked_hidden": masked_hidden, "grid_index_2x3": index.float()},
          {"parameters.beit.base-16-pt22k": str(count)})


def classifier(name, pixels, **overrides):
    model = perturbed(transformers.BeitForImageClassification(config(num_labels=3, use_relative_position_bias=True,
                                                                     **overrides)))
    with torch.no_grad():
        out = model(pixel_values=pixels, output_hidden_states=True)
        hidden = model.beit(pixel_values=pixels).last_hidden_state
    write(name, model, {"pixel_values": pixels, "hidden": hidden, "logits": out.logits})


def main():
    torch.manual_seed(20261128)
    pixels = torch.randn(2, 3, IMAGE, IMAGE)
    masked_image_modeling(pixels)
    classifier("classifier", pixels, use_absolute_position_embeddings=True, use_mean_pooling=False)
    classifier("mean", pixels, use_mean_pooling=True)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
