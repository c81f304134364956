import { describe, expect, it } from 'vitest';
import { CharTokenizer } from '../../src/data/char-tokenizer.js';
import { TextDataset } from '../../src/data/text-dataset.js';
import { Generator } from '../../src/tensor/random.js';

describe('TextDataset', () => {
  const ids = Int32Array.from({ length: 1000 }, (_, i) => i);

  it('splits 90/10 at int(n * 0.9), validation at the end', () => {
    const ds = new TextDataset(ids);
    expect(ds.train.length).toBe(900);
    expect(ds.val.length).toBe(100);
    expect(ds.val[0]).toBe(900);
    expect(new TextDataset(Int32Array.from({ length: 11 }, (_, i) => i)).train.length).toBe(9); // floor(9.9)
    expect(new TextDataset(ids, { trainFraction: 0.5 }).val.length).toBe(500);
  });

  it('samples windows with y = x shifted by one, offsets in [0, len − T)', () => {
    const ds = new TextDataset(ids);
    const g = new Generator(7);
    const T = 8;
    const offsets = new Set<number>();
    for (let k = 0; k < 200; k++) {
      const { x, y } = ds.batch('val', 4, T, g);
      expect(x.shape).toEqual([4, T]);
      expect(x.dtype).toBe('i32');
      const xs = x.i32();
      const ys = y.i32();
      for (let b = 0; b < 4; b++) {
        const start = xs[b * T]!;
        offsets.add(start - 900);
        for (let t = 0; t < T; t++) {
          expect(xs[b * T + t]).toBe(start + t); // a contiguous window
          expect(ys[b * T + t]).toBe(start + t + 1); // its next tokens
        }
      }
    }
    // 100 val tokens, T = 8: offsets 0..91, all reachable, never beyond.
    expect(Math.min(...offsets)).toBe(0);
    expect(Math.max(...offsets)).toBe(91);
  });

  it('is deterministic in the generator: same seed, same batches; restored state, same continuation', () => {
    const ds = TextDataset.fromText('the quick brown fox jumps over the lazy dog '.repeat(20), CharTokenizer.fromText('the quick brown fox jumps over the lazy dog'));
    const a = new Generator(1337);
    const b = new Generator(1337);
    expect(ds.batch('train', 3, 5, a).x.toArray()).toEqual(ds.batch('train', 3, 5, b).x.toArray());
    const saved = a.getState();
    const next = ds.batch('train', 3, 5, a).x.toArray();
    const c = new Generator(0).setState(saved);
    expect(ds.batch('train', 3, 5, c).x.toArray()).toEqual(next);
    expect(ds.batch('train', 3, 5, new Generator(1338)).x.toArray()).not.toEqual(ds.batch('train', 3, 5, new Generator(1337)).x.toArray());
  });

  it('says which split is too short for the block size', () => {
    const ds = new TextDataset(ids);
    expect(() => ds.batch('val', 2, 100, new Generator(0))).toThrow(/val split has 100 tokens, too few for a window of block size 100/);
    expect(() => ds.batch('train', 0, 4, new Generator(0))).toThrow(/batchSize must be a positive integer/);
  });
});
