import { describe, expect, it } from 'vitest';
import { Generator } from '../../src/tensor/random.js';
import { arange, concat, chunk, ones, randn, split, stack, tensor, zeros } from '../../src/tensor/index.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { poolStats } from '../../src/tensor/storage.js';

/** PCG32 written out with BigInt from the reference C code, independent of the 32-bit-limb version. */
function pcgReference(initState: bigint, initSeq: bigint, count: number): number[] {
  const M = (1n << 64n) - 1n;
  let state = 0n;
  const inc = ((initSeq << 1n) | 1n) & M;
  const step = (): number => {
    const old = state;
    state = (old * 6364136223846793005n + inc) & M;
    const xorshifted = Number((((old >> 18n) ^ old) >> 27n) & 0xffffffffn);
    const rot = Number(old >> 59n);
    return ((xorshifted >>> rot) | (xorshifted << ((32 - rot) & 31))) >>> 0;
  };
  step();
  state = (state + initState) & M;
  step();
  return Array.from({ length: count }, step);
}

describe('random', () => {
  it('matches the PCG32 reference outputs (pcg32-demo, seed 42/54)', () => {
    const g = new Generator().seedPcg(42n, 54n);
    const got = Array.from({ length: 6 }, () => g.nextU32());
    expect(got).toEqual([0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]);
  });

  it('agrees with a BigInt PCG32 over many draws and seeds', () => {
    for (const seed of [0n, 1n, 1337n, 0xffffffffffffn]) {
      const g = new Generator().seedPcg(seed * 7919n, seed);
      const ref = pcgReference(seed * 7919n, seed, 2000);
      const got = Array.from({ length: 2000 }, () => g.nextU32());
      expect(got).toEqual(ref);
    }
  });

  it('same seed, same numbers; state round-trips exactly', () => {
    const a = randn([100], { generator: new Generator(1337) }).toArray();
    const b = randn([100], { generator: new Generator(1337) }).toArray();
    expect(a).toEqual(b);
    const g = new Generator(5);
    g.normal();
    const saved = g.getState();
    const next = [g.normal(), g.uniform(), g.int(0, 10)];
    const h = new Generator(0).setState(saved);
    expect([h.normal(), h.uniform(), h.int(0, 10)]).toEqual(next);
  });

  it('normal draws have mean 0 and variance 1', () => {
    const x = randn([200_000], { generator: new Generator(3) }).toArray();
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
  });
});

describe('views', () => {
  const base = (): Tensor => arange(24, undefined, 1, { dtype: 'f32' }).reshape(2, 3, 4);

  it('reshape of contiguous data is a view', () => {
    const x = base();
    const y = x.reshape(6, 4);
    expect(y.storage).toBe(x.storage);
    expect(y.strides).toEqual([4, 1]);
    expect(x.reshape(-1).shape).toEqual([24]);
  });

  it('transpose/permute are views with swapped strides and correct elements', () => {
    const x = base();
    const t = x.transpose(0, 2);
    expect(t.shape).toEqual([4, 3, 2]);
    expect(t.storage).toBe(x.storage);
    expect(t.isContiguous()).toBe(false);
    // element [i, j, k] of t is x[k, j, i] = k*12 + j*4 + i
    const flat = t.toArray();
    expect(flat[0 * 6 + 1 * 2 + 1]).toBe(1 * 12 + 1 * 4 + 0);
    expect(t.contiguous().isContiguous()).toBe(true);
    expect(x.permute(2, 0, 1).contiguous().toArray().slice(0, 6)).toEqual([0, 4, 8, 12, 16, 20]);
  });

  it('reshape of a non-contiguous view copies when it must, views when it can', () => {
    const x = base().transpose(1, 2); // [2, 4, 3]
    const y = x.reshape(8, 3); // merging dims 0,1 is impossible without copy
    expect(y.toArray()).toEqual(x.toArray());
    const b = base();
    const z = b.transpose(0, 1).reshape(3, 2, 2, 2); // splitting the last dim keeps a view
    expect(z.storage).toBe(b.storage);
    expect(z.toArray()).toEqual(b.transpose(0, 1).toArray());
    expect(y.storage).not.toBe(x.storage);
  });

  it('slice with step, narrow, select, squeeze/unsqueeze, expand', () => {
    const x = base();
    expect(x.slice(2, 1, 4, 2).toArray()).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]);
    expect(x.slice(1, -1).shape).toEqual([2, 1, 4]);
    expect(x.narrow(0, 1, 1).toArray()[0]).toBe(12);
    expect(x.select(1, 2).toArray()).toEqual([8, 9, 10, 11, 20, 21, 22, 23]);
    expect(x.unsqueeze(1).shape).toEqual([2, 1, 3, 4]);
    expect(x.unsqueeze(-1).squeeze().shape).toEqual([2, 3, 4]);
    const e = tensor([[1], [2]]).expand(2, 3);
    expect(e.strides).toEqual([1, 0]);
    expect(e.toArray()).toEqual([1, 1, 1, 2, 2, 2]);
    expect(() => x.narrow(0, 1, 5)).toThrow(/narrow/);
    expect(() => e.viewAs(6)).toThrow(/view/);
    expect(() => tensor([1, 2, 3]).expand(2, 4)).toThrow(/expand.*\[3\].*\[2, 4\]/);
  });

  it('concat, stack, split and chunk', () => {
    const a = tensor([[1, 2], [3, 4]]);
    const b = tensor([[5, 6]]);
    expect(concat([a, b], 0).toArray()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(concat([a, a.transpose(0, 1)], 1).tolist()).toEqual([[1, 2, 1, 3], [3, 4, 2, 4]]);
    expect(stack([a, a], 1).shape).toEqual([2, 2, 2]);
    expect(split(arange(7), 3).map((t) => t.toArray())).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    expect(chunk(arange(6), 4).map((t) => t.numel)).toEqual([2, 2, 2]);
    expect(() => concat([a, tensor([1, 2, 3])], 0)).toThrow(/concat: tensor 1 has shape \[3\]/);
    expect(() => split(arange(5), [2, 2])).toThrow(/do not add up/);
  });

  it('creation helpers', () => {
    expect(arange(0, 1, 0.25).toArray()).toEqual([0, 0.25, 0.5, 0.75]);
    expect(arange(5).dtype).toBe('i32');
    expect(zeros([2, 2]).toArray()).toEqual([0, 0, 0, 0]);
    expect(ones([3], { dtype: 'bf16' }).toArray()).toEqual([1, 1, 1]);
    expect(tensor([[1, 2, 3]]).shape).toEqual([1, 3]);
    expect(() => tensor([[1, 2], [3]])).toThrow(/ragged/);
    expect(tensor(2.5).item()).toBe(2.5);
  });
});

describe('autograd engine', () => {
  it('view ops route gradients back to the right elements', () => {
    const x = arange(0, 6, 1, { dtype: 'f32' }).reshape(2, 3).requiresGrad_();
    const y = x.transpose(0, 1).slice(0, 1, 3); // rows 1..2 of xᵀ = columns 1..2 of x
    const w = tensor([[1, 2], [3, 4]]);
    y.backward(w);
    expect(x.grad!.tolist()).toEqual([[0, 1, 3], [0, 2, 4]]);
  });

  it('expand sums the gradient over broadcast dims; concat splits it', () => {
    const x = tensor([[1], [2]]).requiresGrad_();
    x.expand(2, 3).backward(tensor([[1, 2, 3], [4, 5, 6]]));
    expect(x.grad!.tolist()).toEqual([[6], [15]]);
    const a = tensor([1, 2]).requiresGrad_();
    const b = tensor([3]).requiresGrad_();
    concat([a, b]).backward(tensor([7, 8, 9]));
    expect(a.grad!.toArray()).toEqual([7, 8]);
    expect(b.grad!.toArray()).toEqual([9]);
  });

  it('accumulates across two uses and two backward calls, without aliasing grads', () => {
    const x = tensor([1, 2]).requiresGrad_();
    const y = stack([x, x]); // x used twice
    y.backward(tensor([[1, 1], [2, 2]]));
    expect(x.grad!.toArray()).toEqual([3, 3]);
    stack([x]).backward(tensor([[10, 20]]));
    expect(x.grad!.toArray()).toEqual([13, 23]);
    const a = tensor([1]).requiresGrad_();
    const b = tensor([1]).requiresGrad_();
    concat([a.reshape(1), b.reshape(1)]).backward(tensor([5, 5]));
    a.grad!.storage.data[0] = 99; // a's gradient must not share memory with b's
    expect(b.grad!.toArray()).toEqual([5]);
  });

  it('refuses a second backward through a freed graph', () => {
    const x = tensor([1, 2]).requiresGrad_();
    const y = x.reshape(2, 1);
    y.backward(tensor([[1], [1]]));
    expect(() => y.backward(tensor([[1], [1]]))).toThrow(/second time/);
  });
});

describe('memory', () => {
  it('dispose returns buffers to the pool and further use fails loudly', () => {
    const before = poolStats().buffers;
    const x = zeros([4096]);
    const v = x.reshape(64, 64);
    x.dispose();
    expect(poolStats().buffers).toBe(before); // the view still holds it
    v.dispose();
    expect(poolStats().buffers).toBe(before + 1);
    expect(() => v.toArray()).toThrow(/disposed/);
    const y = zeros([4096]); // reuses the pooled buffer, zero-filled
    expect(poolStats().buffers).toBe(before);
    expect(y.toArray().every((e) => e === 0)).toBe(true);
  });
});
