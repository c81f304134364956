import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CHAR_EOS,
  charTokenizerFor,
  decodeTokens,
  dtypeFor,
  encodeTokens,
  resolveEos,
  ShardAssembler,
  writeShard,
  writeShardParts,
  type TokenArray,
} from '../../src/data/pipeline/pack.js';
import { tokenizerFromSavedJSON } from '../../src/data/tokenizer.js';
import { TokenizeTask } from '../../src/data/pipeline/tasks.js';
import { CharTokenizer } from '../../src/tokenizers/char.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';

const GPT2 = join(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'gpt2');

describe('token shards', () => {
  it('uses uint16 while every id fits, uint32 beyond', () => {
    expect(dtypeFor(256)).toBe('uint16');
    expect(dtypeFor(65_536)).toBe('uint16');
    expect(dtypeFor(65_537)).toBe('uint32');
    expect(() => dtypeFor(0)).toThrow(/vocabSize must be a positive integer/);
  });

  it('writes raw little-endian ids and their SHA-256, atomically', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-pack-'));
    const e16 = writeShard(dir, 'a.bin', [1, 258, 65_535], 'uint16', 65_536);
    const bytes = readFileSync(join(dir, 'a.bin'));
    expect([...bytes]).toEqual([1, 0, 2, 1, 255, 255]);
    expect(e16).toEqual({ file: 'a.bin', tokens: 3, sha256: createHash('sha256').update(bytes).digest('hex') });
    writeShard(dir, 'b.bin', [70_000, 1], 'uint32', 100_000);
    expect([...readFileSync(join(dir, 'b.bin'))]).toEqual([0x70, 0x11, 0x01, 0, 1, 0, 0, 0]);
    expect([...decodeTokens(readFileSync(join(dir, 'b.bin')), 'uint32')]).toEqual([70_000, 1]);
    expect(() => encodeTokens([5, 300], 'uint16', 300)).toThrow(/token id 300 at position 1 is outside the vocabulary \[0, 300\)/);
    // Typed arrays take the bulk path: the same bytes, the same check.
    expect([...encodeTokens(Uint32Array.from([1, 258, 65_535]), 'uint16', 65_536)]).toEqual([1, 0, 2, 1, 255, 255]);
    expect(() => encodeTokens(Uint32Array.from([5, 7, 300]), 'uint16', 300)).toThrow(/token id 300 at position 2 is outside the vocabulary \[0, 300\)/);
    expect(() => decodeTokens(new Uint8Array(3), 'uint16')).toThrow(/not a whole number of uint16 tokens/);
  });

  it('packs a stream into full shards and keeps only whole sequences at the end', () => {
    const packer = new ShardAssembler(8, 'uint16', 100);
    const shards: number[][] = [];
    const flat = (parts: readonly TokenArray[]): number[] => parts.flatMap((p) => [...p]);
    const push = (ids: number[]): void => packer.append(Uint16Array.from(ids), (parts) => shards.push(flat(parts)));
    push([1, 2, 3]);
    push([4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
    // uint32 input bound for a uint16 shard is narrowed.
    packer.append(Uint32Array.from([19, 20, 21]), (parts) => shards.push(flat(parts)));
    expect(shards).toEqual([
      [1, 2, 3, 4, 5, 6, 7, 8],
      [9, 10, 11, 12, 13, 14, 15, 16],
    ]);
    const { tail, dropped } = packer.finish(2);
    expect(flat(tail)).toEqual([17, 18, 19, 20]);
    expect(tail.every((p) => p instanceof Uint16Array)).toBe(true);
    expect(dropped).toBe(1);
    expect(packer.pending).toBe(0);
    expect(() => packer.append(Uint16Array.from([5, 100]), () => undefined)).toThrow(/token id 100 at position 1 is outside the vocabulary \[0, 100\)/);
  });

  it('holds views, not copies: neighbouring slices of one buffer become one part, and the shard file has their bytes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-pack-'));
    const ids = Uint16Array.from({ length: 20 }, (_, i) => i * 1000);
    const packer = new ShardAssembler(12, 'uint16', 65_536);
    let full: readonly TokenArray[] = [];
    packer.append(ids.subarray(0, 5), (p) => (full = p));
    packer.append(ids.subarray(5, 9), (p) => (full = p));
    // A gap (a dropped document) starts a new part.
    packer.append(ids.subarray(10, 14), (p) => (full = p));
    expect(full.map((p) => [p.byteOffset / 2, p.length])).toEqual([
      [0, 9],
      [10, 3],
    ]);
    expect(full[0]!.buffer).toBe(ids.buffer);
    const entry = writeShardParts(dir, 's.bin', full);
    const bytes = readFileSync(join(dir, 's.bin'));
    expect(entry).toEqual({ file: 's.bin', tokens: 12, sha256: createHash('sha256').update(bytes).digest('hex') });
    expect([...decodeTokens(bytes, 'uint16')]).toEqual([...ids.subarray(0, 9), ...ids.subarray(10, 13)]);
    // Wider vocabularies: uint32 shards from uint16 input.
    const wide = new ShardAssembler(3, 'uint32', 70_000);
    let w: readonly TokenArray[] = [];
    wide.append(Uint16Array.from([1, 2, 3]), (p) => (w = p));
    expect(w[0]).toBeInstanceOf(Uint32Array);
    expect([...w[0]!]).toEqual([1, 2, 3]);
  });
});

describe('EOS and tokenizers', () => {
  it('a corpus character tokenizer gets U+0003 as its end of text', () => {
    const tok = charTokenizerFor('bca');
    expect(tok.vocab).toEqual([CHAR_EOS, 'a', 'b', 'c']);
    expect(resolveEos(tok)).toEqual({ id: 0, token: CHAR_EOS });
    expect(() => resolveEos(CharTokenizer.fromText('abc'))).toThrow(/none of the usual end-of-text tokens.*--eos/);
    expect(resolveEos(CharTokenizer.fromText('ab|'), '|')).toEqual({ id: 2, token: '|' });
    expect(() => resolveEos(tok, '<eos>')).toThrow(/"<eos>" is not in the tokenizer's vocabulary/);
  });

  it('tokenize task: ids + EOS per document, identical through the saved tokenizer.json (what workers load)', () => {
    const tok = charTokenizerFor('hello world');
    const task = TokenizeTask.fromInit({ tokenizer: JSON.parse(JSON.stringify(tok.toJSON())), eosId: 0 });
    const r = task.run(['hello', '', 'world']);
    expect([...r.lengths]).toEqual([6, 1, 6]);
    expect([...r.ids]).toEqual([...tok.encode('hello'), 0, 0, ...tok.encode('world'), 0]);
    expect(tokenizerFromSavedJSON(tok.toJSON())).toBeInstanceOf(CharTokenizer);
  });

  it.skipIf(!existsSync(GPT2))('GPT-2 BPE: <|endoftext|> is the EOS and the saved JSON encodes the same ids', () => {
    const gpt2 = loadTokenizer(GPT2);
    expect(resolveEos(gpt2)).toEqual({ id: 50_256, token: '<|endoftext|>' });
    const text = 'The quick brown fox — jumps over 13 lazy dogs.\n\nZwölf Boxkämpfer 日本語';
    const task = TokenizeTask.fromInit({ tokenizer: JSON.parse(JSON.stringify(gpt2.toJSON())), eosId: 50_256 });
    expect([...task.run([text]).ids]).toEqual([...gpt2.encode(text), 50_256]);
    // The orchestrator tokenizes with the tokenizer it loaded (no JSON round trip): same ids as the
    // workers' tokenizer rebuilt from the saved tokenizer.json, on real corpus text.
    const wiki = join(GPT2, '..', 'wikitext2', 'wiki.valid.tokens');
    const texts = existsSync(wiki) ? readFileSync(wiki, 'utf8').slice(0, 200_000).split('\n\n') : [text];
    const direct = new TokenizeTask(gpt2, 50_256).run(texts);
    const saved = task.run(texts);
    expect(direct.lengths).toEqual(saved.lengths);
    expect(direct.ids).toEqual(saved.ids);
    expect(dtypeFor(gpt2.vocabSize)).toBe('uint16');
  });
});
