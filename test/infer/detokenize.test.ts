/**
 * IncrementalDetokenizer with real tokenizers: GPT-2's byte-level BPE (../shared/data/gpt2) and the
 * Llama-2 SentencePiece vocabulary with byte fallback (../shared/data/models/llama-2-tiny-random);
 * both skip, saying why, when the shared data is absent. Emojis and CJK split across tokens never
 * come out broken, SentencePiece leading spaces match decode(), stop strings spanning three tokens
 * are never emitted, and (fast-check) the concatenated stream always equals decode(all ids) cut at
 * the first completed stop string, however the ids are chunked.
 */
import { existsSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IncrementalDetokenizer } from '../../src/infer/detokenize.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { tokenizerFromGGUF } from '../../src/tokenizers/formats/gguf-vocab.js';
import type { Tokenizer } from '../../src/tokenizers/tokenizer.js';

const GPT2 = '../shared/data/gpt2/tokenizer.json';
const LLAMA = '../shared/data/models/llama-2-tiny-random/llama-2-tiny-random.gguf';

/** What a streamed output should add up to: decode(ids) cut where the first stop string completes. */
function expectedStream(full: string, stops: readonly string[]): string {
  let bestEnd = Infinity;
  let bestStart = -1;
  for (const s of stops) {
    const at = full.indexOf(s);
    if (at < 0) continue;
    const end = at + s.length;
    if (end < bestEnd || (end === bestEnd && at < bestStart)) {
      bestEnd = end;
      bestStart = at;
    }
  }
  return bestStart < 0 ? full : full.slice(0, bestStart);
}

/** Streams `ids` in the given chunk sizes; returns the pieces and the flushed tail. */
function stream(tok: { decode(ids: readonly number[]): string }, ids: readonly number[], stops: readonly string[], chunks: readonly number[] = [], promptIds?: readonly number[]): { pieces: string[]; text: string; stopped: boolean } {
  const d = new IncrementalDetokenizer(tok, stops, { promptIds });
  const pieces: string[] = [];
  let i = 0;
  let c = 0;
  let stopped = false;
  while (i < ids.length && !stopped) {
    const n = Math.max(1, chunks[c++ % Math.max(1, chunks.length)] ?? 1);
    const r = d.push(ids.slice(i, i + n));
    i += n;
    pieces.push(r.text);
    stopped = r.stopped;
  }
  if (!stopped) pieces.push(d.flush());
  else expect(d.flush()).toBe('');
  return { pieces, text: pieces.join(''), stopped };
}

const noBrokenUtf8 = (pieces: string[]): void => {
  for (const p of pieces) {
    expect(p).not.toMatch(/\uFFFD/);
    // No lone surrogates either (half an astral character).
    expect(p).toBe(Buffer.from(p, 'utf8').toString('utf8'));
  }
};

const TEXTS = [
  'Hello world! 😀👍🏽 and 你好世界, façade — naïve 𝔘𝔫𝔦𝔠𝔬𝔡𝔢.',
  '  two leading spaces, tabs\tand\nnew lines 🚀🚀',
  'Ünïcödé 日本語のテキスト 🇫🇷 flags 👨‍👩‍👧 family',
];

function describeTokenizer(name: string, path: string, load: () => Tokenizer, exactOnInvalid: boolean): void {
  const present = existsSync(path);
  describe.skipIf(!present)(`IncrementalDetokenizer with ${name}${present ? '' : ` (skipped: ${path} is absent)`}`, () => {
    const tok = present ? load() : (null as unknown as Tokenizer);
    const enc = (s: string): number[] => tok.encode(s, { addSpecialTokens: false });

    it('never emits half a character: emojis and CJK split over byte tokens', () => {
      for (const text of TEXTS) {
        const ids = enc(text);
        const { pieces, text: out } = stream(tok, ids, []);
        expect(out).toBe(tok.decode(ids));
        noBrokenUtf8(pieces);
        // The test exercises splits: some character spans several tokens.
        expect(ids.some((id) => tok.decode([id]).includes('\uFFFD'))).toBe(true);
      }
    });

    it('with prompt context, the output text equals decode(prompt + output) minus decode(prompt) (leading spaces kept)', () => {
      const prompt = enc('Once upon a time,');
      const output = enc('Once upon a time, there was a 🐉 called 龍.').slice(prompt.length);
      const { text } = stream(tok, output, [], [1], prompt);
      const whole = tok.decode([...prompt, ...output]);
      const head = tok.decode(prompt);
      expect(whole.startsWith(head)).toBe(true);
      expect(text).toBe(whole.slice(head.length));
      expect(text.startsWith(' there')).toBe(true);
    });

    it('a stop string spanning three tokens is matched and never emitted, not even in part', () => {
      const text = 'The quick brown fox jumps over the lazy dog and runs away.';
      const ids = enc(text);
      // A stop string from inside token i, over token i + 1, into token i + 2 (three tokens).
      const ends = ids.map((_, k) => tok.decode(ids.slice(0, k + 1)).length);
      const len = (k: number): number => ends[k]! - (k === 0 ? 0 : ends[k - 1]!);
      const i = ids.findIndex((_, k) => k > 0 && k + 2 < ids.length && len(k) >= 3 && len(k + 2) >= 2);
      expect(i).toBeGreaterThan(0);
      const full = tok.decode(ids);
      const start = ends[i - 1]! + 1;
      const stop = full.slice(start, ends[i + 1]! + 1);
      expect(stop.length).toBeGreaterThan(4);
      const { pieces, text: out, stopped } = stream(tok, ids, [stop]);
      expect(stopped).toBe(true);
      expect(out).toBe(full.slice(0, start));
      // Nothing emitted ever held a character of the stop string past the cut.
      expect(pieces.join('')).not.toContain(stop.slice(0, 2));
    });

    it('a stop string that never completes is released at the end', () => {
      const ids = enc('ends with almost STO');
      const { text, stopped } = stream(tok, ids, ['STOP']);
      expect(stopped).toBe(false);
      expect(text).toBe(tok.decode(ids));
    });

    it('property: streamed text == decode(ids) cut at the first stop string, any chunking', () => {
      const alphabet = ['a', 'b', ' ', 'é', '你', '好', '😀', '🇫🇷', '\n', 'x', 'END', '</s', '>'];
      fc.assert(
        fc.property(
          fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 30 }),
          fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 6 }),
          fc.subarray(['END', 'b 你', '😀a', '\n\n', 'x</s>'], { minLength: 0, maxLength: 3 }),
          fc.boolean(),
          (parts, chunks, stops, rawIds) => {
            let ids = enc(parts.join(''));
            // Also arbitrary id sequences (may hold invalid UTF-8, which decodes to U+FFFD either way).
            if (rawIds) ids = ids.map((id, i) => (i % 3 === 2 ? (id * 7919) % tok.vocabSize : id));
            const { text } = stream(tok, ids, stops, chunks);
            const full = tok.decode(ids);
            // SentencePiece's ByteFallback turns a whole invalid byte run into U+FFFD, valid bytes of it
            // included, so on invalid UTF-8 output decode() itself is not prefix-consistent (a stream
            // emits a valid byte before the run turns invalid). Byte-level BPE is exact either way.
            if (exactOnInvalid || !full.includes('\uFFFD')) expect(text).toBe(expectedStream(full, stops));
          },
        ),
        { numRuns: 200, seed: 7 },
      );
    });
  });
}

describeTokenizer('GPT-2 byte-level BPE', GPT2, () => loadTokenizer(GPT2), true);
describeTokenizer('Llama-2 SentencePiece (byte fallback)', LLAMA, () => tokenizerFromGGUF(LLAMA), false);

describe('IncrementalDetokenizer (toy decoder)', () => {
  // One character per id: 0 → 'a', 1 → 'b', 2 → 'c', 3 → 'S', 4 → 'T'.
  const toy = { decode: (ids: readonly number[]): string => ids.map((i) => 'abcST'[i]!).join('') };

  it('holds back a possible stop prefix and releases it when the match fails', () => {
    const d = new IncrementalDetokenizer(toy, ['STS']);
    expect(d.push([0])).toEqual({ text: 'a', stopped: false });
    expect(d.push([3])).toEqual({ text: '', stopped: false });
    expect(d.push([4])).toEqual({ text: '', stopped: false });
    expect(d.push([0])).toEqual({ text: 'STa', stopped: false });
    expect(d.push([3, 4, 3, 1])).toEqual({ text: '', stopped: true });
    expect(d.stopped).toBe(true);
    expect(d.push([0])).toEqual({ text: '', stopped: true });
    expect(d.flush()).toBe('');
  });

  it('the stop string that completes first wins', () => {
    const d = new IncrementalDetokenizer(toy, ['abcc', 'bc']);
    expect(d.push([0, 1, 2])).toEqual({ text: 'a', stopped: true });
  });

  it('rejects empty stop strings', () => {
    expect(() => new IncrementalDetokenizer(toy, [''])).toThrow(/stop\[0\] must be a non-empty string/);
  });
});
