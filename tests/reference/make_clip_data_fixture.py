#!/usr/bin/env python3
"""Writes tests/fixtures/clip/data.safetensors: what the clip data processor (core/preprocess_clip.h)
must produce, computed by transformers 4.46.3 (nobody in tp wrote it):

  pixels.<image>  CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 12, "width": 16})
                  (CLIP's bicubic resize of the short side, centre crop, mean and std) of the committed
                  media images, float32 [3, 12, 16]: what tp's batches hold for a model of
                  image_height 12, image_width 16 (the short side goes to the larger model side)
  ids.<n>         BertTokenizer(bert-base-uncased)(text, max_length=n, truncation=True)["input_ids"]
                  of TEXT, int32: [CLS] ids[:n - 2] [SEP], TencentPretrain's clip instance

Run from the repository root in the reference environment (tests/reference/setup_env.sh), after
scripts/fetch_data.sh:
    data/venv-ref/bin/python tests/reference/make_clip_data_fixture.py
"""
import numpy as np
from PIL import Image
from safetensors.numpy import save_file
from transformers import BertTokenizer, CLIPImageProcessor

IMAGES = ["s444.jpg", "gray.jpg", "rgb16.png"]
TEXT = "A photo of an ankle boot, seen from the side"
LENGTHS = [6, 32]

processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 12, "width": 16})
tensors = {}
for name in IMAGES:
    image = Image.open(f"tests/fixtures/media/{name}").convert("RGB")
    tensors[f"pixels.{name}"] = processor(image, return_tensors="np")["pixel_values"][0].astype(np.float32)
tokenizer = BertTokenizer("data/vocab/bert-base-uncased-vocab.txt")
for n in LENGTHS:
    tensors[f"ids.{n}"] = np.array(tokenizer(TEXT, max_length=n, truncation=True)["input_ids"], dtype=np.int32)
save_file(tensors, "tests/fixtures/clip/data.safetensors", metadata={"text": TEXT})
print({key: value.shape for key, value in tensors.items()})
