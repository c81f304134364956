/** Shared fixtures for the evaluation tests: a tiny random GPT run directory and a scripted back end. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CharTokenizer } from '../../src/data/char-tokenizer.js';
import type { BackendCallbacks, EvalBackend, GenerationRequest, LoglikelihoodRequest, LoglikelihoodResult, RollingResult } from '../../src/eval/backends/backend.js';
import { GPT } from '../../src/models/gpt.js';
import { Generator } from '../../src/tensor/random.js';

export function tempDir(prefix = 'weft-eval-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A run directory (config.json, model.safetensors, tokenizer.json) of an untrained 1-layer char GPT. */
export async function tinyRunDir(blockSize = 32): Promise<{ dir: string; model: GPT; tokenizer: CharTokenizer }> {
  const text = readFileSync(new URL('../../data/tinyshakespeare.txt', import.meta.url), 'utf8');
  const tokenizer = CharTokenizer.fromText(text);
  const model = new GPT({ vocabSize: tokenizer.vocabSize, blockSize, nLayer: 1, nHead: 2, nEmbd: 16, bias: false }, { generator: new Generator(7) });
  const dir = tempDir('weft-eval-run-');
  await model.savePretrained(dir);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer.toJSON()));
  return { dir, model, tokenizer };
}

/** A back end whose answers come from functions (for testing the scoring, not a model). */
export class ScriptedBackend implements EvalBackend {
  readonly info = { kind: 'scripted' };
  readonly seen: { ll: LoglikelihoodRequest[]; rolling: string[]; gen: GenerationRequest[] } = { ll: [], rolling: [], gen: [] };
  constructor(
    private readonly fns: {
      ll?: (r: LoglikelihoodRequest) => number;
      rolling?: (text: string) => RollingResult;
      gen?: (r: GenerationRequest, sample: number) => string;
    },
  ) {}
  async loglikelihood(reqs: readonly LoglikelihoodRequest[], cb?: BackendCallbacks): Promise<LoglikelihoodResult[]> {
    this.seen.ll.push(...reqs);
    return reqs.map((r, i) => {
      cb?.onProgress?.(i + 1);
      cb?.meter?.recordScoring(r.context.length + r.continuation.length, 1);
      return { logprob: this.fns.ll!(r), isGreedy: false };
    });
  }
  async loglikelihoodRolling(texts: readonly string[], _c: number, cb?: BackendCallbacks): Promise<RollingResult[]> {
    this.seen.rolling.push(...texts);
    return texts.map((t, i) => {
      cb?.onProgress?.(i + 1);
      return this.fns.rolling!(t);
    });
  }
  async generate(reqs: readonly GenerationRequest[], cb?: BackendCallbacks): Promise<string[][]> {
    this.seen.gen.push(...reqs);
    return reqs.map((r, i) => {
      cb?.onProgress?.(i + 1);
      cb?.meter?.recordGeneration({ newTokens: 5, totalMs: 2, ttftMs: 1 });
      return Array.from({ length: r.samples }, (_, s) => this.fns.gen!(r, s));
    });
  }
  warnings(): string[] {
    return [];
  }
}
