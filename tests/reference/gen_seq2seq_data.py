#!/usr/bin/env python3
"""Expected outputs of the t5 and bart processors' corruption (core/preprocess_seq2seq.h) for
tests/unit/test_preprocess_seq2seq.c, from a plain-Python transcription of TencentPretrain's
algorithms (tencentpretrain/utils/mask.py: mask_seq, create_index, get_span_len; dataset.py:
BartDataset.create_ins_from_doc; dataloader.py: T5Dataloader's sentinels, BartDataloader's
[MASK]-run collapse), kept in TencentPretrain's structure and order of random draws.  Only the
generator differs: Python's `random` is replaced by a port of tp's counter-based generator
(core/rng.h), so that the same draws give the same instances:
    random.random()        -> uniform()         (53 bits)
    random.randint(a, b)   -> a + below(b - a + 1)
    random.shuffle(x)      -> Fisher-Yates from the end with below(i + 1), as random.shuffle
The bart reference draws a chunk's sentence shuffle and then its masking from one stream (tp
builds both at preprocessing; TencentPretrain shuffles in the dataset and masks in the loader).

Usage: /usr/bin/python3 tests/reference/gen_seq2seq_data.py > tests/fixtures/seq2seq_data.json
"""
import json
import random as python_random

MASK64 = (1 << 64) - 1
K1, K2 = 0x9E3779B97F4A7C15, 0xD1B54A32D192ED03
STREAM_PREPROCESS = 5

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
VOCAB = 100
SENTINELS = list(range(90, 100))  # <extra_id_0> .. <extra_id_9>


def mix64(z):
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & MASK64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


class Rng:
    """core/rng.h's tp_rng: tp_hash3(seed, stream, counter++)."""

    def __init__(self, seed, stream):
        self.seed, self.stream, self.counter = seed, stream, 0

    def next(self):
        value = mix64((self.seed * K1 + self.stream * K2 + self.counter) & MASK64)
        self.counter += 1
        return value

    def uniform(self):
        return (self.next() >> 11) * 2.0**-53

    def below(self, bound):
        limit = MASK64 - MASK64 % bound
        while True:
            draw = self.next()
            if draw < limit:
                return draw % bound

    def randint(self, low, high):
        return low + self.below(high - low + 1)

    def shuffle(self, x):
        for i in reversed(range(1, len(x))):
            j = self.below(i + 1)
            x[i], x[j] = x[j], x[i]


def get_span_len(rng, max_span_len, p):
    geo_prob_cum = [0.0]
    geo_prob = 1.0
    for i in range(max_span_len + 1):
        if i == 0:
            continue
        if i == 1:
            geo_prob *= p
            geo_prob_cum.append(geo_prob_cum[-1] + geo_prob)
        else:
            geo_prob *= 1 - p
            geo_prob_cum.append(geo_prob_cum[-1] + geo_prob)
    prob = geo_prob_cum[-1] * rng.uniform()
    for i in range(len(geo_prob_cum) - 1):
        if prob >= geo_prob_cum[i] and prob < geo_prob_cum[i + 1]:
            current_span_len = i + 1
    return current_span_len


def create_index(rng, src, span_masking, span_geo_prob, span_max_length):
    tokens_index = []
    span_end_position = -1
    for i, token in enumerate(src):
        if token == CLS or token == SEP or token == PAD:
            continue
        if not span_masking:
            tokens_index.append([i])
        else:
            if i < span_end_position:
                continue
            span_len = get_span_len(rng, span_max_length, span_geo_prob)
            span_end_position = i + span_len
            if span_end_position > len(src):
                span_len = len(src) - i
            tokens_index.append([i, span_len])
    return tokens_index


def random_id(rng):
    while True:
        rdi = rng.randint(1, VOCAB - 1)
        if rdi not in [CLS, SEP, MASK, PAD]:
            return rdi


def mask_seq(rng, src, mask_prob, span_masking, span_geo_prob, span_max_length):
    """mask.py's mask_seq without whole-word masking (src has no padding here)."""
    src = list(src)
    tokens_index = create_index(rng, src, span_masking, span_geo_prob, span_max_length)
    rng.shuffle(tokens_index)
    num_to_predict = max(1, int(round(len(src) * mask_prob)))
    tgt_mlm = []
    for index_set in tokens_index:
        if len(tgt_mlm) >= num_to_predict:
            break
        if span_masking:
            i, span_len = index_set
            if len(tgt_mlm) + span_len > num_to_predict:
                continue
            for j in range(span_len):
                tgt_mlm.append((i + j, src[i + j]))
            prob = rng.uniform()
            if prob < 0.8:
                for j in range(span_len):
                    src[i + j] = MASK
            elif prob < 0.9:
                for j in range(span_len):
                    src[i + j] = random_id(rng)
        else:
            i = index_set[0]
            tgt_mlm.append((i, src[i]))
            prob = rng.uniform()
            if prob < 0.8:
                src[i] = MASK
            elif prob < 0.9:
                src[i] = random_id(rng)
    tgt_mlm = sorted(tgt_mlm, key=lambda x: x[0])
    return src, tgt_mlm


def t5_corrupt(rng, piece, options):
    """T5Dataloader: mask_seq, every chosen position [MASK], each run one sentinel."""
    src_single, tgt_single = mask_seq(rng, piece, *options)
    for src_index, _ in tgt_single:
        src_single[src_index] = MASK
    sentinel = 0
    tgt_in_single = [CLS]
    mask_index = 0
    src_with_sentinel = []
    for token_id in src_single:
        if token_id == MASK:
            if sentinel > 0 and len(src_with_sentinel) > 0 and src_with_sentinel[-1] == SENTINELS[sentinel - 1]:
                pass
            else:
                src_with_sentinel.append(SENTINELS[sentinel])
                tgt_in_single.append(SENTINELS[sentinel])
                sentinel += 1
            tgt_in_single.append(tgt_single[mask_index][1])
            mask_index += 1
        else:
            src_with_sentinel.append(token_id)
    tgt_in_single.append(SENTINELS[sentinel])
    tgt_in_single.append(SEP)
    return src_with_sentinel, tgt_in_single


def bart_infill(rng, src, options):
    """BartDataloader: mask_seq, then each run of [MASK] collapsed into one."""
    src_single, _ = mask_seq(rng, src, *options)
    src_with_span_mask = []
    for token_id in src_single:
        if token_id == MASK and len(src_with_span_mask) > 0 and src_with_span_mask[-1] == MASK:
            continue
        src_with_span_mask.append(token_id)
    return src_with_span_mask


def bart_document(rng, document, seq_length, options):
    """BartDataset.create_ins_from_doc (+ the loader's infilling per instance)."""
    target_seq_length = seq_length - 2
    instances = []
    current_chunk = []
    current_length = 0

    def emit(chunk):
        shuf_chunk = chunk.copy()
        rng.shuffle(shuf_chunk)
        src, tgt = [], []
        for k in range(len(chunk)):
            src = src + shuf_chunk[k]
            tgt = tgt + chunk[k]
        src = bart_infill(rng, [CLS] + src + [SEP], options)
        instances.append({"src": src, "tgt": [CLS] + tgt + [SEP]})

    for segment in document:
        if len(segment) > target_seq_length:
            continue
        if current_length + len(segment) < target_seq_length:
            current_chunk.append(segment)
            current_length += len(segment)
        else:
            if current_chunk:  # dataset.py would write an empty [CLS] [SEP] here; tp does not
                emit(current_chunk)
            current_length = len(segment)
            current_chunk = [segment]
    if len(current_chunk) > 0:
        emit(current_chunk)
    return instances


def words(generator, n):
    return [generator.randrange(5, 90) for _ in range(n)]


def main():
    generator = python_random.Random(20261127)  # only makes the inputs
    cases = []
    for index in range(24):
        span_masking = index % 3 != 0
        options = (0.15 if index % 4 else 0.3, span_masking, [0.2, 0.3, 0.5][index % 3], [10, 5, 3][index % 3])
        seed = 1000 + index
        piece = [CLS] + words(generator, generator.randrange(1, 40)) + [SEP]
        src, tgt = t5_corrupt(Rng(seed, STREAM_PREPROCESS), piece, options)
        cases.append({"kind": "t5", "seed": seed, "mask_prob": options[0], "span_masking": int(span_masking),
                      "span_geo_prob": options[2], "span_max_length": options[3], "piece": piece, "src": src,
                      "tgt": tgt})
    for index in range(12):
        span_masking = index % 2 == 1
        options = (0.15, span_masking, 0.2, 6)
        seed = 2000 + index
        seq_length = generator.choice([16, 24, 40])
        document = [words(generator, generator.randrange(1, 20)) for _ in range(generator.randrange(1, 9))]
        instances = bart_document(Rng(seed, STREAM_PREPROCESS), document, seq_length, options)
        cases.append({"kind": "bart", "seed": seed, "mask_prob": options[0], "span_masking": int(span_masking),
                      "span_geo_prob": options[2], "span_max_length": options[3], "seq_length": seq_length,
                      "document": document, "instances": instances})
    json.dump({"vocab_size": VOCAB, "sentinels": SENTINELS, "cases": cases}, fp=__import__("sys").stdout)


if __name__ == "__main__":
    main()
