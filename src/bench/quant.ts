/**
 * `weft bench quant [--json]`: what quantization buys at decode time, from one run.
 *
 *  1. Greedy decoding (batch 1, KV cache: Llama.forwardCached) of a random-initialised LLaMA of
 *     ~77M parameters (10 layers, 768 wide, SwiGLU 2048, vocabulary 4096: decoding is memory-bound)
 *     with its projections in f32 and swapped for QuantizedLinear in int8, q8_0, q4_0, q4_1, q4_g128
 *     and tq2; tokens/s and the ratio to f32 (targets: int8 ≥ 1.8×, q4 ≥ 3×).
 *  2. W8A8: the INT8 GEMM (per-token activation quantization included) against the f32 GEMM at
 *     m = n = k = 1024, both computing x · Wᵀ (target ≥ 2×).
 *  3. Anchor: the same model exported to GGUF (q4_0, q8_0) decoded by llama.cpp (node-llama-cpp,
 *     when bench/anchors is installed) and by Weft straight from the file's blocks, same thread count,
 *     rounds alternating between the two engines.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { type QuantFormat, quantizeMatrix, quantizedMatrixBytes } from '../compress/quant/formats.js';
import { int8Gemm, quantKernelName } from '../compress/quant/kernels.js';
import { QuantizedLinear } from '../compress/quant/linear.js';
import { loadQuantizedGGUF, quantizeModelWeights, replaceModule } from '../compress/quant/model.js';
import { exportGGUF } from '../io/gguf-export.js';
import { Llama, type LlamaConfigInput } from '../models/llama.js';
import { Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { getBackend } from '../tensor/backend/index.js';
import { nativeAddonInfo, setNativeThreads } from '../tensor/backend/native.js';
import { linear } from '../tensor/index.js';
import { Generator } from '../tensor/random.js';
import { randn } from '../tensor/creation.js';
import { sentencePieceTokenizer } from '../tokenizers/formats/gguf-vocab.js';
import { round } from './common.js';
import { loadNodeLlamaCpp, type NodeLlamaCpp } from './llamacpp.js';

export const QUANT_BENCH_MODEL: LlamaConfigInput = {
  vocabSize: 4096,
  hiddenSize: 768,
  intermediateSize: 2048,
  nLayer: 10,
  nHead: 12,
  maxPositionEmbeddings: 512,
};

const TARGETS: Partial<Record<QuantFormat | 'f32', number>> = { int8: 1.8, q4_0: 3, q4_1: 3 };

export interface QuantDecodeRecord {
  bench: 'quant-decode';
  format: QuantFormat | 'f32';
  params: number;
  /** Bytes of the projection weights (what each token streams), scales included. */
  weight_bytes: number;
  tokens: number;
  /** Wall clock, best of the rounds. */
  tokens_per_s: number;
  ratio_vs_f32: number;
  /** By this process's CPU time (all threads): steadier than wall clock on a shared machine. */
  cpu_tokens_per_s: number;
  cpu_ratio_vs_f32: number;
  target: number | null;
  kernel: string;
  threads: number;
}

export interface QuantGemmRecord {
  bench: 'quant-gemm';
  m: number;
  n: number;
  k: number;
  int8_gflops: number;
  f32_gflops: number;
  ratio: number;
  target: number;
  kernel: string;
  f32_kernel: string;
  threads: number;
}

export interface QuantAnchorRecord {
  bench: 'quant-llamacpp';
  type: 'q4_0' | 'q8_0';
  tokens: number;
  weft_tokens_per_s: number;
  llamacpp_tokens_per_s: number | null;
  ratio: number | null;
  /** The same by CPU time (both engines run in this process): steadier on a shared machine. */
  weft_cpu_tokens_per_s: number;
  llamacpp_cpu_tokens_per_s: number | null;
  cpu_ratio: number | null;
  target: number | null;
  anchor: string;
  threads: number;
}

export type QuantBenchRecord = QuantDecodeRecord | QuantGemmRecord | QuantAnchorRecord;

/** Seconds of one greedy decode of `tokens` ids after BOS: wall clock and this process's CPU time. */
function decodeOnce(model: Llama, tokens: number): { wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  model.generate([1], { maxNewTokens: tokens, temperature: 0 });
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6 };
}

function projectionBytes(model: Module): number {
  let bytes = 0;
  for (const [name, m] of model.namedModules()) {
    if (m instanceof QuantizedLinear) bytes += quantizedMatrixBytes(m.qweight);
    else if (m instanceof Linear && !name.endsWith('lm_head')) bytes += m.weight.numel * 4;
  }
  return bytes;
}

export function benchQuantDecode(opts: { tokens: number; rounds: number; formats: readonly (QuantFormat | 'f32')[]; threads: number }): QuantDecodeRecord[] {
  const model = new Llama(QUANT_BENCH_MODEL, { generator: new Generator(1) });
  model.eval();
  const params = model.numParameters();
  const originals = model.namedModules().filter(([n]) => /\.(q|k|v|o|gate|up|down)_proj$/.test(n));
  // Every format's layers are built first; the timed rounds then cycle through the formats, so a
  // change in machine load during the run hits all of them alike (best of the rounds counts).
  const formats = opts.formats.includes('f32') ? opts.formats : (['f32', ...opts.formats] as const);
  const layerSets = new Map<QuantFormat | 'f32', [string, Module][]>();
  const bytes = new Map<QuantFormat | 'f32', number>();
  for (const format of formats) {
    if (format !== 'f32') quantizeModelWeights(model, format);
    layerSets.set(format, model.namedModules().filter(([n]) => /\.(q|k|v|o|gate|up|down)_proj$/.test(n)));
    bytes.set(format, projectionBytes(model));
    for (const [name, m] of originals) replaceModule(model, name, m);
  }
  const wall = new Map<QuantFormat | 'f32', number>();
  const cpu = new Map<QuantFormat | 'f32', number>();
  for (let r = 0; r <= opts.rounds; r++) {
    for (const format of formats) {
      for (const [name, m] of layerSets.get(format)!) replaceModule(model, name, m);
      const t = decodeOnce(model, r === 0 ? 4 : opts.tokens); // round 0 warms every format up
      if (r > 0) {
        wall.set(format, Math.min(wall.get(format) ?? Infinity, t.wall));
        cpu.set(format, Math.min(cpu.get(format) ?? Infinity, t.cpu));
      }
    }
  }
  for (const [name, m] of originals) replaceModule(model, name, m);
  const f32Wall = wall.get('f32')!;
  const f32Cpu = cpu.get('f32')!;
  return opts.formats.map((format) => ({
    bench: 'quant-decode' as const,
    format,
    params,
    weight_bytes: bytes.get(format)!,
    tokens: opts.tokens,
    tokens_per_s: round(opts.tokens / wall.get(format)!, 1),
    ratio_vs_f32: round(f32Wall / wall.get(format)!, 2),
    cpu_tokens_per_s: round(opts.tokens / cpu.get(format)!, 1),
    cpu_ratio_vs_f32: round(f32Cpu / cpu.get(format)!, 2),
    target: TARGETS[format] ?? null,
    kernel: format === 'f32' ? `f32 gemm (${getBackend().name})` : quantKernelName(),
    threads: opts.threads,
  }));
}

export function benchQuantGemm(opts: { size: number; rounds: number; threads: number }): QuantGemmRecord {
  const n = opts.size;
  const g = new Generator(2);
  const x = randn([n, n], { generator: g });
  const w = randn([n, n], { generator: g });
  const q = quantizeMatrix(w.f32(), n, n, 'int8');
  const out = new Float32Array(n * n);
  let bestI = Infinity;
  let bestF = Infinity;
  linear(x, w).dispose();
  int8Gemm(q, x.f32(), n, { out });
  for (let r = 0; r < opts.rounds; r++) {
    let t0 = performance.now();
    linear(x, w).dispose();
    bestF = Math.min(bestF, performance.now() - t0);
    t0 = performance.now();
    int8Gemm(q, x.f32(), n, { out });
    bestI = Math.min(bestI, performance.now() - t0);
  }
  const flop = 2 * n * n * n;
  return {
    bench: 'quant-gemm',
    m: n,
    n,
    k: n,
    int8_gflops: round(flop / bestI / 1e6, 1),
    f32_gflops: round(flop / bestF / 1e6, 1),
    ratio: round(bestF / bestI, 2),
    target: 2,
    kernel: quantKernelName(),
    f32_kernel: `gemm (${getBackend().name})`,
    threads: opts.threads,
  };
}

/** A SentencePiece vocabulary of `size` pieces (control tokens, byte fallback, filler words). */
function benchTokenizer(size: number): ReturnType<typeof sentencePieceTokenizer> {
  const pieces = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (let i = pieces.length; i < size; i++) pieces.push(`▁w${i}`);
  return sentencePieceTokenizer({ pieces, scores: pieces.map((_, i) => -i), unkId: 0, bosId: 1, eosId: 2 });
}

/** One llama.cpp model loaded in this process; each decode() times one greedy run (seconds by wall clock and CPU). */
interface LlamaCppRunner {
  decode(): Promise<{ wall: number; cpu: number }>;
  close(): Promise<void>;
}

async function openLlamaCpp(lib: NodeLlamaCpp, path: string, tokens: number, threads: number): Promise<LlamaCppRunner> {
  const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: lib.LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: path });
  return {
    async decode() {
      const context = await model.createContext({ threads, contextSize: Math.max(64, tokens + 8) });
      let n = 0;
      let t0 = 0;
      let c0 = process.cpuUsage();
      try {
        for await (const _ of context.getSequence().evaluate([1], { temperature: 0 })) {
          // The clocks start at the first generated token, so the 1-token prompt is not counted.
          if (n === 0) {
            t0 = performance.now();
            c0 = process.cpuUsage();
          }
          if (++n === tokens + 1) break;
        }
        const c = process.cpuUsage(c0);
        return { wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
      } finally {
        await context.dispose();
      }
    },
    async close() {
      await model.dispose();
      await llama.dispose();
    },
  };
}

export async function benchQuantAnchor(opts: { tokens: number; rounds: number; threads: number }): Promise<QuantAnchorRecord[]> {
  const lib = await loadNodeLlamaCpp();
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-quant-'));
  const records: QuantAnchorRecord[] = [];
  try {
    const model = new Llama(QUANT_BENCH_MODEL, { generator: new Generator(1) });
    for (const type of ['q4_0', 'q8_0'] as const) {
      const path = join(dir, `bench-${type}.gguf`);
      await exportGGUF(model, benchTokenizer(QUANT_BENCH_MODEL.vocabSize), path, type);
      const weft = loadQuantizedGGUF(path).model;
      const anchor = lib === null ? null : await openLlamaCpp(lib, path, opts.tokens, opts.threads);
      const ours = { wall: Infinity, cpu: Infinity };
      const theirs = { wall: Infinity, cpu: Infinity };
      try {
        // Rounds alternate between the engines (round 0 warms both up), so a change in machine
        // load hits both alike; the best round of each counts.
        for (let r = 0; r <= opts.rounds; r++) {
          const o = decodeOnce(weft, r === 0 ? 4 : opts.tokens);
          const t = anchor === null ? null : await anchor.decode();
          if (r === 0) continue;
          ours.wall = Math.min(ours.wall, o.wall);
          ours.cpu = Math.min(ours.cpu, o.cpu);
          if (t !== null) {
            theirs.wall = Math.min(theirs.wall, t.wall);
            theirs.cpu = Math.min(theirs.cpu, t.cpu);
          }
        }
      } finally {
        await anchor?.close();
      }
      const tps = (s: number): number => round(opts.tokens / s, 1);
      records.push({
        bench: 'quant-llamacpp',
        type,
        tokens: opts.tokens,
        weft_tokens_per_s: tps(ours.wall),
        llamacpp_tokens_per_s: anchor === null ? null : tps(theirs.wall),
        ratio: anchor === null ? null : round(theirs.wall / ours.wall, 2),
        weft_cpu_tokens_per_s: tps(ours.cpu),
        llamacpp_cpu_tokens_per_s: anchor === null ? null : tps(theirs.cpu),
        cpu_ratio: anchor === null ? null : round(theirs.cpu / ours.cpu, 2),
        target: type === 'q4_0' ? 0.8 : null,
        anchor: lib === null ? 'node-llama-cpp not installed (npm run bench:anchors)' : `llama.cpp (node-llama-cpp), ${opts.threads} thread(s)`,
        threads: opts.threads,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return records;
}

const ALL_FORMATS: readonly (QuantFormat | 'f32')[] = ['f32', 'int8', 'q8_0', 'q4_0', 'q4_1', 'q4_g128', 'tq2'];
const BENCH_PARTS = ['decode', 'gemm', 'llamacpp'] as const;

export function registerQuantBench(bench: Command): void {
  bench
    .command('quant')
    .description('decode tokens/s of a ~77M LLaMA in f32 vs int8/q8_0/q4_0/q4_1/q4_g128/tq2, INT8 vs f32 GEMM, and llama.cpp on the same GGUF')
    .option('--json', 'one JSON object per line')
    .option('--tokens <n>', 'tokens generated per timed decode', '32')
    .option('--rounds <n>', 'timed decodes per format, interleaved across formats (best counts)', '3')
    .option('--formats <list>', `comma-separated subset of ${ALL_FORMATS.join(',')}`)
    .option('--threads <n>', 'threads for Weft and llama.cpp (default: the pool size)')
    .option('--no-llamacpp', 'skip the llama.cpp anchor')
    .option('--only <parts>', `comma-separated subset of ${BENCH_PARTS.join(',')} (e.g. --only llamacpp for the GGUF comparison alone)`)
    .action(async (opts: { json?: boolean; tokens: string; rounds: string; formats?: string; threads?: string; llamacpp: boolean; only?: string }) => {
      const int = (s: string, what: string): number => {
        const v = Number(s);
        if (!Number.isInteger(v) || v < 1) throw new Error(`bench quant: ${what} must be a positive integer, got '${s}'`);
        return v;
      };
      const tokens = int(opts.tokens, '--tokens');
      const rounds = int(opts.rounds, '--rounds');
      let threads = nativeAddonInfo()?.threads ?? 1;
      if (opts.threads !== undefined) {
        threads = int(opts.threads, '--threads');
        setNativeThreads(threads);
      }
      const formats = opts.formats === undefined ? ALL_FORMATS : opts.formats.split(',').map((f) => f.trim());
      for (const f of formats) {
        if (!(ALL_FORMATS as readonly string[]).includes(f)) throw new Error(`bench quant: --formats entry '${f}' is not one of ${ALL_FORMATS.join(', ')}`);
      }
      const parts = new Set<string>(opts.only === undefined ? BENCH_PARTS : opts.only.split(',').map((p) => p.trim()));
      for (const p of parts) {
        if (!(BENCH_PARTS as readonly string[]).includes(p)) throw new Error(`bench quant: --only entry '${p}' is not one of ${BENCH_PARTS.join(', ')}`);
      }
      const emit = (r: QuantBenchRecord): void => {
        if (opts.json === true) console.log(JSON.stringify(r));
      };
      const decode = parts.has('decode') ? benchQuantDecode({ tokens, rounds, formats: formats as (QuantFormat | 'f32')[], threads }) : [];
      decode.forEach(emit);
      const gemm = parts.has('gemm') ? benchQuantGemm({ size: 1024, rounds: 5, threads }) : null;
      if (gemm !== null) emit(gemm);
      const anchor = opts.llamacpp && parts.has('llamacpp') ? await benchQuantAnchor({ tokens, rounds, threads }) : [];
      anchor.forEach(emit);
      if (opts.json === true) return;
      if (decode.length > 0) {
        console.log(`quantized decode — LLaMA ${(decode[0]?.params ?? 0) / 1e6 | 0}M params, batch 1, ${tokens} tokens, ${threads} thread(s), kernel ${quantKernelName()}`);
        console.log('  format   weights MiB   tokens/s   × f32   tokens/CPU-s   × f32   target');
      }
      for (const r of decode) {
        console.log(
          `  ${r.format.padEnd(8)}${(r.weight_bytes / 2 ** 20).toFixed(1).padStart(12)}${r.tokens_per_s.toFixed(1).padStart(11)}${r.ratio_vs_f32.toFixed(2).padStart(8)}` +
            `${r.cpu_tokens_per_s.toFixed(1).padStart(15)}${r.cpu_ratio_vs_f32.toFixed(2).padStart(8)}${(r.target === null ? '-' : `≥ ${r.target}`).padStart(9)}`,
        );
      }
      if (gemm !== null) {
        console.log(`W8A8 GEMM ${gemm.m}³: int8 ${gemm.int8_gflops} GOP/s (${gemm.kernel}) vs f32 ${gemm.f32_gflops} GFLOP/s (${gemm.f32_kernel}): ${gemm.ratio}× (target ≥ ${gemm.target})`);
      }
      for (const a of anchor) {
        console.log(
          `GGUF ${a.type}: Weft ${a.weft_tokens_per_s} tok/s vs llama.cpp ${a.llamacpp_tokens_per_s ?? '-'} tok/s: ${a.ratio ?? '-'}× ` +
            `(by CPU time ${a.weft_cpu_tokens_per_s} vs ${a.llamacpp_cpu_tokens_per_s ?? '-'}: ${a.cpu_ratio ?? '-'}×)${a.target === null ? '' : `, target ≥ ${a.target}`} — ${a.anchor}`,
        );
      }
    });
}
