import { describe, expect, it } from 'vitest';
import { PagedKVCache } from '../../src/infer/paged-kv.js';
import { ScheduledSequence, Scheduler } from '../../src/infer/scheduler.js';

const seq = (id: string, n: number, base: number): ScheduledSequence => new ScheduledSequence(id, Array.from({ length: n }, (_, i) => base + i));

describe('Scheduler', () => {
  it('admits FCFS within the prefill budget and chunks long prompts', () => {
    const kv = new PagedKVCache({ nLayer: 1, kvHeads: 1, headDim: 2, numBlocks: 64 });
    const s = new Scheduler(kv, { maxBatch: 8, maxPrefillTokens: 40 });
    const a = seq('a', 30, 0);
    const b = seq('b', 50, 100);
    s.add(a);
    s.add(b);
    const p1 = s.schedule();
    expect(p1.chunks.map((c) => [c.seq.id, c.start, c.count, c.sample])).toEqual([
      ['a', 0, 30, true],
      ['b', 0, 10, false],
    ]);
    s.commit(p1);
    a.tokens.push(7); // a sampled a token
    const p2 = s.schedule();
    // a decodes (not counted against the budget), b continues its prompt.
    expect(p2.chunks.map((c) => [c.seq.id, c.start, c.count, c.sample])).toEqual([
      ['a', 30, 1, true],
      ['b', 10, 40, true],
    ]);
  });

  it('preempts the youngest running sequence when blocks run out, and requeues it first', () => {
    const kv = new PagedKVCache({ nLayer: 1, kvHeads: 1, headDim: 2, numBlocks: 4 });
    const s = new Scheduler(kv, { maxBatch: 8, maxPrefillTokens: 64 });
    const a = seq('a', 31, 0);
    const b = seq('b', 31, 100);
    const c = seq('c', 5, 200);
    s.add(a);
    s.add(b);
    s.add(c);
    const p1 = s.schedule();
    expect(p1.chunks.map((x) => x.seq.id)).toEqual(['a', 'b']); // c waits: no blocks left
    s.commit(p1);
    a.tokens.push(1);
    b.tokens.push(2);
    const p2 = s.schedule(); // position 31 still fits the second block of each
    expect(p2.preempted).toEqual([]);
    s.commit(p2);
    a.tokens.push(3);
    b.tokens.push(4);
    const p3 = s.schedule(); // both need a third block: b (the youngest) gives way
    expect(p3.preempted).toEqual([b]);
    expect(p3.chunks.map((x) => [x.seq.id, x.start, x.count])).toEqual([['a', 32, 1]]);
    expect(s.waiting.map((x) => x.id)).toEqual(['b', 'c']);
    expect(b.blocks).toEqual([]);
    expect(b.computed).toBe(0);
    expect(s.preemptionsTotal).toBe(1);
    kv.checkInvariants();
  });

  it('reports a sequence that can never fit the cache', () => {
    const kv = new PagedKVCache({ nLayer: 1, kvHeads: 1, headDim: 2, numBlocks: 2 });
    const s = new Scheduler(kv, { maxBatch: 8, maxPrefillTokens: 64 });
    const big = seq('big', 40, 0);
    s.add(big);
    const p = s.schedule();
    expect(p.unfit).toEqual([big]);
    expect(s.hasWork).toBe(false);
  });
});
