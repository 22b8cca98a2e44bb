#!/usr/bin/env python3
"""Writes tests/fixtures/seq2seq_generate.json: what transformers' generate produces with the
random tiny encoder-decoder fixtures of gen_t5_bart.py (tests/fixtures/{t5,t5_v1_1,bart}/), for
tests/models/test_generate_seq2seq.c.

    data/venv-ref/bin/python tests/reference/gen_seq2seq_generate.py

For each model and each eos_scale (1: the model as saved; 2.5: the lm head's eos row multiplied
by 2.5 -- tied models: the shared embedding row -- so that hypotheses end at different lengths),
five sources (random ids 3..95 of lengths 5..13, one source per call, no padding) and
generate(input_ids, max_new_tokens=24, <setting>, ids from the model's generation_config.json --
BART: forced_eos_token_id 2):
  greedy      num_beams 1
  beam        num_beams 4 (length_penalty 1, early_stopping False: transformers' defaults)
  beam_early  num_beams 4, early_stopping True, length_penalty 0.6, no_repeat_ngram_size 2
  beam_never  num_beams 3, early_stopping "never", length_penalty 1.5, repetition_penalty 1.3
  beam_min    num_beams 2, min_length 8 (no eos before 7 generated ids)
Sequences are stored without the decoder start id, as tp returns them.
"""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")
SETTINGS = {
    "greedy": dict(num_beams=1),
    "beam": dict(num_beams=4),
    "beam_early": dict(num_beams=4, early_stopping=True, length_penalty=0.6, no_repeat_ngram_size=2),
    "beam_never": dict(num_beams=3, early_stopping="never", length_penalty=1.5, repetition_penalty=1.3),
    "beam_min": dict(num_beams=2, min_length=8),
}
MAX_NEW_TOKENS = 24


def sources():
    generator = torch.Generator().manual_seed(11)
    return [torch.randint(3, 96, (1, 5 + 2 * i), generator=generator) for i in range(5)]


def main():
    torch.set_num_threads(1)
    cases = []
    for name in ("t5", "t5_v1_1", "bart"):
        for eos_scale in (1.0, 2.5):
            model = transformers.AutoModelForSeq2SeqLM.from_pretrained(os.path.join(FIXTURES, name)).eval()
            eos = model.generation_config.eos_token_id
            with torch.no_grad():
                model.get_output_embeddings().weight[eos] *= eos_scale
            for setting, options in SETTINGS.items():
                outputs = []
                for source in sources():
                    with torch.no_grad():
                        # synced_gpus given: transformers would otherwise import torch.distributed.fsdp, which
                        # Debian's torch 1.13 cannot import under Python 3.11
                        out = model.generate(source, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                                             synced_gpus=False, **options)
                    outputs.append(out[0, 1:].tolist())
                cases.append({"model": name, "eos_scale": eos_scale, "setting": setting, "options": options,
                              "sources": [s[0].tolist() for s in sources()], "outputs": outputs})
    with open(os.path.join(FIXTURES, "seq2seq_generate.json"), "w") as f:
        json.dump({"max_new_tokens": MAX_NEW_TOKENS, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
