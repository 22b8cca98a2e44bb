#!/usr/bin/env python3
"""Writes tests/fixtures/optim/{schedules,adamw,clip}.json: reference values for
core/scheduler.c and core/optim.c, computed by libraries nobody in tp wrote.

Run from the repository root in the reference environment (tests/reference/setup_env.sh):
    data/venv-ref/bin/python tests/reference/make_optim_fixture.py

schedules.json  For each case, the learning-rate factor at every scheduler step 0..N (the
                multiplier of the base lr that the (step+1)-th optimizer.step() uses).
                linear, cosine, cosine_with_restarts, polynomial, constant and
                constant_with_warmup come from transformers' own lr_lambda functions
                (transformers.optimization).  inverse_sqrt and tri_stage are TencentPretrain's
                own schedules (tencentpretrain/utils/optimizers.py; transformers' inverse_sqrt
                differs) and TencentPretrain is not on PyPI, so those two lambdas are ported
                below, line for line, from that file.
adamw.json      Three AdamW steps on a flat buffer split into segments (decay 0.01 / 0,
                a frozen one, one with a per-group lr scale, a gap nobody owns), for:
                  tencentpretrain        TencentPretrain's AdamW, correct_bias=False (pre-training)
                  tencentpretrain_bias   the same with correct_bias=True
                  torch                  torch.optim.AdamW (decay first, bias-corrected)
                TencentPretrain's AdamW is transformers.AdamW (the old HF class it copies);
                it is the transformers class that runs here.
clip.json       torch.nn.utils.clip_grad_norm_ over the non-frozen segments for a max_norm
                below and one above the gradients' norm.

Floats are written with 9 significant digits (round-trips float32 exactly), factors with
17 (repr round-trips double).
"""
import json
import math
import os
import warnings

import torch
import transformers
import transformers.optimization as hf

OUT_DIR = os.path.join("tests", "fixtures", "optim")
SCHEDULE_STEPS = 50  # factors for steps 0..SCHEDULE_STEPS

# ---------------------------------------------------------------------------------------------
# TencentPretrain's two schedules that transformers lacks, ported from
# tencentpretrain/utils/optimizers.py (get_tri_stage_schedule and
# get_inverse_square_root_schedule_with_warmup): the lr_lambda bodies, same operations in the
# same order.  TencentPretrain's trainer calls them as
#   tri_stage:    (optimizer, total_steps * warmup, total_steps * decay, total_steps)
#   inverse_sqrt: (optimizer, total_steps * warmup, total_steps)


def tencentpretrain_tri_stage_lambda(lr, num_warmup_steps, num_decay_steps, num_training_steps,
                                     init_lr_scale=0.01, final_lr_scale=0.05):
    lr_hold = lr
    lr_int = lr_hold * init_lr_scale
    lr_end = lr_hold * final_lr_scale

    def lr_lambda(current_step):
        warmup_rate = (lr_hold - lr_int) / num_warmup_steps
        decay_factor = -math.log(final_lr_scale) / max(num_decay_steps, 1)
        if current_step < num_warmup_steps:
            return (lr_int + current_step * warmup_rate) / lr_hold
        elif current_step >= num_warmup_steps and current_step < num_training_steps - num_decay_steps:
            return 1
        elif current_step <= num_training_steps:
            return math.exp(-decay_factor * (current_step - num_training_steps + num_decay_steps))
        else:
            return lr_end / lr_hold

    return lr_lambda


def tencentpretrain_inverse_sqrt_lambda(lr, num_warmup_steps, num_training_steps, warmup_init_lr=0.0):
    assert lr > warmup_init_lr

    def lr_lambda(current_step):
        if current_step < num_warmup_steps:
            lr_step = (lr - warmup_init_lr) / num_warmup_steps
            return (warmup_init_lr + current_step * lr_step) / lr
        elif current_step > num_training_steps:
            return 1e-7 / lr
        else:
            decay_factor = lr * num_warmup_steps**0.5
            return (decay_factor * current_step**-0.5) / lr

    return lr_lambda


# ---------------------------------------------------------------------------------------------
# Schedules


def hf_lambda(make, base_lr, *args, **kwargs):
    """The lr_lambda of a transformers schedule, as LambdaLR holds it."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
    return make(optimizer, *args, **kwargs).lr_lambdas[0]


def schedule_cases():
    """(case fields for tp_schedule, lr_lambda).  Totals below SCHEDULE_STEPS cover the tail."""
    lr = 1e-3
    cases = [
        ({"kind": "linear", "warmup_steps": 10, "total_steps": 40},
         hf_lambda(hf.get_linear_schedule_with_warmup, lr, 10, 40)),
        ({"kind": "linear", "warmup_steps": 0, "total_steps": 30},
         hf_lambda(hf.get_linear_schedule_with_warmup, lr, 0, 30)),
        ({"kind": "cosine", "warmup_steps": 10, "total_steps": 40, "cycles": 0.5},
         hf_lambda(hf.get_cosine_schedule_with_warmup, lr, 10, 40)),
        ({"kind": "cosine", "warmup_steps": 5, "total_steps": 45, "cycles": 1.5},
         hf_lambda(hf.get_cosine_schedule_with_warmup, lr, 5, 45, num_cycles=1.5)),
        ({"kind": "cosine_with_restarts", "warmup_steps": 10, "total_steps": 40, "cycles": 1},
         hf_lambda(hf.get_cosine_with_hard_restarts_schedule_with_warmup, lr, 10, 40)),
        ({"kind": "cosine_with_restarts", "warmup_steps": 4, "total_steps": 44, "cycles": 3},
         hf_lambda(hf.get_cosine_with_hard_restarts_schedule_with_warmup, lr, 4, 44, num_cycles=3)),
        ({"kind": "polynomial", "warmup_steps": 10, "total_steps": 40, "base_lr": lr, "lr_end": 1e-7, "power": 1.0},
         hf_lambda(hf.get_polynomial_decay_schedule_with_warmup, lr, 10, 40)),
        ({"kind": "polynomial", "warmup_steps": 3, "total_steps": 33, "base_lr": 5e-4, "lr_end": 1e-5, "power": 2.0},
         hf_lambda(hf.get_polynomial_decay_schedule_with_warmup, 5e-4, 3, 33, lr_end=1e-5, power=2.0)),
        ({"kind": "constant", "warmup_steps": 0, "total_steps": 40},
         hf_lambda(hf.get_constant_schedule, lr)),
        ({"kind": "constant_with_warmup", "warmup_steps": 10, "total_steps": 40},
         hf_lambda(hf.get_constant_schedule_with_warmup, lr, 10)),
        ({"kind": "constant_with_warmup", "warmup_steps": 0, "total_steps": 40},
         hf_lambda(hf.get_constant_schedule_with_warmup, lr, 0)),
        ({"kind": "inverse_sqrt", "warmup_steps": 10, "total_steps": 40, "base_lr": 1e-4},
         tencentpretrain_inverse_sqrt_lambda(1e-4, 10, 40)),
        ({"kind": "inverse_sqrt", "warmup_steps": 3, "total_steps": 30, "base_lr": 2e-5},
         tencentpretrain_inverse_sqrt_lambda(2e-5, 3, 30)),
        ({"kind": "tri_stage", "warmup_steps": 10, "decay_steps": 20, "total_steps": 40,
          "init_scale": 0.01, "final_scale": 0.05},
         tencentpretrain_tri_stage_lambda(lr, 10, 20, 40)),
        ({"kind": "tri_stage", "warmup_steps": 5, "decay_steps": 10, "total_steps": 45,
          "init_scale": 0.1, "final_scale": 0.2},
         tencentpretrain_tri_stage_lambda(lr, 5, 10, 45, init_lr_scale=0.1, final_lr_scale=0.2)),
        # warmup + decay > total: the decay stage starts right after warmup, part-way in
        ({"kind": "tri_stage", "warmup_steps": 10, "decay_steps": 35, "total_steps": 40,
          "init_scale": 0.01, "final_scale": 0.05},
         tencentpretrain_tri_stage_lambda(lr, 10, 35, 40)),
    ]
    out = []
    for fields, lr_lambda in cases:
        fields = dict(fields)
        fields["factors"] = [float(lr_lambda(step)) for step in range(SCHEDULE_STEPS + 1)]
        out.append(fields)
    return out


# ---------------------------------------------------------------------------------------------
# AdamW and clipping

# (offset, numel, weight_decay, lr_scale, frozen).  Floats 200..207 belong to no segment;
# 40 and 56 are not multiples of torch's 16-float vector blocks, so its scalar tails run too.
SEGMENTS = [
    (0, 96, 0.01, 1.0, 0),
    (96, 40, 0.0, 1.0, 0),
    (136, 64, 0.01, 1.0, 1),
    (208, 56, 0.01, 0.5, 0),
]
BUFFER_FLOATS = 264
LRS = [0.05, 0.04, 0.03]  # lr of optimizer steps 1, 2, 3 (large, so decay-order mistakes show)
BETAS = (0.9, 0.999)
EPS = 1e-6
SEED = 20240611


def random_buffers():
    generator = torch.Generator().manual_seed(SEED)
    params = torch.randn(BUFFER_FLOATS, generator=generator)
    grads = [torch.randn(BUFFER_FLOATS, generator=generator) * scale for scale in (1.0, 0.3, 2.0)]
    return params, grads


def run_adamw(variant, params, grads):
    """Steps the optimizer over one nn.Parameter per segment, one param group per segment."""
    tensors = [torch.nn.Parameter(params[o:o + n].clone(), requires_grad=not frozen)
               for o, n, _, _, frozen in SEGMENTS]
    groups = [{"params": [t], "weight_decay": wd, "lr_scale": scale}
              for t, (_, _, wd, scale, _) in zip(tensors, SEGMENTS)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if variant == "torch":
            optimizer = torch.optim.AdamW(groups, lr=LRS[0], betas=BETAS, eps=EPS)
        else:
            optimizer = transformers.AdamW(groups, lr=LRS[0], betas=BETAS, eps=EPS,
                                           correct_bias=(variant == "tencentpretrain_bias"))
    for lr, grad in zip(LRS, grads):
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        for t, (o, n, _, _, frozen) in zip(tensors, SEGMENTS):
            t.grad = None if frozen else grad[o:o + n].clone()
        optimizer.step()

    flat = {"params": params.clone(), "exp_avg": torch.zeros(BUFFER_FLOATS), "exp_avg_sq": torch.zeros(BUFFER_FLOATS)}
    for t, (o, n, _, _, frozen) in zip(tensors, SEGMENTS):
        flat["params"][o:o + n] = t.detach()
        if not frozen:
            flat["exp_avg"][o:o + n] = optimizer.state[t]["exp_avg"]
            flat["exp_avg_sq"][o:o + n] = optimizer.state[t]["exp_avg_sq"]
    return {key: floats(value) for key, value in flat.items()}


def run_clip(grads, max_norm):
    tensors = [torch.nn.Parameter(torch.zeros(n)) for o, n, _, _, frozen in SEGMENTS if not frozen]
    for t, (o, n, _, _, _) in zip(tensors, [s for s in SEGMENTS if not s[4]]):
        t.grad = grads[o:o + n].clone()
    norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    clipped = grads.clone()
    for t, (o, n, _, _, _) in zip(tensors, [s for s in SEGMENTS if not s[4]]):
        clipped[o:o + n] = t.grad
    return {"max_norm": max_norm, "norm": float(norm), "grads_after": floats(clipped)}


class Float32(float):
    """A float32 value, written with the 9 significant digits that round-trip it."""

    def __repr__(self):
        return "%.9g" % self


def floats(tensor):
    return [Float32(x) for x in tensor.tolist()]


def dump(path, obj):
    # json.encoder writes floats with float.__repr__; Float32 lists are rendered by hand.
    def render(value, indent):
        pad = " " * indent
        if isinstance(value, dict):
            items = [f'{pad}  {json.dumps(k)}: {render(v, indent + 2)}' for k, v in value.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(value, list) and value and isinstance(value[0], (dict, list)):
            return "[\n" + ",\n".join(pad + "  " + render(v, indent + 2) for v in value) + "\n" + pad + "]"
        if isinstance(value, list):
            return "[" + ", ".join(render(v, indent) for v in value) + "]"
        if isinstance(value, Float32):
            return repr(value)
        return json.dumps(value)

    with open(path, "w") as f:
        f.write(render(obj, 0) + "\n")


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__}

    dump(os.path.join(OUT_DIR, "schedules.json"),
         {"source": "make_optim_fixture.py", "versions": versions, "cases": schedule_cases()})

    params, grads = random_buffers()
    segments = [{"offset": o, "numel": n, "weight_decay": wd, "lr_scale": s, "frozen": f}
                for o, n, wd, s, f in SEGMENTS]
    dump(os.path.join(OUT_DIR, "adamw.json"), {
        "source": "make_optim_fixture.py", "versions": versions,
        "beta1": BETAS[0], "beta2": BETAS[1], "eps": EPS, "lrs": LRS, "segments": segments,
        "params": floats(params), "grads": [floats(g) for g in grads],
        "results": {variant: run_adamw(variant, params, grads)
                    for variant in ("tencentpretrain", "tencentpretrain_bias", "torch")},
    })

    clip_grads = grads[2]
    norm = torch.cat([clip_grads[o:o + n] for o, n, _, _, f in SEGMENTS if not f]).norm().item()
    dump(os.path.join(OUT_DIR, "clip.json"), {
        "source": "make_optim_fixture.py", "versions": versions, "segments": segments,
        "grads": floats(clip_grads),
        "cases": [run_clip(clip_grads, max_norm) for max_norm in (round(norm / 3, 3), round(norm * 2, 3))],
    })


if __name__ == "__main__":
    main()
