/**
 * Unigram model (Viterbi over the piece lattice) with Hugging Face `tokenizers` semantics — the
 * cases of its own unit tests (best path, unknowns fused, byte fallback) and a brute-force
 * check that the chosen path has the best total score — plus the SentencePiece-side components:
 * Metaspace pre-tokenizer and the Metaspace / ByteFallback / Fuse / Strip / Replace / Sequence
 * decoders.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteFallbackDecoder, byteOfToken } from '../../src/tokenizers/decoders/byte-fallback.js';
import { FuseDecoder } from '../../src/tokenizers/decoders/fuse.js';
import { MetaspaceDecoder } from '../../src/tokenizers/decoders/metaspace.js';
import { ReplaceDecoder } from '../../src/tokenizers/decoders/replace.js';
import { SequenceDecoder } from '../../src/tokenizers/decoders/sequence.js';
import { StripDecoder } from '../../src/tokenizers/decoders/strip.js';
import { Unigram } from '../../src/tokenizers/models/unigram.js';
import { Metaspace } from '../../src/tokenizers/pre-tokenizers/metaspace.js';
import { decoders, models, preTokenizers } from '../../src/tokenizers/registry.js';
import { Tokenizer } from '../../src/tokenizers/tokenizer.js';
import type { PreToken } from '../../src/tokenizers/types.js';

const HF_PIECES: [string, number][] = [
  ['<unk>', 0],
  ['ab', 0],
  ['cd', -0.1],
  ['abc', -0.2],
  ['a', -0.3],
  ['b', -0.4],
  ['c', -0.5],
  ['ABC', -0.5],
  ['abcdabcd', 20],
  ['q', 20.5],
  ['r', 20.5],
  ['qr', -0.5],
];

const values = (m: Unigram, s: string): string[] => m.tokenize(s).map((t) => t.value);

describe('Unigram model', () => {
  it('finds the best path (HF unigram test_encode / test_encode2)', () => {
    const simple = new Unigram(
      [
        ['<unk>', 0],
        ['a', 0],
        ['b', 0],
        ['c', 0],
        ['d', 0],
        ['cd', 1],
        ['ab', 2],
        ['abc', 5],
        ['abcd', 10],
      ],
      { unkId: 0 },
    );
    expect(values(simple, 'abcd')).toEqual(['abcd']);
    const m = new Unigram(HF_PIECES, { unkId: 0 });
    expect(values(m, 'abc')).toEqual(['abc']);
    expect(values(m, 'AB')).toEqual(['AB']); // two unknowns, fused
    expect(values(m, 'abcd')).toEqual(['ab', 'cd']);
    expect(values(m, 'abcc')).toEqual(['abc', 'c']);
    expect(values(m, 'xabcabaabcdd')).toEqual(['x', 'abc', 'ab', 'a', 'ab', 'cd', 'd']);
    expect(values(m, 'xyz東京')).toEqual(['xyz東京']);
    expect(values(m, 'ABC')).toEqual(['ABC']);
    expect(values(m, 'abABCcd')).toEqual(['ab', 'ABC', 'cd']);
    expect(values(m, 'ababcdabcdcd')).toEqual(['ab', 'abcdabcd', 'cd']);
    expect(values(m, 'abqrcd')).toEqual(['ab', 'q', 'r', 'cd']);
  });

  it('reports ids and offsets (UTF-16), unknowns as unk_id', () => {
    const m = new Unigram(HF_PIECES, { unkId: 0 });
    expect(m.tokenize('x😀ab').map((t) => [t.id, t.value, t.start, t.end])).toEqual([
      [0, 'x😀', 0, 3],
      [1, 'ab', 3, 5],
    ]);
    expect(m.tokenize('')).toEqual([]);
    const noUnk = new Unigram([['a', -1]]);
    expect(() => noUnk.tokenize('b')).toThrow(/no piece covers "b" and the model has no unk_id/);
    expect(() => new Unigram([['a', 0]], { unkId: 3 })).toThrow(/unk_id 3 is outside the vocabulary/);
  });

  it('falls back to byte pieces for unknown text when they all exist (HF test_unigram_bytefallback)', () => {
    const m = new Unigram(
      [
        ['<unk>', 0],
        ['<0xC3>', -0.01],
        ['<0xA9>', -0.03],
      ],
      { unkId: 0, byteFallback: true },
    );
    expect(m.tokenize('é').map((t) => [t.id, t.value, t.start, t.end])).toEqual([
      [1, '<0xC3>', 0, 1],
      [2, '<0xA9>', 0, 1],
    ]);
    // "?é" is one fused unknown; "?" has no byte piece, so the whole span is <unk>.
    expect(m.tokenize('?é').map((t) => t.id)).toEqual([0]);
  });

  it('picks a path with the best total score (brute force, fast-check)', () => {
    const pieces: [string, number][] = [['<unk>', 0], ['a', -1], ['b', -1.5], ['ab', -2], ['ba', -2.2], ['aba', -2.9], ['bb', -2.5], ['c', -4], ['abc', -3.1]];
    const m = new Unigram(pieces, { unkId: 0 });
    const score = new Map(pieces);
    const unk = -4 - 10;
    // Best score over all segmentations (unknown characters cost min_score - 10 each).
    const best = (s: string): number => {
      const dp = new Array<number>(s.length + 1).fill(-Infinity);
      dp[0] = 0;
      for (let i = 0; i < s.length; i++) {
        if (dp[i] === -Infinity) continue;
        let single = false;
        for (let j = i + 1; j <= s.length; j++) {
          const sc = score.get(s.slice(i, j));
          if (sc !== undefined && j > i) {
            dp[j] = Math.max(dp[j]!, dp[i]! + sc);
            if (j === i + 1) single = true;
          }
        }
        if (!single) dp[i + 1] = Math.max(dp[i + 1]!, dp[i]! + unk);
      }
      return dp[s.length]!;
    };
    fc.assert(
      fc.property(fc.stringMatching(/^[abcd]{1,14}$/), (s) => {
        const toks = m.tokenize(s);
        expect(toks.map((t) => t.value).join('')).toBe(s);
        // Unknown runs are fused: score them per character.
        const total = toks.reduce((acc, t) => acc + (t.id === 0 ? unk * t.value.length : score.get(t.value)!), 0);
        expect(total).toBeCloseTo(best(s), 9);
      }),
      { seed: 3, numRuns: 500 },
    );
  });

  it('round-trips through tokenizer.json ("vocab": [[piece, score], ...])', () => {
    const m = new Unigram(HF_PIECES, { unkId: 0, byteFallback: false });
    const json = JSON.parse(JSON.stringify(m.toJSON()));
    expect(json).toMatchObject({ type: 'Unigram', unk_id: 0, byte_fallback: false });
    expect(json.vocab[8]).toEqual(['abcdabcd', 20]);
    const back = models.fromJSON(json);
    expect(back.tokenize('xabcabaabcdd').map((t) => t.id)).toEqual(m.tokenize('xabcabaabcdd').map((t) => t.id));
    expect(back.tokenToId('qr')).toBe(11);
    expect(back.idToToken(7)).toBe('ABC');
    expect(() => models.fromJSON({ type: 'Unigram', vocab: [['a']] })).toThrow(/vocab\[0\] must be \[piece, score\]/);
    expect(() => models.fromJSON({ type: 'Unigram', vocab: [['a', 0]], unk_id: 'x' })).toThrow(/unk_id must be an integer or null/);
  });
});

function pre(p: Metaspace, text: string): [string, number, number][] {
  return p.preTokenize([{ text, start: 0, end: text.length } as PreToken]).map((t) => [t.text, t.start, t.end]);
}

describe('Metaspace pre-tokenizer', () => {
  it('replaces spaces, prepends and splits (HF metaspace tests)', () => {
    const m = new Metaspace('▁', 'always', true);
    expect(pre(m, 'Hey friend!')).toEqual([
      ['▁Hey', 0, 3],
      ['▁friend!', 3, 11],
    ]);
    expect(pre(m, 'Hey   friend!')).toEqual([
      ['▁Hey', 0, 3],
      ['▁', 3, 4],
      ['▁', 4, 5],
      ['▁friend!', 5, 13],
    ]);
    // Already starting with a space: no second prefix.
    expect(pre(m, ' Hey').map((t) => t[0])).toEqual(['▁Hey']);
    expect(pre(m, '')).toEqual([]);
    expect(pre(new Metaspace('▁', 'never', true), 'Hey friend').map((t) => t[0])).toEqual(['Hey', '▁friend']);
    expect(pre(new Metaspace('▁', 'always', false), 'Hey friend').map((t) => t[0])).toEqual(['▁Hey▁friend']);
  });

  it('prepend_scheme "first" only prefixes the piece at the start of the input', () => {
    const m = new Metaspace('▁', 'first', false);
    const pieces = m.preTokenize([
      { text: 'Hey', start: 0, end: 3 },
      { text: 'you', start: 8, end: 11 },
    ]);
    expect(pieces.map((p) => p.text)).toEqual(['▁Hey', 'you']);
  });

  it('reads current and legacy tokenizer.json forms', () => {
    expect(preTokenizers.fromJSON({ type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false }).toJSON()).toEqual({
      type: 'Metaspace',
      replacement: '▁',
      prepend_scheme: 'first',
      split: false,
    });
    expect(preTokenizers.fromJSON({ type: 'Metaspace', replacement: '▁', add_prefix_space: false }).toJSON()).toMatchObject({ prepend_scheme: 'never', split: true });
    expect(() => preTokenizers.fromJSON({ type: 'Metaspace', prepend_scheme: 'sometimes' })).toThrow(/prepend_scheme must be/);
    expect(() => preTokenizers.fromJSON({ type: 'Metaspace', replacement: '__' })).toThrow(/single character/);
  });
});

describe('SentencePiece decoders', () => {
  it('Metaspace drops the replacement in the first token (all of them) and turns the rest into spaces', () => {
    expect(new MetaspaceDecoder().decodeChain(['▁Hey', '▁friend!'])).toEqual(['Hey', ' friend!']);
    expect(new MetaspaceDecoder().decodeChain(['▁▁a', '▁b▁'])).toEqual(['a', ' b ']);
    expect(new MetaspaceDecoder('▁', 'never').decodeChain(['▁Hey', '▁friend!'])).toEqual([' Hey', ' friend!']);
  });

  it('ByteFallback rebuilds byte runs and marks invalid UTF-8 per byte', () => {
    const d = new ByteFallbackDecoder();
    expect(d.decodeChain(['Hey', 'friend!'])).toEqual(['Hey', 'friend!']);
    expect(d.decodeChain(['<0x61>'])).toEqual(['a']);
    expect(d.decodeChain(['<0xE5>', '<0x8f>', '<0xab>', 'a'])).toEqual(['叫', 'a']);
    expect(d.decodeChain(['<0xE5>', '<0x8f>', 'a'])).toEqual(['\ufffd', '\ufffd', 'a']);
    expect(d.decodeChain(['<0x', '<0xZZ>', '<0x61>'])).toEqual(['<0x', '<0xZZ>', 'a']);
    expect(byteOfToken('<0x0A>')).toBe(10);
    expect(byteOfToken('<0x0A>x')).toBeNull();
  });

  it('Fuse, Strip, Replace and Sequence compose like the LLaMA decoder', () => {
    expect(new FuseDecoder().decodeChain(['a', 'b', 'c'])).toEqual(['abc']);
    expect(new StripDecoder(' ', 1, 0).decodeChain(['  a  '])).toEqual([' a  ']);
    expect(new StripDecoder(' ', 0, 2).decodeChain(['  a   ', ' '])).toEqual(['  a ', '']);
    expect(new StripDecoder('▁', 5, 5).decodeChain(['▁a▁'])).toEqual(['a']);
    expect(new ReplaceDecoder({ kind: 'string', value: '▁' }, ' ').decodeChain(['▁a▁b', 'c'])).toEqual([' a b', 'c']);
    expect(new ReplaceDecoder({ kind: 'regex', value: '\\s+' }, '$&_').decodeChain(['a  b'])).toEqual(['a$&_b']);
    const llama = decoders.fromJSON({
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    });
    expect(llama).toBeInstanceOf(SequenceDecoder);
    expect(llama.decodeChain(['▁Hello', '▁', '<0xE4>', '<0xBD>', '<0xA0>', '▁world'])).toEqual(['Hello 你 world']);
    expect(decoders.fromJSON(llama.toJSON()).toJSON()).toEqual(llama.toJSON());
    expect(() => decoders.fromJSON({ type: 'Strip', content: ' ', start: -1, stop: 0 })).toThrow(/start must be a non-negative integer/);
  });

  it('a Metaspace + Unigram tokenizer encodes and decodes back', () => {
    const model = new Unigram(
      [
        ['<unk>', 0],
        ['▁', -2],
        ['▁hello', -3],
        ['▁world', -3],
        ['▁wor', -4],
        ['ld', -4],
        ['!', -2],
      ],
      { unkId: 0 },
    );
    const tok = new Tokenizer(model, { preTokenizer: new Metaspace(), decoder: new MetaspaceDecoder() });
    const e = tok.encodeFull('hello world!');
    expect(e.tokens).toEqual(['▁hello', '▁world', '!']);
    expect(e.offsets).toEqual([
      [0, 5],
      [5, 11],
      [11, 12],
    ]);
    expect(tok.decode(e.ids)).toBe('hello world!');
    const back = Tokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    expect(back.encode('hello world!  hello')).toEqual(tok.encode('hello world!  hello'));
  });
});
