/**
 * The flat-buffer contract: after constructing an optimizer the model's parameters ARE views of one
 * flat buffer, autograd accumulates straight into one flat gradient buffer, zeroing keeps those
 * views, and stateDict/loadStateDict resumes bit for bit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensorsSync, saveSafetensorsSync } from '../../src/io/safetensors.js';
import { Embedding, LayerNorm, Linear, Module } from '../../src/nn/index.js';
import { AdamW, SGD, clipGradNorm, loadOptimizerState, saveOptimizerState } from '../../src/optim/index.js';
import { crossEntropy, gelu, linear } from '../../src/tensor/index.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';

/** Embedding → Linear → LayerNorm → GELU → tied output projection (the embedding again). */
class Tiny extends Module {
  readonly emb: Embedding;
  readonly fc: Linear;
  readonly ln: LayerNorm;
  constructor(seed: number) {
    super();
    const generator = new Generator(seed);
    this.emb = this.registerModule('emb', new Embedding(11, 6, { generator, std: 0.5 }));
    this.fc = this.registerModule('fc', new Linear(6, 6, { generator }));
    this.ln = this.registerModule('ln', new LayerNorm(6));
  }
  loss(ids: Tensor, targets: Tensor): Tensor {
    const h = gelu(this.ln.forward(this.fc.forward(this.emb.forward(ids))));
    return crossEntropy(linear(h, this.emb.weight), targets);
  }
}

function batch(seed: number): { ids: Tensor; targets: Tensor } {
  const g = new Generator(seed);
  const ids = Tensor.fromArray(Int32Array.from({ length: 10 }, () => g.int(0, 11)), [10]);
  const targets = Tensor.fromArray(Int32Array.from({ length: 10 }, () => g.int(0, 11)), [10]);
  return { ids, targets };
}

function gradsOf(m: Module): Map<string, number[]> {
  return new Map(m.namedParameters().map(([n, p]) => [n, p.grad!.toArray()]));
}

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('flat parameter and gradient buffers', () => {
  it('parameters become views of one buffer (decayed first) and keep their values', () => {
    const m = new Tiny(1);
    const before = new Map(m.namedParameters().map(([n, p]) => [n, p.toArray()]));
    const opt = new AdamW(m.namedParameters(), { lr: 1e-3, weightDecay: 0.1 });
    expect(opt.flat.names).toEqual(['emb.weight', 'fc.weight', 'fc.bias', 'ln.weight', 'ln.bias']);
    expect(opt.flat.decayNumel).toBe(11 * 6 + 6 * 6);
    let offset = 0;
    for (const [name, p] of m.namedParameters().sort((a, b) => opt.flat.names.indexOf(a[0]) - opt.flat.names.indexOf(b[0]))) {
      expect(p.toArray(), name).toEqual(before.get(name));
      expect(p.storage.data.buffer, name).toBe(opt.flat.data.buffer);
      expect(p.storage.data.byteOffset, name).toBe(opt.flat.data.byteOffset + offset * 4);
      expect(p.grad!.storage.data.buffer, name).toBe(opt.flat.grad.buffer);
      expect(p.grad!.storage.data.byteOffset, name).toBe(opt.flat.grad.byteOffset + offset * 4);
      offset += p.numel;
    }
    expect(offset).toBe(opt.flat.numel);
    // Writing through the flat buffer is writing the model (and vice versa).
    opt.flat.data[0] = 42;
    expect(m.emb.weight.toArray()[0]).toBe(42);
    m.loadStateDict(new Map([...m.stateDict()].map(([k, t]) => [k, Tensor.full(t.shape, 0.5)])));
    expect(opt.flat.data.every((v) => v === 0.5)).toBe(true);
  });

  it('forward/backward through the views lands the gradients in the flat buffer, accumulating', () => {
    const reference = new Tiny(2);
    const m = new Tiny(2);
    const opt = new SGD(m.namedParameters(), { lr: 0.1 });
    const { ids, targets } = batch(3);
    reference.loss(ids, targets).backward();
    const gradTensors = m.parameters().map((p) => p.grad);
    m.loss(ids, targets).backward();
    const want = gradsOf(reference);
    expect(gradsOf(m)).toEqual(want);
    // Same tensor objects: accumulated in place, not replaced.
    m.parameters().forEach((p, i) => expect(p.grad).toBe(gradTensors[i]));
    // The tied embedding got both contributions (lookup and output projection).
    expect(want.get('emb.weight')!.some((v) => v !== 0)).toBe(true);
    let at = 0;
    for (const name of opt.flat.names) {
      const g = want.get(name)!;
      expect(Array.from(opt.flat.grad.subarray(at, at + g.length)), name).toEqual(g);
      at += g.length;
    }
    // A second backward without zeroing accumulates: exactly twice (x + x is exact).
    m.loss(ids, targets).backward();
    for (const [name, g] of gradsOf(m)) expect(g, name).toEqual(want.get(name)!.map((v) => Math.fround(v + v)));
  });

  it('optimizer.zeroGrad and Module.zeroGrad zero in place and keep the flat views', () => {
    const m = new Tiny(4);
    const opt = new AdamW(m.namedParameters(), { lr: 1e-2 });
    const views = m.parameters().map((p) => p.grad);
    const { ids, targets } = batch(5);
    m.loss(ids, targets).backward();
    expect(opt.flat.grad.some((v) => v !== 0)).toBe(true);
    opt.zeroGrad();
    expect(opt.flat.grad.every((v) => v === 0)).toBe(true);
    m.parameters().forEach((p, i) => expect(p.grad).toBe(views[i]));

    m.loss(ids, targets).backward();
    const once = Float32Array.from(opt.flat.grad);
    m.zeroGrad(); // Module's: must not drop optimizer-owned gradients — including the first one, at flat offset 0
    m.parameters().forEach((p, i) => expect(p.grad, `param ${i}`).toBe(views[i]));
    expect(opt.flat.grad.every((v) => v === 0)).toBe(true);
    m.loss(ids, targets).backward();
    expect(bytesOf(opt.flat.grad).equals(bytesOf(once))).toBe(true);
  });

  it('a gradient replaced behind its back (tensor.zeroGrad, aliasing) is copied back before a step', () => {
    const a = new Tiny(6);
    const b = new Tiny(6);
    const optA = new AdamW(a.namedParameters(), { lr: 1e-2 });
    const optB = new AdamW(b.namedParameters(), { lr: 1e-2 });
    const { ids, targets } = batch(7);
    a.loss(ids, targets).backward();
    // b: drop one parameter's gradient object and keep another aliased so autograd can't write in place.
    b.fc.weight.zeroGrad();
    const alias = b.ln.weight.grad!.alias();
    b.loss(ids, targets).backward();
    expect(b.fc.weight.grad!.storage.data.buffer).not.toBe(optB.flat.grad.buffer);
    expect(b.ln.weight.grad!.storage.data.buffer).not.toBe(optB.flat.grad.buffer);
    optA.step();
    optB.step();
    expect(bytesOf(optB.flat.data).equals(bytesOf(optA.flat.data))).toBe(true);
    expect(b.fc.weight.grad!.storage.data.buffer).toBe(optB.flat.grad.buffer);
    expect(b.ln.weight.grad!.storage.data.buffer).toBe(optB.flat.grad.buffer);
    alias.dispose();
  });

  it('refuses parameters it cannot own', () => {
    const p = Tensor.zeros([2, 2]).requiresGrad_();
    expect(() => new AdamW([['a', p], ['b', p]], { lr: 1 })).toThrow(/'b' shares its memory/);
    expect(() => new AdamW([['a', p], ['a', Tensor.zeros([1])]], { lr: 1 })).toThrow(/'a' is listed twice/);
    expect(() => new SGD([['v', Tensor.zeros([4, 2]).slice(0, 1, 3)]], { lr: 1 })).toThrow(/'v' must own dense memory/);
    expect(() => new SGD([['i', Tensor.zeros([2], 'i32')]], { lr: 1 })).toThrow(/'i' is i32/);
    expect(() => new AdamW([['x', Tensor.zeros([1])]], { lr: 1, betas: [1, 0.9] })).toThrow(/beta1 must be in \[0, 1\)/);
    expect(() => new SGD([['x', Tensor.zeros([1])]], { lr: 1, nesterov: true })).toThrow(/nesterov/);
    const q = Tensor.zeros([3]).requiresGrad_();
    const opt = new SGD([['q', q]], { lr: 1 });
    q.dispose();
    expect(() => opt.step()).toThrow(/'q' no longer lives in the optimizer's flat buffer/);
  });
});

describe('optimizer state: resume continues bit for bit', () => {
  function trainSteps(m: Tiny, opt: AdamW | SGD, from: number, to: number): void {
    for (let it = from; it < to; it++) {
      opt.lr = 0.01 * (1 + (it % 3));
      opt.zeroGrad();
      const { ids, targets } = batch(100 + it);
      m.loss(ids, targets).backward();
      clipGradNorm(opt, 0.5);
      opt.step();
    }
  }
  const makers: [string, (m: Tiny) => AdamW | SGD][] = [
    ['AdamW', (m) => new AdamW(m.namedParameters(), { lr: 0, betas: [0.9, 0.99], weightDecay: 0.1 })],
    ['SGD', (m) => new SGD(m.namedParameters(), { lr: 0, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 })],
  ];
  for (const [name, make] of makers) {
    it(`${name}: 6 straight steps == 3 steps, save to disk, fresh model + optimizer, load, 3 steps`, async () => {
      const straight = new Tiny(9);
      const optS = make(straight);
      trainSteps(straight, optS, 0, 6);

      const dir = mkdtempSync(join(tmpdir(), 'weft-resume-'));
      dirs.push(dir);
      const first = new Tiny(9);
      const opt1 = make(first);
      trainSteps(first, opt1, 0, 3);
      saveSafetensorsSync(join(dir, 'model.safetensors'), first.stateDict());
      await saveOptimizerState(join(dir, 'optimizer.safetensors'), opt1.stateDict());

      const resumed = new Tiny(1234); // different init: everything must come from the files
      const opt2 = make(resumed);
      resumed.loadStateDict(loadSafetensorsSync(join(dir, 'model.safetensors')).tensors);
      opt2.loadStateDict(await loadOptimizerState(join(dir, 'optimizer.safetensors')));
      expect(opt2.stepCount).toBe(3);
      trainSteps(resumed, opt2, 3, 6);

      expect(bytesOf(opt2.flat.data).equals(bytesOf(optS.flat.data))).toBe(true);
      const a = optS.stateDict();
      const b = opt2.stateDict();
      expect(bytesOf(b.m).equals(bytesOf(a.m))).toBe(true);
      expect(bytesOf(b.v).equals(bytesOf(a.v))).toBe(true);
      expect(b.step).toBe(6);
      // And the run really moved: resuming from the wrong state would not match.
      expect(bytesOf(opt2.flat.data).equals(bytesOf(opt1.flat.data))).toBe(false);
    });
  }

  it('stateDict is a snapshot, and a mismatched state is refused', () => {
    const m = new Tiny(3);
    const opt = new AdamW(m.namedParameters(), { lr: 1e-2 });
    trainSteps(m, opt, 0, 1);
    const s = opt.stateDict();
    const m0 = Float32Array.from(s.m);
    trainSteps(m, opt, 1, 2);
    expect(bytesOf(s.m).equals(bytesOf(m0))).toBe(true);
    expect(() => opt.loadStateDict({ ...s, names: [...s.names].reverse() })).toThrow(/differ from this optimizer's.*first difference at 0/);
    expect(() => opt.loadStateDict({ ...s, v: new Float32Array(3) })).toThrow(/v has 3 elements/);
    const sgd = new SGD(new Tiny(3).namedParameters(), { lr: 1, momentum: 0.5 });
    expect(() => sgd.loadStateDict(s)).toThrow(/v has \d+ elements, expected 0/);
  });
});
