/**
 * `weft bench tokenizers`: GPT-2 encode throughput (MB/s of UTF-8 input) of our Tokenizer against
 * js-tiktoken (pure JS) and tiktoken (Rust compiled to WASM), in the same run on the same text.
 * The anchors are dev dependencies, loaded dynamically: when one is missing its column is empty
 * and the reason is reported.
 *
 * Ours is timed two ways: "cold" clears the word cache before every repetition (every distinct
 * word pays for its merges, as in a one-off encode) — the headline figure, since the anchors keep
 * no cache — and "warm" keeps it (a long-running server). Ids are compared with each anchor.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer } from '../tokenizers/load.js';
import { BPE } from '../tokenizers/models/bpe.js';
import { bestTime, packageRoot, round } from './common.js';

export interface TokenizerBenchRecord {
  bench: 'tokenizers';
  corpus: string;
  bytes: number;
  tokens: number;
  weft_mbps: number;
  weft_warm_mbps: number;
  js_tiktoken_mbps: number | null;
  tiktoken_wasm_mbps: number | null;
  /** weft / js-tiktoken (> 1: we are faster). */
  ratio_js_tiktoken: number | null;
  /** weft / tiktoken WASM (> 1: we are faster; the goal is ≥ 1/1.5). */
  ratio_tiktoken_wasm: number | null;
  ids_equal_js_tiktoken: boolean | null;
  ids_equal_tiktoken_wasm: boolean | null;
  notes: string[];
}

export interface TokenizerBenchOptions {
  /** Directory with the GPT-2 tokenizer files (default ../shared/data/gpt2 next to the package). */
  gpt2Dir?: string;
  /** Corpora to encode (default TinyShakespeare, plus the Chinese corpus when present). */
  files?: string[];
  /** Seconds of repetitions per measurement (best time is kept). */
  minSeconds?: number;
}

type Encoder = (text: string) => ArrayLike<number>;

async function jsTiktoken(): Promise<Encoder | string> {
  try {
    const mod = (await import('js-tiktoken')) as { getEncoding(name: 'gpt2'): { encode(text: string, allowed?: string[] | 'all'): number[] } };
    const enc = mod.getEncoding('gpt2');
    return (t) => enc.encode(t, 'all');
  } catch (e) {
    return `js-tiktoken unavailable: ${(e as Error).message}`;
  }
}

async function tiktokenWasm(): Promise<Encoder | string> {
  try {
    const mod = (await import('tiktoken')) as { get_encoding(name: 'gpt2'): { encode(text: string, allowed?: string[] | 'all'): Uint32Array } };
    const enc = mod.get_encoding('gpt2');
    return (t) => enc.encode(t, 'all');
  } catch (e) {
    return `tiktoken (WASM) unavailable: ${(e as Error).message}`;
  }
}

function sameIds(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function defaultGpt2Dir(): string {
  return join(packageRoot(), '..', 'shared', 'data', 'gpt2');
}

export async function benchTokenizers(opts: TokenizerBenchOptions = {}): Promise<TokenizerBenchRecord[]> {
  const gpt2Dir = opts.gpt2Dir ?? defaultGpt2Dir();
  if (!existsSync(gpt2Dir)) throw new Error(`bench tokenizers: GPT-2 tokenizer directory ${gpt2Dir} not found (pass --gpt2 <dir>)`);
  const files = opts.files ?? [join(packageRoot(), 'data', 'tinyshakespeare.txt'), join(packageRoot(), '..', 'shared', 'data', 'zh', 'sanguo_yanyi.txt')].filter((f, i) => i === 0 || existsSync(f));
  const minSeconds = opts.minSeconds ?? 1;
  const tok = loadTokenizer(gpt2Dir);
  const model = tok.model;
  const clear = (): void => {
    if (model instanceof BPE) model.clearCache();
  };
  const js = await jsTiktoken();
  const wasm = await tiktokenWasm();
  const records: TokenizerBenchRecord[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const bytes = Buffer.byteLength(text, 'utf8');
    const notes: string[] = [];
    const mbps = (s: number): number => round(bytes / 1e6 / s, 2);
    const ours = tok.encode(text);
    const cold = bestTime(() => {
      clear();
      tok.encode(text);
    }, minSeconds);
    const warm = bestTime(() => tok.encode(text), minSeconds);
    const anchor = (enc: Encoder | string): { mbps: number | null; equal: boolean | null } => {
      if (typeof enc === 'string') {
        notes.push(enc);
        return { mbps: null, equal: null };
      }
      const equal = sameIds(ours, enc(text));
      if (!equal) notes.push('ids differ from an anchor');
      return { mbps: mbps(bestTime(() => enc(text), minSeconds)), equal };
    };
    const j = anchor(js);
    const w = anchor(wasm);
    const weft = mbps(cold);
    records.push({
      bench: 'tokenizers',
      corpus: file.split('/').pop()!,
      bytes,
      tokens: ours.length,
      weft_mbps: weft,
      weft_warm_mbps: mbps(warm),
      js_tiktoken_mbps: j.mbps,
      tiktoken_wasm_mbps: w.mbps,
      ratio_js_tiktoken: j.mbps === null ? null : round(weft / j.mbps, 3),
      ratio_tiktoken_wasm: w.mbps === null ? null : round(weft / w.mbps, 3),
      ids_equal_js_tiktoken: j.equal,
      ids_equal_tiktoken_wasm: w.equal,
      notes,
    });
  }
  return records;
}
