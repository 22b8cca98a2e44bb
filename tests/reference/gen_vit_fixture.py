#!/usr/bin/env python3
"""Writes tests/fixtures/vit/: a small RANDOM-INIT Hugging Face ViTForImageClassification saved
with save_pretrained (config.json, model.safetensors) and what transformers computes with it.

    data/venv-ref/bin/python tests/reference/gen_vit_fixture.py

The model: 3 x 30 x 30 images, 7-pixel patches (a 4 x 4 grid: the last 2 pixel rows and columns
are dropped by the patch convolution), hidden 32, 4 heads, 2 layers, feed-forward 64, 5 labels,
exact GELU, layer_norm_eps 1e-12; eval mode, float32, every parameter perturbed by N(0, 0.05)
after transformers' initialisation (so that the class token, layer-norm gains and biases are
not 0 and 1).  expected.safetensors holds
  pixel_values   float32 [3, 3, 30, 30]  the batch (N(0, 1) values, as normalized pixels are)
  logits         float32 [3, 5]          ViTForImageClassification(pixel_values).logits
  hidden         float32 [3, 17, 32]     the final layer norm's output (last_hidden_state)
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "vit")


def main():
    torch.manual_seed(20261127)
    config = transformers.ViTConfig(
        image_size=30, patch_size=7, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, hidden_act="gelu", layer_norm_eps=1e-12, num_labels=5,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = transformers.ViTForImageClassification(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    model.save_pretrained(OUT, safe_serialization=True)
    pixel_values = torch.randn(3, 3, 30, 30)
    with torch.no_grad():
        output = model(pixel_values=pixel_values, output_hidden_states=True)
        hidden = model.vit.layernorm(output.hidden_states[-1])
    save_file({"pixel_values": pixel_values.contiguous(), "logits": output.logits.contiguous(),
               "hidden": hidden.contiguous()}, os.path.join(OUT, "expected.safetensors"))
    sizes = {name: os.path.getsize(os.path.join(OUT, name)) for name in sorted(os.listdir(OUT))}
    print(f"transformers {transformers.__version__}, torch {torch.__version__}: {sizes}")


if __name__ == "__main__":
    main()
