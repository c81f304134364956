/**
 * Greedy decoding speed (tokens/s) of LLaMA models with the KV cache: stories260K (the real llama2.c
 * checkpoint, when shared/data is present) and a 4-layer LLaMA of about 15M parameters with random
 * weights. The anchor is run.c's algorithm in NumPy (bench/llama2c_numpy.py), run in the same
 * process tree on the same llama2.c file with the same thread count; both decode from BOS, and the
 * record says whether they produced the same ids.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadLlama2c, serializeLlama2c } from '../io/llama2c.js';
import { Llama, type LlamaConfigInput } from '../models/llama.js';
import { nativeAddonInfo, setNativeThreads } from '../tensor/backend/native.js';
import { getBackend } from '../tensor/backend/index.js';
import { Generator } from '../tensor/random.js';
import { findNumpyPython, packageRoot, round } from './common.js';

/** ~15M parameters: 4 layers, dim 512, SwiGLU 1376, 8 heads (GQA on 4 KV heads), vocab 7168, tied. */
export const RANDOM_15M: LlamaConfigInput = {
  vocabSize: 7168,
  hiddenSize: 512,
  intermediateSize: 1376,
  nLayer: 4,
  nHead: 8,
  nKVHead: 4,
  maxPositionEmbeddings: 256,
  rmsNormEps: 1e-5,
  tieWordEmbeddings: true,
  initializerRange: 0.05,
};

export interface GenerateBenchRecord {
  model: string;
  params: number;
  tokens: number;
  tokens_per_s: number;
  numpy_tokens_per_s: number | null;
  /** ours over NumPy's tokens/s: above 1 means Weft is faster. */
  ratio: number | null;
  /** Whether NumPy's greedy ids equal ours (null without the anchor). */
  same_ids: boolean | null;
  threads: number;
  backend: string;
  anchor: string;
}

function runAnchor(path: string, tokens: number, threads: number): { tokensPerS: number; ids: number[]; blas: string } | { error: string } {
  const python = findNumpyPython();
  if (python === null) return { error: 'no python3 with numpy' };
  const script = join(packageRoot(), 'bench', 'llama2c_numpy.py');
  if (!existsSync(script)) return { error: `${script} is missing` };
  const r = spawnSync(python, [script, '--threads', String(threads), '--model', path, '--tokens', String(tokens)], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) return { error: `llama2c_numpy.py failed: ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}` };
  const rec = JSON.parse(r.stdout.trim().split('\n').pop()!) as { tokens_per_s: number; ids: number[]; blas: string };
  return { tokensPerS: rec.tokens_per_s, ids: rec.ids, blas: rec.blas };
}

/** Best of `reps` greedy decodes of `tokens` ids from BOS, in tokens per second. */
function timeDecode(model: Llama, tokens: number, reps: number): { tokensPerS: number; ids: number[] } {
  let best = Infinity;
  let ids: number[] = [];
  model.generate([1], { maxNewTokens: Math.min(4, tokens), temperature: 0 }); // warm-up
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    ids = model.generate([1], { maxNewTokens: tokens, temperature: 0 });
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return { tokensPerS: tokens / best, ids };
}

export function benchGenerate(opts: { tokens: number; threads: number; numpy: boolean; reps?: number }): GenerateBenchRecord[] {
  const records: GenerateBenchRecord[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-generate-'));
  try {
    const models: [string, string][] = [];
    const stories = join(packageRoot(), '..', 'shared', 'data', 'models', 'stories260K', 'stories260K.bin');
    if (existsSync(stories)) models.push(['stories260K', stories]);
    const random = new Llama(RANDOM_15M, { generator: new Generator(1234) });
    const randomPath = join(dir, 'random15M.bin');
    writeFileSync(randomPath, serializeLlama2c(random));
    models.push(['llama-4L-15M-random', randomPath]);
    for (const [name, path] of models) {
      const model = loadLlama2c(path);
      const tokens = Math.min(opts.tokens, model.config.maxPositionEmbeddings - 1);
      const ours = timeDecode(model, tokens, opts.reps ?? 3);
      const anchor = opts.numpy ? runAnchor(path, tokens, opts.threads) : { error: 'skipped (--no-numpy)' };
      const ok = 'tokensPerS' in anchor;
      records.push({
        model: name,
        params: model.numParameters(),
        tokens,
        tokens_per_s: round(ours.tokensPerS, 1),
        numpy_tokens_per_s: ok ? round(anchor.tokensPerS, 1) : null,
        ratio: ok ? round(ours.tokensPerS / anchor.tokensPerS, 3) : null,
        same_ids: ok ? anchor.ids.length === ours.ids.length && anchor.ids.every((id, i) => id === ours.ids[i]) : null,
        threads: opts.threads,
        backend: getBackend().name,
        anchor: ok ? `run.c in NumPy (${anchor.blas})` : anchor.error,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return records;
}

export function registerGenerateBench(bench: Command): void {
  bench
    .command('generate')
    .description('greedy LLaMA decoding tokens/s (stories260K, a 15M-param random LLaMA) against run.c in NumPy')
    .option('--json', 'one JSON object per line')
    .option('--tokens <n>', 'tokens to generate per run (default: 128)')
    .option('--threads <n>', 'threads for weft and numpy (default: the pool size)')
    .option('--no-numpy', 'skip the NumPy anchor')
    .action((opts: { json?: boolean; tokens?: string; threads?: string; numpy: boolean }) => {
      const tokens = opts.tokens === undefined ? 128 : Number(opts.tokens);
      if (!Number.isInteger(tokens) || tokens < 1) throw new Error(`bench generate: --tokens must be a positive integer, got ${opts.tokens}`);
      let threads = nativeAddonInfo()?.threads ?? 1;
      if (opts.threads !== undefined) {
        threads = Number(opts.threads);
        if (!Number.isInteger(threads) || threads < 1) throw new Error(`bench generate: --threads must be a positive integer, got ${opts.threads}`);
        setNativeThreads(threads);
      }
      const records = benchGenerate({ tokens, threads, numpy: opts.numpy });
      if (opts.json === true) {
        for (const r of records) console.log(JSON.stringify(r));
        return;
      }
      console.log(`greedy decoding, KV cache — backend ${records[0]!.backend}, ${threads} thread(s)`);
      console.log('  model                    params  tokens  tokens/s  numpy tok/s   ratio  same ids');
      for (const r of records) {
        const n = (x: number | null, w: number): string => (x === null ? '-' : String(x)).padStart(w);
        console.log(
          `  ${r.model.padEnd(22)}${n(r.params, 9)}${n(r.tokens, 8)}${n(r.tokens_per_s, 10)}${n(r.numpy_tokens_per_s, 13)}${n(r.ratio, 8)}${String(r.same_ids ?? '-').padStart(10)}`,
        );
      }
      console.log(`  anchor: ${records[0]!.anchor}`);
    });
}
