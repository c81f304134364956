/**
 * `weft compress report <model> --out report.html`: every compression method on one model, measured
 * in one run (file size, val perplexity, decode and prefill tokens/s) against f32, as an HTML table
 * and SVG chart. `weft compress qat <model>`: quantization-aware fine-tuning against post-training
 * quantization at the same format and the same number of fine-tuning steps.
 *
 * Also the helpers the other compression commands share (text, tokenizer, progress).
 */
import type { Command } from 'commander';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { perplexity } from '../compress/calibrate.js';
import { fineTune, type FineTuneOptions } from '../compress/distill.js';
import { dirBytes, measureSpeed, quantizeLlama, saveQuantizedLlama } from '../compress/index.js';
import { enableFakeQuant } from '../compress/qat.js';
import { isQuantFormat, type QuantFormat } from '../compress/quant/formats.js';
import { DEFAULT_REPORT_METHODS, REPORT_METHODS, renderReportHTML, runCompressReport, type ReportRow } from '../compress/report.js';
import { tokenizerFromSavedJSON, type Tokenizer } from '../data/tokenizer.js';
import { TextDataset } from '../data/text-dataset.js';
import { writeFileAtomic } from '../io/atomic.js';
import { Llama } from '../models/llama.js';
import { loadTokenizer } from '../tokenizers/index.js';
import { UsageError } from '../train/config.js';
import { formatDuration, type OutputStream, ProgressReporter } from '../train/progress.js';
import { type CommandIO, parsePositiveInt, parsePositiveNumber } from './train.js';

// -----------------------------------------------------------------------------------------------
// Shared helpers
// -----------------------------------------------------------------------------------------------

export function defaultIO(): CommandIO {
  return { stdout: process.stdout, stderr: process.stderr };
}

/** A model directory's tokenizer: Weft's saved tokenizer.json (char or HF), else whatever loadTokenizer finds. */
export function modelTokenizer(dir: string): Tokenizer {
  const file = join(dir, 'tokenizer.json');
  if (existsSync(file)) return tokenizerFromSavedJSON(JSON.parse(readFileSync(file, 'utf8')));
  try {
    return loadTokenizer(dir);
  } catch (e) {
    throw new UsageError(`${dir}: no tokenizer found (${(e as Error).message}); train with \`weft train llama\`, whose run directory holds tokenizer.json`);
  }
}

export function readText(path: string, flag: string): string {
  if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`${flag} ${path}: no such file; pass a UTF-8 text file (e.g. data/tinyshakespeare.txt)`);
  const text = readFileSync(path, 'utf8');
  if (text.length === 0) throw new UsageError(`${flag} ${path}: the file is empty`);
  return text;
}

/** The text a training run used (trainer_state.json's trainConfig.data), when the directory is a run. */
export function trainingTextOf(dir: string): string | undefined {
  const state = join(dir, 'trainer_state.json');
  if (!existsSync(state)) return undefined;
  try {
    const data = (JSON.parse(readFileSync(state, 'utf8')) as { trainConfig?: { data?: string } }).trainConfig?.data;
    return data !== undefined && existsSync(data) && statSync(data).isFile() ? data : undefined;
  } catch {
    return undefined;
  }
}

/** Train/val ids of a text (TextDataset's 90/10 split, the one `weft train` evaluates on). */
export function splitIds(text: string, tokenizer: Tokenizer, flag: string): TextDataset {
  try {
    return TextDataset.fromText(text, tokenizer);
  } catch (e) {
    throw new UsageError(`${flag}: cannot tokenize with the model's tokenizer: ${(e as Error).message}`);
  }
}

/** fineTune with a progress bar (JSON lines with --json): loss, tokens/s and ETA every fifth of the run. */
export function fineTuneWithProgress(io: CommandIO, json: boolean, options: Omit<FineTuneOptions, 'onStep'>): ReturnType<typeof fineTune> {
  const { steps, batchSize, blockSize, lr } = options;
  const progress = new ProgressReporter({ out: io.stdout, err: io.stderr, json, maxIters: steps, logInterval: Math.max(1, Math.floor(steps / 5)) });
  let last = performance.now();
  const result = fineTune({
    ...options,
    onStep: (iter, loss) => {
      const now = performance.now();
      progress.iteration({ iter, loss, lr, ms: now - last, tokens_per_s: (batchSize * blockSize * 1000) / (now - last) });
      last = now;
    },
  });
  progress.finish();
  return result;
}

export async function loadLlamaDir(dir: string): Promise<Llama> {
  if (!existsSync(join(dir, 'config.json'))) throw new UsageError(`${dir}: not a model directory (no config.json); pass a directory written by \`weft train llama\` or an HF LLaMA/Qwen2 checkpoint`);
  return Llama.fromPretrained(dir);
}

export function copyTokenizer(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) if (existsSync(join(from, f))) copyFileSync(join(from, f), join(to, f));
}

/** A step counter for layer-by-layer work: a bar redrawn in place on a terminal, plain lines otherwise, nothing with --json. */
export function stepProgress(out: OutputStream, json: boolean): { update: (what: string, done: number, total: number) => void; finish: () => void } {
  const started = performance.now();
  let shown = false;
  return {
    update(what, done, total) {
      if (json) return;
      const frac = total > 0 ? done / total : 1;
      const eta = done > 0 ? formatDuration((((performance.now() - started) / 1000) * (total - done)) / done) : '--';
      const bar = `${'█'.repeat(Math.round(frac * 24))}${'░'.repeat(24 - Math.round(frac * 24))}`;
      const line = `${what} ${done}/${total} ${bar} ETA ${eta}`;
      if (out.isTTY === true) {
        out.write(`\r${line}\x1b[K`);
        shown = true;
      } else out.write(`${line}\n`);
    },
    finish() {
      if (shown) out.write('\n');
      shown = false;
    },
  };
}

/** A model's size, validation perplexity (null without data) and decode speed: what a compression command compares. */
export interface ModelMeasure {
  params: number;
  perplexity: number | null;
  speed: ReturnType<typeof measureSpeed>;
}

/** Measures `model` on the validation ids (a synthetic prompt of `block` ids without them), perplexity over windows of `block`. */
export function measureModel(model: Llama, val: Int32Array | null, block: number): ModelMeasure {
  const prompt = val ?? Int32Array.from({ length: block }, (_, i) => i % model.config.vocabSize);
  const decode = Math.min(32, Math.max(1, model.config.maxPositionEmbeddings - 16));
  return { params: model.numParameters(), perplexity: val === null ? null : perplexity(model, val, block, { maxWindows: 64 }), speed: measureSpeed(model, prompt, decode) };
}

export interface ComparisonFields {
  paramsBefore: number;
  paramsAfter: number;
  fileBytes: number;
  perplexityBefore: number | null;
  perplexityAfter: number | null;
  decodeTokensPerSBefore: number;
  decodeTokensPerSAfter: number;
}

/** The before/after fields every compression command's summary reports (the output directory's files included). */
export function comparisonFields(before: ModelMeasure, after: ModelMeasure, out: string): ComparisonFields {
  return {
    paramsBefore: before.params,
    paramsAfter: after.params,
    fileBytes: dirBytes(out, /\.(safetensors|json)$/),
    perplexityBefore: before.perplexity,
    perplexityAfter: after.perplexity,
    decodeTokensPerSBefore: before.speed.decodeTokensPerS,
    decodeTokensPerSAfter: after.speed.decodeTokensPerS,
  };
}

/** Weight format for --bits / --group-size / --format. */
export function formatFor(bits: number, groupSize: number | undefined, format: string | undefined): QuantFormat {
  if (format !== undefined) {
    if (!isQuantFormat(format)) throw new UsageError(`--format ${format}: unknown (q8_0, q4_0, q4_1, q4_g128, int8, tq2)`);
    return format;
  }
  if (bits === 8) {
    if (groupSize === undefined) return 'int8';
    if (groupSize === 32) return 'q8_0';
    throw new UsageError(`--group-size ${groupSize}: 8-bit weights are per channel (no --group-size) or groups of 32 (Q8_0)`);
  }
  if (bits === 4) {
    if (groupSize === undefined || groupSize === 32) return 'q4_0';
    if (groupSize === 128) return 'q4_g128';
    throw new UsageError(`--group-size ${groupSize}: 4-bit formats have groups of 32 (Q4_0, Q4_1 with --format q4_1) or 128 (q4_g128)`);
  }
  throw new UsageError(`--bits ${bits}: choose 8 or 4`);
}

// -----------------------------------------------------------------------------------------------
// weft compress report
// -----------------------------------------------------------------------------------------------

interface ReportFlags {
  out: string;
  data?: string;
  methods?: string;
  calibWindows?: number;
  evalWindows?: number;
  decodeTokens?: number;
  json?: boolean;
}

export async function runCompressReportCommand(modelDir: string, flags: ReportFlags, io: CommandIO = defaultIO()): Promise<ReportRow[]> {
  const json = flags.json === true;
  const note = (s: string): void => void (json ? io.stderr : io.stdout).write(`${s}\n`);
  await loadLlamaDir(modelDir);
  const dataPath = flags.data ?? trainingTextOf(modelDir);
  if (dataPath === undefined) throw new UsageError('--data: required (the text to calibrate on and measure validation perplexity with, e.g. data/tinyshakespeare.txt)');
  const tokenizer = modelTokenizer(modelDir);
  const ds = splitIds(readText(dataPath, '--data'), tokenizer, '--data');
  const methods = flags.methods === undefined ? DEFAULT_REPORT_METHODS : flags.methods.split(',').map((m) => m.trim());
  for (const m of methods) if (REPORT_METHODS[m] === undefined) throw new UsageError(`--methods: unknown method '${m}' (known: ${Object.keys(REPORT_METHODS).join(', ')})`);
  const workDir = join(tmpdir(), `weft-compress-report-${process.pid}`);
  const progress = stepProgress(json ? io.stderr : io.stdout, false);
  let done = 0;
  const rows = await runCompressReport({
    modelDir,
    train: ds.train,
    val: ds.val,
    methods,
    calibWindows: flags.calibWindows,
    evalWindows: flags.evalWindows,
    decodeTokens: flags.decodeTokens,
    workDir,
    onProgress: (m) => progress.update(`measuring ${m.padEnd(20)}`, done, methods.length),
    onRow: (r) => {
      done++;
      if (json) io.stdout.write(`${JSON.stringify(r)}\n`);
    },
  });
  progress.finish();
  const html = renderReportHTML(rows, { model: modelDir, command: `weft compress report ${process.argv.slice(4).join(' ')}`.trim(), generated: new Date().toISOString() });
  await writeFileAtomic(flags.out, html);
  if (!json) {
    const base = rows.find((r) => r.method === 'f32') ?? rows[0]!;
    note(`${'method'.padEnd(22)} ${'size KiB'.padStart(9)} ${'ppl'.padStart(8)} ${'Δppl'.padStart(7)} ${'decode/s'.padStart(9)} ${'×'.padStart(5)} ${'prefill/s'.padStart(10)} ${'×'.padStart(5)}`);
    for (const r of rows) {
      note(
        `${r.method.padEnd(22)} ${(r.fileBytes / 1024).toFixed(1).padStart(9)} ${r.perplexity.toFixed(4).padStart(8)} ${(((r.perplexity / base.perplexity) - 1) * 100).toFixed(2).padStart(6)}% ` +
          `${r.decodeTokensPerS.toFixed(1).padStart(9)} ${(r.decodeTokensPerS / base.decodeTokensPerS).toFixed(2).padStart(5)} ${r.prefillTokensPerS.toFixed(1).padStart(10)} ${(r.prefillTokensPerS / base.prefillTokensPerS).toFixed(2).padStart(5)}`,
      );
    }
  }
  note(`wrote ${flags.out}`);
  return rows;
}

// -----------------------------------------------------------------------------------------------
// weft compress qat
// -----------------------------------------------------------------------------------------------

interface QatFlags {
  data?: string;
  steps?: number;
  lr?: number;
  batchSize?: number;
  format?: string;
  evalWindows?: number;
  out?: string;
  json?: boolean;
}

export interface QatResult {
  format: QuantFormat;
  f32Perplexity: number;
  ptqPerplexity: number;
  /** PTQ after the same fine-tuning in f32 (the control). */
  finetunedPtqPerplexity: number;
  qatPerplexity: number;
  steps: number;
}

/** PTQ (round-to-nearest of the trained model) against QAT (fine-tuned with fake quantization, then the same rounding). */
export async function runQatCommand(modelDir: string, flags: QatFlags, io: CommandIO = defaultIO()): Promise<QatResult> {
  const json = flags.json === true;
  const note = (s: string): void => void (json ? io.stderr : io.stdout).write(`${s}\n`);
  const format = (flags.format ?? 'q4_0') as QuantFormat;
  if (!isQuantFormat(format)) throw new UsageError(`--format ${flags.format}: unknown`);
  const dataPath = flags.data ?? trainingTextOf(modelDir);
  if (dataPath === undefined) throw new UsageError('--data: required (the fine-tuning and evaluation text)');
  const tokenizer = modelTokenizer(modelDir);
  const ds = splitIds(readText(dataPath, '--data'), tokenizer, '--data');
  const steps = flags.steps ?? 200;
  const base = await loadLlamaDir(modelDir);
  const block = Math.min(base.config.maxPositionEmbeddings, 128);
  const evalWindows = flags.evalWindows ?? 64;
  const f32Perplexity = perplexity(base, ds.val, block, { maxWindows: evalWindows });
  const ptq = await loadLlamaDir(modelDir);
  quantizeLlama(ptq, { method: 'rtn', format });
  const ptqPerplexity = perplexity(ptq, ds.val, block, { maxWindows: evalWindows });
  note(`f32 perplexity ${f32Perplexity.toFixed(4)}; PTQ ${format} (round-to-nearest) ${ptqPerplexity.toFixed(4)}`);
  const batchSize = flags.batchSize ?? 16;
  const lr = flags.lr ?? 3e-4;
  const tune = (model: Llama, label: string): void => {
    note(label);
    fineTuneWithProgress(io, json, { model, dataset: ds, steps, batchSize, blockSize: block, lr, weightDecay: 0 });
  };
  const qat = await loadLlamaDir(modelDir);
  const undo = enableFakeQuant(qat, format, { include: /^model\.layers\./ });
  tune(qat, `QAT: ${steps} fine-tuning steps with ${format} fake quantization (straight-through estimator)`);
  undo();
  quantizeLlama(qat, { method: 'rtn', format });
  const qatPerplexity = perplexity(qat, ds.val, block, { maxWindows: evalWindows });
  // Control: the same fine-tuning without fake quantization, then the same rounding — so QAT's gain
  // is not just the extra training.
  const control = await loadLlamaDir(modelDir);
  tune(control, `control: the same ${steps} steps in f32, then round-to-nearest`);
  quantizeLlama(control, { method: 'rtn', format });
  const finetunedPtqPerplexity = perplexity(control, ds.val, block, { maxWindows: evalWindows });
  const result: QatResult = { format, f32Perplexity, ptqPerplexity, finetunedPtqPerplexity, qatPerplexity, steps };
  if (flags.out !== undefined) {
    await saveQuantizedLlama(qat, flags.out);
    copyTokenizer(modelDir, flags.out);
  }
  if (json) io.stdout.write(`${JSON.stringify(result)}\n`);
  note(`${format} val perplexity: QAT (${steps} steps) ${qatPerplexity.toFixed(4)}; PTQ ${ptqPerplexity.toFixed(4)}; f32 fine-tuned ${steps} steps then PTQ ${finetunedPtqPerplexity.toFixed(4)}; f32 ${f32Perplexity.toFixed(4)}`);
  return result;
}

export function registerCompress(program: Command, io?: CommandIO): void {
  const compress = program.command('compress').description('compression reports and quantization-aware training');
  compress
    .command('report <model>')
    .description('apply every compression method to <model> and measure size, val perplexity, decode and prefill tokens/s against f32 (HTML table + chart)')
    .requiredOption('--out <file>', 'HTML report to write (e.g. report.html)')
    .option('--data <file>', 'text for calibration (train split) and perplexity (val split); default: the text the run trained on')
    .option('--methods <list>', `comma-separated (default: ${DEFAULT_REPORT_METHODS.join(',')}; also ${Object.keys(REPORT_METHODS).filter((m) => !DEFAULT_REPORT_METHODS.includes(m)).join(', ')})`)
    .option('--calib-windows <n>', 'calibration windows (default 32; AWQ 128)', parsePositiveInt)
    .option('--eval-windows <n>', 'perplexity windows of the model context (default 64)', parsePositiveInt)
    .option('--decode-tokens <n>', 'greedy tokens timed per method (default 32)', parsePositiveInt)
    .option('--json', 'one JSON line per method')
    .action(async (model: string, flags: ReportFlags) => {
      await runCompressReportCommand(model, flags, io);
    });
  compress
    .command('qat <model>')
    .description('quantization-aware fine-tuning (fake quant + straight-through estimator) against post-training round-to-nearest')
    .option('--data <file>', 'fine-tuning and evaluation text (default: the text the run trained on)')
    .option('--format <f>', 'weight format (default q4_0)')
    .option('--steps <n>', 'fine-tuning steps (default 200)', parsePositiveInt)
    .option('--lr <x>', 'learning rate (default 3e-4)', parsePositiveNumber)
    .option('--batch-size <n>', 'sequences per step (default 16)', parsePositiveInt)
    .option('--eval-windows <n>', 'perplexity windows (default 64)', parsePositiveInt)
    .option('--out <dir>', 'save the QAT-quantized model here')
    .option('--json', 'JSON lines')
    .action(async (model: string, flags: QatFlags) => {
      await runQatCommand(model, flags, io);
    });
}

