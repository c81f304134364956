import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { BpeTrainer, computeAlphabet, type BpeTrainerOptions, type BpeTrainResult } from '../../src/tokenizers/trainers/bpe.js';
import { countWords, linesWithEndings, toByteLevelString, type TrainerProgress } from '../../src/tokenizers/trainers/common.js';
import { trainingPipeline, trainTokenizer } from '../../src/tokenizers/trainers/index.js';
import { BYTE_TABLES } from '../../src/tokenizers/util.js';

const SHAKESPEARE = readFileSync(new URL('../../data/tinyshakespeare.txt', import.meta.url), 'utf8');
const ZH_PATH = new URL('../../../shared/data/zh/sanguo_yanyi.txt', import.meta.url);
const HAS_ZH = existsSync(ZH_PATH);
const ZH = HAS_ZH ? readFileSync(ZH_PATH, 'utf8') : '';

/**
 * The obviously-correct trainer: every step recounts every pair in every word and picks the
 * highest count, ties to the smallest (left id, right id). O(merges × corpus) — the fast trainer
 * must learn exactly the same merges and ids.
 */
function naiveBpe(wordCounts: Map<string, number>, o: BpeTrainerOptions): BpeTrainResult {
  const vocab = new Map<string, number>();
  const tokens: string[] = [];
  const add = (t: string): number => {
    if (!vocab.has(t)) {
      vocab.set(t, tokens.length);
      tokens.push(t);
    }
    return vocab.get(t)!;
  };
  for (const t of o.specialTokens ?? []) add(t);
  for (const ch of computeAlphabet(wordCounts, [...(o.initialAlphabet ?? [])], o.limitAlphabet)) add(ch);
  const words: { ids: number[]; count: number }[] = [];
  for (const [word, count] of wordCounts) {
    const chars = [...word];
    const ids: number[] = [];
    chars.forEach((ch, i) => {
      if (!vocab.has(ch)) return;
      let s = ch;
      if (i > 0 && o.continuingSubwordPrefix !== undefined) s = o.continuingSubwordPrefix + s;
      if (i === chars.length - 1 && o.endOfWordSuffix !== undefined) s += o.endOfWordSuffix;
      ids.push(add(s));
    });
    words.push({ ids, count });
  }
  const len = (id: number): number => [...tokens[id]].length;
  const maxLen = o.maxTokenLength ?? Infinity;
  const merges: [string, string][] = [];
  while (vocab.size < (o.vocabSize ?? 30000)) {
    const counts = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.ids.length; i++) {
        if (len(w.ids[i]) + len(w.ids[i + 1]) > maxLen) continue;
        const k = `${w.ids[i]},${w.ids[i + 1]}`;
        counts.set(k, (counts.get(k) ?? 0) + w.count);
      }
    }
    let best: [number, number] | null = null;
    let bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number);
      if (c > bestCount || (c === bestCount && best !== null && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (best === null || bestCount < 1 || bestCount < (o.minFrequency ?? 0)) break;
    const [a, b] = best;
    let right = tokens[b];
    if (o.continuingSubwordPrefix !== undefined && right.startsWith(o.continuingSubwordPrefix)) right = right.slice(o.continuingSubwordPrefix.length);
    const m = add(tokens[a] + right);
    merges.push([tokens[a], tokens[b]]);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.ids.length; i++) {
        if (w.ids[i] === a && w.ids[i + 1] === b && i + 1 < w.ids.length) {
          out.push(m);
          i++;
        } else out.push(w.ids[i]);
      }
      w.ids = out;
    }
  }
  return { vocab, merges, specialTokens: [...(o.specialTokens ?? [])] };
}

const counts = (entries: [string, number][]): Map<string, number> => new Map(entries);

describe('BpeTrainer', () => {
  it('learns the hand-computed merges of the HF course corpus (hug 10, pug 5, pun 12, bun 4, hugs 5)', () => {
    const wc = counts([['hug', 10], ['pug', 5], ['pun', 12], ['bun', 4], ['hugs', 5]]);
    // u g: 10+5+5 = 20; then u n: 12+4 = 16; then h ug: 10+5 = 15; then p un (12) beats ug s (5) and p ug (5).
    const r = new BpeTrainer({ vocabSize: 11 }).train(wc);
    expect(r.merges).toEqual([['u', 'g'], ['u', 'n'], ['h', 'ug'], ['p', 'un']]);
    expect([...r.vocab.keys()]).toEqual(['b', 'g', 'h', 'n', 'p', 's', 'u', 'ug', 'un', 'hug', 'pun']);
    expect([...r.vocab.values()]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('puts special tokens first, then the alphabet by code point', () => {
    const r = new BpeTrainer({ vocabSize: 5, specialTokens: ['<pad>', '<|endoftext|>'] }).train(counts([['ba', 3], ['ab', 1]]));
    expect([...r.vocab.keys()]).toEqual(['<pad>', '<|endoftext|>', 'a', 'b', 'ba']);
    expect(r.merges).toEqual([['b', 'a']]);
  });

  it('ties go to the smallest (left id, right id) pair', () => {
    // "ab" and "cd" both occur 4 times; a < c so a b merges first; then c d.
    const r = new BpeTrainer({ vocabSize: 100 }).train(counts([['cd', 4], ['ab', 4]]));
    expect(r.merges).toEqual([['a', 'b'], ['c', 'd']]);
  });

  it('minFrequency stops merging when the best pair is rarer', () => {
    const wc = counts([['ab', 3], ['cd', 2], ['xy', 1]]);
    expect(new BpeTrainer({ vocabSize: 100, minFrequency: 3 }).train(wc).merges).toEqual([['a', 'b']]);
    expect(new BpeTrainer({ vocabSize: 100, minFrequency: 2 }).train(wc).merges).toEqual([['a', 'b'], ['c', 'd']]);
    expect(new BpeTrainer({ vocabSize: 100, minFrequency: 0 }).train(wc).merges).toEqual([['a', 'b'], ['c', 'd'], ['x', 'y']]);
  });

  it('limitAlphabet keeps the most frequent characters and drops the rest from words; initialAlphabet always stays', () => {
    const wc = counts([['aab', 5], ['zc', 1]]);
    const r = new BpeTrainer({ vocabSize: 3, limitAlphabet: 2 }).train(wc);
    expect([...r.vocab.keys()]).toEqual(['a', 'b', 'aa']);
    const r2 = new BpeTrainer({ vocabSize: 4, limitAlphabet: 2, initialAlphabet: ['q'] }).train(wc);
    expect([...r2.vocab.keys()]).toEqual(['a', 'q', 'aa']);
    // 'z' is dropped, so "zc" is just "c" — no "zc" pair can form.
    const r3 = new BpeTrainer({ vocabSize: 10, limitAlphabet: 3 }).train(counts([['zc', 1], ['cc', 9], ['ab', 9]]));
    expect(r3.merges.some(([l]) => l === 'z')).toBe(false);
  });

  it('continuingSubwordPrefix marks non-initial characters and is stripped from the right side of a merge', () => {
    const r = new BpeTrainer({ vocabSize: 100, continuingSubwordPrefix: '##' }).train(counts([['abc', 2]]));
    expect(r.merges).toEqual([['a', '##b'], ['ab', '##c']]);
    expect([...r.vocab.keys()]).toEqual(['a', 'b', 'c', '##b', '##c', 'ab', 'abc']);
  });

  it('endOfWordSuffix marks the last character', () => {
    const r = new BpeTrainer({ vocabSize: 100, endOfWordSuffix: '</w>' }).train(counts([['ab', 2]]));
    expect(r.merges).toEqual([['a', 'b</w>']]);
    expect(r.vocab.has('ab</w>')).toBe(true);
  });

  it('matches the naive full-recount trainer on random small corpora (merges, vocab and ids)', () => {
    const alphabet = ['a', 'b', 'c', 'd', 'é', '中', '😀'];
    const word = fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 9 }).map((cs) => cs.join(''));
    const corpus = fc.array(fc.tuple(word, fc.integer({ min: 1, max: 6 })), { minLength: 1, maxLength: 25 });
    const options = fc.record({
      vocabSize: fc.integer({ min: 1, max: 60 }),
      minFrequency: fc.integer({ min: 0, max: 4 }),
      prefix: fc.boolean(),
      suffix: fc.boolean(),
      limit: fc.option(fc.integer({ min: 0, max: 7 }), { nil: undefined }),
      maxLen: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
      special: fc.boolean(),
    });
    fc.assert(
      fc.property(corpus, options, (entries, opt) => {
        const wc = new Map<string, number>();
        for (const [w, c] of entries) wc.set(w, (wc.get(w) ?? 0) + c);
        const o: BpeTrainerOptions = {
          vocabSize: opt.vocabSize,
          minFrequency: opt.minFrequency,
          continuingSubwordPrefix: opt.prefix ? '##' : undefined,
          endOfWordSuffix: opt.suffix ? '</w>' : undefined,
          limitAlphabet: opt.limit,
          maxTokenLength: opt.maxLen,
          specialTokens: opt.special ? ['<s>', 'a'] : [],
          initialAlphabet: opt.special ? ['x'] : [],
        };
        const fast = new BpeTrainer(o).train(wc);
        const ref = naiveBpe(wc, o);
        expect(fast.merges).toEqual(ref.merges);
        expect([...fast.vocab]).toEqual([...ref.vocab]);
      }),
      { numRuns: 300, seed: 4242 },
    );
  });

  it('matches the naive trainer on a real text sample (space-split words of TinyShakespeare)', () => {
    const text = SHAKESPEARE.slice(0, 30_000);
    const wc = new Map<string, number>();
    for (const w of text.split(/\s+/)) if (w !== '') wc.set(w, (wc.get(w) ?? 0) + 1);
    const o = { vocabSize: 300, minFrequency: 2 };
    const fast = new BpeTrainer(o).train(wc);
    expect(fast.merges.length).toBeGreaterThan(200);
    expect(fast.merges).toEqual(naiveBpe(wc, o).merges);
  });

  it('matches the naive trainer on byte-level words of English and Chinese text (the GPT-2 pipeline)', () => {
    const text = SHAKESPEARE.slice(500_000, 520_000) + (HAS_ZH ? ZH.slice(100_000, 106_000) : '天下大势，分久必合，合久必分。\n'.repeat(50));
    const wc = countWords(linesWithEndings(text), trainingPipeline('bpe'));
    const o = { vocabSize: 450, minFrequency: 2, specialTokens: ['<|endoftext|>'], initialAlphabet: BYTE_TABLES.byteToChar };
    const fast = new BpeTrainer(o).train(wc);
    expect(fast.merges.length).toBe(450 - 257);
    expect(fast.merges).toEqual(naiveBpe(wc, o).merges);
  });

  it.skipIf(!HAS_ZH)('trains the benchmark vocabulary: 8,000 byte-level tokens on TinyShakespeare + the Chinese corpus', () => {
    const tok = trainTokenizer([SHAKESPEARE, ZH], { type: 'bpe', vocabSize: 8000 });
    expect(tok.vocabSize).toBe(8000);
    const vocab = tok.getVocab();
    // Frequent names of each corpus became single tokens.
    const words = ['ROMEO', ' the', ' KING', '玄德', '孔明', '曹操'];
    expect(words.filter((w) => !vocab.has(toByteLevelString(w)))).toEqual([]);
    const sample = ZH.slice(0, 2000) + SHAKESPEARE.slice(0, 2000);
    expect(tok.decode(tok.encode(sample))).toBe(sample);
    // Well compressed: several bytes per token on the training text.
    expect(Buffer.byteLength(sample) / tok.encode(sample).length).toBeGreaterThan(2.5);
  });

  it('reports merge progress up to the number of merges learned', () => {
    const seen: TrainerProgress[] = [];
    const r = new BpeTrainer({ vocabSize: 11, onProgress: (p) => seen.push({ ...p }) }).train(counts([['hug', 10], ['pug', 5], ['pun', 12], ['bun', 4], ['hugs', 5]]));
    expect(seen[0]).toEqual({ phase: 'merges', done: 0, total: 4 });
    expect(seen.at(-1)).toEqual({ phase: 'merges', done: r.merges.length, total: 4 });
  });

  it('rejects bad options with the option named', () => {
    expect(() => new BpeTrainer({ vocabSize: 0 })).toThrow(/BpeTrainer: vocabSize must be a positive integer, got 0/);
    expect(() => new BpeTrainer({ minFrequency: -1 })).toThrow(/minFrequency must be an integer ≥ 0/);
    expect(() => new BpeTrainer({ initialAlphabet: ['ab'] })).toThrow(/initialAlphabet entries must be single characters, got "ab"/);
    expect(() => new BpeTrainer({ specialTokens: ['<s>', '<s>'] })).toThrow(/special token "<s>" is listed twice/);
    expect(() => new BpeTrainer({ maxTokenLength: 0 })).toThrow(/maxTokenLength must be a positive integer/);
  });
});
