/** Shared fixtures for the trainer tests: a small corpus and a tiny model config (fast on 2 cores). */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainConfigInput } from '../../src/train/config.js';
import type { OutputStream } from '../../src/train/progress.js';
import type { GPTShape } from '../../src/train/train-gpt.js';

export function tempDir(prefix = 'weft-train-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The first 20,000 characters of TinyShakespeare, written to `dir`. */
export function smallCorpus(dir: string): string {
  const path = join(dir, 'small.txt');
  const text = readFileSync(new URL('../../data/tinyshakespeare.txt', import.meta.url), 'utf8').slice(0, 20_000);
  writeFileSync(path, text);
  return path;
}

export const TINY_MODEL: Partial<GPTShape> = { nLayer: 1, nHead: 2, nEmbd: 16 };

export function tinyConfig(data: string, over: Partial<TrainConfigInput> = {}): Partial<TrainConfigInput> {
  return { data, batchSize: 4, blockSize: 16, maxIters: 40, lr: 1e-2, minLr: 1e-3, warmupIters: 5, lrDecayIters: 100, evalInterval: 20, evalIters: 4, ...over };
}

/** A stream that keeps what is written. */
export class Capture implements OutputStream {
  text = '';
  constructor(readonly isTTY = false) {}
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}
