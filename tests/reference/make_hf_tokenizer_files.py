#!/usr/bin/env python3
"""Builds the tokenizer.json files that tests/tokenizers/test_hf_tokenizer.c reads, with
Hugging Face's `tokenizers` library, into data/tokenizers/ (scripts/fetch_data.sh runs this
with the tokenizers wheel it fetched on PYTHONPATH):

  gpt2/tokenizer.json          GPT-2's byte-level BPE from data/vocab/gpt2/{vocab.json,merges.txt},
                               assembled as transformers' GPT2Converter does
  gpt2-prefix/tokenizer.json   the same with add_prefix_space (RoBERTa's option) and an added
                               <mask> token with lstrip, as RobertaConverter sets them up
  unigram/tokenizer.json       a SentencePiece unigram model (data/tokenizers/unigram/spm.model,
                               trained by fetch_data.sh with spm_train) assembled as transformers'
                               SpmConverter does for T5: Precompiled charsmap, Strip right,
                               Replace " {2,}", Metaspace, Unigram, <unk> <s> </s> special and
                               <pad> added after the pieces

BERT's WordPiece tokenizer.json needs no building: all-MiniLM-L6-v2 ships one.

Usage: PYTHONPATH=<tokenizers wheel> /usr/bin/python3 make_hf_tokenizer_files.py DATA_DIR
"""
import os
import struct
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors


def proto_fields(data):
    """(field number, wire type, value) of a protobuf message, in order."""
    pos = 0

    def varint():
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            yield field, wire, varint()
        elif wire == 1:
            yield field, wire, data[pos:pos + 8]
            pos += 8
        elif wire == 2:
            length = varint()
            yield field, wire, data[pos:pos + length]
            pos += length
        elif wire == 5:
            yield field, wire, data[pos:pos + 4]
            pos += 4
        else:
            raise ValueError(f"wire type {wire}")


def read_spm_model(path):
    """Pieces [(piece, score)], unk_id, byte_fallback and precompiled charsmap of a .model file
    (sentencepiece_model.proto: ModelProto.pieces = 1, trainer_spec = 2, normalizer_spec = 3)."""
    with open(path, "rb") as f:
        model = f.read()
    pieces, unk_id, byte_fallback, charsmap = [], 0, False, b""
    for field, _, value in proto_fields(model):
        if field == 1:
            piece, score = "", 0.0
            for sub, _, sub_value in proto_fields(value):
                if sub == 1:
                    piece = sub_value.decode("utf-8")
                elif sub == 2:
                    score = struct.unpack("<f", sub_value)[0]
            pieces.append((piece, score))
        elif field == 2:
            for sub, _, sub_value in proto_fields(value):
                if sub == 40:
                    unk_id = sub_value
                elif sub == 35:
                    byte_fallback = bool(sub_value)
        elif field == 3:
            for sub, _, sub_value in proto_fields(value):
                if sub == 2:
                    charsmap = bytes(sub_value)
    return pieces, unk_id, byte_fallback, charsmap


def gpt2(gpt2_dir, out_path, add_prefix_space, mask):
    tokenizer = Tokenizer(models.BPE.from_file(os.path.join(gpt2_dir, "vocab.json"),
                                               os.path.join(gpt2_dir, "merges.txt"),
                                               continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
    if mask:
        tokenizer.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    save(tokenizer, out_path)


def unigram(model_path, out_path):
    pieces, unk_id, byte_fallback, charsmap = read_spm_model(model_path)
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id, byte_fallback))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(charsmap),
        normalizers.Strip(left=False, right=True),
        normalizers.Replace(Regex(" {2,}"), "\u2581"),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.add_special_tokens([AddedToken(piece, special=True, normalized=False) for piece in ("<unk>", "<s>", "</s>")])
    tokenizer.add_special_tokens([AddedToken("<pad>", special=True, normalized=False)])
    save(tokenizer, out_path)


def save(tokenizer, out_path):
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    tokenizer.save(out_path + ".tmp")
    os.replace(out_path + ".tmp", out_path)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    data = sys.argv[1]
    gpt2_dir = os.path.join(data, "vocab", "gpt2")
    out = os.path.join(data, "tokenizers")
    gpt2(gpt2_dir, os.path.join(out, "gpt2", "tokenizer.json"), add_prefix_space=False, mask=False)
    gpt2(gpt2_dir, os.path.join(out, "gpt2-prefix", "tokenizer.json"), add_prefix_space=True, mask=True)
    unigram(os.path.join(out, "unigram", "spm.model"), os.path.join(out, "unigram", "tokenizer.json"))


if __name__ == "__main__":
    main()
