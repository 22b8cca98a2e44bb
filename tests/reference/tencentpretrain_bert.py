"""A plain-PyTorch BERT with TencentPretrain's exact semantics and state-dict names.

Written from TencentPretrain's source (see docs/reference.md for every detail and the
file it comes from), so that tp can be checked against it without installing
TencentPretrain.  Covered: embedding word+pos+seg, transformer encoder (post/pre
layer norm, "normal" and "normal_torch" layer norms, gelu/gelu_fast/relu/silu,
fully_visible/causal masks, dropout), targets mlm and sp, TencentPretrain's AdamW
and its "linear" warm-up schedule.

Model configs use TencentPretrain's JSON keys (a models/*.json file as a dict);
the vocabulary size, which TencentPretrain takes from the vocab file, is passed apart.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# Keys of opts.py with their defaults, for the options this reference implements.
CONFIG_DEFAULTS = {
    "max_seq_length": 512,
    "dropout": 0.1,
    "embedding": ["word"],
    "remove_embedding_layernorm": False,
    "encoder": "transformer",
    "mask": "fully_visible",
    "layernorm_positioning": "post",
    "feed_forward": "dense",
    "layernorm": "normal",
    "layernorm_eps": 1e-6,
    "remove_transformer_bias": False,
    "remove_attention_scale": False,
    "tie_weights": False,
    "target": ["mlm"],
    "factorized_embedding_parameterization": False,
    "parameter_sharing": False,
    "relative_position_embedding": False,
    "rotary_position_embedding": False,
    "has_residual_attention": False,
}
REQUIRED_KEYS = ("emb_size", "hidden_size", "feedforward_size", "heads_num", "layers_num", "hidden_act")
# Keys a TencentPretrain config may hold that do not change this model.
IGNORED_KEYS = ("data_processor",)
# Options whose non-default values this reference does not implement.
UNSUPPORTED_IF_SET = ("factorized_embedding_parameterization", "parameter_sharing",
                      "relative_position_embedding", "rotary_position_embedding", "has_residual_attention")

# utils/optimizers.py AdamW as trainer.py builds it: no decay for these name fragments.
NO_DECAY = ("bias", "gamma", "beta", "layer_norm.weight", "layer_norm_1.weight", "layer_norm_2.weight")


class Config:
    """A TencentPretrain model config (dict of its JSON keys) plus the vocabulary size."""

    def __init__(self, model_config, vocab_size):
        unknown = set(model_config) - set(CONFIG_DEFAULTS) - set(REQUIRED_KEYS) - set(IGNORED_KEYS)
        if unknown:
            raise ValueError("model config: unsupported keys %s" % sorted(unknown))
        missing = [key for key in REQUIRED_KEYS if key not in model_config]
        if missing:
            raise ValueError("model config: missing keys %s" % missing)
        values = dict(CONFIG_DEFAULTS)
        values.update(model_config)
        for key in UNSUPPORTED_IF_SET:
            if values[key]:
                raise ValueError("model config: %s is not implemented by this reference" % key)
        # TencentPretrain accepts a single string where it takes a list.
        for key in ("embedding", "target"):
            if isinstance(values[key], str):
                values[key] = [values[key]]
        checks = {
            "embedding": values["embedding"] == ["word", "pos", "seg"],
            "encoder": values["encoder"] == "transformer",
            "feed_forward": values["feed_forward"] == "dense",
            "mask": values["mask"] in ("fully_visible", "causal"),
            "layernorm": values["layernorm"] in ("normal", "normal_torch"),
            "layernorm_positioning": values["layernorm_positioning"] in ("post", "pre"),
            "hidden_act": values["hidden_act"] in ACTIVATIONS,
            "target": set(values["target"]) <= {"mlm", "sp"} and len(values["target"]) > 0,
            "emb_size": values["emb_size"] == values["hidden_size"],
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError("model config: %s = %r is not implemented by this reference" % (key, values[key]))
        self.__dict__.update(values)
        self.vocab_size = int(vocab_size)


# utils/act_fun.py
def gelu(x):
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_fast(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS = {"gelu": gelu, "gelu_fast": gelu_fast, "relu": F.relu, "silu": F.silu}


class LayerNorm(nn.Module):
    """layers/layer_norm.py LayerNorm ("normal"): unbiased std, eps added to the std."""

    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(hidden_size))
        self.beta = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.gamma * (x - mean) / (std + self.eps) + self.beta


def make_layer_norm(config):
    """str2layernorm[args.layernorm](hidden_size, eps=args.layernorm_eps); normal_torch is nn.LayerNorm."""
    if config.layernorm == "normal_torch":
        return nn.LayerNorm(config.hidden_size, eps=config.layernorm_eps)
    return LayerNorm(config.hidden_size, eps=config.layernorm_eps)


class LookupEmbedding(nn.Module):
    """word / pos / seg embeddings: each holds one nn.Embedding named `embedding`."""

    def __init__(self, rows, emb_size, kind):
        super().__init__()
        self.kind = kind
        self.embedding = nn.Embedding(rows, emb_size)

    def forward(self, src, seg):
        if self.kind == "word":
            return self.embedding(src)
        if self.kind == "seg":
            return self.embedding(seg)
        batch_size, seq_length = seg.shape
        positions = torch.arange(0, seq_length, device=seg.device, dtype=torch.long)
        return self.embedding(positions.unsqueeze(0).repeat(batch_size, 1))


class Embedding(nn.Module):
    """embeddings/embedding.py: sum of the sub-embeddings -> LayerNorm -> dropout.

    The layer norm here is always TencentPretrain's own LayerNorm with eps 1e-6,
    whatever the config's `layernorm` / `layernorm_eps` say."""

    def __init__(self, config):
        super().__init__()
        self.embedding_name_list = []
        self.dropout = nn.Dropout(config.dropout)
        self.remove_embedding_layernorm = config.remove_embedding_layernorm
        if not self.remove_embedding_layernorm:
            self.layer_norm = LayerNorm(config.emb_size)
        rows = {"word": config.vocab_size, "pos": config.max_seq_length, "seg": 3}
        for name in config.embedding:
            setattr(self, name, LookupEmbedding(rows[name], config.emb_size, name))
            self.embedding_name_list.append(name)

    def forward(self, src, seg):
        emb = None
        for name in self.embedding_name_list:
            part = getattr(self, name)(src, seg)
            emb = part if emb is None else part + emb
        if not self.remove_embedding_layernorm:
            emb = self.layer_norm(emb)
        return self.dropout(emb)


class MultiHeadedAttention(nn.Module):
    """layers/multi_headed_attn.py: linear_layers 0/1/2 = Q/K/V, final_linear = output."""

    def __init__(self, config):
        super().__init__()
        self.heads_num = config.heads_num
        self.per_head_size = config.hidden_size // config.heads_num
        self.with_scale = not config.remove_attention_scale
        has_bias = not config.remove_transformer_bias
        inner = self.heads_num * self.per_head_size
        self.linear_layers = nn.ModuleList(
            [nn.Linear(config.hidden_size, inner, bias=has_bias) for _ in range(3)])
        self.final_linear = nn.Linear(inner, config.hidden_size, bias=has_bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, key, value, query, mask):
        batch_size, seq_length, _ = query.size()

        def split_heads(x):
            return x.view(batch_size, seq_length, self.heads_num, self.per_head_size).transpose(1, 2)

        query, key, value = [linear(x) for linear, x in zip(self.linear_layers, [query, key, value])]
        query, key, value = split_heads(query), split_heads(key), split_heads(value)
        scores = torch.matmul(query, key.transpose(2, 3))
        if self.with_scale:
            scores = scores / math.sqrt(float(self.per_head_size))
        scores = scores + mask.type_as(scores)
        probs = self.dropout(nn.Softmax(dim=-1)(scores))
        output = torch.matmul(probs, value).transpose(1, 2).contiguous()
        return self.final_linear(output.view(batch_size, seq_length, -1))


class PositionwiseFeedForward(nn.Module):
    """layers/position_ffn.py: linear_1 -> act -> linear_2."""

    def __init__(self, config):
        super().__init__()
        has_bias = not config.remove_transformer_bias
        self.linear_1 = nn.Linear(config.hidden_size, config.feedforward_size, bias=has_bias)
        self.linear_2 = nn.Linear(config.feedforward_size, config.hidden_size, bias=has_bias)
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


class TransformerLayer(nn.Module):
    """layers/transformer.py TransformerLayer (attention, dropout_1, ffn, dropout_2, layer_norm_1/2)."""

    def __init__(self, config):
        super().__init__()
        self.layernorm_positioning = config.layernorm_positioning
        self.self_attn = MultiHeadedAttention(config)
        self.dropout_1 = nn.Dropout(config.dropout)
        self.feed_forward = PositionwiseFeedForward(config)
        self.dropout_2 = nn.Dropout(config.dropout)
        self.layer_norm_1 = make_layer_norm(config)
        self.layer_norm_2 = make_layer_norm(config)

    def forward(self, hidden, mask):
        if self.layernorm_positioning == "post":
            inter = self.dropout_1(self.self_attn(hidden, hidden, hidden, mask))
            inter = self.layer_norm_1(inter + hidden)
            output = self.dropout_2(self.feed_forward(inter))
            return self.layer_norm_2(output + inter)
        inter = self.layer_norm_1(hidden)
        inter = self.dropout_1(self.self_attn(inter, inter, inter, mask))
        hidden = hidden + inter
        output = self.layer_norm_2(hidden)
        return self.dropout_2(self.feed_forward(output)) + hidden


def attention_mask(mask_kind, seg):
    """encoders/transformer_encoder.py: additive mask [batch, 1, seq, seq]."""
    batch_size, seq_length = seg.shape
    if mask_kind == "fully_visible":
        visible = (seg > 0).unsqueeze(1).repeat(1, seq_length, 1).unsqueeze(1).float()
        return (1.0 - visible) * -10000.0
    lower = torch.tril(torch.ones(seq_length, seq_length, device=seg.device))
    return ((1.0 - lower) * -10000).repeat(batch_size, 1, 1, 1)


class TransformerEncoder(nn.Module):
    """encoders/transformer_encoder.py: `transformer` layer list, final layer_norm when pre-LN."""

    def __init__(self, config):
        super().__init__()
        self.mask = config.mask
        self.layernorm_positioning = config.layernorm_positioning
        self.transformer = nn.ModuleList([TransformerLayer(config) for _ in range(config.layers_num)])
        if self.layernorm_positioning == "pre":
            self.layer_norm = make_layer_norm(config)

    def forward(self, emb, seg):
        mask = attention_mask(self.mask, seg)
        hidden = emb
        for layer in self.transformer:
            hidden = layer(hidden, mask)
        if self.layernorm_positioning == "pre":
            hidden = self.layer_norm(hidden)
        return hidden


class MlmTarget(nn.Module):
    """targets/mlm_target.py.  Its layer_norm is always TencentPretrain's LayerNorm (eps 1e-6)."""

    def __init__(self, config):
        super().__init__()
        self.act = ACTIVATIONS[config.hidden_act]
        self.linear_1 = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = LayerNorm(config.hidden_size)
        self.linear_2 = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, memory_bank, tgt_mlm):
        """Returns logits at the masked positions (row-major order), loss, correct count."""
        # TencentPretrain transforms every position, then keeps the masked ones.
        output = self.layer_norm(self.act(self.linear_1(memory_bank)))
        output = output.contiguous().view(-1, output.size(-1))
        tgt = tgt_mlm.contiguous().view(-1)
        logits = self.linear_2(output[tgt > 0, :])
        tgt = tgt[tgt > 0]
        log_probs = F.log_softmax(logits, dim=-1)
        loss = F.nll_loss(log_probs, tgt)
        correct = torch.sum(log_probs.argmax(dim=-1).eq(tgt).float())
        return logits, loss, correct


class SpTarget(nn.Module):
    """targets/sp_target.py: position 0 -> linear_1 -> tanh -> linear_2 (2 classes)."""

    def __init__(self, config):
        super().__init__()
        self.linear_1 = nn.Linear(config.hidden_size, config.hidden_size)
        self.linear_2 = nn.Linear(config.hidden_size, 2)

    def forward(self, memory_bank, tgt_sp):
        logits = self.linear_2(torch.tanh(self.linear_1(memory_bank[:, 0, :])))
        log_probs = F.log_softmax(logits, dim=-1)
        loss = F.nll_loss(log_probs, tgt_sp)
        correct = log_probs.argmax(dim=-1).eq(tgt_sp).sum()
        return logits, loss, correct


class Target(nn.Module):
    TYPES = {"mlm": MlmTarget, "sp": SpTarget}

    def __init__(self, config):
        super().__init__()
        self.target_name_list = list(config.target)
        for name in self.target_name_list:
            setattr(self, name, self.TYPES[name](config))


class Model(nn.Module):
    """models/model.py: embedding -> encoder -> target, with optional tied MLM output weights."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embedding = Embedding(config)
        self.encoder = TransformerEncoder(config)
        self.target = Target(config)
        if "mlm" in config.target and config.tie_weights:
            self.target.mlm.linear_2.weight = self.embedding.word.embedding.weight

    def forward(self, src, seg, tgt_mlm=None, tgt_sp=None):
        """Returns a dict: hidden, and per target its logits/loss/correct; loss = sum of target losses
        (BertTrainer: loss_mlm + loss_sp)."""
        hidden = self.encoder(self.embedding(src, seg), seg)
        out = {"hidden": hidden}
        loss = None
        for name, tgt in (("mlm", tgt_mlm), ("sp", tgt_sp)):
            if name not in self.target.target_name_list:
                continue
            logits, target_loss, correct = getattr(self.target, name)(hidden, tgt)
            out[name + "_logits"], out["loss_" + name], out[name + "_correct"] = logits, target_loss, correct
            loss = target_loss if loss is None else loss + target_loss
        out["loss"] = loss
        return out


def tencentpretrain_init(model, generator=None):
    """trainer.py init_model without a pretrained model: N(0, 0.02) for every parameter
    whose name contains neither "gamma" nor "beta" (so nn.LayerNorm weights too)."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "gamma" not in name and "beta" not in name:
                param.normal_(0.0, 0.02, generator=generator)


class AdamW(torch.optim.Optimizer):
    """utils/optimizers.py AdamW: moments, p -= lr * m / (sqrt(v) + eps) (no bias correction
    when correct_bias=False, as trainer.py sets), then decoupled decay p -= lr * wd * p."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      correct_bias=correct_bias))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"]
                if group["correct_bias"]:
                    step_size = step_size * math.sqrt(1.0 - beta2 ** state["step"]) / (1.0 - beta1 ** state["step"])
                p.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])


def make_optimizer(model, learning_rate):
    """trainer.py init_optimizer for adamw: decay 0.01 except NO_DECAY names, correct_bias=False."""
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if not any(nd in n for nd in NO_DECAY)], "weight_decay": 0.01},
        {"params": [p for n, p in named if any(nd in n for nd in NO_DECAY)], "weight_decay": 0.0},
    ]
    return AdamW(groups, lr=learning_rate, correct_bias=False)


def linear_schedule_factor(step, warmup_steps, total_steps):
    """get_linear_schedule_with_warmup's lr_lambda; `step` counts scheduler.step() calls so far,
    so optimizer update t (1-based) runs with factor(t - 1): the first update has lr 0."""
    if step < warmup_steps:
        return float(step) / float(max(1, warmup_steps))
    return max(0.0, float(total_steps - step) / float(max(1, total_steps - warmup_steps)))


def make_scheduler(optimizer, warmup_steps, total_steps):
    """LambdaLR as in get_linear_schedule_with_warmup (TencentPretrain passes total_steps * warmup)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: linear_schedule_factor(step, warmup_steps, total_steps))
