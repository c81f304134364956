import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE, PagedKVCache, ROOT_KEY } from '../../src/infer/paged-kv.js';

function cache(numBlocks: number): PagedKVCache {
  return new PagedKVCache({ nLayer: 2, kvHeads: 2, headDim: 4, numBlocks });
}

/** Allocates blocks for `tokens` and registers every full one, as the scheduler does after computing them. */
function computeAndRegister(kv: PagedKVCache, tokens: number[]): number[] {
  const blocks: number[] = [];
  let parent = ROOT_KEY;
  for (let b = 0; b * BLOCK_SIZE < tokens.length; b++) {
    const id = kv.allocate();
    if (id === null) throw new Error('out of blocks');
    blocks.push(id);
    if ((b + 1) * BLOCK_SIZE <= tokens.length) parent = kv.register(id, parent, tokens, b * BLOCK_SIZE);
  }
  return blocks;
}

describe('PagedKVCache', () => {
  it('pools are [blocks, kvHeads, 16, headDim] per layer', () => {
    const kv = cache(5);
    expect(kv.keys).toHaveLength(2);
    expect(kv.keys[0]!.length).toBe(5 * 2 * 16 * 4);
    expect(PagedKVCache.bytesPerBlock(2, 2, 4)).toBe(2 * 2 * 2 * 16 * 4 * 4);
  });

  it('allocate / release: refcounts, no block handed out twice, exhaustion returns null', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant('alloc' as const), fc.nat(50)), { maxLength: 200 }), (ops) => {
        const kv = cache(8);
        const held: number[] = [];
        for (const op of ops) {
          if (op === 'alloc') {
            const b = kv.allocate();
            if (held.length === 8) expect(b).toBeNull();
            else {
              expect(b).not.toBeNull();
              expect(held).not.toContain(b);
              held.push(b!);
            }
          } else if (held.length > 0) {
            const [b] = held.splice(op % held.length, 1);
            kv.release([b!]);
          }
          expect(kv.usedBlocks).toBe(held.length);
          kv.checkInvariants();
        }
      }),
    );
  });

  it('double release throws', () => {
    const kv = cache(2);
    const b = kv.allocate()!;
    kv.release([b]);
    expect(() => kv.release([b])).toThrow(/double free/);
  });

  it('prefix hits: the same full blocks come back for the same history, nothing for a different earlier block', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 80 }), fc.integer({ min: 0, max: 79 }), (tokens, change) => {
        const kv = cache(16);
        const blocks = computeAndRegister(kv, tokens);
        const full = Math.floor(tokens.length / BLOCK_SIZE);
        const same = kv.lookupPrefix(tokens, full);
        expect(same.blocks).toEqual(blocks.slice(0, full));
        kv.release(same.blocks);
        if (change < tokens.length) {
          const other = [...tokens];
          other[change] = other[change]! + 10;
          const hit = kv.lookupPrefix(other, full);
          // Hits stop exactly at the block holding the changed token.
          expect(hit.blocks).toEqual(blocks.slice(0, Math.min(full, Math.floor(change / BLOCK_SIZE))));
          kv.release(hit.blocks);
        }
        kv.checkInvariants();
      }),
    );
  });

  it('the chain key depends on every earlier block, not just this one', () => {
    const kv = cache(8);
    const a = [...Array(16).fill(1), ...Array(16).fill(7)];
    const b = [...Array(16).fill(2), ...Array(16).fill(7)];
    computeAndRegister(kv, a);
    const hit = kv.lookupPrefix(b, 2);
    expect(hit.blocks).toEqual([]);
  });

  it('released cached blocks stay reusable until memory runs out, then the least recently used is evicted', () => {
    const kv = cache(4);
    const t1 = Array.from({ length: 32 }, (_, i) => i);
    const t2 = Array.from({ length: 32 }, (_, i) => 100 + i);
    const b1 = computeAndRegister(kv, t1);
    kv.release(b1);
    const b2 = computeAndRegister(kv, t2);
    kv.release(b2);
    expect(kv.usedBlocks).toBe(0);
    expect(kv.cachedIdleBlocks).toBe(4);
    // Touch t1's blocks again: t2's become the least recently used.
    kv.release(kv.lookupPrefix(t1, 2).blocks);
    const fresh = [kv.allocate()!, kv.allocate()!];
    expect(new Set(fresh)).toEqual(new Set(b2));
    expect(kv.evictions).toBe(2);
    expect(kv.lookupPrefix(t2, 2).blocks).toEqual([]);
    const again = kv.lookupPrefix(t1, 2);
    expect(again.blocks).toEqual(b1);
    expect(kv.allocate()).toBeNull();
    kv.checkInvariants();
  });

  it('a duplicate registration keeps the first block and continues its chain', () => {
    const kv = cache(6);
    const t = Array.from({ length: 32 }, (_, i) => i % 3);
    const first = computeAndRegister(kv, t);
    const second = computeAndRegister(kv, t);
    expect(second).not.toEqual(first);
    const hit = kv.lookupPrefix(t, 2);
    expect(hit.blocks).toEqual(first);
    kv.release([...hit.blocks, ...second]);
    // The duplicates were never cached: they went straight back to the free list.
    expect(kv.cachedIdleBlocks).toBe(0);
    kv.release(first);
    expect(kv.cachedIdleBlocks).toBe(2);
    kv.checkInvariants();
  });
});
