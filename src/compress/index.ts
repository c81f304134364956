/**
 * Model compression for LLaMA-family models: one entry per method, each taking a model and
 * returning it compressed in place (or a new, smaller model), plus the measurements every method
 * reports (perplexity, file size, decode and prefill speed).
 *
 *   quantizeLlama   rtn | gptq | awq | smoothquant → QuantizedLinear / W8A8Linear layers
 *   prune.ts        magnitude masks, heads / neurons / layers → a smaller LLaMA
 *   lowrank.ts      SVD factorisation into two Linears
 *   distill.ts      teacher → student training
 */
import { replaceModule } from './quant/model.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { Llama } from '../models/llama.js';
import { loadPretrained } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { awqLlama } from './awq.js';
import { activationThreshold, collectActivationStats, collectLinearInputs, findLinears, type CalibrationMethod } from './calibrate.js';
import { gptqQuantize, gptqGridFor, HessianAccumulator, packGPTQ } from './gptq.js';
import { COMPRESSION_KEY, loadLowRankLlama, readCompressionInfo } from './lowrank.js';
import { dequantizeMatrix, groupSize, quantizeMatrix, type QuantFormat, type QuantizedMatrix } from './quant/formats.js';
import { QuantizedLinear } from './quant/linear.js';
import { loadQuantized, loadQuantizedGGUF, quantizeModelWeights, saveQuantized } from './quant/model.js';
import { type ActivationQuant, smoothLlama, W8A8Linear } from './smoothquant.js';

export * from './calibrate.js';
export * from './gptq.js';
export * from './awq.js';
export * from './smoothquant.js';
export * from './qat.js';
export * from './prune.js';
export * from './lowrank.js';
export * from './distill.js';

export type QuantMethod = 'rtn' | 'gptq' | 'awq' | 'smoothquant';
export const QUANT_METHODS: readonly QuantMethod[] = ['rtn', 'gptq', 'awq', 'smoothquant'];

export interface QuantizeLlamaOptions {
  method: QuantMethod;
  /** Weight format (smoothquant: always int8 per channel). */
  format: QuantFormat;
  /** Calibration batches of ids [B, T] (gptq, awq, smoothquant). */
  calibration?: readonly Tensor[];
  /** GPTQ: act-order (default false), lazy block size (128), dampening (0.01). */
  actOrder?: boolean;
  blockSize?: number;
  percDamp?: number;
  /** AWQ: clipping search (default true). */
  clip?: boolean;
  /** SmoothQuant: migration strength α (default 0.5; 0 = no smoothing) and the activation quantization. */
  smoothAlpha?: number;
  activation?: 'dynamic' | CalibrationMethod;
  percentile?: number;
  /** Progress: (what, done, total). */
  onProgress?: (what: string, done: number, total: number) => void;
}

export interface QuantizeLlamaResult {
  replaced: string[];
  /** Per method details (AWQ's α per group, SmoothQuant's activation thresholds…). */
  details: Record<string, unknown>;
}

/** Whether a Linear with `cols` inputs can be stored in `format` (groups divide the row; activation blocks of 32). */
function fitsFormat(format: QuantFormat, cols: number): boolean {
  return cols % Math.max(32, format === 'int8' ? 32 : groupSize(format)) === 0;
}

function needCalibration(options: QuantizeLlamaOptions): readonly Tensor[] {
  if (options.calibration === undefined || options.calibration.length === 0) {
    throw new RangeError(`quantize: method '${options.method}' needs calibration text (--calib <text file>)`);
  }
  return options.calibration;
}

/** Linears that get quantized: every Linear of the decoder (the tied embedding / lm_head stay f32). */
function targetLinears(model: Llama): ReturnType<typeof findLinears> {
  return findLinears(model, { include: /^model\.layers\./ });
}

/**
 * GPTQ layer by layer, in order: each decoder layer's Hessians come from inputs produced by the layers
 * before it *already quantized* (the paper's sequential scheme). Linears whose input width the format's
 * groups do not divide stay f32, as quantizeModelWeights leaves them.
 */
function gptqLlama(model: Llama, options: QuantizeLlamaOptions): Map<string, QuantizedMatrix> {
  const batches = needCalibration(options);
  const out = new Map<string, QuantizedMatrix>();
  const n = model.config.nLayer;
  for (let layer = 0; layer < n; layer++) {
    const linears = targetLinears(model).filter(([name, l]) => name.startsWith(`model.layers.${layer}.`) && fitsFormat(options.format, l.inFeatures));
    const inputs = collectLinearInputs(model, linears, batches);
    const hessians = new Map<string, HessianAccumulator>();
    for (const [name, l] of linears) {
      const inp = inputs.get(name)!;
      const acc = new HessianAccumulator(l.inFeatures);
      // In chunks, as add_batch sees them.
      for (let r = 0; r < inp.rows; r += 256) acc.add(inp.x.subarray(r * inp.cols, Math.min(inp.rows, r + 256) * inp.cols), Math.min(256, inp.rows - r));
      hessians.set(name, acc);
    }
    for (const [name, l] of linears) {
      const res = gptqQuantize(l.weight.f32(), l.outFeatures, l.inFeatures, hessians.get(name)!.h, gptqGridFor(options.format, l.inFeatures), {
        actOrder: options.actOrder,
        blockSize: options.blockSize,
        percDamp: options.percDamp,
      });
      const packed = packGPTQ(res, options.format);
      out.set(name, packed);
      // Later layers see this layer's quantized outputs.
      l.weight.f32().set(dequantizeMatrix(packed));
    }
    options.onProgress?.('gptq', layer + 1, n);
  }
  return out;
}

/** Quantizes a LLaMA in place by the chosen method; its decoder Linears become quantized layers. */
export function quantizeLlama(model: Llama, options: QuantizeLlamaOptions): QuantizeLlamaResult {
  model.eval();
  const include = /^model\.layers\./;
  const details: Record<string, unknown> = { method: options.method, format: options.format };
  if (options.method === 'smoothquant') {
    const batches = needCalibration(options);
    const alpha = options.smoothAlpha ?? 0.5;
    if (alpha > 0) smoothLlama(model, collectActivationStats(model, targetLinears(model), batches), alpha);
    const mode = options.activation ?? 'dynamic';
    details.smoothAlpha = alpha;
    details.activation = mode;
    if (mode === 'dynamic') {
      // Per-token dynamic activations on int8 weights: H-quant's W8A8 layer and INT8 GEMM.
      const { replaced } = quantizeModelWeights(model, 'int8', { include, activations: 'per-token' });
      return { replaced, details };
    }
    const stats = collectActivationStats(model, targetLinears(model), batches);
    const thresholds: Record<string, number> = {};
    const replaced: string[] = [];
    for (const [name, l] of targetLinears(model)) {
      const t = activationThreshold(stats.get(name)!, mode, { percentile: options.percentile });
      thresholds[name] = t;
      replaceModule(model, name, W8A8Linear.fromLinear(l, { kind: 'static', threshold: t }));
      replaced.push(name);
    }
    details.thresholds = thresholds;
    return { replaced, details };
  }
  let matrices: Map<string, QuantizedMatrix> | null = null;
  if (options.method === 'gptq') {
    matrices = gptqLlama(model, options);
    details.actOrder = options.actOrder ?? false;
  } else if (options.method === 'awq') {
    const reports = awqLlama(model, needCalibration(options), { format: options.format, clip: options.clip, onLayer: (d, t) => options.onProgress?.('awq', d, t) });
    details.groups = reports.map((r) => ({ prev: r.prev, alpha: r.alpha, errorBefore: r.errorBefore, errorAfter: r.errorAfter }));
  } else if (options.method !== 'rtn') {
    throw new RangeError(`quantize: unknown method '${String(options.method)}' (choose ${QUANT_METHODS.join(', ')})`);
  }
  const fixed = matrices;
  const { replaced } = quantizeModelWeights(model, options.format, {
    include,
    quantizer:
      fixed === null
        ? (_name: string, w: Float32Array, rows: number, cols: number) => quantizeMatrix(w, rows, cols, options.format)
        : (name: string) => {
            const q = fixed.get(name);
            if (q === undefined) throw new Error(`quantize: GPTQ produced no matrix for ${name}`);
            return q;
          },
  });
  return { replaced, details };
}

/** File recording a W8A8 model's activation quantization next to its int8 weights. */
export const ACTIVATION_FILE = 'activation_quant.json';

/**
 * Saves a quantized LLaMA (H-quant's safetensors + quantization_config). W8A8 layers are stored as
 * their int8 weights (QuantizedLinear) with the activation mode and thresholds in activation_quant.json.
 */
export async function saveQuantizedLlama(model: Llama, dir: string): Promise<void> {
  const w8a8 = model.namedModules().filter((e): e is [string, W8A8Linear] => e[1] instanceof W8A8Linear);
  const swapped: [string, W8A8Linear][] = [];
  try {
    for (const [name, l] of w8a8) {
      replaceModule(model, name, new QuantizedLinear(l.q, l.bias === null ? null : Tensor.fromArray(l.bias.slice(), [l.bias.length]), { activations: 'per-token' }));
      swapped.push([name, l]);
    }
    await saveQuantized(model, dir);
  } finally {
    for (const [name, l] of swapped) replaceModule(model, name, l);
  }
  if (w8a8.length > 0) {
    const activation = Object.fromEntries(w8a8.map(([name, l]) => [name, l.activation]));
    await writeFileAtomic(join(dir, ACTIVATION_FILE), JSON.stringify({ activation }, null, 2) + '\n');
  }
}

// -----------------------------------------------------------------------------------------------
// Loading and measuring
// -----------------------------------------------------------------------------------------------

/** Loads a model directory whatever Weft wrote into it: plain LLaMA, quantized, or low-rank factorised. */
export async function loadLlamaLike(dir: string): Promise<Module & { forward: Llama['forward']; forwardCached: Llama['forwardCached']; newCache: Llama['newCache']; config: Llama['config'] }> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  if ((await readCompressionInfo(dir))?.method === 'lowrank') return loadLowRankLlama(dir);
  if (config.quantization_config !== undefined) {
    const m = await loadQuantized(dir);
    if (!(m instanceof Llama)) throw new Error(`${dir}: the quantized model is not a LLaMA-family model`);
    if (existsSync(join(dir, ACTIVATION_FILE))) {
      // W8A8 with static activation scales: put them back on the int8 layers.
      const { activation } = JSON.parse(await readFile(join(dir, ACTIVATION_FILE), 'utf8')) as { activation: Record<string, ActivationQuant> };
      for (const [name, act] of Object.entries(activation)) {
        const layer = m.getModule(name);
        if (!(layer instanceof QuantizedLinear)) throw new Error(`${dir}/${ACTIVATION_FILE}: ${name} is not a quantized layer of the model`);
        const bias = layer.bias === null ? null : layer.bias.f32().slice();
        replaceModule(m, name, new W8A8Linear(layer.qweight, bias, act));
      }
    }
    return m;
  }
  return Llama.fromPretrained(dir);
}

/**
 * Any model directory Weft writes — plain (through the family registry), quantized (any family), or
 * a low-rank / W8A8 LLaMA — so `weft generate` and `weft serve` run what `weft quantize`, `weft prune`
 * and `weft lowrank` produce.
 */
export async function loadAnyModel(dir: string): Promise<Module> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  if (config.quantization_config === undefined && config[COMPRESSION_KEY] === undefined) return loadPretrained(dir);
  if (config.model_type === 'llama' || config.model_type === 'qwen2') return loadLlamaLike(dir);
  return loadQuantized(dir);
}

/** A LLaMA-family .gguf, its quantized blocks (Q8_0/Q4_0/Q4_1/TQ2_0) run as they are; f32/f16 files load as f32. */
export function loadGGUFModel(path: string): Llama {
  return loadQuantizedGGUF(path).model;
}

/** Total bytes of the regular files in a directory (not recursive). */
export function dirBytes(dir: string, only?: RegExp): number {
  return readdirSync(dir)
    .filter((f) => only === undefined || only.test(f))
    .map((f) => statSync(join(dir, f)))
    .filter((s) => s.isFile())
    .reduce((n, s) => n + s.size, 0);
}

export interface SpeedResult {
  prefillTokensPerS: number;
  decodeTokensPerS: number;
}

type CachedLM = Pick<Llama, 'forwardCached' | 'newCache' | 'config'>;

/**
 * Prefill (one forward of the prompt) and greedy-decode speed with a KV cache: one untimed warm-up
 * pass (JIT, buffer pools, dequantization caches), then the best of `repeats`.
 */
export function measureSpeed(model: CachedLM, prompt: Int32Array, decodeTokens: number, repeats = 5): SpeedResult {
  const ctx = model.config.maxPositionEmbeddings;
  const p = prompt.subarray(0, Math.max(1, Math.min(prompt.length, ctx - decodeTokens)));
  let prefill = Infinity;
  let decode = Infinity;
  for (let r = -1; r < repeats; r++) {
    const cache = model.newCache(1, p.length + decodeTokens);
    const t0 = performance.now();
    const logits = model.forwardCached(Tensor.fromArray(Int32Array.from(p), [1, p.length], 'i32'), cache, { lastOnly: true });
    const t1 = performance.now();
    let next = argmax(logits.f32());
    logits.dispose();
    const t2 = performance.now();
    for (let i = 0; i < decodeTokens; i++) {
      const l = model.forwardCached(Tensor.fromArray(Int32Array.of(next), [1, 1], 'i32'), cache, { lastOnly: true });
      next = argmax(l.f32());
      l.dispose();
    }
    const t3 = performance.now();
    if (r < 0) continue;
    prefill = Math.min(prefill, t1 - t0);
    decode = Math.min(decode, t3 - t2);
  }
  return { prefillTokensPerS: (p.length * 1000) / prefill, decodeTokensPerS: (decodeTokens * 1000) / decode };
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

