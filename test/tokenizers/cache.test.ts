/**
 * The compiled tokenizer cache (src/tokenizers/cache.ts): a compiled copy gives the same tokenizer
 * as the file (same saved form, same ids), is found again by path, size and time, is never used for
 * a changed file, and a damaged copy is ignored.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compiledCachePath, decodeCompiled, encodeCompiled, loadTokenizerJsonCached } from '../../src/tokenizers/cache.js';
import { loadTokenizer } from '../../src/tokenizers/load.js';
import { BPE } from '../../src/tokenizers/models/bpe.js';
import { LowercaseNormalizer } from '../../src/tokenizers/normalizers/lowercase.js';
import { SplitPreTokenizer } from '../../src/tokenizers/pre-tokenizers/split.js';
import { BertProcessing } from '../../src/tokenizers/processors/bert.js';
import { Tokenizer } from '../../src/tokenizers/tokenizer.js';

const ROOT = join(import.meta.dirname, '..', '..');
const GPT2 = join(ROOT, '..', 'shared', 'data', 'gpt2', 'tokenizer.json');
const SHAKESPEARE = join(ROOT, '..', 'shared', 'data', 'tinyshakespeare', 'input.txt');
const tmp = mkdtempSync(join(tmpdir(), 'weft-tok-cache-'));
const written: string[] = [];
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  for (const f of written) rmSync(f, { force: true });
});

/** A small BPE with a continuing-subword prefix, a normaliser, added tokens and a post-processor. */
function smallTokenizer(extraMerge = false): Tokenizer {
  const vocab = new Map<string, number>();
  for (const t of ['[UNK]', '[CLS]', '[SEP]', ...'abcdefghijklmnopqrstuvwxyz', '##a', '##b', '##e', '##l', 'he', 'hel', 'ab', '##ab']) vocab.set(t, vocab.size);
  const merges: [string, string][] = [
    ['h', '##e'],
    ['he', '##l'],
    ['a', '##b'],
    ['##a', '##b'],
  ];
  const model = new BPE({ vocab, merges: extraMerge ? merges : merges.slice(0, 3), unkToken: '[UNK]', continuingSubwordPrefix: '##' });
  const tok = new Tokenizer(model, {
    normalizer: new LowercaseNormalizer(),
    preTokenizer: new SplitPreTokenizer({ kind: 'regex', value: '\\s+' }, 'Removed'),
    postProcessor: new BertProcessing(['[SEP]', 2], ['[CLS]', 1]),
  });
  tok.addSpecialTokens(['[UNK]', '[CLS]', '[SEP]']);
  tok.addTokens([{ content: '<x>', lstrip: true }]);
  return tok;
}

const roundTrip = (tok: Tokenizer): Tokenizer => {
  const back = decodeCompiled(Buffer.concat(encodeCompiled(tok)));
  if (back === null) throw new Error('the compiled copy did not read back');
  return back;
};

describe('compiled tokenizer cache', () => {
  it('a compiled copy is the same tokenizer: saved form, ids and offsets', () => {
    const tok = smallTokenizer();
    const back = roundTrip(tok);
    expect(back.toJSON()).toEqual(tok.toJSON());
    const inputs = ['Hello HELL <x> abab', 'hel lab zz', ''];
    expect(back.encodeBatch(inputs)).toEqual(tok.encodeBatch(inputs));
  });

  it.skipIf(!existsSync(GPT2) || !existsSync(SHAKESPEARE))("GPT-2's compiled copy gives the file's ids on a corpus and its saved form", () => {
    const tok = Tokenizer.fromFile(GPT2);
    const back = roundTrip(tok);
    expect(back.toJSON()).toEqual(tok.toJSON());
    const text = readFileSync(SHAKESPEARE, 'utf8').slice(0, 200_000) + ' 你好，世界 🙂 <|endoftext|> x';
    expect(back.encode(text)).toEqual(tok.encode(text));
  });

  it('is found by path, size and time; a changed file is compiled afresh; a damaged copy is ignored', () => {
    const file = join(tmp, 'tokenizer.json');
    smallTokenizer().save(file);
    const first = loadTokenizerJsonCached(file);
    const cachePath = compiledCachePath(file);
    // Without a node_modules above the sources there is no cache to test (the loader still works).
    if (cachePath === null) return;
    written.push(cachePath);
    expect(existsSync(cachePath)).toBe(true);
    expect(loadTokenizerJsonCached(file).toJSON()).toEqual(first.toJSON());
    expect(loadTokenizer(tmp).encode('abab')).toEqual(first.encode('abab'));

    // The same size and a new time, with one more merge: the new rule is used, not the stale copy.
    smallTokenizer(true).save(file);
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const changed = loadTokenizerJsonCached(file);
    const newPath = compiledCachePath(file)!;
    written.push(newPath);
    expect(newPath).not.toBe(cachePath);
    expect(changed.encode('abab', { addSpecialTokens: false })).not.toEqual(first.encode('abab', { addSpecialTokens: false }));
    expect(changed.toJSON()).toEqual(smallTokenizer(true).toJSON());

    // A truncated copy: read from the file again (and rewritten whole).
    writeFileSync(newPath, readFileSync(newPath).subarray(0, 100));
    expect(loadTokenizerJsonCached(file).toJSON()).toEqual(smallTokenizer(true).toJSON());
    expect(decodeCompiled(readFileSync(newPath))).not.toBeNull();
  });

  it('rejects bytes that are not a whole compiled copy of this version', () => {
    const bytes = Buffer.concat(encodeCompiled(smallTokenizer()));
    expect(decodeCompiled(bytes.subarray(0, bytes.length - 4))).toBeNull();
    const wrongVersion = Buffer.from(bytes);
    wrongVersion.writeUInt32LE(99, 4);
    expect(decodeCompiled(wrongVersion)).toBeNull();
    expect(decodeCompiled(Buffer.alloc(8))).toBeNull();
  });
});
