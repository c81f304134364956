#!/usr/bin/env python3
"""NumPy anchor for `weft bench generate`: llama2.c's run.c forward pass (RMSNorm, interleaved RoPE,
grouped-query attention over a KV cache, SwiGLU) in float32 NumPy, decoding greedily from BOS.

Usage: llama2c_numpy.py --threads N --model file.bin --tokens T [--reps R]
Prints one JSON line: {"model", "tokens", "seconds" (best of the reps), "tokens_per_s", "ids"}.
The ids let the benchmark check that both implementations decode the same sequence.
"""
import argparse
import json
import os
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(max(1, args.threads))
    import numpy as np

    raw = open(args.model, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = np.frombuffer(raw[:28], dtype="<i4")
    shared = vocab > 0
    vocab = abs(int(vocab))
    f = np.frombuffer(raw[28:], dtype="<f4")
    hs = dim // n_heads
    pos = [0]

    def take(*shape):
        n = int(np.prod(shape))
        a = f[pos[0]:pos[0] + n].reshape(shape)
        pos[0] += n
        return a

    emb = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq = take(n_layers, n_heads * hs, dim)
    wk = take(n_layers, n_kv * hs, dim)
    wv = take(n_layers, n_kv * hs, dim)
    wo = take(n_layers, dim, n_heads * hs)
    rms_ffn = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    rms_final = take(dim)
    take(seq_len * hs // 2)
    take(seq_len * hs // 2)
    wcls = emb if shared else take(vocab, dim)
    inv = (1.0 / np.power(10000.0, np.arange(0, hs, 2, dtype=np.float32) / hs)).astype(np.float32)
    rep = n_heads // n_kv

    def rmsnorm(x, w):
        return (x / np.sqrt(np.mean(x * x) + 1e-5) * w).astype(np.float32)

    def rope(v, p, heads):
        v = v.reshape(heads, hs // 2, 2)
        ang = p * inv
        c, s = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
        x0, x1 = v[..., 0].copy(), v[..., 1].copy()
        v[..., 0] = x0 * c - x1 * s
        v[..., 1] = x0 * s + x1 * c
        return v.reshape(-1)

    def decode(n):
        kc = np.zeros((n_layers, n + 1, n_kv, hs), np.float32)
        vc = np.zeros((n_layers, n + 1, n_kv, hs), np.float32)
        tok, ids = 1, []
        for p in range(n):
            x = emb[tok].copy()
            for l in range(n_layers):
                h = rmsnorm(x, rms_att[l])
                q = rope(wq[l] @ h, p, n_heads).reshape(n_heads, hs)
                kc[l, p] = rope(wk[l] @ h, p, n_kv).reshape(n_kv, hs)
                vc[l, p] = (wv[l] @ h).reshape(n_kv, hs)
                keys = np.repeat(kc[l, :p + 1], rep, axis=1)  # [t, H, hs]
                vals = np.repeat(vc[l, :p + 1], rep, axis=1)
                att = np.einsum("hd,thd->ht", q, keys) / np.float32(np.sqrt(hs))
                att = np.exp(att - att.max(axis=1, keepdims=True))
                att /= att.sum(axis=1, keepdims=True)
                y = np.einsum("ht,thd->hd", att, vals).reshape(-1)
                x = x + wo[l] @ y
                h = rmsnorm(x, rms_ffn[l])
                g = w1[l] @ h
                x = x + w2[l] @ ((g / (1 + np.exp(-g))) * (w3[l] @ h))
            logits = wcls @ rmsnorm(x, rms_final)
            tok = int(np.argmax(logits))
            ids.append(tok)
        return ids

    best, ids = float("inf"), None
    for _ in range(max(1, args.reps)):
        t0 = time.perf_counter()
        ids = decode(args.tokens)
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"model": args.model, "tokens": args.tokens, "seconds": best, "tokens_per_s": args.tokens / best,
                      "ids": ids, "blas": "numpy " + np.__version__}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
