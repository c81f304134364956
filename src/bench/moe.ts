/**
 * `weft bench moe`: the evidence for the routed MoE layer, from one run.
 *
 *  1. Quality and speed: a dense GPT and a GPT-MoE with the same active parameters per token (8 experts,
 *     top-2, each expert half the dense FFN's width, in every other block) trained on the same data, with
 *     the same seed, batches and steps. Anchor: the dense GPT. Val-loss curves, final values, tokens/s.
 *  2. Load balance: the coefficient of variation of per-expert load (over the second half of training,
 *     averaged over routed blocks) with the Switch load-balancing loss and without it (α = 0).
 *  3. Scaling: forward + backward time per token of a GPT-MoE (MoE in every block) with 4, 8 and 16
 *     experts at k = 2, against 4 experts (and the dense model with the same active width): routing
 *     must cost per token in proportion to k, not to the number of experts.
 *
 * Writes results.json and report.html (val-loss curves as an inline SVG) to --out.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import { writeFileAtomic } from '../io/atomic.js';
import { GPT } from '../models/gpt.js';
import { coefficientOfVariation, type MoEConfigInput } from '../nn/moe.js';
import { getBackend } from '../tensor/backend/index.js';
import { nativeAddonInfo, setNativeThreads } from '../tensor/backend/native.js';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { MetricsLog } from '../train/metrics.js';
import { activeParameters, trainGPT } from '../train/train-gpt.js';
import { packageRoot, round } from './common.js';

export interface MoEBenchOptions {
  data: string;
  iters: number;
  evalInterval: number;
  evalIters: number;
  batchSize: number;
  blockSize: number;
  seed: number;
  /** Alternating rounds of the scaling measurement (each configuration keeps its best). */
  rounds: number;
  outDir: string;
  log: (line: string) => void;
}

const SHAPE = { nLayer: 4, nHead: 4, nEmbd: 64, dropout: 0, bias: false };
const MOE: MoEConfigInput = { nExperts: 8, topK: 2, every: 2, expertHidden: 2 * SHAPE.nEmbd, capacityFactor: 1.25, auxLossCoef: 0.01, zLossCoef: 0.001 };

export interface TrainingRun {
  name: string;
  params: number;
  active_params: number;
  final_val_loss: number;
  final_train_loss: number;
  /** Median over iterations of the trainer's tokens/s (wall clock). */
  tokens_per_s: number;
  /** Process CPU seconds for the whole run (training, evaluations, checkpoints). */
  cpu_s: number;
  /** [iteration, val loss] at each evaluation. */
  val_curve: [number, number][];
  /** Mean coefficient of variation of expert load over the second half of training (null for dense). */
  load_cv: number | null;
  dropped_fraction: number | null;
}

export interface ScalingPoint {
  experts: number | null;
  top_k: number;
  cpu_ms_per_1k_tokens: number;
  /** Over 4 experts' time (the anchor). */
  ratio: number;
}

export interface MoEBenchResult {
  backend: string;
  threads: number;
  data: string;
  iters: number;
  tokens_per_iter: number;
  runs: TrainingRun[];
  quality: { dense_val_loss: number; moe_val_loss: number; ratio: number; dense_tokens_per_s: number; moe_tokens_per_s: number; speed_ratio: number };
  balance: { cv_with_aux: number; cv_without_aux: number; target: number; ok: boolean };
  scaling: { points: ScalingPoint[]; max_ratio: number; target: number; ok: boolean };
}

const sink = { write: (): boolean => true };

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

interface RunSpec {
  name: string;
  moe: MoEConfigInput | undefined;
  dir: string;
  cpuSeconds: number;
  result: Awaited<ReturnType<typeof trainGPT>> | null;
}

/**
 * Trains every spec to opts.iters in `segments` alternating legs (each leg resumes the run's
 * checkpoint, which continues bit for bit), so that a shared machine's load changes fall on all
 * models alike instead of on whichever happened to run during them.
 */
async function trainInterleaved(specs: RunSpec[], opts: MoEBenchOptions, segments: number): Promise<void> {
  for (let leg = 1; leg <= segments; leg++) {
    const upTo = Math.round((opts.iters * leg) / segments);
    for (const spec of specs) {
      opts.log(`training ${spec.name} to iteration ${upTo} of ${opts.iters} …`);
      const cpu0 = process.cpuUsage();
      spec.result = await trainGPT({
        config:
          leg === 1
            ? {
                data: opts.data,
                batchSize: opts.batchSize,
                blockSize: opts.blockSize,
                maxIters: upTo,
                evalInterval: opts.evalInterval,
                evalIters: opts.evalIters,
                lr: 2e-3,
                minLr: 2e-4,
                warmupIters: Math.min(20, Math.floor(opts.iters / 10)),
                lrDecayIters: opts.iters,
                seed: opts.seed,
              }
            : { maxIters: upTo },
        model: leg === 1 ? SHAPE : undefined,
        moe: leg === 1 ? spec.moe : undefined,
        outDir: spec.dir,
        resume: leg > 1,
        json: true,
        stdout: sink,
        stderr: sink,
      });
      const used = process.cpuUsage(cpu0);
      spec.cpuSeconds += (used.user + used.system) / 1e6;
    }
  }
}

function summarise(spec: RunSpec, opts: MoEBenchOptions): TrainingRun {
  const r = spec.result!;
  const records = MetricsLog.read(join(spec.dir, 'metrics.jsonl')) as unknown as Record<string, unknown>[];
  const curve = records.filter((x) => 'val_loss' in x).map((x) => [x.iter as number, x.val_loss as number] as [number, number]);
  const iters = records.filter((x) => 'loss' in x);
  let cv: number | null = null;
  let droppedFraction: number | null = null;
  if (spec.moe !== undefined) {
    const late = iters.slice(Math.floor(iters.length / 2)) as unknown as { moe: { layers: { load: number[]; dropped: number[] }[] } }[];
    const cvs = late.flatMap((x) => x.moe.layers.map((l) => coefficientOfVariation(l.load)));
    cv = cvs.reduce((a, b) => a + b, 0) / cvs.length;
    let dropped = 0;
    let total = 0;
    for (const x of late) {
      for (const l of x.moe.layers) {
        dropped += l.dropped.reduce((a, b) => a + b, 0);
        total += l.load.reduce((a, b) => a + b, 0);
      }
    }
    droppedFraction = dropped / total;
  }
  const model = new GPT({ vocabSize: 65, blockSize: opts.blockSize, ...SHAPE, moe: spec.moe ?? null });
  return {
    name: spec.name,
    params: r.numParameters,
    active_params: activeParameters(model),
    final_val_loss: r.valLoss!,
    final_train_loss: r.trainLoss!,
    tokens_per_s: median(iters.map((x) => x.tokens_per_s as number)),
    cpu_s: round(spec.cpuSeconds, 1),
    val_curve: curve,
    load_cv: cv,
    dropped_fraction: droppedFraction,
  };
}

/**
 * Best forward + backward CPU time (user + system, ms) per 1,000 tokens for each model, rounds
 * alternating between models. CPU time, not wall time: on a shared machine the wall clock mostly
 * measures how long other processes held the cores, and the minimum over rounds of CPU time is the
 * work itself.
 */
function timeModels(models: GPT[], batch: number, T: number, rounds: number): number[] {
  const g = new Generator(7);
  const vocab = models[0]!.config.vocabSize;
  const make = (): Tensor => Tensor.fromArray(Int32Array.from({ length: batch * T }, () => g.int(0, vocab)), [batch, T], 'i32');
  const x = make();
  const y = make();
  const best = models.map(() => Infinity);
  for (let r = 0; r <= rounds; r++) {
    models.forEach((m, i) => {
      const t0 = process.cpuUsage();
      const { logits, loss } = m.forward(x, y);
      loss!.backward();
      const used = process.cpuUsage(t0);
      const ms = (used.user + used.system) / 1000;
      m.zeroGrad();
      logits.dispose();
      // Round 0 warms buffers and the pool up; it is not counted.
      if (r > 0) best[i] = Math.min(best[i]!, ms);
    });
  }
  return best.map((ms) => (ms * 1000) / (batch * T));
}

/** Measured on one native thread, so that CPU time is the kernels' work and not a pool's spinning or waiting. */
export function scaling(opts: MoEBenchOptions): ScalingPoint[] {
  const expertCounts = [4, 8, 16];
  const hidden = 2 * SHAPE.nEmbd;
  const base = { vocabSize: 65, blockSize: opts.blockSize, ...SHAPE, nLayer: 2 };
  const models = expertCounts.map(
    (e) => new GPT({ ...base, moe: { nExperts: e, topK: 2, every: 1, expertHidden: hidden, capacityFactor: 1.25 } }, { generator: new Generator(e) }),
  );
  // The dense GPT with the same active FFN width (its 4·C MLP = 2 experts × hidden): what routing adds to.
  const dense = new GPT(base, { generator: new Generator(1) });
  const threads = nativeAddonInfo()?.threads ?? 1;
  setNativeThreads(1);
  let times: number[];
  try {
    times = timeModels([...models, dense], opts.batchSize, opts.blockSize, opts.rounds);
  } finally {
    setNativeThreads(threads);
  }
  const anchor = times[0]!;
  return [
    ...expertCounts.map((e, i) => ({ experts: e, top_k: 2, cpu_ms_per_1k_tokens: round(times[i]!, 3), ratio: round(times[i]! / anchor, 3) })),
    { experts: null, top_k: 1, cpu_ms_per_1k_tokens: round(times[3]!, 3), ratio: round(times[3]! / anchor, 3) },
  ];
}

export async function benchMoE(opts: MoEBenchOptions): Promise<MoEBenchResult> {
  const threads = nativeAddonInfo()?.threads ?? 1;
  opts.log(`scaling: forward+backward CPU time per token on 1 thread, 2-layer GPT-MoE, k = 2, experts 4 / 8 / 16 (${opts.rounds} alternating rounds, best of each)`);
  const points = scaling(opts);
  const specs: RunSpec[] = (
    [
      ['dense', undefined],
      ['moe', MOE],
      ['moe_no_aux', { ...MOE, auxLossCoef: 0 }],
    ] as const
  ).map(([name, moe]) => ({ name, moe, dir: mkdtempSync(join(tmpdir(), `weft-bench-moe-${name}-`)), cpuSeconds: 0, result: null }));
  let runs: TrainingRun[];
  try {
    // Legs end on evaluation iterations, so the curves are those of uninterrupted runs.
    const segments = opts.iters % (4 * opts.evalInterval) === 0 ? 4 : 1;
    await trainInterleaved(specs, opts, segments);
    runs = specs.map((spec) => summarise(spec, opts));
  } finally {
    for (const spec of specs) rmSync(spec.dir, { recursive: true, force: true });
  }
  const [dense, moe, noAux] = runs as [TrainingRun, TrainingRun, TrainingRun];
  const maxRatio = Math.max(...points.filter((p) => p.experts !== null).map((p) => p.ratio));
  return {
    backend: getBackend().name,
    threads,
    // Relative to the package root, so a committed report names the file wherever the checkout lives.
    data: relative(packageRoot(), opts.data) || opts.data,
    iters: opts.iters,
    tokens_per_iter: opts.batchSize * opts.blockSize,
    runs,
    quality: {
      dense_val_loss: round(dense.final_val_loss, 4),
      moe_val_loss: round(moe.final_val_loss, 4),
      ratio: round(moe.final_val_loss / dense.final_val_loss, 4),
      dense_tokens_per_s: round(dense.tokens_per_s, 0),
      moe_tokens_per_s: round(moe.tokens_per_s, 0),
      speed_ratio: round(moe.tokens_per_s / dense.tokens_per_s, 3),
    },
    balance: { cv_with_aux: round(moe.load_cv!, 4), cv_without_aux: round(noAux.load_cv!, 4), target: 0.2, ok: moe.load_cv! < 0.2 },
    scaling: { points, max_ratio: maxRatio, target: 1.3, ok: maxRatio <= 1.3 },
  };
}

// -----------------------------------------------------------------------------------------------
// Report
// -----------------------------------------------------------------------------------------------

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Val-loss curves as an inline SVG line chart. */
export function lossChartSVG(runs: readonly TrainingRun[]): string {
  const W = 640;
  const H = 360;
  const m = { l: 56, r: 150, t: 20, b: 40 };
  const pts = runs.flatMap((r) => r.val_curve);
  const xMax = Math.max(...pts.map(([x]) => x), 1);
  const yMin = Math.floor(Math.min(...pts.map(([, y]) => y)) * 10) / 10;
  const yMax = Math.ceil(Math.max(...pts.map(([, y]) => y)) * 10) / 10;
  const sx = (x: number): number => m.l + (x / xMax) * (W - m.l - m.r);
  const sy = (y: number): number => m.t + ((yMax - y) / Math.max(yMax - yMin, 1e-9)) * (H - m.t - m.b);
  const colors = ['#555555', '#d9480f', '#1c7ed6', '#2b8a3e'];
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  const yTicks = 5;
  for (let i = 0; i <= yTicks; i++) {
    const v = yMin + ((yMax - yMin) * i) / yTicks;
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(2)}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((xMax * i) / 4);
    parts.push(`<text x="${sx(v).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle">${v}</text>`);
  }
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/><line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 6}" text-anchor="middle">iteration</text>`);
  parts.push(`<text x="14" y="${(m.t + H - m.b) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(m.t + H - m.b) / 2})">val loss</text>`);
  runs.forEach((r, i) => {
    const c = colors[i % colors.length]!;
    const path = r.val_curve.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${path}"/>`);
    parts.push(`<line x1="${W - m.r + 12}" x2="${W - m.r + 32}" y1="${m.t + 10 + i * 18}" y2="${m.t + 10 + i * 18}" stroke="${c}" stroke-width="2"/>`);
    parts.push(`<text x="${W - m.r + 38}" y="${m.t + 14 + i * 18}">${escape(r.name)} (${r.final_val_loss.toFixed(3)})</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export function reportHTML(r: MoEBenchResult, command: string): string {
  const rows = r.runs
    .map(
      (x) =>
        `<tr><td>${escape(x.name)}</td><td>${(x.params / 1e6).toFixed(3)}M</td><td>${(x.active_params / 1e6).toFixed(3)}M</td><td>${x.final_val_loss.toFixed(4)}</td>` +
        `<td>${Math.round(x.tokens_per_s)}</td><td>${x.cpu_s.toFixed(1)}</td><td>${x.load_cv === null ? '–' : x.load_cv.toFixed(3)}</td><td>${x.dropped_fraction === null ? '–' : (100 * x.dropped_fraction).toFixed(2) + '%'}</td></tr>`,
    )
    .join('\n');
  const scal = r.scaling.points
    .map((p) => `<tr><td>${p.experts === null ? 'dense, same active width' : `${p.experts} experts, k = ${p.top_k}`}</td><td>${p.cpu_ms_per_1k_tokens.toFixed(2)}</td><td>${p.ratio.toFixed(3)}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Weft MoE benchmark</title>
<style>body{font-family:sans-serif;max-width:820px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}td:first-child,th:first-child{text-align:left}code{background:#f4f4f4;padding:1px 4px}</style>
</head><body>
<h1>Dense GPT vs GPT-MoE</h1>
<p>Same data (<code>${escape(r.data)}</code>), seed, batches and ${r.iters} iterations of ${r.tokens_per_iter} tokens; backend ${escape(r.backend)}, ${r.threads} threads.
GPT-MoE: 8 experts, top-2, each expert half the dense FFN width, in every other block (same active parameters per token as the dense GPT, plus the router).</p>
${lossChartSVG(r.runs)}
<table><tr><th>model</th><th>parameters</th><th>active / token</th><th>final val loss</th><th>tokens/s (median)</th><th>CPU s (run)</th><th>load CV (2nd half)</th><th>dropped</th></tr>
${rows}</table>
<p>Val loss MoE / dense: <b>${r.quality.ratio}</b>; tokens/s MoE / dense: <b>${r.quality.speed_ratio}</b>.
Load CV with the auxiliary loss: <b>${r.balance.cv_with_aux}</b> (target &lt; ${r.balance.target}), without: <b>${r.balance.cv_without_aux}</b>.</p>
<h2>Scaling with the number of experts (forward + backward CPU time per token, one thread)</h2>
<table><tr><th>model</th><th>CPU ms / 1k tokens</th><th>ratio to 4 experts</th></tr>
${scal}</table>
<p>Largest ratio: <b>${r.scaling.max_ratio}</b> (target ≤ ${r.scaling.target}).</p>
<p>Made by <code>${escape(command)}</code>.</p>
</body></html>
`;
}

export function registerMoEBench(bench: Command): void {
  bench
    .command('moe')
    .description('dense GPT vs GPT-MoE (val loss, tokens/s), expert load balance with/without the aux loss, time per token vs number of experts')
    .option('--json', 'one JSON object per line')
    .option('--data <file>', 'training text (default: data/tinyshakespeare.txt)')
    .option('--iters <n>', 'training iterations per model (default: 300)', '300')
    .option('--eval-interval <n>', 'evaluate every n iterations (default: 25)', '25')
    .option('--eval-iters <n>', 'batches per split per evaluation (default: 8)', '8')
    .option('--batch-size <n>', 'sequences per batch (default: 16)', '16')
    .option('--block-size <n>', 'tokens per sequence (default: 64)', '64')
    .option('--rounds <n>', 'alternating timing rounds for the scaling figure (default: 20)', '20')
    .option('--threads <n>', 'native threads (default: the pool size)')
    .option('--out <dir>', 'where results.json and report.html go (default: bench/moe)')
    .action(async (o: { json?: boolean; data?: string; iters: string; evalInterval: string; evalIters: string; batchSize: string; blockSize: string; rounds: string; threads?: string; out?: string }) => {
      const int = (v: string, what: string): number => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) throw new Error(`bench moe: ${what} must be a positive integer, got '${v}'`);
        return n;
      };
      if (o.threads !== undefined) setNativeThreads(int(o.threads, '--threads'));
      const root = packageRoot();
      const outDir = o.out ?? join(root, 'bench', 'moe');
      const opts: MoEBenchOptions = {
        data: o.data ?? join(root, 'data', 'tinyshakespeare.txt'),
        iters: int(o.iters, '--iters'),
        evalInterval: int(o.evalInterval, '--eval-interval'),
        evalIters: int(o.evalIters, '--eval-iters'),
        batchSize: int(o.batchSize, '--batch-size'),
        blockSize: int(o.blockSize, '--block-size'),
        seed: 1337,
        rounds: int(o.rounds, '--rounds'),
        outDir,
        log: (s) => void process.stderr.write(`${s}\n`),
      };
      const started = performance.now();
      const r = await benchMoE(opts);
      const command = `weft bench moe ${process.argv.slice(4).join(' ')}`.trim();
      mkdirSync(outDir, { recursive: true });
      await writeFileAtomic(join(outDir, 'results.json'), `${JSON.stringify({ ...r, command, wall_s: round((performance.now() - started) / 1000, 1) }, null, 1)}\n`);
      await writeFileAtomic(join(outDir, 'report.html'), reportHTML(r, command));
      if (o.json) {
        for (const run of r.runs) process.stdout.write(`${JSON.stringify({ figure: 'training', ...run, val_curve: undefined })}\n`);
        process.stdout.write(`${JSON.stringify({ figure: 'quality', ...r.quality })}\n`);
        process.stdout.write(`${JSON.stringify({ figure: 'balance', ...r.balance })}\n`);
        process.stdout.write(`${JSON.stringify({ figure: 'scaling', ...r.scaling })}\n`);
        return;
      }
      const q = r.quality;
      process.stdout.write(`model        final val loss   tokens/s\n`);
      process.stdout.write(`dense        ${q.dense_val_loss.toFixed(4).padStart(14)}   ${String(q.dense_tokens_per_s).padStart(8)}   (anchor)\n`);
      process.stdout.write(`GPT-MoE      ${q.moe_val_loss.toFixed(4).padStart(14)}   ${String(q.moe_tokens_per_s).padStart(8)}   ratio ${q.ratio} (loss), ${q.speed_ratio} (speed)\n`);
      process.stdout.write(`load CV: ${r.balance.cv_with_aux} with aux loss, ${r.balance.cv_without_aux} without (target < 0.2: ${r.balance.ok ? 'met' : 'missed'})\n`);
      for (const p of r.scaling.points) {
        process.stdout.write(`${p.experts === null ? 'dense (same active)' : `${p.experts} experts, k=2`}`.padEnd(22) + `${p.cpu_ms_per_1k_tokens.toFixed(2)} CPU ms/1k tokens, ratio ${p.ratio}\n`);
      }
      process.stdout.write(`scaling 4 → 16 experts: max ratio ${r.scaling.max_ratio} (target ≤ 1.3: ${r.scaling.ok ? 'met' : 'missed'}); report: ${join(outDir, 'report.html')}\n`);
    });
}
