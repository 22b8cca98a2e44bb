"""Python port of core/rng.h: tp's counter-based random numbers.

Every number is a pure function of (seed, stream, index):
    tp_hash3(seed, stream, index) = tp_mix64(seed*K1 + stream*K2 + index)  (mod 2^64)
    tp_uniform(seed, stream, index) = (tp_hash3(...) >> 40) * 2^-24          (24 random bits)
so the fixture generators here and the C code draw identical values.

`index` may be a Python int or a numpy integer array (vectorised); the arithmetic
is done in numpy uint64, whose multiplication and addition wrap modulo 2^64 like C.
Scalar arguments (seed, stream) are Python ints, reduced modulo 2^64.
"""
import numpy as np

MASK64 = (1 << 64) - 1
K1 = 0x9E3779B97F4A7C15
K2 = 0xD1B54A32D192ED03

# Streams of core/rng.h, one per purpose.
STREAM_INIT = 1
STREAM_DATA_ORDER = 2
STREAM_MASKING = 3
STREAM_DROPOUT = 4
STREAM_PREPROCESS = 5
STREAM_SPECAUGMENT = 6


def tp_mix64(z):
    """splitmix64 finaliser on a uint64 numpy array (or anything np.uint64 accepts)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z ^ (z >> np.uint64(30))
        z = z * np.uint64(0xBF58476D1CE4E5B9)
        z = z ^ (z >> np.uint64(27))
        z = z * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def tp_hash3(seed, stream, index):
    """mix64(seed*K1 + stream*K2 + index) mod 2^64; index: int or integer array."""
    base = (int(seed) * K1 + int(stream) * K2) & MASK64
    index = np.asarray(index).astype(np.uint64)
    with np.errstate(over="ignore"):
        return tp_mix64(np.uint64(base) + index)


def tp_uniform(seed, stream, index):
    """Uniform in [0, 1) with 24 bits, as float64 (exactly the C float value)."""
    bits = tp_hash3(seed, stream, index) >> np.uint64(40)
    return bits.astype(np.float64) * (1.0 / 16777216.0)


def tp_fnv1a64(text):
    """FNV-1a 64 of a string's UTF-8 bytes: turns a parameter name into a stream number."""
    value = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        value ^= byte
        value = (value * 0x100000001B3) & MASK64
    return value


def tp_hash3_scalar(seed, stream, index):
    """Pure-Python, one value at a time: an independent check of the vectorised version."""
    z = (int(seed) * K1 + int(stream) * K2 + int(index)) & MASK64
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & MASK64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return z
