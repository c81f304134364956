#!/usr/bin/env python3
"""NumPy (OpenBLAS) anchor for `weft bench`: times the same shapes in the same run.

Usage: gemm_numpy.py --threads N [--gemm MxNxK[:t] ...] [--matvec NxK ...] [--memcpy ELEMENTS ...]
  MxNxK:t  means B is stored n×k and used transposed (the Linear layout), as weft's transB.
Prints one JSON object per line: {"op", "m", "n", "k", "seconds", "gflops" | "gbps", "blas", ...}.
Thread count is set through OPENBLAS_NUM_THREADS before NumPy loads (the caller passes --threads).
"""
import argparse
import json
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--gemm", action="append", default=[])
    p.add_argument("--matvec", action="append", default=[])
    p.add_argument("--memcpy", action="append", default=[])
    p.add_argument("--min-time", type=float, default=0.3, help="seconds of timed repetitions per shape")
    return p.parse_args()


ARGS = parse_args()
if ARGS.threads > 0:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the thread variables)


def blas_name():
    """Which BLAS NumPy runs (and its core type when OpenBLAS says), for the report."""
    try:
        from threadpoolctl import threadpool_info  # optional

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                return f"{info.get('internal_api')} {info.get('version')} {info.get('architecture')}"
    except Exception:
        pass
    try:  # Debian's numpy links libblas.so.3, which is OpenBLAS itself when that alternative is chosen
        import ctypes

        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        config = lib.openblas_get_config().decode().split()
        name = " ".join(config[:2]) + " core=" + lib.openblas_get_corename().decode()
        core = os.environ.get("OPENBLAS_CORETYPE")
        return name + (f" (OPENBLAS_CORETYPE={core})" if core else "")
    except Exception:
        pass
    core = os.environ.get("OPENBLAS_CORETYPE")
    return "numpy " + np.__version__ + (f" (OPENBLAS_CORETYPE={core})" if core else "")


def best_time(fn, min_time):
    fn()  # warm-up: page faults, thread start
    best = float("inf")
    total = 0.0
    reps = 0
    while total < min_time or reps < 3:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        total += dt
        reps += 1
        if reps >= 200:
            break
    return best


def main():
    rng = np.random.default_rng(0)
    blas = blas_name()
    for spec in ARGS.gemm:
        trans_b = spec.endswith(":t")
        m, n, k = (int(x) for x in spec.split(":")[0].split("x"))
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32)
        c = np.empty((m, n), dtype=np.float32)
        bt = b.T if trans_b else b
        sec = best_time(lambda: np.matmul(a, bt, out=c), ARGS.min_time)
        print(json.dumps({"op": "gemm", "m": m, "n": n, "k": k, "transB": trans_b, "seconds": sec,
                          "gflops": 2.0 * m * n * k / sec / 1e9, "threads": ARGS.threads, "blas": blas}))
    for spec in ARGS.matvec:
        n, k = (int(x) for x in spec.split("x"))
        w = rng.standard_normal((n, k), dtype=np.float32)  # Linear layout: y = W x
        x = rng.standard_normal(k, dtype=np.float32)
        y = np.empty(n, dtype=np.float32)
        sec = best_time(lambda: np.dot(w, x, out=y), ARGS.min_time)
        nbytes = 4.0 * (n * k + n + k)
        print(json.dumps({"op": "matvec", "m": 1, "n": n, "k": k, "seconds": sec, "gbps": nbytes / sec / 1e9,
                          "gflops": 2.0 * n * k / sec / 1e9, "threads": ARGS.threads, "blas": blas}))
    for spec in ARGS.memcpy:
        count = int(spec)
        src = rng.standard_normal(count, dtype=np.float32)
        dst = np.empty_like(src)
        sec = best_time(lambda: np.copyto(dst, src), ARGS.min_time)
        print(json.dumps({"op": "memcpy", "elements": count, "seconds": sec, "gbps": 8.0 * count / sec / 1e9}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
