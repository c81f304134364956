/** withoutInit: loaders build modules without drawing weights the checkpoint will overwrite. */
import { describe, expect, it } from 'vitest';
import { Linear } from '../../src/nn/layers.js';
import { normal_, withoutInit } from '../../src/nn/init.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';

describe('withoutInit', () => {
  it('leaves parameters zero and the generator untouched, and nests', () => {
    const g = new Generator(5);
    const before = g.getState();
    const l = withoutInit(() => withoutInit(() => new Linear(4, 3, { generator: g })));
    expect([...l.weight.f32('t')].every((v) => v === 0)).toBe(true);
    expect(g.getState()).toEqual(before);
    // Outside it, initialisation draws again.
    const t = normal_(Tensor.zeros([8]), 0, 1, g);
    expect([...t.f32('t')].some((v) => v !== 0)).toBe(true);
  });

  it('restores initialisation after a throw', () => {
    expect(() =>
      withoutInit(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect([...normal_(Tensor.zeros([4]), 0, 1, new Generator(1)).f32('t')].some((v) => v !== 0)).toBe(true);
  });
});
