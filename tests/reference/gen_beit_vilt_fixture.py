#!/usr/bin/env python3
"""Writes tests/fixtures/beit_vilt/expected.safetensors: small RANDOM-INIT Hugging Face BEiT and
ViLT models' weights (their Hugging Face names, prefixed "beit." / "vilt.") and what transformers
computes with them, for tp's masked_patch and word_patch embeddings (tests/models/test_beit_vilt.c).

    data/venv-ref/bin/python tests/reference/gen_beit_vilt_fixture.py

Both: 3 x 16 x 16 images, 4-pixel patches (a 4 x 4 grid), hidden 32, eval mode, float32, every
parameter perturbed by N(0, 0.05) after transformers' initialisation (so that the class and mask
tokens are not 0).

BEiT: BeitModel without pooler, 2 layers, 4 heads, feed-forward 64, exact GELU, layer_norm_eps
1e-12, absolute positions, mask token; no relative position bias and no layer scale (tp has
neither).  Tensors:
  beit.<name>             the weights (its key projections have no bias)
  beit.pixel_values       float32 [2, 3, 16, 16]
  beit.bool_masked_pos    float32 [2, 16]  1 = masked
  beit.embeddings         float32 [2, 17, 32]  BeitModel.embeddings(pixel_values) (no mask)
  beit.hidden             float32 [2, 17, 32]  last_hidden_state (no mask)
  beit.masked_embeddings  float32 [2, 17, 32]  the same with bool_masked_pos and the position
  beit.masked_hidden      float32 [2, 17, 32]  embeddings set to 0
Hugging Face adds BEiT's absolute positions before it puts the mask token in (a masked row is the
mask token alone); the original BEiT and TencentPretrain add them after (mask token + position).
The two agree when the positions are 0 (and released BEiT checkpoints use relative position bias
instead), hence the masked runs with zero positions.

ViLT: ViltModel's embeddings, vocabulary 30, max_position_embeddings 8, max_image_length -1 (every
patch kept).  Tensors:
  vilt.<name>             the embeddings' weights
  vilt.input_ids          float32 [2, 5]
  vilt.pixel_values       float32 [2, 3, 16, 16]
  vilt.word_patch         float32 [2, 22, 32]  TencentPretrain's WordPatchEmbedding from these
                          modules: word_embeddings(input_ids), then cls_token and
                          patch_embeddings(pixel_values) (row-major over the grid)
  vilt.embeddings         float32 [2, 22, 32]  ViltEmbeddings' output (text rows: its text
                          embeddings + modality 0; image rows: class token / patches + their
                          positions + modality 1), image rows in grid order
ViltEmbeddings samples the order of the image rows (torch.multinomial) even with max_image_length
-1; the run is seeded, and the rows are put back in grid order from visual_embed's patch_index
under the same seed.

Metadata: parameter counts counted by transformers, for tests of tp's models/ configs:
  parameters.beit.base-16   BeitModel(BeitConfig(absolute positions, no relative position bias,
                            no layer scale, mask token, no mean pooling), add_pooling_layer=False)
  parameters.vilt.shared    ViltModel(ViltConfig())'s word embeddings, class token, patch
                            projection and encoder layers (what TencentPretrain's ViLT shares
                            with it)
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "beit_vilt")
IMAGE, PATCH, HIDDEN = 16, 4, 32


def perturbed(model):
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model.eval()


def beit_config(**overrides):
    settings = dict(use_absolute_position_embeddings=True, use_relative_position_bias=False,
                    use_shared_relative_position_bias=False, layer_scale_init_value=0.0, use_mask_token=True,
                    use_mean_pooling=False)
    settings.update(overrides)
    return transformers.BeitConfig(**settings)


def beit_tensors():
    config = beit_config(image_size=IMAGE, patch_size=PATCH, num_channels=3, hidden_size=HIDDEN, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=64, hidden_act="gelu", layer_norm_eps=1e-12,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, drop_path_rate=0.0)
    model = perturbed(transformers.BeitModel(config, add_pooling_layer=False))
    pixels = torch.randn(2, 3, IMAGE, IMAGE)
    masked = torch.rand(2, (IMAGE // PATCH) ** 2) < 0.4
    tensors = {"beit." + name: value.detach().clone() for name, value in model.state_dict().items()}
    with torch.no_grad():
        tensors["beit.embeddings"] = model.embeddings(pixels)[0]
        tensors["beit.hidden"] = model(pixel_values=pixels).last_hidden_state
        model.embeddings.position_embeddings.zero_()
        tensors["beit.masked_embeddings"] = model.embeddings(pixels, bool_masked_pos=masked)[0]
        tensors["beit.masked_hidden"] = model(pixel_values=pixels, bool_masked_pos=masked).last_hidden_state
    tensors["beit.pixel_values"] = pixels
    tensors["beit.bool_masked_pos"] = masked.float()
    return tensors


def vilt_tensors():
    config = transformers.ViltConfig(vocab_size=30, hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=4,
                                     intermediate_size=64, image_size=IMAGE, patch_size=PATCH, num_channels=3,
                                     max_position_embeddings=8, modality_type_vocab_size=2, max_image_length=-1,
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    embeddings = perturbed(transformers.ViltModel(config)).embeddings
    input_ids = torch.randint(1, config.vocab_size, (2, 5))
    pixels = torch.randn(2, 3, IMAGE, IMAGE)
    pixel_mask = torch.ones(2, IMAGE, IMAGE, dtype=torch.long)
    attention_mask = torch.ones_like(input_ids)
    tensors = {"vilt.embeddings." + name: value.detach().clone() for name, value in embeddings.state_dict().items()
               if not name.startswith("text_embeddings.") or name.startswith("text_embeddings.word_embeddings.")}
    with torch.no_grad():
        patches = embeddings.patch_embeddings(pixels).flatten(2).transpose(1, 2)
        classes = embeddings.cls_token.expand(2, -1, -1)
        words = embeddings.text_embeddings.word_embeddings(input_ids)
        tensors["vilt.word_patch"] = torch.cat([words, classes, patches], dim=1)
        torch.manual_seed(7)
        _, _, (patch_index, _) = embeddings.visual_embed(pixels, pixel_mask, max_image_length=-1)
        torch.manual_seed(7)
        joint, _ = embeddings(input_ids, attention_mask, None, pixels, pixel_mask, None, None)
    grid = IMAGE // PATCH
    text = input_ids.shape[1]
    in_grid_order = joint.clone()
    for b in range(2):
        for row, (y, x) in enumerate(patch_index[b].tolist()):
            in_grid_order[b, text + 1 + y * grid + x] = joint[b, text + 1 + row]
    tensors["vilt.embeddings"] = in_grid_order
    tensors["vilt.input_ids"] = input_ids.float()
    tensors["vilt.pixel_values"] = pixels
    return tensors


def parameter_counts():
    beit = transformers.BeitModel(beit_config(), add_pooling_layer=False)
    vilt = transformers.ViltModel(transformers.ViltConfig())
    shared = ("embeddings.text_embeddings.word_embeddings.", "embeddings.cls_token", "embeddings.patch_embeddings.",
              "encoder.layer.")
    return {"parameters.beit.base-16": str(sum(p.numel() for p in beit.parameters())),
            "parameters.vilt.shared": str(sum(p.numel() for name, p in vilt.named_parameters()
                                              if name.startswith(shared)))}


def main():
    torch.manual_seed(20261128)
    tensors = beit_tensors()
    tensors.update(vilt_tensors())
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "expected.safetensors")
    save_file({name: value.contiguous() for name, value in tensors.items()}, path, metadata=parameter_counts())
    print(f"transformers {transformers.__version__}, torch {torch.__version__}: {path} {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
