#!/usr/bin/env python3
"""Writes tests/fixtures/hf_families/: small RANDOM-INIT Hugging Face models of the BERT,
RoBERTa and ALBERT families with their heads, saved with save_pretrained (config.json,
model.safetensors, tokenizer files), and what transformers computes with them.

    data/venv-ref/bin/python tests/reference/make_hf_families_fixture.py
    data/venv-ref/bin/python tests/reference/make_hf_families_fixture.py --tp-convert build/tp-convert

For every case, <case>/ is the Hugging Face directory and expected/<case>.safetensors holds:
  input_ids, seg             int32 [B, S]: the batch (3 sentence pairs, padding at the end);
                             seg is tp's segment ids (1 = A, 2 = B, 0 = padding)
  mlm_logits                 float32 [B, S, V]  (cases with an MLM head)
  sp_logits                  float32 [B, 2]     (BertForPreTraining, AlbertForPreTraining)
  cls_logits                 float32 [B, L]     (sequence classification)
  loss, grad.<tp name>       AlbertForPreTraining only: the pre-training loss (MLM over every real
                             token, labels = the input ids; SOP labels 0, 1, 0) and its gradients
                             with respect to a few parameters, under tp's names -- ALBERT's one
                             shared layer runs num_hidden_layers times, so these gradients are sums
                             over its uses.
Models are in eval mode, float32, with every parameter perturbed by N(0, 0.05) after
transformers' initialisation (so that layer-norm gains and biases are not 1 and 0).

With --tp-convert, every directory is also converted HF -> tp -> HF with that program, loaded
back with transformers (no missing or unexpected weights allowed) and must give bit-identical
parameters and logits.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "hf_families")

VOCAB = 40
SEQ = 8
# (length of A, length of B) per row; the rest of the row is padding.
PAIRS = [(4, 4), (3, 3), (4, 0)]
SOP_LABELS = [0, 1, 0]

COMMON = dict(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
              max_position_embeddings=16)
CASES = {
    "bert_mlm": (transformers.BertForMaskedLM, transformers.BertConfig, dict(hidden_act="gelu")),
    # untied output weights: cls.predictions.decoder.weight is saved
    "bert_pretraining": (transformers.BertForPreTraining, transformers.BertConfig,
                         dict(hidden_act="gelu_new", tie_word_embeddings=False)),
    "bert_cls": (transformers.BertForSequenceClassification, transformers.BertConfig, dict(num_labels=3)),
    # published RoBERTa: type_vocab_size 1, positions from padding_idx + 1 = 2
    "roberta_mlm": (transformers.RobertaForMaskedLM, transformers.RobertaConfig,
                    dict(type_vocab_size=1, max_position_embeddings=18, layer_norm_eps=1e-5)),
    "roberta_cls": (transformers.RobertaForSequenceClassification, transformers.RobertaConfig,
                    dict(type_vocab_size=1, max_position_embeddings=18, num_labels=3)),
    "albert_mlm": (transformers.AlbertForMaskedLM, transformers.AlbertConfig, dict(embedding_size=8)),
    "albert_pretraining": (transformers.AlbertForPreTraining, transformers.AlbertConfig, dict(embedding_size=8)),
    # one layer group per layer: no sharing
    "albert_cls": (transformers.AlbertForSequenceClassification, transformers.AlbertConfig,
                   dict(embedding_size=8, num_hidden_groups=2, num_labels=3)),
}
# Gradients stored for albert_pretraining: Hugging Face name -> tp name.
ALBERT_GRADIENTS = {
    "albert.encoder.albert_layer_groups.0.albert_layers.0.attention.query.weight":
        "encoder.transformer.self_attn.linear_layers.0.weight",
    "albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight": "encoder.transformer.feed_forward.linear_1.weight",
    "albert.encoder.albert_layer_groups.0.albert_layers.0.full_layer_layer_norm.weight":
        "encoder.transformer.layer_norm_2.weight",
    "albert.encoder.embedding_hidden_mapping_in.weight": "encoder.linear.weight",
    "albert.embeddings.word_embeddings.weight": "embedding.word.embedding.weight",
    "predictions.dense.weight": "target.mlm.linear_1.weight",
    "sop_classifier.classifier.weight": "target.sp.linear_2.weight",
}


def write_tokenizer(name, directory):
    words = [f"w{i}" for i in range(5, VOCAB)]
    if name.startswith("bert"):
        vocab = os.path.join(directory, "vocab.txt")
        with open(vocab, "w") as f:
            f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
        transformers.BertTokenizer(vocab).save_pretrained(directory)
    elif name.startswith("roberta"):
        import json
        with tempfile.TemporaryDirectory() as tmp:
            vocab, merges = os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt")
            tokens = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"] + words
            with open(vocab, "w") as f:
                json.dump({t: i for i, t in enumerate(tokens)}, f)
            with open(merges, "w") as f:
                f.write("#version: 0.2\n")
            transformers.RobertaTokenizer(vocab, merges).save_pretrained(directory)
    # ALBERT's tokenizer is a SentencePiece model: none is written (the conversion copies what exists).


def make_inputs(config, roberta):
    generator = torch.Generator().manual_seed(11)
    ids = torch.full((len(PAIRS), SEQ), config.pad_token_id, dtype=torch.long)
    types = torch.zeros((len(PAIRS), SEQ), dtype=torch.long)
    seg = torch.zeros((len(PAIRS), SEQ), dtype=torch.int32)
    for row, (a, b) in enumerate(PAIRS):
        ids[row, :a + b] = torch.randint(5, VOCAB, (a + b,), generator=generator)
        seg[row, :a] = 1
        seg[row, a:a + b] = 2
        if not roberta:  # RoBERTa's tokenizers give type 0 everywhere
            types[row, a:a + b] = 1
    mask = (seg > 0).long()
    return ids, types, mask, seg


def build(name):
    model_class, config_class, options = CASES[name]
    torch.manual_seed(sum(map(ord, name)))
    config = config_class(**{**COMMON, **options})
    model = model_class(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model.eval()


def outputs(model, ids, types, mask):
    result = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    out = {}
    if hasattr(result, "prediction_logits"):
        out["mlm_logits"] = result.prediction_logits
    if hasattr(result, "seq_relationship_logits"):
        out["sp_logits"] = result.seq_relationship_logits
    if hasattr(result, "sop_logits"):
        out["sp_logits"] = result.sop_logits
    if isinstance(model, (transformers.BertForMaskedLM, transformers.RobertaForMaskedLM,
                          transformers.AlbertForMaskedLM)):
        out["mlm_logits"] = result.logits
    if "ForSequenceClassification" in type(model).__name__:
        out["cls_logits"] = result.logits
    return out


def albert_gradients(model, ids, types, mask):
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100))
    model.zero_grad()
    result = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels,
                   sentence_order_label=torch.tensor(SOP_LABELS))
    result.loss.backward()
    named = dict(model.named_parameters())
    out = {"loss": result.loss.detach().reshape(1)}
    for hf_name, tp_name in ALBERT_GRADIENTS.items():
        out["grad." + tp_name] = named[hf_name].grad.detach().clone()
    model.zero_grad()
    return out


def write_case(name):
    model = build(name)
    directory = os.path.join(OUT_DIR, name)
    shutil.rmtree(directory, ignore_errors=True)
    model.save_pretrained(directory, safe_serialization=True)
    write_tokenizer(name, directory)
    ids, types, mask, seg = make_inputs(model.config, name.startswith("roberta"))
    with torch.no_grad():
        expected = outputs(model, ids, types, mask)
    if name == "albert_pretraining":
        expected.update(albert_gradients(model, ids, types, mask))
    expected = {k: v.detach().float().contiguous() for k, v in expected.items()}
    expected["input_ids"] = ids.to(torch.int32)
    expected["seg"] = seg
    os.makedirs(os.path.join(OUT_DIR, "expected"), exist_ok=True)
    save_file(expected, os.path.join(OUT_DIR, "expected", name + ".safetensors"),
              metadata={"transformers": transformers.__version__, "architecture": type(model).__name__})
    return model, (ids, types, mask)


def check_round_trip(name, model, inputs, tp_convert):
    """HF -> tp -> HF with tp-convert; transformers must load the result exactly."""
    with tempfile.TemporaryDirectory() as tmp:
        tp_dir, hf_dir = os.path.join(tmp, "tp"), os.path.join(tmp, "hf")
        subprocess.run([tp_convert, "--from-hf", os.path.join(OUT_DIR, name), "--to", tp_dir], check=True)
        subprocess.run([tp_convert, "--to-hf", "--model", os.path.join(tp_dir, "model_config.json"), "--weights",
                        os.path.join(tp_dir, "model.safetensors"), "--to", hf_dir], check=True)
        back, info = type(model).from_pretrained(hf_dir, output_loading_info=True)
        problems = {k: v for k, v in info.items() if v}
        if problems:
            sys.exit(f"{name}: transformers reports {problems} loading tp-convert's output")
        original, converted = model.state_dict(), back.eval().state_dict()
        for key, value in original.items():
            if not torch.equal(value, converted[key]):
                sys.exit(f"{name}: {key} differs after HF -> tp -> HF")
        with torch.no_grad():
            want, got = outputs(model, *inputs), outputs(back, *inputs)
        for key in want:
            if not torch.equal(want[key], got[key]):
                sys.exit(f"{name}: {key} differs after HF -> tp -> HF")
        print(f"{name}: tp-convert round trip loads in transformers {transformers.__version__} with identical "
              f"weights and logits")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tp-convert", help="path of the tp-convert program: also check its round trip")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in CASES:
        model, inputs = write_case(name)
        if args.tp_convert:
            check_round_trip(name, model, inputs, args.tp_convert)
    total = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(OUT_DIR) for f in files)
    print(f"wrote {len(CASES)} cases to {OUT_DIR} ({total / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
