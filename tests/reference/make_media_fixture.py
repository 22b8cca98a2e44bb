#!/usr/bin/env python3
"""Writes tests/fixtures/media/: reference values for core/image.c and core/audio.c, computed by
libraries nobody in tp wrote (PIL 9.4, transformers 4.46.3's image processors, torchaudio 0.13.1's
kaldi.fbank, numpy, Python's gzip and wave modules).

Run from the repository root, after scripts/fetch_data.sh, in the reference environment
(tests/reference/setup_env.sh; it sees Debian's python3-pil, python3-torch and python3-torchaudio,
`apt-get install python3-torchaudio`):
    data/venv-ref/bin/python tests/reference/make_media_fixture.py

Small synthetic inputs (written here from seeded numpy patterns, so license-clean and committed):
    gray.jpg, progressive.jpg, s444.jpg, s422.jpg   JPEG variants PIL writes (grayscale, progressive,
                                                    4:4:4 and 4:2:2 chroma; odd sizes)
    rgb16.png, gray2.png, graya.png, adam7.png      PNG variants written by the small encoder below
                                                    (16-bit RGB, 2-bit gray, gray + alpha, Adam7)
    chirp16k.wav                                    16 kHz 16-bit mono: a chirp plus noise (512-point FFT)

images.safetensors   per image (the real photographs of data/media/images and the files above):
                     PIL's Image.open(path).convert("RGB") summarised as shape, a position-weighted
                     checksum (sum of byte * (index + 1) mod 2^64 over the HWC bytes), and the sums
                     of every row and every column (over the other axis and the channels).  Per photo
                     and processor (ViTImageProcessor(), CLIPImageProcessor(): the google/vit-* and
                     openai/clip-vit-* settings): 256 output values at a fixed stride and the sum of
                     every channel row.  Per PIL resize case: the same summary as a decoded image.
idx.safetensors      per Fashion-MNIST file (read with gzip + numpy): dims, checksum, byte sum, and for
                     label files the first 10 labels and the label histogram.
fbank.safetensors    per recording (Asterisk prompts, 8 kHz, CC-BY-SA: the audio is not committed, only
                     these statistics of its features) and per setting: the samples' count and checksum
                     (int16 values), frame count, the mean of every frame, the mean and standard deviation
                     of every mel bin over frames, and three whole frames (first, middle, last) of
                     torchaudio.compliance.kaldi.fbank(samples * 32768, ...), on a float32 waveform
                     (as everyone calls it) and, for 80 bins, on a float64 one.
cmvn.safetensors     fairseq's / TencentPretrain's utterance CMVN (numpy, float64) of a matrix drawn from
                     tp's RNG (tests/reference/tp_rng.py).
"""
import gzip
import os
import struct
import sys
import wave
import zlib

import numpy as np
import torch
import torchaudio
import torchaudio.compliance.kaldi as kaldi
from PIL import Image
from safetensors.numpy import save_file
from transformers import CLIPImageProcessor, ViTImageProcessor

sys.path.insert(0, os.path.dirname(__file__))
from tp_rng import tp_uniform  # noqa: E402

OUT = os.path.join("tests", "fixtures", "media")
MEDIA = os.path.join("data", "media")
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "camera.png", "horse.png", "rocket.jpg",
          "hubble_deep_field.jpg", "retina.jpg"]
EDGE_IMAGES = ["checker_bilevel.png", "foo3x5x4indexed.png", "green_palette.png"]
SYNTHETIC_IMAGES = ["gray.jpg", "progressive.jpg", "s444.jpg", "s422.jpg", "rgb16.png", "gray2.png", "graya.png",
                    "adam7.png"]
# (name, source, width, height, PIL filter)
RESIZES = [("chelsea_h200_bilinear", "chelsea.png", 451, 200, Image.BILINEAR),
           ("chelsea_w300_bicubic", "chelsea.png", 300, 300, Image.BICUBIC),
           ("coffee_up_bicubic", "coffee.png", 700, 457, Image.BICUBIC),
           ("camera_up_bilinear", "camera.png", 613, 515, Image.BILINEAR),
           ("rocket_tiny_bicubic", "rocket.jpg", 7, 5, Image.BICUBIC)]
RECORDINGS = ["activated.wav", "agent-alreadyon.wav", "auth-incorrect.wav", "ascending-2tone.wav", "beep.wav",
              "digits/5.wav", "letters/z.wav", "silence/1.wav", "demo-congrats.wav"]
# (name, kaldi.fbank keyword arguments besides the sample rate (dither is always 0), waveform dtype).
# float64: torchaudio computes every step after the (float32) mel banks in double; tp computes in
# double too, so this setting separates tp's error from torch's float32 rounding.
FBANK_SETTINGS = [("mel80", dict(num_mel_bins=80), torch.float32),
                  ("mel40_energy", dict(num_mel_bins=40, use_energy=True), torch.float32),
                  ("mel23_defaults", dict(), torch.float32),
                  ("mel80_float64", dict(num_mel_bins=80), torch.float64)]
SAMPLES = 256


def checksum(data):
    flat = np.ascontiguousarray(data).reshape(-1).astype(np.uint64)
    with np.errstate(over="ignore"):
        return np.array([(flat * np.arange(1, flat.size + 1, dtype=np.uint64)).sum(dtype=np.uint64)], np.uint64)


def image_summary(prefix, rgb, out):
    out[prefix + "/shape"] = np.array(rgb.shape[:2], np.int64)
    out[prefix + "/checksum"] = checksum(rgb)
    out[prefix + "/row_sums"] = rgb.astype(np.int64).sum(axis=(1, 2)).astype(np.int32)
    out[prefix + "/col_sums"] = rgb.astype(np.int64).sum(axis=(0, 2)).astype(np.int32)


# ---- synthetic inputs ----

def pattern(height, width, channels, seed):
    """A smooth colour field with edges and noise: exercises both the DCT and the filters."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    planes = [128 + 100 * np.sin(x / (3.0 + c) + y / (5.0 + 2 * c)) * np.cos(y / 7.0) for c in range(channels)]
    image = np.stack(planes, axis=-1) + rng.normal(0, 12, (height, width, channels))
    image[height // 3: height // 2, width // 4: width // 2] = 240
    return np.clip(image, 0, 255).astype(np.uint8)


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def write_png(path, rows_by_pass, width, height, bit_depth, color_type, interlace):
    """rows_by_pass: list (one per interlace pass) of lists of raw scanline bytes (filter type 0)."""
    raw = b"".join(b"\x00" + row for rows in rows_by_pass for row in rows)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw, 9))
                + png_chunk(b"IEND", b""))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_synthetic_images():
    Image.fromarray(pattern(47, 61, 1, 1)[:, :, 0], "L").save(os.path.join(OUT, "gray.jpg"), quality=90)
    Image.fromarray(pattern(59, 83, 3, 2)).save(os.path.join(OUT, "progressive.jpg"), quality=85, progressive=True)
    Image.fromarray(pattern(40, 64, 3, 3)).save(os.path.join(OUT, "s444.jpg"), quality=95, subsampling=0)
    Image.fromarray(pattern(33, 45, 3, 4)).save(os.path.join(OUT, "s422.jpg"), quality=75, subsampling=1)
    wide = (pattern(13, 17, 3, 5).astype(np.uint16) * 257 + np.arange(17, dtype=np.uint16)[None, :, None])
    write_png(os.path.join(OUT, "rgb16.png"), [[row.astype(">u2").tobytes() for row in wide]], 17, 13, 16, 2, 0)
    gray = pattern(9, 21, 1, 6)[:, :, 0] >> 6  # 2-bit samples, four per byte, rows padded
    rows = [np.packbits(np.unpackbits(row.astype(np.uint8)[:, None], axis=1)[:, 6:].reshape(-1)).tobytes()
            for row in gray]
    write_png(os.path.join(OUT, "gray2.png"), [rows], 21, 9, 2, 0, 0)
    graya = np.stack([pattern(11, 15, 1, 7)[:, :, 0], pattern(11, 15, 1, 8)[:, :, 0]], axis=-1)
    write_png(os.path.join(OUT, "graya.png"), [[row.tobytes() for row in graya]], 15, 11, 8, 4, 0)
    rgb = pattern(19, 23, 3, 9)
    passes = []
    for x0, y0, dx, dy in ADAM7:
        sub = rgb[y0::dy, x0::dx]
        passes.append([row.tobytes() for row in sub] if sub.shape[1] > 0 else [])
    write_png(os.path.join(OUT, "adam7.png"), passes, 23, 19, 8, 2, 1)


def write_chirp():
    rate, seconds = 16000, 0.75
    t = np.arange(int(rate * seconds)) / rate
    signal = 0.4 * np.sin(2 * np.pi * (200 * t + 2500 * t * t)) + np.random.default_rng(10).normal(0, 0.02, t.size)
    samples = np.clip(np.round(signal * 32767), -32768, 32767).astype("<i2")
    with wave.open(os.path.join(OUT, "chirp16k.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


# ---- references ----

def image_references():
    out = {}
    paths = [os.path.join(MEDIA, "images", n) for n in PHOTOS + EDGE_IMAGES] + \
            [os.path.join(OUT, n) for n in SYNTHETIC_IMAGES]
    vit, clip = ViTImageProcessor(), CLIPImageProcessor()
    for path in paths:
        name = os.path.basename(path)
        rgb = np.asarray(Image.open(path).convert("RGB"))
        image_summary("decode/" + name, rgb, out)
        if name not in PHOTOS:
            continue
        for label, processor in (("vit", vit), ("clip", clip)):
            chw = processor(images=Image.open(path).convert("RGB"), return_tensors="np")["pixel_values"][0]
            assert chw.dtype == np.float32 and chw.shape == (3, 224, 224)
            flat = chw.reshape(-1)
            out[f"{label}/{name}/samples"] = flat[:: flat.size // SAMPLES][:SAMPLES].copy()
            out[f"{label}/{name}/row_sums"] = chw.astype(np.float64).sum(axis=2).reshape(-1).astype(np.float32)
    for case, source, width, height, resample in RESIZES:
        image = Image.open(os.path.join(MEDIA, "images", source)).convert("RGB")
        image_summary("resize/" + case, np.asarray(image.resize((width, height), resample=resample)), out)
    save_file(out, os.path.join(OUT, "images.safetensors"))


def idx_references():
    out = {}
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"]:
        with gzip.open(os.path.join(MEDIA, "fashion-mnist", name + ".gz"), "rb") as f:
            raw = f.read()
        ndim = raw[3]
        dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
        data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
        assert data.size == int(np.prod(dims))
        out[name + "/dims"] = np.array(dims, np.int64)
        out[name + "/checksum"] = checksum(data)
        out[name + "/sum"] = np.array([data.astype(np.int64).sum()], np.int64)
        if ndim == 1:
            out[name + "/first"] = data[:10].astype(np.int64)
            out[name + "/histogram"] = np.bincount(data, minlength=10).astype(np.int64)
    save_file(out, os.path.join(OUT, "idx.safetensors"))


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()


def fbank_references():
    out = {}
    recordings = [(name, os.path.join(MEDIA, "asterisk", name)) for name in RECORDINGS]
    recordings.append(("chirp16k.wav", os.path.join(OUT, "chirp16k.wav")))
    for name, path in recordings:
        samples, rate = read_wav(path)
        out[f"{name}/samples"] = np.array([samples.size, rate], np.int64)
        out[f"{name}/checksum"] = checksum(samples.astype(np.int64) & 0xFFFF)
        # torchaudio.load(path) gives int16 / 32768; Kaldi (and TencentPretrain's s2t) scales back by 2^15.
        waveform = torch.from_numpy(samples.astype(np.float32) / 32768.0)[None, :] * 32768.0
        for setting, kwargs, dtype in FBANK_SETTINGS:
            features = kaldi.fbank(waveform.to(dtype), sample_frequency=float(rate), dither=0.0, **kwargs).numpy()
            frames = features.shape[0]
            key = f"{name}/{setting}"
            out[key + "/frames"] = np.array([frames], np.int64)
            if frames == 0:
                continue
            as64 = features.astype(np.float64)
            out[key + "/frame_means"] = as64.mean(axis=1).astype(np.float32)
            out[key + "/bin_means"] = as64.mean(axis=0).astype(np.float32)
            out[key + "/bin_stds"] = as64.std(axis=0).astype(np.float32)
            out[key + "/picked"] = features[[0, frames // 2, frames - 1]].astype(np.float32)
    assert torchaudio.__version__ == "0.13.1", "the fixture documents torchaudio 0.13.1"
    save_file(out, os.path.join(OUT, "fbank.safetensors"))


def cmvn_references():
    """fairseq's UtteranceCMVN (TencentPretrain's utterance_cmvn), in float64."""
    frames, bins = 23, 80
    x = (tp_uniform(7, 99, np.arange(frames * bins)).reshape(frames, bins) * 20.0 - 5.0).astype(np.float32)
    x = x.astype(np.float64)  # the C code reads the float32 input
    x[:, 3] = 1.25  # a constant bin: variance 0, floored at 1e-10
    mean = x.mean(axis=0)
    square_sums = (x ** 2).sum(axis=0)
    var = square_sums / frames - mean ** 2
    normalised = (x - mean) / np.sqrt(np.maximum(var, 1e-10))
    save_file({"input": x.astype(np.float32), "means_only": (x - mean).astype(np.float32),
               "normalised": normalised.astype(np.float32)}, os.path.join(OUT, "cmvn.safetensors"))


def main():
    if not os.path.isdir(os.path.join(MEDIA, "asterisk")):
        sys.exit("make_media_fixture.py: run scripts/fetch_data.sh first (no data/media)")
    os.makedirs(OUT, exist_ok=True)
    write_synthetic_images()
    write_chirp()
    image_references()
    idx_references()
    fbank_references()
    cmvn_references()
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
