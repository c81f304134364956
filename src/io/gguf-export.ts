/**
 * GGUF export of LLaMA-family models, so llama.cpp (and anything built on it) runs Weft models.
 *
 * Writes GGUF v3 with llama.cpp's metadata keys (general.*, llama.*, tokenizer.ggml.*) and tensor
 * names (token_embd, blk.N.attn_q/k/v/output, ffn_gate/up/down, attn_norm, ffn_norm, output_norm,
 * output). Weights are F32, F16, Q8_0 or Q4_0 (the blocks of src/compress/quant/formats.ts, which are
 * GGUF's); norms and biases stay F32, and a matrix whose rows are not whole blocks falls back to F16
 * as llama.cpp's quantizer does. LLaMA's q/k rows are permuted back from HF's rotate-half layout to
 * Meta's interleaved one (llama.cpp's "normal" rope; the inverse of interleavedToRotateHalf); Qwen2
 * (NeoX rope) is written as is. The vocabulary comes from the model's tokenizer: SentencePiece
 * ('llama': pieces, scores, token types) or byte-level BPE ('gpt2': tokens and merges).
 */
import { basename } from 'node:path';
import { type QuantFormat, quantizeMatrix } from '../compress/quant/formats.js';
import type { Llama, LlamaConfig } from '../models/llama.js';
import { f32ToF16Array } from '../tensor/backend/f16.js';
import { SentencePieceBPE } from '../tokenizers/models/spm.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import type { JsonObject } from '../tokenizers/types.js';
import { writeFileAtomic } from './atomic.js';
import { type GGUFTensorInput, type GGUFValue, serializeGGUF } from './gguf.js';

export type GGUFExportType = 'f32' | 'f16' | 'q8_0' | 'q4_0';
export const GGUF_EXPORT_TYPES: readonly GGUFExportType[] = ['f32', 'f16', 'q8_0', 'q4_0'];

/** ggml type codes and llama.cpp's general.file_type (llama_ftype) per export type. */
const GGML = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;
const FILE_TYPE: Record<GGUFExportType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7 };

export interface GGUFExportOptions {
  /** general.name (default: the output file's base name). */
  name?: string;
  /** Override the tokenizer's BOS / EOS ids (default: <s>/</s>, <|endoftext|>, … when present). */
  bosTokenId?: number | null;
  eosTokenId?: number | null;
}

/** Rotate-half rows (HF) → Meta's interleaved rows: new row 2j = old j, new row 2j+1 = old j + D/2, per head. */
export function rotateHalfToInterleaved(w: Float32Array, nHeads: number, headDim: number, cols: number): Float32Array {
  if (w.length !== nHeads * headDim * cols) throw new RangeError(`rotateHalfToInterleaved: ${w.length} values is not [${nHeads}·${headDim}, ${cols}]`);
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    const base = h * headDim;
    for (let j = 0; j < half; j++) {
      out.set(w.subarray((base + j) * cols, (base + j + 1) * cols), (base + 2 * j) * cols);
      out.set(w.subarray((base + j + half) * cols, (base + j + half + 1) * cols), (base + 2 * j + 1) * cols);
    }
  }
  return out;
}

const u32 = (value: number): GGUFValue => ({ type: 'uint32', value });
const f32v = (value: number): GGUFValue => ({ type: 'float32', value });
const str = (value: string): GGUFValue => ({ type: 'string', value });
const bool = (value: boolean): GGUFValue => ({ type: 'bool', value });

/** A matrix [rows, cols] (row-major) as a GGUF tensor of `type` (F16 fallback when rows are not whole blocks). */
function matrixTensor(name: string, w: Float32Array, rows: number, cols: number, type: GGUFExportType | 'q8_0'): GGUFTensorInput {
  const dims = [cols, rows];
  if ((type === 'q8_0' || type === 'q4_0') && cols % 32 === 0) {
    const q = quantizeMatrix(w, rows, cols, type as QuantFormat);
    return { name, dims, type: type === 'q8_0' ? GGML.Q8_0 : GGML.Q4_0, data: q.data };
  }
  if (type === 'f32') return { name, dims, type: GGML.F32, data: bytesOf(w) };
  const h = f32ToF16Array(w);
  return { name, dims, type: GGML.F16, data: new Uint8Array(h.buffer, h.byteOffset, h.byteLength) };
}

function vectorTensor(name: string, v: Float32Array): GGUFTensorInput {
  return { name, dims: [v.length], type: GGML.F32, data: bytesOf(v) };
}

function bytesOf(a: Float32Array): Uint8Array {
  const copy = a.slice();
  return new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength);
}

// -----------------------------------------------------------------------------------------------
// Tokenizer → tokenizer.ggml.*
// -----------------------------------------------------------------------------------------------

const TOKEN_NORMAL = 1;
const TOKEN_UNKNOWN = 2;
const TOKEN_CONTROL = 3;
const TOKEN_USER_DEFINED = 4;
const TOKEN_UNUSED = 5;
const TOKEN_BYTE = 6;

function isTokenizer(t: unknown): t is Tokenizer {
  return typeof t === 'object' && t !== null && 'model' in t && typeof (t as { toJSON?: unknown }).toJSON === 'function' && typeof (t as { encode?: unknown }).encode === 'function';
}

function firstId(tok: Tokenizer, candidates: readonly string[]): number | null {
  for (const c of candidates) {
    const id = tok.tokenToId(c);
    if (id !== undefined) return id;
  }
  return null;
}

/** tokenizer.ggml.* for `tokenizer`, padded with [PAD…] tokens to the model's vocabulary size. */
export function ggufTokenizerMetadata(tokenizer: unknown, vocabSize: number, options: GGUFExportOptions = {}): [string, GGUFValue][] {
  const op = 'exportGGUF';
  if (!isTokenizer(tokenizer)) throw new TypeError(`${op}: the tokenizer must be a Weft Tokenizer (loadTokenizer / tokenizer.json)`);
  const json = tokenizer.toJSON();
  const model = json.model as JsonObject;
  const added = new Map<number, { special: boolean }>();
  for (const a of tokenizer.addedTokens) {
    const id = tokenizer.tokenToId(a.content);
    if (id !== undefined) added.set(id, { special: a.special });
  }
  const n = tokenizer.vocabSize;
  if (n > vocabSize) throw new RangeError(`${op}: the tokenizer has ${n} tokens but the model's vocabulary is ${vocabSize}; use the model's own tokenizer`);
  const tokens: string[] = [];
  for (let id = 0; id < n; id++) {
    const t = tokenizer.idToToken(id);
    if (t === undefined) throw new RangeError(`${op}: the tokenizer has no token with id ${id} (ids must be contiguous)`);
    tokens.push(t);
  }
  const types = new Int32Array(vocabSize);
  const unkId = typeof model.unk_token === 'string' ? (tokenizer.tokenToId(model.unk_token) ?? null) : null;
  for (let id = 0; id < n; id++) {
    const a = added.get(id);
    if (id === unkId) types[id] = TOKEN_UNKNOWN;
    else if (a !== undefined) types[id] = a.special ? TOKEN_CONTROL : TOKEN_USER_DEFINED;
    else if (/^<0x[0-9A-F]{2}>$/.test(tokens[id]!) && model.byte_fallback === true) types[id] = TOKEN_BYTE;
    else types[id] = TOKEN_NORMAL;
  }
  // Embedding rows past the tokenizer (vocabulary padded for speed) get unused placeholder tokens.
  for (let id = n; id < vocabSize; id++) {
    tokens.push(`[PAD${id}]`);
    types[id] = TOKEN_UNUSED;
  }
  const bos = options.bosTokenId !== undefined ? options.bosTokenId : firstId(tokenizer, ['<s>', '<|begin_of_text|>', '<bos>', '<|endoftext|>']);
  const eos = options.eosTokenId !== undefined ? options.eosTokenId : firstId(tokenizer, ['</s>', '<|end_of_text|>', '<eos>', '<|endoftext|>']);
  const post = JSON.stringify(json.post_processor ?? null);
  const addsBos = bos !== null && post.includes(JSON.stringify(tokens[bos]));
  const out: [string, GGUFValue][] = [];
  const strings = (value: string[]): GGUFValue => ({ type: 'array', elementType: 'string', value });

  if (tokenizer.model instanceof SentencePieceBPE || (model.type === 'BPE' && model.byte_fallback === true)) {
    // llama.cpp's SPM merges the adjacent pair whose joined piece has the highest score. A
    // SentencePiece model has its scores; an HF BPE with byte fallback gets −rank of the merge that
    // makes each piece, which merges in the same order.
    let scores: Float32Array;
    if (tokenizer.model instanceof SentencePieceBPE) {
      scores = new Float32Array(vocabSize);
      scores.set(Float32Array.from(tokenizer.model.scores).subarray(0, n));
    } else {
      scores = new Float32Array(vocabSize);
      const merges = (model.merges as (string | string[])[]) ?? [];
      merges.forEach((mg, rank) => {
        const [l, r] = typeof mg === 'string' ? (mg.split(' ') as [string, string]) : (mg as [string, string]);
        const id = tokenizer.tokenToId(l + r);
        if (id !== undefined && scores[id] === 0) scores[id] = -(rank + 1);
      });
    }
    const normalizer = JSON.stringify(json.normalizer ?? null);
    out.push(
      ['tokenizer.ggml.model', str('llama')],
      ['tokenizer.ggml.tokens', strings(tokens)],
      ['tokenizer.ggml.scores', { type: 'array', elementType: 'float32', value: scores }],
      ['tokenizer.ggml.token_type', { type: 'array', elementType: 'int32', value: types }],
      ['tokenizer.ggml.add_space_prefix', bool(normalizer.includes('"Prepend"'))],
    );
  } else if (model.type === 'BPE') {
    const merges = ((model.merges as (string | string[])[]) ?? []).map((mg) => (typeof mg === 'string' ? mg : mg.join(' ')));
    const pre = JSON.stringify(json.pre_tokenizer ?? null).includes('"Split"') ? 'llama-bpe' : 'gpt-2';
    out.push(
      ['tokenizer.ggml.model', str('gpt2')],
      ['tokenizer.ggml.pre', str(pre)],
      ['tokenizer.ggml.tokens', strings(tokens)],
      ['tokenizer.ggml.token_type', { type: 'array', elementType: 'int32', value: types }],
      ['tokenizer.ggml.merges', strings(merges)],
    );
  } else {
    throw new RangeError(`${op}: tokenizer model '${String(model.type)}' cannot be written to GGUF (supported: SentencePiece / BPE with byte fallback → llama, byte-level BPE → gpt2)`);
  }
  if (bos !== null) out.push(['tokenizer.ggml.bos_token_id', u32(bos)]);
  if (eos !== null) out.push(['tokenizer.ggml.eos_token_id', u32(eos)]);
  if (unkId !== null) out.push(['tokenizer.ggml.unknown_token_id', u32(unkId)]);
  out.push(['tokenizer.ggml.add_bos_token', bool(addsBos)], ['tokenizer.ggml.add_eos_token', bool(false)]);
  return out;
}

// -----------------------------------------------------------------------------------------------
// Model → GGUF
// -----------------------------------------------------------------------------------------------

function archMetadata(c: LlamaConfig): [string, GGUFValue][] {
  const arch = c.modelType;
  const out: [string, GGUFValue][] = [
    [`${arch}.context_length`, u32(c.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, u32(c.hiddenSize)],
    [`${arch}.block_count`, u32(c.nLayer)],
    [`${arch}.feed_forward_length`, u32(c.intermediateSize)],
    [`${arch}.attention.head_count`, u32(c.nHead)],
    [`${arch}.attention.head_count_kv`, u32(c.nKVHead)],
    [`${arch}.rope.dimension_count`, u32(c.headDim)],
    [`${arch}.rope.freq_base`, f32v(c.ropeTheta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32v(c.rmsNormEps)],
    [`${arch}.vocab_size`, u32(c.vocabSize)],
  ];
  if (c.headDim * c.nHead !== c.hiddenSize) {
    out.push([`${arch}.attention.key_length`, u32(c.headDim)], [`${arch}.attention.value_length`, u32(c.headDim)]);
  }
  const s = c.ropeScaling;
  if (s !== null) {
    if (s.type !== 'linear') throw new RangeError(`exportGGUF: rope scaling '${s.type}' cannot be written to GGUF here (supported: none, linear)`);
    out.push([`${arch}.rope.scaling.type`, str('linear')], [`${arch}.rope.scaling.factor`, f32v(s.factor)]);
  }
  return out;
}

/** The metadata and tensors of the GGUF file for `model` (exportGGUF writes them). */
export function buildGGUF(model: Llama, tokenizer: unknown, type: GGUFExportType, options: GGUFExportOptions = {}): { metadata: [string, GGUFValue][]; tensors: GGUFTensorInput[] } {
  const op = 'exportGGUF';
  if (!GGUF_EXPORT_TYPES.includes(type)) throw new RangeError(`${op}: type '${type}' is not one of ${GGUF_EXPORT_TYPES.join(', ')}`);
  const c = model.config;
  if (c.oBias || c.mlpBias || (c.qkvBias && c.modelType !== 'qwen2')) {
    throw new RangeError(`${op}: LLaMA with attention/MLP biases has no llama.cpp tensor layout; export a bias-free LLaMA or a Qwen2`);
  }
  const sd = model.stateDict();
  const get = (name: string): Float32Array => {
    const t = sd.get(name);
    if (t === undefined) throw new Error(`${op}: the model has no tensor '${name}' (is a layer quantized or replaced? export the f32 model)`);
    return t.f32(op);
  };
  const interleave = c.modelType === 'llama';
  const tensors: GGUFTensorInput[] = [];
  // The embedding is read by row lookups; llama.cpp quantizes it with the file type as well.
  tensors.push(matrixTensor('token_embd.weight', get('model.embed_tokens.weight'), c.vocabSize, c.hiddenSize, type));
  const qDim = c.nHead * c.headDim;
  const kvDim = c.nKVHead * c.headDim;
  for (let i = 0; i < c.nLayer; i++) {
    const p = `model.layers.${i}`;
    const b = `blk.${i}`;
    let q = get(`${p}.self_attn.q_proj.weight`);
    let k = get(`${p}.self_attn.k_proj.weight`);
    if (interleave) {
      q = rotateHalfToInterleaved(q, c.nHead, c.headDim, c.hiddenSize);
      k = rotateHalfToInterleaved(k, c.nKVHead, c.headDim, c.hiddenSize);
    }
    tensors.push(vectorTensor(`${b}.attn_norm.weight`, get(`${p}.input_layernorm.weight`)));
    tensors.push(matrixTensor(`${b}.attn_q.weight`, q, qDim, c.hiddenSize, type));
    tensors.push(matrixTensor(`${b}.attn_k.weight`, k, kvDim, c.hiddenSize, type));
    tensors.push(matrixTensor(`${b}.attn_v.weight`, get(`${p}.self_attn.v_proj.weight`), kvDim, c.hiddenSize, type));
    if (c.qkvBias) {
      tensors.push(vectorTensor(`${b}.attn_q.bias`, get(`${p}.self_attn.q_proj.bias`)));
      tensors.push(vectorTensor(`${b}.attn_k.bias`, get(`${p}.self_attn.k_proj.bias`)));
      tensors.push(vectorTensor(`${b}.attn_v.bias`, get(`${p}.self_attn.v_proj.bias`)));
    }
    tensors.push(matrixTensor(`${b}.attn_output.weight`, get(`${p}.self_attn.o_proj.weight`), c.hiddenSize, qDim, type));
    tensors.push(vectorTensor(`${b}.ffn_norm.weight`, get(`${p}.post_attention_layernorm.weight`)));
    tensors.push(matrixTensor(`${b}.ffn_gate.weight`, get(`${p}.mlp.gate_proj.weight`), c.intermediateSize, c.hiddenSize, type));
    tensors.push(matrixTensor(`${b}.ffn_up.weight`, get(`${p}.mlp.up_proj.weight`), c.intermediateSize, c.hiddenSize, type));
    tensors.push(matrixTensor(`${b}.ffn_down.weight`, get(`${p}.mlp.down_proj.weight`), c.hiddenSize, c.intermediateSize, type));
  }
  tensors.push(vectorTensor('output_norm.weight', get('model.norm.weight')));
  // The head decides every token: llama.cpp keeps it at higher precision than 4 bits (Q6_K); Q8_0 here.
  if (!c.tieWordEmbeddings) tensors.push(matrixTensor('output.weight', get('lm_head.weight'), c.vocabSize, c.hiddenSize, type === 'q4_0' ? 'q8_0' : type));

  const metadata: [string, GGUFValue][] = [
    ['general.architecture', str(c.modelType)],
    ['general.name', str(options.name ?? 'weft-model')],
    ['general.file_type', u32(FILE_TYPE[type])],
    ...(type === 'q8_0' || type === 'q4_0' ? ([['general.quantization_version', u32(2)]] as [string, GGUFValue][]) : []),
    ...archMetadata(c),
    ...ggufTokenizerMetadata(tokenizer, c.vocabSize, options),
  ];
  return { metadata, tensors };
}

/** Writes `model` (+ its tokenizer's vocabulary) to `outPath` as GGUF v3, atomically. */
export async function exportGGUF(model: Llama, tokenizer: unknown, outPath: string, type: GGUFExportType, options: GGUFExportOptions = {}): Promise<void> {
  const { metadata, tensors } = buildGGUF(model, tokenizer, type, { name: basename(outPath).replace(/\.gguf$/i, ''), ...options });
  await writeFileAtomic(outPath, serializeGGUF(metadata, tensors, 3));
}
