#!/usr/bin/env python3
"""Writes tests/fixtures/crf/cases.json: reference values for tp_crf_loss and tp_crf_viterbi
(core/ops.h) computed by pytorch-crf (the `torchcrf` package TencentPretrain's run_ner.py uses
for its CRF target), a library nobody in tp wrote.

Run from the repository root with Debian's torch:
    (cd data/pip && /usr/bin/python3 -m pip download --no-deps pytorch-crf==0.7.2)
    /usr/bin/python3 tests/reference/make_crf_fixture.py
(the wheel is pure Python and is imported from the zip, nothing is installed).

Each case is a batch of `batch` sequences of `seq` positions; tags[b*seq + s] is a tag id at the
scored positions and -1 elsewhere (tp's tagging marks only the first piece of each word).  tp's
chain of sequence b is its scored positions in order, so the reference gathers them into a dense
[batch', longest, classes] tensor with a prefix mask -- the form pytorch-crf takes -- leaving out
sequences without a scored position.  Emissions are rows of a [batch*seq, ld] matrix (ld >= classes:
padded columns must be ignored).  Written:
    loss        -CRF(emissions, tags, mask, reduction="mean"): the mean NLL over those sequences
    count       how many sequences that mean is over
    d_*         the gradients of loss (torch autograd) wrt emissions (scattered back to [batch*seq,
                ld], zero at unscored rows and padded columns), transitions, start, end
    viterbi     CRF.decode on the raw emissions, at the scored positions (-1 elsewhere)
Inputs are float32 values; the reference runs in float64 on them.  Floats: 9 significant digits.
"""
import glob
import json
import os
import sys

import torch

WHEELS = glob.glob(os.path.join("data", "pip", "pytorch_crf-*.whl"))
if not WHEELS:
    sys.exit("data/pip/pytorch_crf-*.whl missing: see this script's docstring")
sys.path.insert(0, WHEELS[0])
from torchcrf import CRF  # noqa: E402

OUT = os.path.join("tests", "fixtures", "crf", "cases.json")


def make_case(name, tags, seq, classes, ld, spread, seed):
    batch = len(tags) // seq
    g = torch.Generator().manual_seed(seed)
    emissions = (spread * torch.randn(batch * seq, ld, generator=g)).float().double()
    crf = CRF(classes, batch_first=True).double()
    with torch.no_grad():
        crf.transitions.copy_(torch.randn(classes, classes, generator=g).float())
        crf.start_transitions.copy_(torch.randn(classes, generator=g).float())
        crf.end_transitions.copy_(torch.randn(classes, generator=g).float())
    emissions.requires_grad_(True)
    chains = [[s for s in range(seq) if tags[b * seq + s] >= 0] for b in range(batch)]
    kept = [b for b in range(batch) if chains[b]]
    longest = max(len(chains[b]) for b in kept)
    rows = torch.zeros(len(kept), longest, dtype=torch.long)
    gold = torch.zeros(len(kept), longest, dtype=torch.long)
    mask = torch.zeros(len(kept), longest, dtype=torch.bool)
    for k, b in enumerate(kept):
        for t, s in enumerate(chains[b]):
            rows[k, t] = b * seq + s
            gold[k, t] = tags[b * seq + s]
            mask[k, t] = True
    dense = emissions[rows.view(-1)].view(len(kept), longest, ld)[:, :, :classes]
    loss = -crf(dense, gold, mask=mask, reduction="mean")
    loss.backward()
    viterbi = [-1] * (batch * seq)
    with torch.no_grad():
        paths = crf.decode(dense, mask=mask)
    for k, b in enumerate(kept):
        for t, s in enumerate(chains[b]):
            viterbi[b * seq + s] = paths[k][t]

    def floats(t):
        return [float("%.9g" % v) for v in t.detach().reshape(-1).tolist()]

    return {
        "name": name, "batch": batch, "seq": seq, "classes": classes, "ld": ld, "tags": tags,
        "emissions": floats(emissions), "transitions": floats(crf.transitions),
        "start": floats(crf.start_transitions), "end": floats(crf.end_transitions),
        "loss": float("%.9g" % loss.item()), "count": len(kept),
        "d_emissions": floats(emissions.grad), "d_transitions": floats(crf.transitions.grad),
        "d_start": floats(crf.start_transitions.grad), "d_end": floats(crf.end_transitions.grad),
        "viterbi": viterbi,
    }


def bio_tags(seed, batch, seq, classes):
    """Tag ids at about 60% of the positions after the first ([CLS]), -1 elsewhere and at the end."""
    g = torch.Generator().manual_seed(seed)
    tags = []
    for b in range(batch):
        length = int(torch.randint(seq // 2, seq, (1,), generator=g))
        for s in range(seq):
            scored = 0 < s < length and float(torch.rand(1, generator=g)) < 0.6
            tags.append(int(torch.randint(0, classes, (1,), generator=g)) if scored else -1)
    return tags


def main():
    small = [-1, 2, -1, 0, 1, -1, -1,
             -1, -1, -1, -1, -1, -1, -1,  # no scored position: left out of the mean
             -1, 3, 3, 1, 2, 0, -1,
             -1, -1, 1, -1, -1, -1, -1]  # one scored position
    cases = [
        make_case("small, padded columns, an empty and a one-position chain", small, 7, 4, 6, 1.0, 1),
        make_case("BIO-sized: 9 tags, 4 x 24, emissions spread 6", bio_tags(2, 4, 24, 9), 24, 9, 9, 6.0, 2),
        make_case("2 tags, every position scored", [0, 1, 1, 0, 1, 1, 0, 0, 1, 0], 5, 2, 2, 2.0, 3),
    ]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT + ".tmp", "w") as f:
        json.dump({"generator": "tests/reference/make_crf_fixture.py, pytorch-crf " + os.path.basename(WHEELS[0]),
                   "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    os.replace(OUT + ".tmp", OUT)
    print(OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
