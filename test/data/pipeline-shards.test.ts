import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CharTokenizer } from '../../src/data/char-tokenizer.js';
import { INDEX_FILE, SHARD_TOKENIZER_FILE, shardFileName, writeShard, type ShardIndex, type TokenDtype } from '../../src/data/pipeline/pack.js';
import { isShardDir, loadShardTokenizer, ShardDataset } from '../../src/data/pipeline/shards.js';
import { TextDataset } from '../../src/data/text-dataset.js';
import { Generator } from '../../src/tensor/random.js';
import { loadTrainerState } from '../../src/train/checkpoint.js';
import { MetricsLog } from '../../src/train/metrics.js';
import { trainGPT } from '../../src/train/train-gpt.js';
import { Capture, smallCorpus, TINY_MODEL, tinyConfig } from '../train/helpers.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'weft-shards-'));
}

/** Writes `ids` as shards of the given sizes plus index.json and tokenizer.json. */
function writeShardDir(dir: string, ids: Int32Array, sizes: number[], dtype: TokenDtype, vocabSize: number, tokenizerJSON: unknown): void {
  let o = 0;
  const shards = sizes.map((n, i) => {
    const e = writeShard(dir, shardFileName(i), ids.subarray(o, o + n), dtype, vocabSize);
    o += n;
    return e;
  });
  expect(o).toBe(ids.length);
  const index: ShardIndex = {
    format: 'weft-token-shards',
    version: 1,
    dtype,
    seqLen: 16,
    vocabSize,
    eosId: 0,
    tokenizer: { file: SHARD_TOKENIZER_FILE, source: null, eos: '\n' },
    shards,
    totalTokens: ids.length,
    droppedTailTokens: 0,
  };
  writeFileSync(join(dir, INDEX_FILE), JSON.stringify(index));
  writeFileSync(join(dir, SHARD_TOKENIZER_FILE), JSON.stringify(tokenizerJSON));
}

describe('ShardDataset', () => {
  it('gives TextDataset’s batches draw for draw, in memory and by positioned reads, across shard boundaries', () => {
    const dir = tempDir();
    const ids = Int32Array.from({ length: 5000 }, (_, i) => (i * 7919) % 300);
    writeShardDir(dir, ids, [1234, 0, 17, 3749], 'uint16', 300, CharTokenizer.fromText('ab').toJSON());
    const text = new TextDataset(ids);
    for (const storage of ['memory', 'read'] as const) {
      const shards = ShardDataset.open(dir, { storage });
      expect(shards.numTokens).toBe(5000);
      expect(shards.tokens('train')).toEqual(text.train);
      expect(shards.tokens('val')).toEqual(text.val);
      expect(shards.windows('train', 64)).toBe(text.windows('train', 64));
      for (const split of ['train', 'val'] as const) {
        const g1 = new Generator(11);
        const g2 = new Generator(11);
        for (let k = 0; k < 5; k++) {
          const a = shards.batch(split, 8, 64, g1);
          const b = text.batch(split, 8, 64, g2);
          expect(a.x.toArray()).toEqual(b.x.toArray());
          expect(a.y.toArray()).toEqual(b.y.toArray());
        }
      }
      // A window that crosses from shard 0 through the empty shard into shard 2 and 3.
      const w = new Int32Array(40);
      shards.read(1220, w);
      expect(w).toEqual(ids.subarray(1220, 1260));
      shards.close();
    }
  });

  it('reads uint32 shards', () => {
    const dir = tempDir();
    const ids = Int32Array.from({ length: 300 }, (_, i) => 70_000 + i);
    writeShardDir(dir, ids, [100, 200], 'uint32', 70_300, CharTokenizer.fromText('ab').toJSON());
    expect(ShardDataset.open(dir).tokens()).toEqual(ids);
  });

  it('fails clearly on a corrupt, truncated or missing shard and on a bad index', () => {
    const dir = tempDir();
    const ids = Int32Array.from({ length: 100 }, (_, i) => i % 50);
    writeShardDir(dir, ids, [60, 40], 'uint16', 50, CharTokenizer.fromText('ab').toJSON());
    const shard = join(dir, shardFileName(1));
    const good = readFileSync(shard);
    const bad = Buffer.from(good);
    bad[0] = bad[0]! ^ 1;
    writeFileSync(shard, bad);
    expect(() => ShardDataset.open(dir)).toThrow(/shard-000001\.bin: SHA-256 [0-9a-f]{64} differs from index\.json's/);
    writeFileSync(shard, good.subarray(0, 10));
    expect(() => ShardDataset.open(dir)).toThrow(/10 bytes, but index\.json says 40 uint16 tokens \(80 bytes\)/);
    rmSync(shard);
    expect(() => ShardDataset.open(dir)).toThrow(/shard shard-000001\.bin listed in index\.json is missing/);
    const index = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8')) as ShardIndex;
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify({ ...index, totalTokens: 99 }));
    expect(() => ShardDataset.open(dir)).toThrow(/totalTokens 99 differs from the shards' sum 100/);
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify({ ...index, dtype: 'int8' }));
    expect(() => ShardDataset.open(dir)).toThrow(/index\.json: dtype: /);
    expect(isShardDir(join(dir, 'nope'))).toBe(false);
  });
});

describe('training on shards', () => {
  it('`weft train gpt --data <shard dir>` follows the same loss curve as the same tokens from a text file, and resumes', async () => {
    const dir = tempDir();
    const textFile = smallCorpus(dir);
    const text = readFileSync(textFile, 'utf8');
    const tokenizer = CharTokenizer.fromText(text);
    const ids = Int32Array.from(tokenizer.encode(text));
    const shardDir = join(dir, 'shards');
    const third = Math.floor(ids.length / 3);
    mkdirSync(shardDir);
    writeShardDir(shardDir, ids, [third, third, ids.length - 2 * third], 'uint16', tokenizer.vocabSize, tokenizer.toJSON());
    expect(isShardDir(shardDir)).toBe(true);
    expect(loadShardTokenizer(shardDir).vocabSize).toBe(tokenizer.vocabSize);

    const quiet = { stdout: new Capture(), stderr: new Capture() };
    const fromText = join(dir, 'from-text');
    const fromShards = join(dir, 'from-shards');
    const cfg = { maxIters: 30, evalInterval: 10 };
    await trainGPT({ config: tinyConfig(textFile, cfg), model: TINY_MODEL, outDir: fromText, ...quiet });
    const log = new Capture();
    await trainGPT({ config: tinyConfig(shardDir, cfg), model: TINY_MODEL, outDir: fromShards, stdout: log, stderr: new Capture() });
    expect(log.text).toMatch(/token shards/);

    const losses = (path: string): string[] =>
      MetricsLog.read(join(path, 'metrics.jsonl')).map((r) => JSON.stringify('loss' in r ? { iter: r.iter, loss: r.loss, lr: r.lr } : r));
    const a = losses(fromText);
    expect(a.length).toBe(30 + 4); // 30 iterations, evaluations at 0, 10, 20 and 30
    expect(losses(fromShards)).toEqual(a);
    // The run directory records the tokenizer the shards were made with.
    expect(JSON.parse(readFileSync(join(fromShards, 'tokenizer.json'), 'utf8'))).toEqual(tokenizer.toJSON());

    // Resuming a shard run continues from the shards (the checkpoint remembers the directory).
    const split = join(dir, 'split');
    await trainGPT({ config: tinyConfig(shardDir, { ...cfg, maxIters: 20 }), model: TINY_MODEL, outDir: split, ...quiet });
    await trainGPT({ config: { maxIters: 30 }, outDir: split, resume: true, ...quiet });
    expect(loadTrainerState(split).iter).toBe(30);
    expect(losses(split)).toEqual(a);
  });
});
