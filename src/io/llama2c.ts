/**
 * llama2.c checkpoints (Karpathy's run.c format), loaded as a Weft LLaMA.
 *
 * Legacy version 0 (what export.py's `legacy_export` and the tinyllamas files use): a header of seven
 * little-endian int32 — dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
 * negative vocab_size means the classifier is NOT shared with the token embedding — then float32
 * arrays: tok_embeddings, rms_att[L], wq[L], wk[L], wv[L], wo[L], rms_ffn[L], w1[L], w2[L], w3[L],
 * rms_final, freq_cis_real and freq_cis_imag (seq_len·head_size/2 each, unused: RoPE is recomputed),
 * then wcls when unshared.
 *
 * Version 1 (export.py's `version1_export`): magic "ak42" (0x616b3432), int32 version 1, the same
 * seven ints, a shared-classifier byte, zero padding to 256 bytes, then rms_att[L], rms_ffn[L],
 * rms_final, tok_embeddings, wq[L], wk[L], wv[L], wo[L], w1[L], w2[L], w3[L] and wcls when unshared.
 *
 * run.c rotates adjacent pairs (2j, 2j+1) of each head; Weft's LLaMA uses HF's rotate-half, so the
 * q and k rows are permuted on load (see interleavedToRotateHalf). run.c's RMSNorm eps is 1e-5.
 */
import { withoutInit } from '../nn/init.js';
import { readFileSync } from 'node:fs';
import { Llama, type LlamaConfigInput, interleavedToRotateHalf } from '../models/llama.js';
import { Tensor } from '../tensor/tensor.js';

const MAGIC_V1 = 0x616b3432;

export interface Llama2cHeader {
  version: 0 | 1;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKVHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
}

/** Reads the header; errors name the file and the bad field. */
export function parseLlama2cHeader(bytes: Uint8Array, source = '<buffer>'): Llama2cHeader & { dataOffset: number } {
  const fail = (msg: string): never => {
    throw new Error(`llama2.c checkpoint ${source}: ${msg}`);
  };
  if (bytes.byteLength < 28) fail(`file is ${bytes.byteLength} bytes, too short for the 28-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  let version: 0 | 1 = 0;
  let at = 0;
  if (magic === MAGIC_V1) {
    const v = view.getInt32(4, true);
    if (v === 2) fail('version 2 (int8-quantised) checkpoints are not supported; export float32 (version 0 or 1)');
    if (v !== 1) fail(`unknown version ${v} after the "ak42" magic`);
    if (bytes.byteLength < 256) fail('file is shorter than the 256-byte version-1 header');
    version = 1;
    at = 8;
  }
  const ints = Array.from({ length: 7 }, (_, i) => view.getInt32(at + 4 * i, true));
  const [dim, hiddenDim, nLayers, nHeads, nKVHeads, rawVocab, seqLen] = ints as [number, number, number, number, number, number, number];
  const names = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'];
  ints.forEach((v, i) => {
    if (v === 0 || (i !== 5 && v < 0) || Math.abs(v) > 1 << 24) fail(`header field ${names[i]} = ${v} is not plausible: not a llama2.c checkpoint?`);
  });
  if (dim % nHeads !== 0) fail(`dim ${dim} is not divisible by n_heads ${nHeads}`);
  if (nHeads % nKVHeads !== 0) fail(`n_heads ${nHeads} is not a multiple of n_kv_heads ${nKVHeads}`);
  const sharedClassifier = version === 1 ? bytes[36] !== 0 : rawVocab > 0;
  return {
    version,
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKVHeads,
    vocabSize: Math.abs(rawVocab),
    seqLen,
    sharedClassifier,
    dataOffset: version === 1 ? 256 : 28,
  };
}

/** The LLaMA config a llama2.c header describes. */
export function llama2cConfig(h: Llama2cHeader): LlamaConfigInput {
  return {
    vocabSize: h.vocabSize,
    hiddenSize: h.dim,
    intermediateSize: h.hiddenDim,
    nLayer: h.nLayers,
    nHead: h.nHeads,
    nKVHead: h.nKVHeads,
    maxPositionEmbeddings: h.seqLen,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: h.sharedClassifier,
  };
}

/** Parses llama2.c checkpoint bytes into HF-named tensors (q/k rows permuted to rotate-half). */
export function parseLlama2c(bytes: Uint8Array, source = '<buffer>'): { header: Llama2cHeader; config: LlamaConfigInput; tensors: Map<string, Tensor> } {
  const header = parseLlama2cHeader(bytes, source);
  const { dim: C, hiddenDim: F, nLayers: L, nHeads: H, nKVHeads: KV, vocabSize: V, seqLen } = header;
  const D = C / H;
  // Copy so the floats are 4-byte aligned whatever the Buffer's offset.
  const body = bytes.slice(header.dataOffset);
  const floats = new Float32Array(body.buffer, body.byteOffset, Math.floor(body.byteLength / 4));
  let pos = 0;
  const take = (n: number, what: string): Float32Array => {
    if (pos + n > floats.length) {
      throw new Error(`llama2.c checkpoint ${source}: truncated: ${what} needs floats [${pos}, ${pos + n}) but the file holds ${floats.length}`);
    }
    const a = floats.subarray(pos, pos + n);
    pos += n;
    return a;
  };
  const tensors = new Map<string, Tensor>();
  const put = (name: string, data: Float32Array, shape: number[]): void => void tensors.set(name, Tensor.fromArray(Float32Array.from(data), shape));
  const perLayer = (key: string, shape: number[], permuteHeads = 0): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    for (let l = 0; l < L; l++) {
      const raw = take(n, `layer ${l} ${key}`);
      put(`model.layers.${l}.${key}`, permuteHeads > 0 ? interleavedToRotateHalf(raw, permuteHeads, D, C) : raw, shape);
    }
  };
  const embed = (): void => put('model.embed_tokens.weight', take(V * C, 'tok_embeddings'), [V, C]);
  const norms = (): void => {
    perLayer('input_layernorm.weight', [C]);
    if (header.version === 0) return;
    perLayer('post_attention_layernorm.weight', [C]);
    put('model.norm.weight', take(C, 'rms_final'), [C]);
  };
  if (header.version === 0) embed();
  norms();
  if (header.version === 1) embed();
  perLayer('self_attn.q_proj.weight', [H * D, C], H);
  perLayer('self_attn.k_proj.weight', [KV * D, C], KV);
  perLayer('self_attn.v_proj.weight', [KV * D, C]);
  perLayer('self_attn.o_proj.weight', [C, H * D]);
  if (header.version === 0) perLayer('post_attention_layernorm.weight', [C]);
  perLayer('mlp.gate_proj.weight', [F, C]);
  perLayer('mlp.down_proj.weight', [C, F]);
  perLayer('mlp.up_proj.weight', [F, C]);
  if (header.version === 0) {
    put('model.norm.weight', take(C, 'rms_final'), [C]);
    take(seqLen * (D / 2), 'freq_cis_real');
    take(seqLen * (D / 2), 'freq_cis_imag');
  }
  if (!header.sharedClassifier) put('lm_head.weight', take(V * C, 'wcls'), [V, C]);
  if (pos !== floats.length) {
    throw new Error(`llama2.c checkpoint ${source}: ${floats.length - pos} floats left over after the last tensor; the header does not describe this file`);
  }
  return { header, config: llama2cConfig(header), tensors };
}

/** Loads a llama2.c `.bin` checkpoint as a LLaMA. */
export function loadLlama2c(path: string): Llama {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`llama2.c checkpoint: cannot read ${path}: ${(e as Error).message}`);
  }
  const { config, tensors } = parseLlama2c(bytes, path);
  const model = withoutInit(() => new Llama(config));
  model.loadHFTensors(tensors, path);
  return model;
}

/**
 * Serialises a LLaMA as a llama2.c version-0 checkpoint (what run.c reads): q/k rows back in the
 * interleaved rotary layout, the classifier shared when the model ties it. Models run.c cannot
 * express (biases, rope scaling, θ ≠ 10000, headDim ≠ dim / nHead) are refused.
 */
export function serializeLlama2c(model: Llama): Uint8Array {
  const c = model.config;
  const op = 'serializeLlama2c';
  if (c.qkvBias || c.oBias || c.mlpBias) throw new RangeError(`${op}: llama2.c checkpoints have no biases`);
  if (c.ropeScaling !== null || c.ropeTheta !== 10000) throw new RangeError(`${op}: llama2.c uses plain RoPE with θ = 10000`);
  if (c.headDim * c.nHead !== c.hiddenSize) throw new RangeError(`${op}: llama2.c needs headDim · nHead = hiddenSize`);
  const D = c.headDim;
  const sd = model.stateDict();
  const get = (n: string): Float32Array => Float32Array.from(sd.get(n)!.f32(op));
  const toInterleaved = (w: Float32Array, heads: number): Float32Array => {
    const cols = c.hiddenSize;
    const out = new Float32Array(w.length);
    for (let h = 0; h < heads; h++) {
      for (let j = 0; j < D / 2; j++) {
        out.set(w.subarray((h * D + j) * cols, (h * D + j + 1) * cols), (h * D + 2 * j) * cols);
        out.set(w.subarray((h * D + j + D / 2) * cols, (h * D + j + D / 2 + 1) * cols), (h * D + 2 * j + 1) * cols);
      }
    }
    return out;
  };
  const layers = (k: string, heads = 0): Float32Array[] =>
    Array.from({ length: c.nLayer }, (_, l) => {
      const w = get(`model.layers.${l}.${k}`);
      return heads > 0 ? toInterleaved(w, heads) : w;
    });
  const parts: Float32Array[] = [
    get('model.embed_tokens.weight'),
    ...layers('input_layernorm.weight'),
    ...layers('self_attn.q_proj.weight', c.nHead),
    ...layers('self_attn.k_proj.weight', c.nKVHead),
    ...layers('self_attn.v_proj.weight'),
    ...layers('self_attn.o_proj.weight'),
    ...layers('post_attention_layernorm.weight'),
    ...layers('mlp.gate_proj.weight'),
    ...layers('mlp.down_proj.weight'),
    ...layers('mlp.up_proj.weight'),
    get('model.norm.weight'),
    new Float32Array(c.maxPositionEmbeddings * D), // freq_cis_real, freq_cis_imag: unused by run.c since 2023
  ];
  if (!c.tieWordEmbeddings) parts.push(get('lm_head.weight'));
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(28 + 4 * total);
  const view = new DataView(out.buffer);
  const vocab = c.tieWordEmbeddings ? c.vocabSize : -c.vocabSize;
  [c.hiddenSize, c.intermediateSize, c.nLayer, c.nHead, c.nKVHead, vocab, c.maxPositionEmbeddings].forEach((v, i) => view.setInt32(4 * i, v, true));
  let pos = 28;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), pos);
    pos += p.byteLength;
  }
  return out;
}
