"""Anchor for `weft bench metrics`: sacrebleu on the same corpus, in the same run.

Reads {"hyps": [...], "refs": [[...] per segment], "rounds": N} as JSON on stdin and prints one JSON
line per metric: {"metric", "seconds" (best of N), "score", "version"}. Exits 3 when sacrebleu
cannot be imported, so the caller can say why the anchor was skipped.
"""
import json
import sys
import time

try:
    import sacrebleu
except ImportError as err:  # pragma: no cover - reported by the caller
    print(f"sacrebleu not importable: {err}", file=sys.stderr)
    sys.exit(3)


def best_time(fn, rounds):
    best, result = float("inf"), None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main():
    data = json.load(sys.stdin)
    hyps, refs, rounds = data["hyps"], data["refs"], int(data.get("rounds", 3))
    width = max(len(r) for r in refs)
    # sacrebleu takes reference streams; missing references are None.
    streams = [[r[j] if j < len(r) else None for r in refs] for j in range(width)]
    for name, fn in [
        ("corpus_bleu", lambda: sacrebleu.corpus_bleu(hyps, streams)),
        ("corpus_chrf", lambda: sacrebleu.corpus_chrf(hyps, streams)),
    ]:
        seconds, res = best_time(fn, rounds)
        print(json.dumps({"metric": name, "seconds": seconds, "score": res.score, "version": sacrebleu.__version__}))


if __name__ == "__main__":
    main()
