import { describe, expect, it } from 'vitest';
import { Conv1D, Dropout, Embedding, LayerNorm, Linear, Module, ModuleList } from '../../src/nn/index.js';
import { Generator, randn, tensor, type Tensor, zeros } from '../../src/tensor/index.js';

class Tiny extends Module {
  readonly emb: Embedding;
  readonly blocks: ModuleList<Linear>;
  readonly norm: LayerNorm;
  constructor() {
    super();
    const generator = new Generator(1);
    this.emb = this.registerModule('emb', new Embedding(10, 4, { generator }));
    this.blocks = this.registerModule('blocks', new ModuleList([new Linear(4, 4, { generator }), new Linear(4, 4, { generator, bias: false })]));
    this.norm = this.registerModule('norm', new LayerNorm(4));
  }
  forward(ids: Tensor): Tensor {
    let x = this.emb.forward(ids);
    for (const b of this.blocks) x = b.forward(x);
    return this.norm.forward(x);
  }
}

describe('Module', () => {
  it('names parameters in registration order, HF-style', () => {
    const m = new Tiny();
    expect(m.namedParameters().map(([n]) => n)).toEqual([
      'emb.weight',
      'blocks.0.weight',
      'blocks.0.bias',
      'blocks.1.weight',
      'norm.weight',
      'norm.bias',
    ]);
    expect(m.numParameters()).toBe(40 + 16 + 4 + 16 + 4 + 4);
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true);
  });

  it('loadStateDict copies values and checks names and shapes before writing anything', () => {
    const a = new Tiny();
    const b = new Tiny();
    for (const p of b.parameters()) p.storage.data.fill(0.5);
    a.loadStateDict(b.stateDict());
    expect(a.blocks.items[0]!.weight.toArray().every((v) => v === 0.5)).toBe(true);

    const sd = b.stateDict();
    sd.delete('norm.bias');
    expect(() => a.loadStateDict(sd)).toThrow(/missing: norm\.bias/);
    a.loadStateDict(sd, { strict: false });

    const bad = b.stateDict();
    bad.set('norm.weight', zeros([5]));
    for (const p of a.parameters()) p.storage.data.fill(0.25);
    expect(() => a.loadStateDict(bad)).toThrow(/norm\.weight has shape \[5\].*\[4\]/);
    expect(a.emb.weight.toArray().every((v) => v === 0.25)).toBe(true); // nothing was written
    bad.set('extra', zeros([1]));
    expect(() => a.loadStateDict(bad)).toThrow(/unexpected: extra/);
  });

  it('train/eval reach every sub-module; dropout is identity in eval', () => {
    const m = new Tiny();
    const d = new Dropout(0.5);
    m.eval();
    expect(m.namedModules().every(([, x]) => !x.training)).toBe(true);
    const x = randn([64]);
    d.eval();
    expect(d.forward(x)).toBe(x);
    d.train();
    const y = d.forward(x).toArray();
    expect(y.filter((v) => v === 0).length).toBeGreaterThan(10);
  });

  it('gradients reach every parameter through a forward/backward', () => {
    const m = new Tiny();
    const out = m.forward(tensor([[1, 2, 3]], { dtype: 'i32' }));
    out.backward(randn(out.shape as number[]));
    for (const [name, p] of m.namedParameters()) {
      expect(p.grad, name).not.toBeNull();
      expect(p.grad!.shape).toEqual(p.shape);
    }
    m.zeroGrad();
    expect(m.parameters().every((p) => p.grad === null)).toBe(true);
  });

  it('Linear and Conv1D compute x·Wᵀ+b and x·W+b', () => {
    const lin = new Linear(2, 3);
    lin.weight.storage.data.set([1, 2, 3, 4, 5, 6]);
    lin.bias!.storage.data.set([0.5, 0, -1]);
    expect(lin.forward(tensor([[1, 1]])).toArray()).toEqual([3.5, 7, 10]);
    const conv = new Conv1D(2, 3);
    conv.weight.storage.data.set([1, 2, 3, 4, 5, 6]);
    expect(conv.forward(tensor([[1, 1]])).toArray()).toEqual([5, 7, 9]);
  });
});
