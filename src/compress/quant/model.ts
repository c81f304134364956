/**
 * Whole-model quantization: swap every nn Linear (and GPT-2's Conv1D) for a QuantizedLinear, and
 * save / load such models as Hugging Face-shaped directories.
 *
 * On disk (saveQuantized): config.json is the family's own config plus
 *   "quantization_config": { "quant_method": "weft", "format", "group_size", "modules": [names],
 *                            "activations": "blocks" | "per-token", "module_formats"?: {name: format} }
 * and model.safetensors holds, for each quantized module N, `N.qweight` (U8 [rows, bytes per row]:
 * the format's packed bytes, see formats.ts) and for int8 `N.scales` (F32 [rows]); every other tensor
 * (embeddings, norms, biases, unquantized layers) is stored as in the model's state dict.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { Conv1D, Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { writeFileAtomic } from '../../io/atomic.js';
import type { GGUFTensorInfo } from '../../io/gguf.js';
import { hfNameFromGGUF, loadLlamaGGUFFile } from '../../io/llama-gguf.js';
import { parseSafetensorsHeader } from '../../io/safetensors.js';
import { GPT } from '../../models/gpt.js';
import { gptConfigFromHF } from '../../models/config.js';
import { gptMoEConfigFromHF } from '../../models/gpt.js';
import { Llama, llamaConfigFromHF } from '../../models/llama.js';
import { Tensor } from '../../tensor/tensor.js';
import { type QuantFormat, type QuantizedMatrix, QUANT_FORMATS, groupSize, quantizeMatrix, quantizedByteLength } from './formats.js';
import { QuantizedLinear } from './linear.js';

export interface QuantizeModelOptions {
  /** Only modules whose dotted name matches are quantized (default: all). */
  include?: RegExp;
  /** Modules whose name matches stay in f32 (default: the LM head and embeddings). */
  exclude?: RegExp;
  /** Chooses the codes (GPTQ, AWQ…); default round-to-nearest quantizeMatrix. w is [rows=out, cols=in]. */
  quantizer?: (name: string, w: Float32Array, rows: number, cols: number) => QuantizedMatrix;
  /** Activation quantization of the new layers (see QuantizedLinear); default 'blocks'. */
  activations?: 'blocks' | 'per-token';
}

export interface QuantizeModelResult {
  replaced: string[];
  /** Linear layers left in f32 because their shape does not fit the format, with the reason. */
  skipped: { name: string; reason: string }[];
}

export const DEFAULT_QUANT_EXCLUDE = /(^|\.)(lm_head|embed_tokens|embed_out|wte|wpe|output)$/;

/** Puts `next` where the sub-module at dotted `path` was (Module.replaceModule on its parent). */
export function replaceModule(root: Module, path: string, next: Module): Module {
  const dot = path.lastIndexOf('.');
  return root.getModule(dot < 0 ? '' : path.slice(0, dot)).replaceModule(path.slice(dot + 1), next);
}

/** Weight as [out, in] f32 (Conv1D stores [in, out]). */
function weightOf(m: Linear | Conv1D): Float32Array {
  if (m instanceof Linear) return m.weight.f32('quantizeModelWeights').slice();
  return m.weight.transpose(0, 1).contiguous().f32('quantizeModelWeights');
}

/** Replaces every matching Linear / Conv1D of `model` by a QuantizedLinear in `format`. */
export function quantizeModelWeights(model: Module, format: QuantFormat, options: QuantizeModelOptions = {}): QuantizeModelResult {
  if (!(QUANT_FORMATS as readonly string[]).includes(format)) {
    throw new RangeError(`quantizeModelWeights: unknown format '${format}' (supported: ${QUANT_FORMATS.join(', ')})`);
  }
  const exclude = options.exclude ?? DEFAULT_QUANT_EXCLUDE;
  const replaced: string[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof Linear || m instanceof Conv1D) || name === '') continue;
    if (options.include !== undefined && !options.include.test(name)) continue;
    if (exclude.test(name)) continue;
    const rows = m.outFeatures;
    const cols = m.inFeatures;
    const block = Math.max(32, format === 'int8' ? 32 : groupSize(format));
    if (cols % block !== 0 && !(format === 'int8' && options.activations === 'per-token')) {
      skipped.push({ name, reason: `input width ${cols} is not a multiple of ${block}` });
      continue;
    }
    const w = weightOf(m);
    const q = options.quantizer !== undefined ? options.quantizer(name, w, rows, cols) : quantizeMatrix(w, rows, cols, format);
    if (q.rows !== rows || q.cols !== cols) throw new RangeError(`quantizeModelWeights: quantizer returned [${q.rows}, ${q.cols}] for ${name}, expected [${rows}, ${cols}]`);
    const bias = m.bias === null ? null : m.bias.detach().clone();
    replaceModule(model, name, new QuantizedLinear(q, bias, { activations: options.activations }));
    replaced.push(name);
  }
  return { replaced, skipped };
}

/** The QuantizedLinear layers of a model, by name. */
export function quantizedModules(model: Module): [string, QuantizedLinear][] {
  return model.namedModules().filter((e): e is [string, QuantizedLinear] => e[1] instanceof QuantizedLinear);
}

// -----------------------------------------------------------------------------------------------
// Saving and loading
// -----------------------------------------------------------------------------------------------

const QuantConfigSchema = z.object({
  quant_method: z.literal('weft'),
  format: z.union([z.enum(QUANT_FORMATS as unknown as [QuantFormat, ...QuantFormat[]]), z.literal('mixed')]),
  group_size: z.number().int().positive().nullable(),
  modules: z.array(z.string()),
  activations: z.enum(['blocks', 'per-token']).default('blocks'),
  module_formats: z.record(z.string(), z.enum(QUANT_FORMATS as unknown as [QuantFormat, ...QuantFormat[]])).optional(),
});
export type WeftQuantizationConfig = z.output<typeof QuantConfigSchema>;

interface RawTensor {
  dtype: 'F32' | 'I32' | 'BF16' | 'F16' | 'U8';
  shape: number[];
  bytes: Uint8Array;
}

const DTYPE_NAMES = { f32: 'F32', i32: 'I32', bf16: 'BF16', f16: 'F16' } as const;

function rawOf(t: Tensor): RawTensor {
  const d = t.dense();
  return { dtype: DTYPE_NAMES[t.dtype], shape: [...t.shape], bytes: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
}

/** safetensors with U8 entries (the Tensor-based writer has no byte dtype). Header padded to 8 bytes. */
function serializeRaw(tensors: Map<string, RawTensor>, metadata: Record<string, string>): Uint8Array[] {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = new Uint8Array(8 + Buffer.byteLength(json));
  new DataView(head.buffer).setBigUint64(0, BigInt(head.length - 8), true);
  head.set(new TextEncoder().encode(json), 8);
  return [head, ...names.map((n) => tensors.get(n)!.bytes)];
}

interface SaveablePretrained extends Module {
  savePretrained(dir: string): Promise<void>;
}

function hasSavePretrained(m: Module): m is SaveablePretrained {
  return typeof (m as unknown as Partial<SaveablePretrained>).savePretrained === 'function';
}

/**
 * Writes `dir` (config.json with quantization_config, model.safetensors with packed weights, and the
 * family's other files). The model must be one whose family saves itself (savePretrained).
 */
export async function saveQuantized(model: Module, dir: string): Promise<void> {
  const op = 'saveQuantized';
  const layers = quantizedModules(model);
  if (layers.length === 0) throw new Error(`${op}: the model has no quantized layers; call quantizeModelWeights first`);
  if (!hasSavePretrained(model)) throw new Error(`${op}: ${model.constructor.name} has no savePretrained, so its config cannot be written`);
  const formats = new Set(layers.map(([, l]) => l.format));
  const activations = new Set(layers.map(([, l]) => l.activations));
  if (activations.size > 1) throw new Error(`${op}: layers mix activation modes (blocks and per-token); save one mode per model`);
  const single = formats.size === 1 ? layers[0]![1].format : null;
  const qc: WeftQuantizationConfig = {
    quant_method: 'weft',
    format: single ?? 'mixed',
    group_size: single === null ? null : single === 'int8' ? null : groupSize(single),
    modules: layers.map(([n]) => n),
    activations: layers[0]![1].activations,
    ...(single === null ? { module_formats: Object.fromEntries(layers.map(([n, l]) => [n, l.format])) } : {}),
  };
  // The family writes its config.json (and generation config) and a safetensors we then replace.
  await model.savePretrained(dir);
  const tensors = new Map<string, RawTensor>();
  for (const [name, t] of model.stateDict()) tensors.set(name, rawOf(t));
  for (const [name, l] of layers) {
    const q = l.qweight;
    tensors.set(`${name}.qweight`, { dtype: 'U8', shape: [q.rows, q.data.length / q.rows], bytes: q.data });
    if (q.rowScales !== undefined) tensors.set(`${name}.scales`, { dtype: 'F32', shape: [q.rows], bytes: new Uint8Array(q.rowScales.buffer, q.rowScales.byteOffset, q.rowScales.byteLength) });
  }
  await writeFileAtomic(join(dir, 'model.safetensors'), serializeRaw(tensors, { format: 'pt', quant_method: 'weft' }));
  const configPath = join(dir, 'config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  config.quantization_config = qc;
  await writeFileAtomic(configPath, JSON.stringify(config, null, 2) + '\n');
}

/** A model of the family config.json names, with fresh weights (they are all overwritten on load). */
function buildFamily(config: Record<string, unknown>, source: string): Module {
  const type = config.model_type;
  if (type === 'llama' || type === 'qwen2') return new Llama(llamaConfigFromHF(config));
  if (type === 'gpt2') return new GPT({ ...gptConfigFromHF(config), moe: gptMoEConfigFromHF(config) });
  throw new Error(`loadQuantized: ${source}: model_type '${String(type)}' cannot be loaded quantized yet (supported: llama, qwen2, gpt2)`);
}

function viewOf(bytes: Uint8Array, begin: number, end: number): Uint8Array {
  return bytes.slice(begin, end);
}

/** Loads a directory written by saveQuantized: the family model with its QuantizedLinear layers. */
export async function loadQuantized(dir: string): Promise<Module> {
  const op = 'loadQuantized';
  const configPath = join(dir, 'config.json');
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${op}: cannot read ${configPath}: ${(e as Error).message}`);
  }
  const parsed = QuantConfigSchema.safeParse(config.quantization_config);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `quantization_config.${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`${op}: ${configPath}: ${issues} (expected a directory written by saveQuantized / weft quantize)`);
  }
  const qc = parsed.data;
  const path = join(dir, 'model.safetensors');
  const bytes = new Uint8Array(await readFile(path));
  const header = parseSafetensorsHeader(bytes, path);
  const entries = new Map(header.entries.map((e) => [e.name, e]));
  const take = (name: string, dtype: string): Uint8Array => {
    const e = entries.get(name);
    if (e === undefined) throw new Error(`${op}: ${path} has no tensor '${name}'`);
    if (e.dtype !== dtype) throw new Error(`${op}: ${path}: '${name}' is ${e.dtype}, expected ${dtype}`);
    entries.delete(name);
    return viewOf(bytes, header.dataStart + e.begin, header.dataStart + e.end);
  };
  const model = buildFamily(config, configPath);
  const skeleton = new Map(model.namedModules());
  for (const name of qc.modules) {
    const layer = skeleton.get(name);
    if (!(layer instanceof Linear || layer instanceof Conv1D)) throw new Error(`${op}: ${configPath}: module '${name}' is not a Linear layer of this ${String(config.model_type)} model`);
    const format = qc.format === 'mixed' ? qc.module_formats?.[name] : qc.format;
    if (format === undefined) throw new Error(`${op}: ${configPath}: no format for module '${name}' in quantization_config.module_formats`);
    const rows = layer.outFeatures;
    const cols = layer.inFeatures;
    const data = take(`${name}.qweight`, 'U8');
    const want = quantizedByteLength(format, rows, cols);
    if (data.length !== want) throw new Error(`${op}: ${path}: '${name}.qweight' has ${data.length} bytes, ${format} [${rows}, ${cols}] needs ${want}`);
    let rowScales: Float32Array | undefined;
    if (format === 'int8') {
      const s = take(`${name}.scales`, 'F32');
      rowScales = new Float32Array(s.buffer, s.byteOffset, s.length / 4);
    }
    // The bias is a buffer of the new layer: the state-dict pass below fills it.
    const bias = layer.bias === null ? null : Tensor.zeros([rows]);
    replaceModule(model, name, new QuantizedLinear({ format, rows, cols, data, rowScales }, bias, { activations: qc.activations }));
  }
  const rest = new Map<string, Tensor>();
  for (const [name, target] of model.stateDict()) {
    if (rest.has(name)) continue;
    const e = entries.get(name);
    if (e === undefined) throw new Error(`${op}: ${path} has no tensor '${name}' (${target.shape.join('×')})`);
    if (e.dtype !== 'F32') throw new Error(`${op}: ${path}: '${name}' is ${e.dtype}; saveQuantized writes F32`);
    rest.set(name, Tensor.fromArray(new Float32Array(viewOf(bytes, header.dataStart + e.begin, header.dataStart + e.end).buffer), e.shape));
  }
  model.loadStateDict(rest);
  model.eval();
  return model;
}

// -----------------------------------------------------------------------------------------------
// GGUF files with quantized blocks, run on the quantized kernels
// -----------------------------------------------------------------------------------------------

const GGML_TO_FORMAT: Record<string, QuantFormat> = { Q8_0: 'q8_0', Q4_0: 'q4_0', Q4_1: 'q4_1', TQ2_0: 'tq2' };

/** Row permutation of packed rows: interleaved rotary (llama.cpp) → rotate-half (HF), per head. */
function permuteRowsToRotateHalf(bytes: Uint8Array, nHeads: number, headDim: number, rowBytes: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    const base = h * headDim;
    for (let j = 0; j < half; j++) {
      out.set(bytes.subarray((base + 2 * j) * rowBytes, (base + 2 * j + 1) * rowBytes), (base + j) * rowBytes);
      out.set(bytes.subarray((base + 2 * j + 1) * rowBytes, (base + 2 * j + 2) * rowBytes), (base + j + half) * rowBytes);
    }
  }
  return out;
}

/**
 * Loads a LLaMA-family .gguf and runs its Q8_0 / Q4_0 / Q4_1 / TQ2_0 matrices on the quantized
 * kernels, straight from the file's blocks (activations quantized to Q8 blocks, as llama.cpp does):
 * the memory and speed of the quantized file, not of its f32 expansion. Other tensors load as f32.
 */
export function loadQuantizedGGUF(path: string): { model: Llama; replaced: string[] } {
  // Block-quantized matrices other than the token embedding (which stays a dequantized lookup table)
  // become QuantizedLinear layers: they are read from their blocks, never dequantised.
  const quantizedLayer = (info: GGUFTensorInfo): boolean => GGML_TO_FORMAT[info.typeName] !== undefined && info.dims.length === 2 && info.name !== 'token_embd.weight';
  const { model, file, bytes } = loadLlamaGGUFFile(path, quantizedLayer);
  const c = model.config;
  const modules = new Map(model.namedModules());
  const replaced: string[] = [];
  for (const info of file.tensors) {
    if (!quantizedLayer(info)) continue;
    const format = GGML_TO_FORMAT[info.typeName]!;
    const moduleName = hfNameFromGGUF(info.name).replace(/\.weight$/, '');
    const layer = modules.get(moduleName);
    // The head runs quantized too, like llama.cpp's.
    if (!(layer instanceof Linear)) throw new Error(`gguf ${path}: quantized tensor '${info.name}' is not a linear layer's weight (only those and the token embedding may be ${info.typeName})`);
    const [cols, rows] = info.dims as [number, number];
    let data: Uint8Array = bytes.slice(file.dataOffset + info.offset, file.dataOffset + info.offset + info.byteSize);
    const qk = /\.self_attn\.(q|k)_proj$/.exec(moduleName);
    if (qk !== null && c.modelType === 'llama') data = permuteRowsToRotateHalf(data, qk[1] === 'q' ? c.nHead : c.nKVHead, c.headDim, info.byteSize / rows);
    const bias = layer.bias === null ? null : layer.bias.detach().clone();
    replaceModule(model, moduleName, new QuantizedLinear({ format, rows, cols, data }, bias));
    replaced.push(moduleName);
  }
  return { model, replaced };
}
