/**
 * `weft compress report`: every compression method applied to the same model in one run, each row
 * measured the same way — file size of what the method saves, validation perplexity, prefill and
 * greedy-decode tokens/s with a KV cache — against the f32 baseline; rendered as one HTML table and
 * an inline SVG bar chart (each metric relative to f32).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Llama } from '../models/llama.js';
import { Tensor } from '../tensor/tensor.js';
import { calibrationBatches, perplexity } from './calibrate.js';
import { dirBytes, measureSpeed, quantizeLlama, saveQuantizedLlama } from './index.js';
import { factorizeModel, saveLowRankLlama } from './lowrank.js';
import { pruneNeurons, taylorImportance } from './prune.js';
import type { QuantFormat } from './quant/formats.js';

export interface ReportRow {
  method: string;
  description: string;
  fileBytes: number;
  perplexity: number;
  prefillTokensPerS: number;
  decodeTokensPerS: number;
  /** Seconds the method took (quantization / factorisation / pruning). */
  compressSeconds: number;
}

export interface ReportOptions {
  modelDir: string;
  /** Token ids: calibration windows come from `train`, perplexity from `val`. */
  train: Int32Array;
  val: Int32Array;
  methods?: readonly string[];
  /**
   * Calibration windows (default 32; AWQ's default is AWQ_CALIB_WINDOWS) and perplexity windows
   * (default 64) of the model's context. A given calibWindows holds for every method.
   */
  calibWindows?: number;
  evalWindows?: number;
  /** Context used for calibration/perplexity windows (default min(context, 128)). */
  blockSize?: number;
  decodeTokens?: number;
  workDir: string;
  onRow?: (row: ReportRow) => void;
  onProgress?: (what: string) => void;
}

interface Applied {
  model: Llama;
  description: string;
  save: (dir: string) => Promise<void>;
}

/**
 * Calibration windows AWQ searches on unless calibWindows is given: llm-awq's 128 samples. With 32
 * windows of a 64-character context (2,048 tokens) its scales fit the calibration text rather than
 * the language (char LLaMA, Q4_1, 400 val windows: RTN 6.4247, AWQ 6.4322 on 32 windows, 6.4128 on
 * 128); GPTQ's Hessians do best on the common 32 here, so the others keep those.
 */
export const AWQ_CALIB_WINDOWS = 128;

type Method = (model: Llama, calib: readonly Tensor[], ctx: { train: Int32Array; blockSize: number; awqCalib: readonly Tensor[] }) => Promise<Applied> | Applied;

const quantRow =
  (method: 'rtn' | 'gptq' | 'awq', format: QuantFormat, description: string): Method =>
  (model, calib, ctx) => {
    quantizeLlama(model, { method, format, calibration: method === 'awq' ? ctx.awqCalib : calib });
    return { model, description, save: (dir) => saveQuantizedLlama(model, dir) };
  };

const w8a8Row =
  (activation: 'dynamic' | 'minmax' | 'kl' | 'percentile', smoothAlpha: number, description: string): Method =>
  (model, calib) => {
    quantizeLlama(model, { method: 'smoothquant', format: 'int8', calibration: calib, activation, smoothAlpha });
    return { model, description, save: (dir) => saveQuantizedLlama(model, dir) };
  };

/** The methods a report can run, by name. */
export const REPORT_METHODS: Record<string, Method> = {
  f32: (model) => ({ model, description: 'baseline, f32 weights', save: (dir) => model.savePretrained(dir) }),
  'rtn-int8': quantRow('rtn', 'int8', 'INT8 weight-only, per channel, round-to-nearest'),
  'rtn-q8_0': quantRow('rtn', 'q8_0', 'Q8_0 (GGUF blocks of 32), round-to-nearest'),
  'rtn-q4_0': quantRow('rtn', 'q4_0', 'Q4_0 (GGUF blocks of 32), round-to-nearest'),
  'gptq-q4_0': quantRow('gptq', 'q4_0', 'Q4_0 by GPTQ (block 128, 1% damp)'),
  'awq-q4_0': quantRow('awq', 'q4_0', 'Q4_0 by AWQ (scale + clip search), then round-to-nearest'),
  'rtn-q4_1': quantRow('rtn', 'q4_1', 'Q4_1 asymmetric group 32, round-to-nearest'),
  'gptq-q4_1': quantRow('gptq', 'q4_1', 'Q4_1 by GPTQ'),
  'awq-q4_1': quantRow('awq', 'q4_1', 'Q4_1 by AWQ'),
  'w8a8-dynamic': w8a8Row('dynamic', 0.5, 'W8A8: SmoothQuant α=0.5, per-token dynamic activations (INT8 GEMM)'),
  'w8a8-minmax': w8a8Row('minmax', 0.5, 'W8A8: SmoothQuant α=0.5, static per-tensor activation scale, min–max'),
  'w8a8-percentile': w8a8Row('percentile', 0.5, 'W8A8: SmoothQuant α=0.5, static scale, 99.99th percentile'),
  'w8a8-kl': w8a8Row('kl', 0.5, 'W8A8: SmoothQuant α=0.5, static scale, KL (entropy) calibration'),
  'w8a8-minmax-nosmooth': w8a8Row('minmax', 0, 'W8A8 without smoothing, static min–max'),
  'w8a8-kl-nosmooth': w8a8Row('kl', 0, 'W8A8 without smoothing, static KL'),
  'lowrank-e0.9': (model) => {
    const reports = factorizeModel(model, { energy: 0.9, include: /^model\.layers\./ });
    const ranks = Object.fromEntries(reports.filter((r) => r.rank !== null).map((r) => [r.name, r.rank!]));
    return { model, description: 'SVD factorisation keeping 90% of each layer’s spectral energy (no fine-tune)', save: (dir) => saveLowRankLlama(model, dir, ranks) };
  },
  'prune-neurons-0.25': (model, calib) => {
    const batches = calib.slice(0, 4).map((x) => ({ x, y: shiftTargets(x) }));
    const small = pruneNeurons(model, taylorImportance(model, batches), Math.max(1, Math.round(model.config.intermediateSize * 0.75)));
    return { model: small, description: '25% of FFN neurons removed by Taylor importance (no fine-tune)', save: (dir) => small.savePretrained(dir) };
  },
};

export const DEFAULT_REPORT_METHODS = ['f32', 'rtn-int8', 'rtn-q8_0', 'rtn-q4_0', 'gptq-q4_0', 'awq-q4_0', 'w8a8-dynamic', 'w8a8-minmax', 'w8a8-kl', 'lowrank-e0.9', 'prune-neurons-0.25'];

/** Next-token targets inside each calibration window (the last position, whose next token lies outside, is ignored). */
function shiftTargets(x: Tensor): Tensor {
  const xd = x.i32();
  const [B, T] = x.shape as [number, number];
  const y = new Int32Array(xd.length).fill(-1);
  for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) y[b * T + t] = xd[b * T + t + 1]!;
  return Tensor.fromArray(y, [B, T], 'i32');
}

/** Runs every method on a fresh copy of the model and measures it. */
export async function runCompressReport(o: ReportOptions): Promise<ReportRow[]> {
  const methods = o.methods ?? DEFAULT_REPORT_METHODS;
  for (const m of methods) if (REPORT_METHODS[m] === undefined) throw new RangeError(`compress report: unknown method '${m}' (known: ${Object.keys(REPORT_METHODS).join(', ')})`);
  const probe = await Llama.fromPretrained(o.modelDir);
  const blockSize = o.blockSize ?? Math.min(probe.config.maxPositionEmbeddings, 128);
  const calib = calibrationBatches(o.train, blockSize, o.calibWindows ?? 32);
  const awqCalib = o.calibWindows === undefined ? calibrationBatches(o.train, blockSize, AWQ_CALIB_WINDOWS) : calib;
  const decodeTokens = Math.min(o.decodeTokens ?? 32, Math.max(1, probe.config.maxPositionEmbeddings - 16));
  const prompt = o.val.subarray(0, Math.max(1, probe.config.maxPositionEmbeddings - decodeTokens));
  mkdirSync(o.workDir, { recursive: true });
  const rows: ReportRow[] = [];
  for (const name of methods) {
    o.onProgress?.(name);
    const model = await Llama.fromPretrained(o.modelDir);
    model.eval();
    const t0 = performance.now();
    const applied = await REPORT_METHODS[name]!(model, calib, { train: o.train, blockSize, awqCalib });
    const compressSeconds = (performance.now() - t0) / 1000;
    const dir = join(o.workDir, name);
    rmSync(dir, { recursive: true, force: true });
    await applied.save(dir);
    const fileBytes = dirBytes(dir, /\.(safetensors|json)$/);
    const ppl = perplexity(applied.model, o.val, blockSize, { maxWindows: o.evalWindows ?? 64 });
    const speed = measureSpeed(applied.model, prompt, decodeTokens);
    const row: ReportRow = { method: name, description: applied.description, fileBytes, perplexity: ppl, ...speed, compressSeconds };
    rows.push(row);
    o.onRow?.(row);
  }
  return rows;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** One HTML page: the table and a grouped bar chart (per metric, each method relative to f32). */
export function renderReportHTML(rows: readonly ReportRow[], meta: { model: string; command: string; generated: string }): string {
  const base = rows.find((r) => r.method === 'f32') ?? rows[0]!;
  const metrics: { key: keyof ReportRow; label: string; better: 'lower' | 'higher' }[] = [
    { key: 'fileBytes', label: 'file size', better: 'lower' },
    { key: 'perplexity', label: 'val perplexity', better: 'lower' },
    { key: 'decodeTokensPerS', label: 'decode tok/s', better: 'higher' },
    { key: 'prefillTokensPerS', label: 'prefill tok/s', better: 'higher' },
  ];
  const ratio = (r: ReportRow, k: keyof ReportRow): number => (r[k] as number) / (base[k] as number);
  const table = [
    '<table><thead><tr><th>method</th><th>what</th><th>file size</th><th>val perplexity</th><th>decode tok/s</th><th>prefill tok/s</th><th>compress s</th></tr></thead><tbody>',
    ...rows.map(
      (r) =>
        `<tr><td>${escapeHtml(r.method)}</td><td>${escapeHtml(r.description)}</td>` +
        `<td>${(r.fileBytes / 1024).toFixed(1)} KiB (${ratio(r, 'fileBytes').toFixed(2)}×)</td>` +
        `<td>${r.perplexity.toFixed(4)} (${((ratio(r, 'perplexity') - 1) * 100).toFixed(2)}%)</td>` +
        `<td>${r.decodeTokensPerS.toFixed(1)} (${ratio(r, 'decodeTokensPerS').toFixed(2)}×)</td>` +
        `<td>${r.prefillTokensPerS.toFixed(1)} (${ratio(r, 'prefillTokensPerS').toFixed(2)}×)</td>` +
        `<td>${r.compressSeconds.toFixed(1)}</td></tr>`,
    ),
    '</tbody></table>',
  ].join('\n');
  // Chart: one panel per metric, a horizontal bar per method, length = value / f32 value.
  const barH = 14;
  const panelW = 260;
  const labelW = 150;
  const panelH = rows.length * (barH + 4) + 30;
  const maxRatio = (k: keyof ReportRow): number => Math.max(1, ...rows.map((r) => ratio(r, k)));
  const panels = metrics
    .map((m, pi) => {
      const x0 = labelW + pi * (panelW + 20);
      const scale = (panelW - 40) / maxRatio(m.key);
      const bars = rows
        .map((r, i) => {
          const v = ratio(r, m.key);
          const y = 24 + i * (barH + 4);
          const color = r === base ? '#888' : (m.better === 'lower' ? v <= 1 : v >= 1) ? '#2a7' : '#d54';
          return `<rect x="${x0}" y="${y}" width="${(v * scale).toFixed(1)}" height="${barH}" fill="${color}"/><text x="${(x0 + v * scale + 3).toFixed(1)}" y="${y + barH - 3}" font-size="10">${v.toFixed(2)}×</text>`;
        })
        .join('');
      const one = x0 + scale;
      return `<text x="${x0}" y="14" font-size="12" font-weight="bold">${m.label} (${m.better} is better)</text>${bars}<line x1="${one}" y1="20" x2="${one}" y2="${panelH - 6}" stroke="#000" stroke-dasharray="3,2"/>`;
    })
    .join('');
  const labels = rows.map((r, i) => `<text x="4" y="${24 + i * (barH + 4) + barH - 3}" font-size="11">${escapeHtml(r.method)}</text>`).join('');
  const width = labelW + metrics.length * (panelW + 20);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${panelH}" role="img" aria-label="each method relative to f32">${labels}${panels}</svg>`;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Weft compression report: ${escapeHtml(meta.model)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}th{background:#f4f4f4}code{background:#f4f4f4;padding:2px 4px}</style></head>
<body><h1>Compression report</h1>
<p>Model <code>${escapeHtml(meta.model)}</code>, generated ${escapeHtml(meta.generated)} by <code>${escapeHtml(meta.command)}</code>. All rows measured in this one run; ratios are against the f32 row (dashed line = 1×).</p>
${table}
<h2>Relative to f32</h2>
${svg}
</body></html>
`;
}
