/**
 * `weft quantize <model> --method rtn|gptq|awq|smoothquant --bits 8|4 [--group-size 32] [--calib <text file>] --out <dir>`:
 * post-training quantization of a LLaMA-family model directory into a quantized directory
 * (safetensors with scales + quantization_config; W8A8 adds activation_quant.json) that
 * loads back with its quantized layers.
 */
import type { Command } from 'commander';
import { calibrationBatches, perplexity } from '../compress/calibrate.js';
import { dirBytes, QUANT_METHODS, quantizeLlama, saveQuantizedLlama, type QuantMethod } from '../compress/index.js';
import { UsageError } from '../train/config.js';
import { copyTokenizer, defaultIO, formatFor, loadLlamaDir, modelTokenizer, readText, splitIds, stepProgress } from './compress.js';
import { type CommandIO, parsePositiveInt, parsePositiveNumber } from './train.js';

export interface QuantizeFlags {
  method: string;
  bits: string;
  groupSize?: number;
  format?: string;
  calib?: string;
  calibWindows?: number;
  actOrder?: boolean;
  activation?: string;
  alpha?: number;
  eval?: string;
  out: string;
  json?: boolean;
}

export async function runQuantize(modelDir: string, flags: QuantizeFlags, io: CommandIO = defaultIO()): Promise<Record<string, unknown>> {
  const json = flags.json === true;
  const note = (s: string): void => void (json ? io.stderr : io.stdout).write(`${s}\n`);
  const method = flags.method as QuantMethod;
  if (!QUANT_METHODS.includes(method)) throw new UsageError(`--method ${flags.method}: choose one of ${QUANT_METHODS.join(', ')}`);
  const bits = Number(flags.bits);
  const format = method === 'smoothquant' ? 'int8' : formatFor(bits, flags.groupSize, flags.format);
  if (method === 'smoothquant' && bits !== 8) throw new UsageError('--bits: SmoothQuant is W8A8; pass --bits 8');
  const activation = flags.activation ?? 'dynamic';
  if (!['dynamic', 'minmax', 'percentile', 'kl'].includes(activation)) throw new UsageError(`--activation ${activation}: choose dynamic, minmax, percentile or kl`);
  const model = await loadLlamaDir(modelDir);
  const tokenizer = modelTokenizer(modelDir);
  const block = Math.min(model.config.maxPositionEmbeddings, 128);
  let calibration;
  if (method !== 'rtn') {
    if (flags.calib === undefined) throw new UsageError(`--calib: ${method} needs calibration text; pass --calib <text file> (e.g. the training text)`);
    const ds = splitIds(readText(flags.calib, '--calib'), tokenizer, '--calib');
    // AWQ's scale search needs more activation rows than the others: with 32 windows its Q4_1 lost to RTN.
    calibration = calibrationBatches(ds.train, block, flags.calibWindows ?? (method === 'awq' ? 128 : 32));
  }
  const evalIds = flags.eval === undefined ? null : splitIds(readText(flags.eval, '--eval'), tokenizer, '--eval').val;
  const before = evalIds === null ? null : perplexity(model, evalIds, block, { maxWindows: 64 });
  const progress = stepProgress(io.stderr, json);
  const t0 = performance.now();
  const { replaced, details } = quantizeLlama(model, {
    method,
    format,
    calibration,
    actOrder: flags.actOrder,
    activation: activation as 'dynamic',
    smoothAlpha: flags.alpha,
    onProgress: (what, done, total) => progress.update(`${what} layers`, done, total),
  });
  progress.finish();
  const seconds = (performance.now() - t0) / 1000;
  await saveQuantizedLlama(model, flags.out);
  copyTokenizer(modelDir, flags.out);
  const after = evalIds === null ? null : perplexity(model, evalIds, block, { maxWindows: 64 });
  const fileBytes = dirBytes(flags.out, /\.(safetensors|json)$/);
  const summary = { method, format, layers: replaced.length, seconds, out: flags.out, fileBytes, perplexityBefore: before, perplexityAfter: after, activation: method === 'smoothquant' ? activation : undefined, alphas: details.groups };
  if (json) io.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    note(`quantized ${replaced.length} linear layers with ${method} to ${format} in ${seconds.toFixed(1)} s; wrote ${flags.out} (${(fileBytes / 1024).toFixed(1)} KiB)`);
    if (before !== null && after !== null) note(`val perplexity ${before.toFixed(4)} → ${after.toFixed(4)} (${(((after / before) - 1) * 100).toFixed(2)}%)`);
  }
  return summary;
}

export function registerQuantize(program: Command, io?: CommandIO): void {
  program
    .command('quantize <model>')
    .description('post-training quantization of a LLaMA-family model: round-to-nearest, GPTQ, AWQ or SmoothQuant W8A8')
    .requiredOption('--method <m>', 'rtn | gptq | awq | smoothquant')
    .requiredOption('--bits <n>', '8 or 4')
    .option('--group-size <n>', 'weights per scale: 32 (Q8_0 / Q4_0) or 128 (4-bit asymmetric); 8-bit without it is per channel', parsePositiveInt)
    .option('--format <f>', 'explicit weight format: q8_0, q4_0, q4_1, q4_g128, int8')
    .option('--calib <file>', 'calibration text (needed by gptq, awq and smoothquant)')
    .option('--calib-windows <n>', 'calibration windows of the model context (default 32; AWQ 128)', parsePositiveInt)
    .option('--act-order', 'GPTQ: quantize columns by decreasing Hessian diagonal')
    .option('--activation <mode>', 'smoothquant: dynamic (per token, default) or a static scale from minmax | percentile | kl calibration')
    .option('--alpha <x>', 'smoothquant: migration strength α (default 0.5)', parsePositiveNumber)
    .option('--eval <file>', 'print validation perplexity (last 10% of this text) before and after')
    .requiredOption('--out <dir>', 'output model directory')
    .option('--json', 'a JSON summary line')
    .action(async (model: string, flags: QuantizeFlags) => {
      await runQuantize(model, flags, io);
    });
}
