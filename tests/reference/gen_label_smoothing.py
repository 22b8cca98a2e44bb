#!/usr/bin/env python3
"""The lm target's label-smoothed loss and its gradient for tests/ops/test_ops_label_smoothing.c,
from torch (Debian's python3-torch): TencentPretrain's LmTarget formula
    (1 - eps - eps_i) * nll + eps_i * smooth,  eps_i = eps / (V - 1),  means over the scored rows
computed with torch ops, checked here to equal torch.nn.functional.cross_entropy with
label_smoothing = eps * V / (V - 1) and ignore_index=-1, and its gradient by autograd.

Usage: /usr/bin/python3 tests/reference/gen_label_smoothing.py > tests/fixtures/label_smoothing.json
"""
import json
import sys

import torch
import torch.nn.functional as F

ROWS, VOCAB = 7, 11


def tencentpretrain_loss(logits, targets, eps):
    scored = targets >= 0
    output = torch.log_softmax(logits[scored], dim=-1)
    target = targets[scored].unsqueeze(-1)
    nll_loss = -output.gather(dim=-1, index=target).squeeze(-1).mean()
    smooth_loss = -output.sum(dim=-1).mean()
    eps_i = eps / (output.size(-1) - 1)
    return (1.0 - eps - eps_i) * nll_loss + eps_i * smooth_loss


def main():
    torch.manual_seed(20261127)
    cases = []
    for eps in (0.1, 0.3):
        logits = (torch.randn(ROWS, VOCAB, dtype=torch.float64) * 2).requires_grad_()
        targets = torch.randint(0, VOCAB, (ROWS,))
        targets[2] = targets[5] = -1  # padding: not scored
        loss = tencentpretrain_loss(logits, targets, eps)
        torch_loss = F.cross_entropy(logits, targets, ignore_index=-1, label_smoothing=eps * VOCAB / (VOCAB - 1))
        assert abs(loss.item() - torch_loss.item()) < 1e-12, (loss.item(), torch_loss.item())
        (grad,) = torch.autograd.grad(loss, logits)
        cases.append({"label_smoothing": eps, "logits": logits.detach().flatten().tolist(),
                      "targets": targets.tolist(), "loss": loss.item(), "grad": grad.flatten().tolist()})
    json.dump({"rows": ROWS, "vocab": VOCAB, "cases": cases}, sys.stdout)


if __name__ == "__main__":
    main()
