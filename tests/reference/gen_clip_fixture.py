#!/usr/bin/env python3
"""Writes tests/fixtures/clip/: a small RANDOM-INIT Hugging Face CLIPModel saved with save_pretrained
(config.json, model.safetensors) and what transformers computes with it, for tests/models/test_clip_parity.c.

    data/venv-ref/bin/python tests/reference/gen_clip_fixture.py

The model: text tower vocabulary 48 (end-of-text id 47), 12 positions, hidden 32, 4 heads, 2 layers,
feed-forward 48; vision tower 3 x 8 x 8 images in 4-pixel patches (4 patches + the class token),
hidden 24, 4 heads, 2 layers, feed-forward 40; projection_dim 16; quick_gelu and layer_norm_eps 1e-5
(CLIPConfig's defaults); float32, eval mode, every parameter perturbed by N(0, 0.05) after
transformers' initialisation (layer-norm gains and biases are not 1 and 0), logit_scale 2.3.
expected.safetensors holds
  input_ids        float32 [3, 7]   three texts of 7, 5 and 3 tokens, each ending in id 47, padded with 0
  attention_mask   float32 [3, 7]
  pixel_values     float32 [3, 3, 8, 8]  N(0, 1) values, as normalized pixels are
  logits_per_text  float32 [3, 3]   CLIPModel(..., return_loss=True) outputs
  logits_per_image float32 [3, 3]
  text_embeds      float32 [3, 16]  (normalized)
  image_embeds     float32 [3, 16]
  loss             float32 [1]      the symmetric contrastive loss
  grad.<name>      the loss's gradient in a few parameters (Hugging Face names)
and in its metadata the parameter counts of CLIPModel(CLIPConfig()) (openai/clip-vit-base-patch32's
shapes, models/clip/base-32_config.json) and of the same with patch_size 16 (base-16), with the text
vocabulary size they have.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "clip")
EOS = 47
GRADIENTS = ["logit_scale", "text_projection.weight", "visual_projection.weight",
             "text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight",
             "text_model.encoder.layers.0.self_attn.q_proj.weight", "text_model.final_layer_norm.bias",
             "vision_model.embeddings.patch_embedding.weight", "vision_model.embeddings.class_embedding",
             "vision_model.pre_layrnorm.weight", "vision_model.encoder.layers.1.mlp.fc1.weight",
             "vision_model.post_layernorm.weight"]


def parameter_counts():
    counts = {}
    for name, patch in (("base-32", 32), ("base-16", 16)):
        config = transformers.CLIPConfig(vision_config={"patch_size": patch})
        counts["parameters." + name] = str(sum(p.numel() for p in transformers.CLIPModel(config).parameters()))
        counts["vocab_size." + name] = str(config.text_config.vocab_size)
    return counts


def main():
    torch.manual_seed(20261127)
    text = dict(vocab_size=48, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=12, eos_token_id=EOS, bos_token_id=46, pad_token_id=0)
    vision = dict(hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4, image_size=8,
                  patch_size=4, num_channels=3)
    config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
    model = transformers.CLIPModel(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
        model.logit_scale.fill_(2.3)
    model.save_pretrained(OUT, safe_serialization=True)

    lengths = [7, 5, 3]
    input_ids = torch.zeros(3, 7, dtype=torch.long)
    attention_mask = torch.zeros(3, 7, dtype=torch.long)
    for row, length in enumerate(lengths):
        input_ids[row, :length - 1] = torch.randint(1, EOS - 1, (length - 1,))
        input_ids[row, length - 1] = EOS
        attention_mask[row, :length] = 1
    pixel_values = torch.randn(3, 3, 8, 8)
    output = model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values, return_loss=True)
    output.loss.backward()
    parameters = dict(model.named_parameters())
    tensors = {"input_ids": input_ids.float(), "attention_mask": attention_mask.float(),
               "pixel_values": pixel_values, "logits_per_text": output.logits_per_text.detach(),
               "logits_per_image": output.logits_per_image.detach(), "text_embeds": output.text_embeds.detach(),
               "image_embeds": output.image_embeds.detach(), "loss": output.loss.detach().reshape(1)}
    for name in GRADIENTS:
        tensors["grad." + name] = parameters[name].grad.reshape(parameters[name].shape if parameters[name].dim()
                                                                 else (1,))
    save_file({name: value.contiguous() for name, value in tensors.items()}, os.path.join(OUT, "expected.safetensors"),
              metadata=parameter_counts())
    sizes = {name: os.path.getsize(os.path.join(OUT, name)) for name in sorted(os.listdir(OUT))}
    print(f"transformers {transformers.__version__}, torch {torch.__version__}: {sizes}, loss {output.loss.item():.6f}")


if __name__ == "__main__":
    main()
