import { describe, expect, it } from 'vitest';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { scaledDotProductAttention } from '../../src/tensor/index.js';
import { setBackend } from '../../src/tensor/backend/index.js';
import { type KernelPathName, nativeAddonInfo, setNativeKernelPath } from '../../src/tensor/backend/native.js';
import { pagedAddon, pagedAttention, pagedAttentionReference, pagedWriteKV, ropeRotateHalf, type PagedAttentionParams } from '../../src/nn/paged-attention.js';

let B = 16;

function randn(n: number, g: Generator): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = g.nextU32() / 2 ** 32 - 0.5;
  return a;
}

/** A random batch: sequences with random starts and chunk lengths, blocks scattered over the pool. */
function randomCase(seed: number, H: number, KV: number, D: number, lens: [number, number][]) {
  const g = new Generator(seed);
  const numBlocks = lens.reduce((s, [start, n]) => s + Math.ceil((start + n) / B), 0) + 3;
  const perm = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = perm.length - 1; i > 0; i--) {
    const j = g.nextU32() % (i + 1);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const kCache = randn(numBlocks * KV * B * D, g);
  const vCache = randn(numBlocks * KV * B * D, g);
  const tables: number[] = [];
  const tableOffsets = [0];
  const queryOffsets = [0];
  let next = 0;
  for (const [start, n] of lens) {
    const nb = Math.ceil((start + n) / B);
    for (let b = 0; b < nb; b++) tables.push(perm[next++]!);
    tableOffsets.push(tables.length);
    queryOffsets.push(queryOffsets.at(-1)! + n);
  }
  const tokens = queryOffsets.at(-1)!;
  const p: PagedAttentionParams = {
    tables: Int32Array.from(tables),
    tableOffsets: Int32Array.from(tableOffsets),
    queryOffsets: Int32Array.from(queryOffsets),
    starts: Int32Array.from(lens.map(([s]) => s)),
    heads: H,
    kvHeads: KV,
    dim: D,
    blockSize: B,
    scale: 1 / Math.sqrt(D),
  };
  return { q: randn(tokens * H * D, g), kCache, vCache, p, tokens };
}

describe('paged attention', () => {
  it('the native kernel is built', () => {
    expect(pagedAddon()).not.toBeNull();
  });

  for (const [H, KV, D] of [
    [4, 4, 16],
    [8, 2, 24],
    [6, 1, 64],
  ] as const) {
    it(`native equals the JS reference (heads ${H}, kv ${KV}, dim ${D})`, () => {
      const c = randomCase(H * 100 + D, H, KV, D, [
        [0, 1],
        [0, 37],
        [5, 1],
        [31, 20],
        [64, 1],
        [100, 3],
      ]);
      const ref = new Float32Array(c.tokens * H * D);
      pagedAttentionReference(c.q, c.kCache, c.vCache, c.p, ref);
      const initial = nativeAddonInfo()!.kernelPath as KernelPathName;
      try {
        for (const path of ['portable', 'avx2', 'avx512'] as const) {
          if (!setNativeKernelPath(path)) continue; // this CPU lacks it
          const native = new Float32Array(c.tokens * H * D);
          pagedAttention(c.q, c.kCache, c.vCache, c.p, native);
          let maxErr = 0;
          for (let i = 0; i < ref.length; i++) maxErr = Math.max(maxErr, Math.abs(native[i]! - ref[i]!));
          expect(maxErr, path).toBeLessThan(2e-6);
        }
      } finally {
        setNativeKernelPath(initial);
      }
    });
  }

  it('handles blocks longer than its 256-key score buffer (a whole decode cache as one block)', () => {
    B = 600;
    try {
      const c = randomCase(11, 4, 2, 16, [
        [0, 1],
        [270, 1],
        [520, 3],
      ]);
      const ref = new Float32Array(c.tokens * 4 * 16);
      pagedAttentionReference(c.q, c.kCache, c.vCache, c.p, ref);
      const native = new Float32Array(c.tokens * 4 * 16);
      pagedAttention(c.q, c.kCache, c.vCache, c.p, native);
      let maxErr = 0;
      for (let i = 0; i < ref.length; i++) maxErr = Math.max(maxErr, Math.abs(native[i]! - ref[i]!));
      expect(maxErr).toBeLessThan(2e-6);
    } finally {
      B = 16;
    }
  });

  it('equals dense causal scaledDotProductAttention on the gathered keys', () => {
    const H = 4;
    const KV = 2;
    const D = 8;
    const n = 40;
    const c = randomCase(7, H, KV, D, [[0, n]]);
    const out = new Float32Array(n * H * D);
    pagedAttention(c.q, c.kCache, c.vCache, c.p, out);
    // Dense [1, H, n, D] q, and k/v gathered from the blocks and repeated per group.
    const q = Tensor.fromArray(c.q, [1, n, H, D]).transpose(1, 2).contiguous();
    const kd = new Float32Array(H * n * D);
    const vd = new Float32Array(H * n * D);
    for (let h = 0; h < H; h++) {
      const gk = Math.floor(h / (H / KV));
      for (let j = 0; j < n; j++) {
        const blk = c.p.tables[Math.floor(j / B)]!;
        const src = ((blk * KV + gk) * B + (j % B)) * D;
        kd.set(c.kCache.subarray(src, src + D), (h * n + j) * D);
        vd.set(c.vCache.subarray(src, src + D), (h * n + j) * D);
      }
    }
    const y = scaledDotProductAttention(q, Tensor.fromArray(kd, [1, H, n, D]), Tensor.fromArray(vd, [1, H, n, D]), { causal: true });
    const dense = y.transpose(1, 2).contiguous().toArray();
    for (let i = 0; i < dense.length; i++) expect(Math.abs(out[i]! - dense[i]!)).toBeLessThan(1e-5);
  });

  it('rejects a block id outside the pool and a short block table', () => {
    const c = randomCase(3, 2, 2, 8, [[0, 20]]);
    const out = new Float32Array(20 * 2 * 8);
    const bad = { ...c.p, tables: Int32Array.from([0, 999]) };
    expect(() => pagedAttention(c.q, c.kCache, c.vCache, bad, out)).toThrow(/block id 999/);
    const short = { ...c.p, tableOffsets: Int32Array.from([0, 1]) };
    expect(() => pagedAttention(c.q, c.kCache, c.vCache, short, out)).toThrow(/block table/);
  });

  it('writeKV and rotary: native equal the JS versions', () => {
    const g = new Generator(11);
    const KV = 3;
    const D = 8;
    const T = 5;
    const k = randn(T * KV * D, g);
    const v = randn(T * KV * D, g);
    const slots = Int32Array.from([0, 17, 5, 40, 63]);
    const caches = [0, 1].map(() => [new Float32Array(4 * KV * B * D), new Float32Array(4 * KV * B * D)] as const);
    const cos = randn(50 * (D / 2), g);
    const sin = randn(50 * (D / 2), g);
    const pos = Int32Array.from([0, 3, 49, 7, 7]);
    const x = [randn(T * KV * D, new Generator(5)), randn(T * KV * D, new Generator(5))];
    pagedWriteKV(k, v, slots, KV, D, B, caches[0]![0], caches[0]![1]);
    ropeRotateHalf(x[0]!, KV, D, cos, sin, pos);
    setBackend('js');
    try {
      pagedWriteKV(k, v, slots, KV, D, B, caches[1]![0], caches[1]![1]);
      ropeRotateHalf(x[1]!, KV, D, cos, sin, pos);
    } finally {
      setBackend('native');
    }
    expect(caches[0]![0]).toEqual(caches[1]![0]);
    expect(caches[0]![1]).toEqual(caches[1]![1]);
    expect(x[0]).toEqual(x[1]);
    // Token 1 (slot 17 = block 1, offset 1), kv head 2, lands at ((1·KV + 2)·16 + 1)·D.
    expect(caches[0]![0].subarray(((1 * KV + 2) * B + 1) * D, ((1 * KV + 2) * B + 2) * D)).toEqual(k.subarray((1 * KV + 2) * D, (1 * KV + 3) * D));
  });
});
