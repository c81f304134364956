#!/usr/bin/env python3
"""PyTorch reference for `bench/train-gpt`: nanoGPT's model and training step, same config as Weft's quickstart.

Written for this project after nanoGPT's model.py/train.py (same architecture and initialisation:
pre-LN blocks, causal self-attention, GELU (erf) MLP, tied embeddings, no biases unless --bias, GPT-2
init with residual projections scaled by 1/sqrt(2*n_layer); AdamW with decay on rank>=2 tensors,
nanoGPT's warmup+cosine schedule, grad clipping).

Run: /usr/bin/python3 bench/reference/gpt_torch.py --data data/tinyshakespeare.txt --iters 50 [--threads 1] [--max-iters 2000 --eval]
Prints JSON lines: {"impl":"torch", "threads", "ms_per_iter", ...} and, with --eval, {"iter","train_loss","val_loss"}.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
from torch.nn import functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)
        self.n_head = c.n_head
        self.n_embd = c.n_embd
        self.register_buffer("mask", torch.tril(torch.ones(c.block_size, c.block_size)).view(1, 1, c.block_size, c.block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        # torch 1.13 has no fused scaled_dot_product_attention: nanoGPT's slow path.
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class LayerNorm(nn.Module):
    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = LayerNorm(c.n_embd, c.bias)
        self.attn = CausalSelfAttention(c)
        self.ln_2 = LayerNorm(c.n_embd, c.bias)
        self.mlp = MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.h = nn.ModuleList([Block(c) for _ in range(c.n_layer)])
        self.ln_f = LayerNorm(c.n_embd, c.bias)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    def _init(self, m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets):
        B, T = idx.size()
        pos = torch.arange(0, T, dtype=torch.long)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=50, help="timed iterations")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--block-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=12)
    ap.add_argument("--bias", action="store_true")
    ap.add_argument("--eval", action="store_true", help="train --max-iters and report val loss")
    ap.add_argument("--max-iters", type=int, default=2000)
    ap.add_argument("--eval-iters", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1337)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    text = open(a.data, encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    data = torch.tensor([stoi[ch] for ch in text], dtype=torch.long)
    n = int(0.9 * len(data))
    train, val = data[:n], data[n:]

    class C:
        pass

    c = C()
    c.vocab_size, c.block_size, c.n_layer, c.n_head, c.n_embd, c.bias = len(chars), a.block_size, a.n_layer, a.n_head, a.n_embd, a.bias
    model = GPT(c)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))

    def get_batch(split):
        d = train if split == "train" else val
        ix = torch.randint(len(d) - a.block_size, (a.batch_size,))
        x = torch.stack([d[i : i + a.block_size] for i in ix])
        y = torch.stack([d[i + 1 : i + 1 + a.block_size] for i in ix])
        return x, y

    def get_lr(it, lr=1e-3, min_lr=1e-4, warmup=100, decay_iters=2000):
        if it < warmup:
            return lr * (it + 1) / (warmup + 1)
        if it > decay_iters:
            return min_lr
        ratio = (it - warmup) / (decay_iters - warmup)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)

    def step(it):
        for g in opt.param_groups:
            g["lr"] = get_lr(it)
        x, y = get_batch("train")
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    @torch.no_grad()
    def estimate():
        model.eval()
        out = {}
        for split in ("train", "val"):
            losses = [model(*get_batch(split)).item() for _ in range(a.eval_iters)]
            out[split] = sum(losses) / len(losses)
        model.train()
        return out

    if a.eval:
        t0 = time.perf_counter()
        for it in range(a.max_iters + 1):
            if it % 250 == 0 or it == a.max_iters:
                e = estimate()
                print(json.dumps({"impl": "torch", "iter": it, "train_loss": e["train"], "val_loss": e["val"]}), flush=True)
            if it < a.max_iters:
                step(it)
        print(json.dumps({"impl": "torch", "wall_s": time.perf_counter() - t0, "threads": a.threads}), flush=True)
        return

    for it in range(a.warmup):
        step(it)
    t0 = time.perf_counter()
    for it in range(a.warmup, a.warmup + a.iters):
        step(it)
    ms = (time.perf_counter() - t0) * 1000 / a.iters
    print(json.dumps({"impl": "torch", "version": torch.__version__, "threads": a.threads, "ms_per_iter": ms, "iters": a.iters}), flush=True)


if __name__ == "__main__":
    main()
