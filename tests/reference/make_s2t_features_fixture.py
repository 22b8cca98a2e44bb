#!/usr/bin/env python3
"""Writes tests/fixtures/media/s2t/: a short synthetic 8 kHz 16-bit WAV (a vowel-like harmonic
series gliding in pitch, with seeded noise and a quiet tail), the `text<TAB>path` list that names
it, and the features Hugging Face's Speech2TextFeatureExtractor (transformers 4.46.3, torchaudio
0.13.1's Kaldi fbank, 80 mel bins, utterance CMVN with variance) computes for it: the reference for
core/preprocess_s2t.c.

    data/venv-ref/bin/python tests/reference/make_s2t_features_fixture.py

features.safetensors: features [frames, 80] (float32).
"""
import os
import wave

import numpy as np
from safetensors.numpy import save_file
from transformers import Speech2TextFeatureExtractor

OUT = os.path.join("tests", "fixtures", "media", "s2t")
RATE = 8000


def waveform():
    rng = np.random.default_rng(5)
    t = np.arange(int(0.45 * RATE)) / RATE
    pitch = 120 + 80 * t  # Hz, gliding
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12)) * np.hanning(len(t))
    signal = 0.3 * voice + 0.01 * rng.standard_normal(len(t))
    tail = 0.001 * rng.standard_normal(int(0.05 * RATE))
    return np.round(np.concatenate([signal, tail]) * 32767).astype(np.int16)


def main():
    os.makedirs(OUT, exist_ok=True)
    samples = waveform()
    path = os.path.join(OUT, "glide.wav")
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(RATE)
        f.writeframes(samples.tobytes())
    with open(os.path.join(OUT, "list.tsv"), "w") as f:
        f.write("a gliding vowel\t%s\n" % path)
    extractor = Speech2TextFeatureExtractor(sampling_rate=RATE, num_mel_bins=80, feature_size=80)
    features = extractor(samples.astype(np.float32) / 32768.0, sampling_rate=RATE,
                         return_tensors="np").input_features[0]
    save_file({"features": features.astype(np.float32)}, os.path.join(OUT, "features.safetensors"))
    print(features.shape)


if __name__ == "__main__":
    main()
