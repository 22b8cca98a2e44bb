"""Checks a dataset written by tp-preprocess against the corpus it came from.

The corpus is tokenized here by Hugging Face's BertTokenizer (transformers,
pure Python), not by tp, and the dataset file is parsed from the layout in
docs/data.md with the struct module, so neither side shares code with tp.

  mlm: the instances must equal, in order, [CLS] line [SEP] cut into
       seq_length pieces (per line, or over the whole buffer with
       --full_sentences), pieces of one token dropped, each buffer's
       pieces dup_factor times.
  bert: every instance is [CLS] A [SEP] B [SEP] within seq_length; A is a
       contiguous run of one document's tokens; B is one too, and comes after
       A in the same document when is_random_next is 0; about half are random.
  static masks: the count per instance is TencentPretrain's
       max(1, round(len * 0.15)), never on [CLS]/[SEP]/[PAD], ~80/10/10.

Usage: preprocess_check.py CORPUS VOCAB -- DATASET bert|mlm SEQ_LENGTH [--full_sentences]
           [--docs_buffer_size N] [--dup_factor N] [-- DATASET ...]
"""
import struct
import sys
from array import array
from itertools import accumulate

from transformers import BertTokenizer

HEADER = struct.Struct("<8s4I4Q5QQ")


def fail(message):
    print("preprocess_check.py: FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def read_dataset(path):
    data = open(path, "rb").read()
    (magic, version, kind, token_bytes, seq_length, vocab_size, count, token_count, mask_count, offsets_pos,
     tokens_pos, meta_pos, mask_offsets_pos, masks_pos, file_size) = HEADER.unpack_from(data, 0)
    if magic != b"TPDATA\0\0" or version != 1 or file_size != len(data):
        fail(f"{path}: bad header")
    for pos in (offsets_pos, tokens_pos, meta_pos, mask_offsets_pos, masks_pos):
        if pos % 64:
            fail(f"{path}: section at {pos} not 64-byte aligned")

    def section(typecode, pos, n):
        values = array(typecode)
        values.frombytes(data[pos:pos + n * values.itemsize])
        return values

    offsets = section("Q", offsets_pos, count + 1)
    tokens = section("H" if token_bytes == 2 else "I", tokens_pos, token_count)
    meta = [struct.unpack_from("<HBB", data, meta_pos + 4 * i) for i in range(count)]
    instances = [list(tokens[offsets[i]:offsets[i + 1]]) for i in range(count)]
    masks = None
    if masks_pos:
        mask_offsets = section("Q", mask_offsets_pos, count + 1)
        entries = [struct.unpack_from("<HHi", data, masks_pos + 8 * m) for m in range(mask_count)]
        masks = [[(p, r) for p, _, r in entries[mask_offsets[i]:mask_offsets[i + 1]]] for i in range(count)]
    return dict(kind=kind, seq_length=seq_length, vocab_size=vocab_size, instances=instances, meta=meta, masks=masks)


def corpus_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")


def check_mlm(ds, lines, tok, seq_length, full_sentences, buffer_size, dup_factor):
    cls, sep = tok.cls_token_id, tok.sep_token_id
    expected, buffer, stream, units = [], [], [], 0

    def cut(final):
        while len(stream) >= seq_length or (final and stream):
            piece = stream[:seq_length]
            del stream[:seq_length]
            if len(piece) >= 2:
                buffer.append(piece)

    def end_buffer():
        cut(final=True)
        expected.extend(buffer * dup_factor)  # each buffer's instances, dup_factor times
        buffer.clear()

    for line in lines:
        if not line.strip(" \t\r\f\v"):  # tp's blank lines: ASCII whitespace only
            continue
        ids = tok.convert_tokens_to_ids(tok.tokenize(line))
        if ids:
            stream.extend([cls] + ids + [sep])
        cut(final=not full_sentences)
        units += 1  # a buffer holds docs_buffer_size non-blank lines
        if units % buffer_size == 0:
            end_buffer()
    end_buffer()
    if ds["instances"] != expected:
        got = ds["instances"]
        first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        fail(f"mlm: {len(got)} instances, expected {len(expected)}; first difference at instance {first}")
    if any(m[0] != len(ids) for m, ids in zip(ds["meta"], ds["instances"])):
        fail("mlm: segment_a_length is not the instance length")


def documents_of(lines, tok):
    documents, current = [], []
    for line in lines:
        if not line.strip():
            if current:
                documents.append(current)
            current = []
            continue
        ids = tok.convert_tokens_to_ids(tok.tokenize(line))
        if ids:
            current.append(ids)
    if current:
        documents.append(current)
    return documents


def run_position(stream, run):
    """Index of run as a contiguous part of stream (lists of ints), -1 if absent."""
    key = "," + ",".join(map(str, run)) + ","
    text = "," + ",".join(map(str, stream)) + ","
    at = text.find(key)
    return -1 if at < 0 else text.count(",", 0, at)


def check_bert(ds, lines, tok, seq_length, dup_factor):
    cls, sep = tok.cls_token_id, tok.sep_token_id
    documents = documents_of(lines, tok)
    streams = [[t for sentence in doc for t in sentence] for doc in documents]
    sentence_starts = [set(accumulate([0] + [len(sentence) for sentence in doc])) for doc in documents]
    covered = [[0] * len(stream) for stream in streams]
    truncated_front = truncated_back = 0
    random_next = same_document = 0
    for i, (ids, (a_length, is_random, _)) in enumerate(zip(ds["instances"], ds["meta"])):
        if len(ids) > seq_length or ids[0] != cls or ids[a_length - 1] != sep or ids[-1] != sep:
            fail(f"bert: instance {i} is not [CLS] A [SEP] B [SEP] within {seq_length} tokens")
        a, b = ids[1:a_length - 1], ids[a_length:-1]
        if not a or not b:
            fail(f"bert: instance {i} has an empty segment")
        a_places = [(d, run_position(s, a)) for d, s in enumerate(streams)]
        a_places = [(d, p) for d, p in a_places if p >= 0]
        if not a_places:
            fail(f"bert: instance {i}: segment A is not a run of any document's tokens")
        if is_random:
            random_next += 1
            b_documents = {d for d, s in enumerate(streams) if run_position(s, b) >= 0}
            if not b_documents:
                fail(f"bert: instance {i}: random segment B is not a run of any document's tokens")
            same_document += b_documents <= {d for d, _ in a_places}
        else:
            b_places = [(d, p + len(a) + run_position(streams[d][p + len(a):], b)) for d, p in a_places]
            b_places = [(d, p) for d, p in b_places if p >= len(a)]
            if not b_places:
                fail(f"bert: instance {i}: segment B does not follow segment A in its document")
            d, p = b_places[0]
            covered[d][p:p + len(b)] = [1] * len(b)
        d, p = a_places[0]
        covered[d][p:p + len(a)] = [1] * len(a)
        truncated_front += p not in sentence_starts[d]
        truncated_back += p + len(a) not in sentence_starts[d]
    share = random_next / len(ds["instances"])
    if not 0.45 <= share <= 0.8:  # 50% plus the single-sentence chunks, which are always random
        fail(f"bert: {share:.3f} of the instances have a random next segment")
    if same_document > 0.05 * random_next:  # another document unless 10 draws all hit this one
        fail(f"bert: {same_document} of {random_next} random next segments come from segment A's document")
    # truncate_seq_pair drops tokens from either end of segment A, at random.
    truncations = truncated_front + truncated_back
    if truncations >= 10 and min(truncated_front, truncated_back) < 0.2 * truncations:
        fail(f"bert: segment A truncated at the front {truncated_front} times, at the back {truncated_back} times")
    # Sentences left over when B is random start the next chunk: in one round, A and the
    # non-random Bs cover the documents but for what truncation drops.
    coverage = sum(map(sum, covered)) / sum(map(len, covered))
    if dup_factor == 1 and coverage < 0.85:
        fail(f"bert: segments cover {coverage:.3f} of the documents' tokens in one round")


def check_masks(ds, tok):
    specials = {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id}
    counts = dict(mask=0, random=0, kept=0)
    for i, (ids, masks) in enumerate(zip(ds["instances"], ds["masks"])):
        candidates = sum(t not in specials for t in ids)
        if len(masks) != min(max(1, int(round(len(ids) * 0.15))), candidates):
            fail(f"static masks: instance {i} has {len(masks)} masks for {len(ids)} tokens")
        for position, replacement in masks:
            if ids[position] in specials:
                fail(f"static masks: instance {i} masks a special token at {position}")
            kind = ("mask" if replacement == tok.mask_token_id else "kept" if replacement == ids[position] else "random")
            counts[kind] += 1
    total = sum(counts.values())
    if abs(counts["mask"] / total - 0.8) > 0.05 or abs(counts["random"] / total - 0.1) > 0.04:
        fail(f"static masks: {counts} is not about 80/10/10")


def check(corpus_path, vocab_path, tok, args):
    dataset_path, processor, seq_length = args[0], args[1], int(args[2])

    def option(name, default):
        return int(args[args.index(name) + 1]) if name in args else default

    ds = read_dataset(dataset_path)
    lines = corpus_lines(corpus_path)
    if ds["vocab_size"] != len(tok.vocab) or ds["seq_length"] != seq_length:
        fail(f"{dataset_path}: header vocab_size or seq_length differs from the run's")
    if processor == "mlm":
        check_mlm(ds, lines, tok, seq_length, "--full_sentences" in args, option("--docs_buffer_size", 100000),
                  option("--dup_factor", 1))
    else:
        check_bert(ds, lines, tok, seq_length, option("--dup_factor", 1))
    if ds["masks"] is not None:
        check_masks(ds, tok)
    print(f"preprocess_check.py: {dataset_path}: {len(ds['instances'])} {processor} instances ok")


def main():
    corpus_path, vocab_path = sys.argv[1:3]
    tok = BertTokenizer(vocab_path, do_lower_case=True)
    jobs = []
    for arg in sys.argv[3:]:  # "-- DATASET bert 64 -- DATASET mlm 16 --dup_factor 2"
        if arg == "--":
            jobs.append([])
        else:
            jobs[-1].append(arg)
    for job in jobs:
        check(corpus_path, vocab_path, tok, job)


if __name__ == "__main__":
    main()
