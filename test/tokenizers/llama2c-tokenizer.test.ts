/**
 * llama2.c tokenizer files: stories260K's tok512.bin decodes the model's greedy sample (ids from
 * shared/data/README.md, verified there with llama2.c's run.c) and encodes the text back to the
 * same ids; the pieces are restored to SentencePiece form; malformed files fail clearly.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { llama2cTokenizer, llama2cTokenizerFromVocab, parseLlama2cTokenizer } from '../../src/tokenizers/formats/llama2c.js';

const TOK512 = join(__dirname, '../../../shared/data/models/stories260K/tok512.bin');
const GREEDY = '403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385'.split(' ').map(Number);
const TEXT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One';

/** A tokenizer.bin from (score, piece) records. */
function tokenizerBin(records: [number, string | Uint8Array][], maxLen = 16): Uint8Array {
  const parts: number[] = [];
  const push32 = (v: number, float = false): void => {
    const b = new Uint8Array(4);
    if (float) new DataView(b.buffer).setFloat32(0, v, true);
    else new DataView(b.buffer).setInt32(0, v, true);
    parts.push(...b);
  };
  push32(maxLen);
  for (const [score, piece] of records) {
    const bytes = typeof piece === 'string' ? new TextEncoder().encode(piece) : piece;
    push32(score, true);
    push32(bytes.length);
    parts.push(...bytes);
  }
  return Uint8Array.from(parts);
}

describe.skipIf(!existsSync(TOK512))('stories260K tok512.bin', () => {
  const tok = existsSync(TOK512) ? llama2cTokenizer(TOK512) : null;

  it('decodes the greedy sample, with or without the BOS in front', () => {
    expect(tok!.decode(GREEDY)).toBe(TEXT);
    expect(tok!.decode([1, ...GREEDY])).toBe(TEXT);
    expect(tok!.decode([1, ...GREEDY], { skipSpecialTokens: false })).toBe(`<s> ${TEXT}`); // as HF's LLaMA tokenizer: the decoder strips only the very first space
  });

  it('encodes the text back to BOS + the same ids', () => {
    expect(tok!.encode(TEXT)).toEqual([1, ...GREEDY]);
  });

  it('has the SentencePiece pieces and byte tokens', () => {
    const vocab = parseLlama2cTokenizer(readFileSync(TOK512), TOK512);
    expect(vocab.maxTokenLength).toBe(7);
    expect(vocab.pieces).toHaveLength(512);
    expect(vocab.pieces.slice(0, 4)).toEqual(['<unk>', '\n<s>\n', '\n</s>\n', '<0x00>']);
    expect(tok!.idToToken(1)).toBe('<s>');
    expect(tok!.idToToken(3 + 0x0a)).toBe('<0x0A>');
    expect(tok!.idToToken(403)!.startsWith('▁')).toBe(true);
    // Characters outside the 512-token vocabulary fall back to bytes, and decode back.
    expect(tok!.decode(tok!.encode('Zoë 🐉'))).toBe('Zoë 🐉');
  });
});

describe('llama2.c tokenizer format', () => {
  const small: [number, string][] = [
    [0, '<unk>'],
    [0, '\n<s>\n'],
    [0, '\n</s>\n'],
    [-1, ' '],
    [-2, 'a'],
    [-3, ' a'],
    [-4, 'b'],
    [-0.5, ' ab'],
  ];

  it('restores "▁" and the special tokens, and tokenizes like llama2.c', () => {
    const tok = llama2cTokenizerFromVocab(parseLlama2cTokenizer(tokenizerBin(small)));
    expect(tok.idToToken(5)).toBe('▁a');
    expect(tok.encode('ab a')).toEqual([1, 7, 5]);
    expect(tok.decode([1, 7, 5])).toBe('ab a');
  });

  it('rejects malformed files with the byte offset', () => {
    const good = tokenizerBin(small);
    expect(() => parseLlama2cTokenizer(good.subarray(0, 2), 't.bin')).toThrow(/llama2.c tokenizer t.bin: file is 2 bytes/);
    expect(() => parseLlama2cTokenizer(good.subarray(0, good.length - 1), 't.bin')).toThrow(/truncated: token 7 needs 3 bytes, 2 remain \(at byte \d+\)/);
    expect(() => parseLlama2cTokenizer(good.subarray(0, 10), 't.bin')).toThrow(/truncated: token 0 needs an 8-byte score/);
    expect(() => parseLlama2cTokenizer(tokenizerBin(small, -3))).toThrow(/max_token_length -3 is not a plausible length/);
    expect(() => parseLlama2cTokenizer(tokenizerBin([[0, '<unk>'], [0, new Uint8Array([0xff, 0xfe])]]))).toThrow(/token 1 is not valid UTF-8 \(at byte 25\)/);
    expect(() => parseLlama2cTokenizer(tokenizerBin([[0, '<unk>']]))).toThrow(/only 1 tokens/);
    const bad = good.slice();
    new DataView(bad.buffer).setInt32(8, 1 << 30, true);
    expect(() => parseLlama2cTokenizer(bad)).toThrow(/token 0 has length 1073741824/);
    expect(() => llama2cTokenizer('/nonexistent/tok.bin')).toThrow(/cannot read \/nonexistent\/tok.bin/);
  });
});
