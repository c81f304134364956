/** The BPE model on its own: merge order, the long-word heap path, HF options, (de)serialisation, errors. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BPE } from '../../src/tokenizers/models/bpe.js';
import { models } from '../../src/tokenizers/registry.js';

function toy(extra: Partial<ConstructorParameters<typeof BPE>[0]> = {}): BPE {
  return new BPE({
    vocab: { a: 0, b: 1, c: 2, ab: 3, abc: 4, bc: 5 },
    merges: ['a b', 'ab c', 'b c'],
    ...extra,
  });
}

/** Reference BPE: repeatedly merge the leftmost adjacent pair of lowest rank (the textbook definition). */
function referenceBpe(word: string[], ranks: Map<string, number>): string[] {
  const syms = [...word];
  for (;;) {
    let best = Infinity;
    let at = -1;
    for (let i = 0; i + 1 < syms.length; i++) {
      const r = ranks.get(`${syms[i]} ${syms[i + 1]}`);
      if (r !== undefined && r < best) {
        best = r;
        at = i;
      }
    }
    if (at < 0) return syms;
    syms.splice(at, 2, syms[at] + syms[at + 1]);
  }
}

describe('BPE model', () => {
  it('merges the lowest-rank pair first, leftmost on ties, with offsets per piece', () => {
    const m = toy();
    expect(m.tokenize('abc').map((t) => [t.value, t.start, t.end])).toEqual([['abc', 0, 3]]);
    expect(m.tokenize('bcab').map((t) => t.value)).toEqual(['bc', 'ab']);
    expect(m.tokenize('aaa').map((t) => t.value)).toEqual(['a', 'a', 'a']);
    expect(m.tokenize('abab').map((t) => [t.id, t.start, t.end])).toEqual([
      [3, 0, 2],
      [3, 2, 4],
    ]);
    expect(m.tokenize('')).toEqual([]);
  });

  it('agrees with a reference implementation on random merge tables, short and long words (scan and heap paths)', () => {
    const alphabet = ['a', 'b', 'c', 'd'];
    const arb = fc.record({
      pairs: fc.array(fc.tuple(fc.nat(40), fc.nat(40)), { minLength: 1, maxLength: 40 }),
      word: fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 160 }),
    });
    fc.assert(
      fc.property(arb, ({ pairs, word }) => {
        // Build a consistent merge table: each merge joins two existing tokens.
        const tokens = [...alphabet];
        const vocab = new Map(tokens.map((t, i) => [t, i]));
        const merges: [string, string][] = [];
        const ranks = new Map<string, number>();
        for (const [x, y] of pairs) {
          const a = tokens[x % tokens.length];
          const b = tokens[y % tokens.length];
          if (ranks.has(`${a} ${b}`) || (a + b).length > 12) continue;
          ranks.set(`${a} ${b}`, merges.length);
          merges.push([a, b]);
          if (!vocab.has(a + b)) {
            vocab.set(a + b, vocab.size);
            tokens.push(a + b);
          }
        }
        const m = new BPE({ vocab, merges, cacheCapacity: 0 });
        const got = m.tokenize(word.join('')).map((t) => t.value);
        expect(got).toEqual(referenceBpe(word, ranks));
        const out: number[] = [];
        m.encodeWordInto(word.join(''), 0, word.length, false, out);
        expect(out).toEqual(got.map((t) => vocab.get(t)));
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('unknown characters: unk_token, fused or not, and dropped without one (as HF)', () => {
    expect(toy({ vocab: { a: 0, b: 1, c: 2, ab: 3, abc: 4, bc: 5, '<unk>': 6 }, unkToken: '<unk>' }).tokenize('axyb').map((t) => [t.value, t.start, t.end])).toEqual([
      ['a', 0, 1],
      ['<unk>', 1, 2],
      ['<unk>', 2, 3],
      ['b', 3, 4],
    ]);
    const fused = toy({ vocab: { a: 0, b: 1, c: 2, ab: 3, abc: 4, bc: 5, '<unk>': 6 }, unkToken: '<unk>', fuseUnk: true });
    expect(fused.tokenize('axyb').map((t) => [t.value, t.start, t.end])).toEqual([
      ['a', 0, 1],
      ['<unk>', 1, 3],
      ['b', 3, 4],
    ]);
    // Without an unk token the character is dropped, so its neighbours meet and merge (as in HF).
    expect(toy().tokenize('axb').map((t) => t.value)).toEqual(['ab']);
    expect(() => toy({ unkToken: '<missing>' }).tokenize('x')).toThrow(/unk_token "<missing>" is not in the vocabulary/);
  });

  it('byte_fallback: characters outside the vocabulary become <0xXX> byte tokens', () => {
    const vocab: Record<string, number> = { a: 0, '<unk>': 1 };
    for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 2 + b;
    const m = new BPE({ vocab, merges: [], byteFallback: true, unkToken: '<unk>' });
    expect(m.tokenize('aé').map((t) => t.value)).toEqual(['a', '<0xC3>', '<0xA9>']);
    expect(m.tokenize('😀').map((t) => t.value)).toEqual(['<0xF0>', '<0x9F>', '<0x98>', '<0x80>']);
    // Offsets stay inside the piece and cover the character.
    const toks = m.tokenize('é');
    expect(Math.min(...toks.map((t) => t.start))).toBe(0);
    expect(Math.max(...toks.map((t) => t.end))).toBe(1);
  });

  it('continuing_subword_prefix and end_of_word_suffix shape the initial symbols and merged tokens', () => {
    const p = new BPE({ vocab: { a: 0, '##b': 1, '##c': 2, ab: 3, abc: 4 }, merges: ['a ##b', 'ab ##c'], continuingSubwordPrefix: '##' });
    expect(p.tokenize('abc').map((t) => t.value)).toEqual(['abc']);
    expect(p.tokenize('ab').map((t) => t.value)).toEqual(['ab']);
    const s = new BPE({ vocab: { a: 0, b: 1, 'b</w>': 2, 'ab</w>': 3 }, merges: ['a b</w>'], endOfWordSuffix: '</w>' });
    expect(s.tokenize('ab').map((t) => t.value)).toEqual(['ab</w>']);
    expect(s.tokenize('ba').map((t) => t.value)).toEqual(['b']); // 'a</w>' is unknown and dropped
  });

  it('dropout 1 skips every merge; ignore_merges takes a whole-word vocabulary hit', () => {
    expect(toy({ dropout: 1 }).tokenize('abc').map((t) => t.value)).toEqual(['a', 'b', 'c']);
    expect(toy({ dropout: 0 }).tokenize('abc').map((t) => t.value)).toEqual(['abc']);
    const noMerge = new BPE({ vocab: { a: 0, b: 1, ab: 2 }, merges: [], ignoreMerges: true });
    expect(noMerge.tokenize('ab').map((t) => t.value)).toEqual(['ab']);
    expect(new BPE({ vocab: { a: 0, b: 1, ab: 2 }, merges: [] }).tokenize('ab').map((t) => t.value)).toEqual(['a', 'b']);
  });

  it('serialises to the HF schema and loads back (strings, or pairs when a token holds a space)', () => {
    const m = toy({ unkToken: null, dropout: null });
    const json = m.toJSON();
    expect(json).toMatchObject({ type: 'BPE', merges: ['a b', 'ab c', 'b c'], fuse_unk: false, byte_fallback: false });
    const back = models.fromJSON(json);
    expect(back.tokenize('bcab')).toEqual(m.tokenize('bcab'));
    const spaced = new BPE({ vocab: { a: 0, ' ': 1, b: 2, 'a ': 3, 'a b': 4 }, merges: [['a', ' '], ['a ', 'b']] });
    expect(spaced.toJSON().merges).toEqual([['a', ' '], ['a ', 'b']]);
    expect((models.fromJSON(spaced.toJSON()) as BPE).tokenize('a b').map((t) => t.value)).toEqual(['a b']);
  });

  it('malformed models fail with errors naming the problem', () => {
    expect(() => new BPE({ vocab: { a: 0, b: 1 }, merges: ['a c'] })).toThrow(/merge 0 \("a c"\) names token "c", which is not in the vocabulary/);
    expect(() => new BPE({ vocab: { a: 0, b: 1 }, merges: ['a b'] })).toThrow(/makes "ab", which is not in the vocabulary/);
    expect(() => new BPE({ vocab: { a: 0, b: 1, ab: 2 }, merges: ['a  b'] })).toThrow(/not two tokens separated by one space/);
    expect(() => new BPE({ vocab: { a: 0, b: 0 }, merges: [] })).toThrow(/id 0 is used by both/);
    expect(() => models.fromJSON({ type: 'BPE', vocab: { a: 'x' }, merges: [] })).toThrow(/vocab\["a"\] must be a non-negative integer id/);
    expect(() => models.fromJSON({ type: 'BPE', vocab: { a: 0 }, merges: [3] })).toThrow(/merges\[0\] must be "a b" or \["a", "b"\]/);
    expect(() => models.fromJSON({ type: 'NoSuchModel' })).toThrow(/unsupported model type 'NoSuchModel' \(supported: .*BPE/);
  });
});
