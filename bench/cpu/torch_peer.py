#!/usr/bin/env python3
"""The CPU peer of `smx bench`: the same model written in plain PyTorch, the way
a Python user would (nn.TransformerEncoderLayer for attention, with its
inference fast path; batched expert weights and topk for Experts Choose),
timed as `smx bench` times its models, and printed as the same JSON.

The model comes from `smx info --json` (its config and layer table), so both
sides run the same shape: embeddings (word + position + segment, LayerNorm),
post-LayerNorm blocks whose mixing is self-attention or Linear mixing
(Y = W_seq X W_hidden) and whose MLP is dense or an Experts Choose MoE
(router softmax, each expert takes its C most probable tokens per routing
group, gelu MLP, outputs weighted by the router probability and added back),
the masked-LM head on the P masked positions (dense, gelu, LayerNorm, tied
decoder) and NSP on the pooled [CLS]; losses: MLM + NSP + 1e-4 z-loss. The
parameter count equals the engine's but for its fine-tuning classifier
(d_model x 2 + 2, unused in pre-training).
Batch: random ids, two segments, no padding, P = clamp((S*20+127)//128, 1, 80)
distinct masked positions. Optimizer: AdamW (lr 1e-4, betas 0.9/0.999,
eps 1e-6, weight decay 0.01). Timing: warm-up steps untimed, then the median
of the timed steps; inference = encoder + MLM head under no_grad in eval mode.

Usage: smx info -p bert-base --json --batch 2 --seq 512 > m.json
       python3 bench/cpu/torch_peer.py m.json --batch 2 --seq 512
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlm_predictions(seq_len):
    return max(1, min(80, (seq_len * 20 + 127) // 128))


def routing_groups(tokens, max_group):
    # As the engine: the fewest groups of at most max_group tokens that divide the tokens evenly.
    g = max(1, -(-tokens // max_group))
    while tokens % g:
        g += 1
    return g


class LinearMixing(nn.Module):
    def __init__(self, seq, d, std):
        super().__init__()
        self.w_seq = nn.Parameter(torch.randn(seq, seq) * std)
        self.w_hidden = nn.Parameter(torch.randn(d, d) * std)

    def forward(self, x):
        s = x.size(1)
        return torch.matmul(self.w_seq[:s, :s], torch.matmul(x, self.w_hidden))


class ExpertsChooseMoe(nn.Module):
    def __init__(self, d, f, experts, capacity_factor, max_group, dropout, std):
        super().__init__()
        self.router = nn.Linear(d, experts)
        self.w_in = nn.Parameter(torch.randn(experts, d, f) * std)
        self.b_in = nn.Parameter(torch.zeros(experts, 1, f))
        self.w_out = nn.Parameter(torch.randn(experts, f, d) * std)
        self.b_out = nn.Parameter(torch.zeros(experts, 1, d))
        self.cf, self.max_group, self.dropout = capacity_factor, max_group, dropout
        self.z_loss = None

    def forward(self, x):
        b, s, d = x.shape
        e = self.w_in.size(0)
        g = routing_groups(b * s, self.max_group)
        t = b * s // g
        c = min(t, max(4, round(self.cf * t / e)))
        xs = x.reshape(g, t, d)
        logits = self.router(xs).float()                                   # [G, T, E]
        self.z_loss = torch.logsumexp(logits, -1).pow(2).mean()
        probs = logits.softmax(-1)
        gate, token = probs.transpose(1, 2).topk(c, dim=-1)                # [G, E, C]
        index = token.reshape(g, e * c, 1).expand(g, e * c, d)
        buf = xs.gather(1, index).view(g, e, c, d).transpose(0, 1).reshape(e, g * c, d)
        h = F.gelu(torch.baddbmm(self.b_in, buf, self.w_in), approximate="tanh")
        y = F.dropout(torch.baddbmm(self.b_out, h, self.w_out), self.dropout, self.training)
        y = y.view(e, g, c, d).transpose(0, 1).reshape(g, e * c, d) * gate.reshape(g, e * c, 1).to(y.dtype)
        return torch.zeros_like(xs).scatter_add(1, index, y).reshape(b, s, d)


class Block(nn.Module):
    """Linear mixing (no dropout on it, as the engine) or self-attention, then a dense or MoE MLP,
    post-LayerNorm. (Dense attention layers use nn.TransformerEncoderLayer instead, for its fast path.)"""

    def __init__(self, c, attention, moe):
        super().__init__()
        d, std = c["d_model"], c["init_std"]
        if attention:
            self.mixing = nn.MultiheadAttention(d, c["num_heads"], dropout=c["dropout"], batch_first=True)
            self.mixing_dropout = nn.Dropout(c["dropout"])
        else:
            self.mixing = LinearMixing(c["max_seq_len"], d, std)
            self.mixing_dropout = nn.Identity()
        self.attention = attention
        self.mixing_norm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        if moe:
            r = c["router"]
            self.mlp = ExpertsChooseMoe(d, c["expert_d_ff"] or c["d_ff"], c["num_experts"], r["train_capacity_factor"],
                                        r["max_group_size"], c["expert_dropout"], std)
        else:
            self.mlp = nn.Sequential(nn.Linear(d, c["d_ff"]), nn.GELU(approximate="tanh"), nn.Linear(c["d_ff"], d),
                                     nn.Dropout(c["dropout"]))
        self.output_norm = nn.LayerNorm(d, eps=c["layer_norm_eps"])

    def forward(self, x):
        mixed = self.mixing(x, x, x, need_weights=False)[0] if self.attention else self.mixing(x)
        x = self.mixing_norm(x + self.mixing_dropout(mixed))
        return self.output_norm(x + self.mlp(x))


class Encoder(nn.Module):
    def __init__(self, info):
        super().__init__()
        c = info["config"]
        d, v = c["d_model"], c["vocab_size"]
        if c["d_embedding"] not in (0, d):
            sys.exit("torch_peer: a factorised embedding (d_embedding) is not modelled")
        for layer in info["layers"]:
            if layer["mixing"] not in ("attention", "linear"):
                sys.exit(f"torch_peer: mixing {layer['mixing']!r} is not modelled (attention and linear are)")
        if any(l["moe"] for l in info["layers"]) and c["router"]["kind"] != "experts-choose":
            sys.exit("torch_peer: only the Experts Choose router is modelled")
        self.word = nn.Embedding(v, d)
        self.position = nn.Embedding(c["max_seq_len"], d)
        self.segment = nn.Embedding(c["type_vocab_size"], d)
        self.norm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.projection = nn.Linear(d, d)  # the engine's embedding projection (as the paper's reference code)
        self.dropout = nn.Dropout(c["dropout"])
        blocks = []
        for layer in info["layers"]:
            if layer["mixing"] == "attention" and not layer["moe"]:
                blocks.append(nn.TransformerEncoderLayer(d, c["num_heads"], c["d_ff"], c["dropout"], activation="gelu",
                                                         layer_norm_eps=c["layer_norm_eps"], batch_first=True))
            else:
                blocks.append(Block(c, layer["mixing"] == "attention", layer["moe"]))
        self.blocks = nn.ModuleList(blocks)
        self.pooler = nn.Linear(d, d)
        self.mlm_dense = nn.Linear(d, d)
        self.mlm_norm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.mlm_bias = nn.Parameter(torch.zeros(v))
        self.nsp = nn.Linear(d, 2)

    def forward(self, ids, types):
        s = ids.size(1)
        e = self.word(ids) + self.position(torch.arange(s)).unsqueeze(0) + self.segment(types)
        x = self.dropout(self.projection(self.norm(e)))
        for block in self.blocks:
            x = block(x)
        return x, torch.tanh(self.pooler(x[:, 0]))

    def mlm(self, hidden, positions):
        picked = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.size(-1)))
        h = self.mlm_norm(F.gelu(self.mlm_dense(picked), approximate="tanh"))
        return F.linear(h, self.word.weight, self.mlm_bias)

    def z_loss(self):
        zs = [b.mlp.z_loss for b in self.blocks if isinstance(b, Block) and isinstance(b.mlp, ExpertsChooseMoe)]
        return sum(zs) if zs else torch.zeros(())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("info", help="`smx info --json` of the model (a file, or - for standard input)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=0, help="default: the model's max_seq_len")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's choice)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    info = json.load(sys.stdin if a.info == "-" else open(a.info))
    c = info["config"]
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    seq = a.seq or c["max_seq_len"]
    model = Encoder(info)
    params = sum(t.numel() for t in model.parameters())
    P = mlm_predictions(seq)
    ids = torch.randint(5, c["vocab_size"], (a.batch, seq))
    types = (torch.arange(seq) >= seq // 2).long().expand(a.batch, seq).contiguous()
    positions = torch.rand(a.batch, seq - 1).topk(min(P, seq - 1), dim=-1).indices + 1
    labels = ids.gather(1, positions)
    nsp = torch.randint(0, 2, (a.batch,))
    decay = [t for n, t in model.named_parameters() if t.dim() > 1]
    no_decay = [t for n, t in model.named_parameters() if t.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.999), eps=1e-6)

    def train_step():
        opt.zero_grad(set_to_none=True)
        hidden, pooled = model(ids, types)
        loss = F.cross_entropy(model.mlm(hidden, positions).view(-1, c["vocab_size"]), labels.view(-1)) + \
            F.cross_entropy(model.nsp(pooled), nsp) + 1e-4 * model.z_loss()
        loss.backward()
        opt.step()

    @torch.no_grad()
    def infer_step():
        hidden, _ = model(ids, types)
        model.mlm(hidden, positions)

    def measure(step):
        samples = []
        for i in range(a.warmup + a.repeats):
            t0 = time.perf_counter()
            step()
            if i >= a.warmup:
                samples.append((time.perf_counter() - t0) * 1e3)
        return samples

    model.train()
    train = measure(train_step)
    model.eval()
    infer = measure(infer_step)
    tm, im = statistics.median(train), statistics.median(infer)
    result = {"name": "torch-" + c["name"], "device": "cpu", "batch_size": a.batch, "seq_len": seq,
              "mlm_predictions": P, "params": params, "train_ms_per_step": tm, "infer_ms_per_step": im,
              "train_ms_per_example": tm / a.batch, "infer_ms_per_example": im / a.batch,
              "train_samples_ms": train, "infer_samples_ms": infer}
    print(json.dumps({"peer": "PyTorch " + torch.__version__ + " eager", "threads": torch.get_num_threads(),
                      "results": [result]}, indent=2))


if __name__ == "__main__":
    main()
