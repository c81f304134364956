#!/usr/bin/env python3
"""PyTorch anchor for `weft bench attention`: the explicit attention path (q·kᵀ, masked softmax, ·v)
and its autograd backward, timed on the same shapes in the same run as weft's fused kernels.

Usage: attention_torch.py --threads N --shape B,H,T,D[:c] ... [--min-time S]
  ':c' marks a causal shape. Prints one JSON object per line:
  {"op": "attention", "shape": "...", "fwd_seconds", "bwd_seconds"} (best of the timed repetitions).
"""
import argparse
import json
import math
import time

import torch


def best(fn, min_time):
    fn()
    total, reps, out = 0.0, 0, float("inf")
    while (total < min_time or reps < 3) and reps < 200:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        out, total, reps = min(out, dt), total + dt, reps + 1
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shape", action="append", default=[])
    p.add_argument("--min-time", type=float, default=0.3)
    args = p.parse_args()
    torch.set_num_threads(max(1, args.threads))
    for spec in args.shape:
        dims, _, flag = spec.partition(":")
        b, h, t, d = (int(x) for x in dims.split(","))
        causal = flag == "c"
        g = torch.Generator().manual_seed(0)
        q, k, v = (torch.rand(b, h, t, d, generator=g) * 2 - 1 for _ in range(3))
        for x in (q, k, v):
            x.requires_grad_(True)
        gout = torch.rand(b, h, t, d, generator=g) * 2 - 1
        mask = torch.ones(t, t).triu(1).bool() if causal else None
        scale = 1 / math.sqrt(d)

        def forward():
            s = (q @ k.transpose(-1, -2)) * scale
            if mask is not None:
                s = s.masked_fill(mask, float("-inf"))
            return torch.softmax(s, dim=-1) @ v

        def fwd():
            with torch.no_grad():
                forward()

        state = {}

        def bwd():
            state["out"].backward(gout, retain_graph=True)

        fwd_s = best(fwd, args.min_time)
        state["out"] = forward()
        bwd_s = best(bwd, args.min_time)
        print(json.dumps({"op": "attention", "shape": spec, "fwd_seconds": fwd_s, "bwd_seconds": bwd_s}), flush=True)


if __name__ == "__main__":
    main()
