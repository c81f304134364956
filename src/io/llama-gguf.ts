/**
 * GGUF checkpoints of the LLaMA family (general.architecture 'llama' or 'qwen2'), loaded as a Weft
 * LLaMA. llama.cpp's names map to HF's (token_embd → model.embed_tokens, blk.N.attn_q →
 * model.layers.N.self_attn.q_proj, ffn_gate/up/down → mlp.*, output_norm → model.norm, output →
 * lm_head, absent when tied). llama.cpp's converter stores LLaMA q/k rows in Meta's interleaved
 * rotary layout (its "normal" rope rotates adjacent pairs), so they are permuted back to HF's
 * rotate-half; Qwen2 uses NeoX rope (rotate-half already) and is taken as is.
 */
import { withoutInit } from '../nn/init.js';
import { Llama, type LlamaConfigInput, interleavedToRotateHalf } from '../models/llama.js';
import { Tensor } from '../tensor/tensor.js';
import { type GGUFFile, type GGUFTensorInfo, ggufGet, ggufInt, ggufString, ggufStringArray } from './gguf.js';
import { readGGUFTensors } from './gguf-tensors.js';

function ggufFloat(file: GGUFFile, key: string): number | undefined {
  const v = ggufGet(file, key);
  if (v === undefined) return undefined;
  if (v.type === 'float32' || v.type === 'float64') return v.value;
  return ggufInt(file, key);
}

/** The LLaMA config a GGUF header describes (vocabulary size from the embedding when no key says it). */
export function llamaConfigFromGGUF(file: GGUFFile, tensors: Map<string, Tensor>, source: string): LlamaConfigInput {
  const arch = ggufString(file, 'general.architecture', true);
  if (arch !== 'llama' && arch !== 'qwen2') throw new Error(`gguf ${source}: architecture '${arch}' is not a LLaMA family model (llama, qwen2)`);
  const need = (key: string): number => {
    const v = ggufInt(file, `${arch}.${key}`);
    if (v === undefined) throw new Error(`gguf ${source}: required key '${arch}.${key}' is missing`);
    return v;
  };
  const hidden = need('embedding_length');
  const nHead = need('attention.head_count');
  const headDim = hidden / nHead;
  const ropeDim = ggufInt(file, `${arch}.rope.dimension_count`);
  if (ropeDim !== undefined && ropeDim !== headDim) {
    throw new Error(`gguf ${source}: rope.dimension_count ${ropeDim} ≠ head dim ${headDim} (partial rotary) is not supported`);
  }
  const embed = tensors.get('token_embd.weight');
  if (embed === undefined) throw new Error(`gguf ${source}: tensor 'token_embd.weight' is missing`);
  const vocab = ggufInt(file, `${arch}.vocab_size`) ?? ggufStringArray(file, 'tokenizer.ggml.tokens')?.length ?? embed.shape[0]!;
  const scalingType = ggufString(file, `${arch}.rope.scaling.type`);
  const factor = ggufFloat(file, `${arch}.rope.scaling.factor`);
  let ropeScaling: LlamaConfigInput['ropeScaling'] = null;
  if (scalingType === 'linear' && factor !== undefined && factor !== 1) ropeScaling = { type: 'linear', factor };
  else if (scalingType !== undefined && scalingType !== 'none' && scalingType !== 'linear') {
    throw new Error(`gguf ${source}: rope.scaling.type '${scalingType}' is not supported (none, linear)`);
  }
  return {
    modelType: arch,
    vocabSize: vocab,
    hiddenSize: hidden,
    intermediateSize: need('feed_forward_length'),
    nLayer: need('block_count'),
    nHead,
    nKVHead: ggufInt(file, `${arch}.attention.head_count_kv`) ?? nHead,
    maxPositionEmbeddings: need('context_length'),
    rmsNormEps: ggufFloat(file, `${arch}.attention.layer_norm_rms_epsilon`) ?? 1e-5,
    ropeTheta: ggufFloat(file, `${arch}.rope.freq_base`) ?? 10000,
    ropeScaling,
    tieWordEmbeddings: !tensors.has('output.weight'),
    qkvBias: arch === 'qwen2',
  };
}

const LAYER_NAMES: Record<string, string> = {
  attn_norm: 'input_layernorm',
  attn_q: 'self_attn.q_proj',
  attn_k: 'self_attn.k_proj',
  attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj',
  ffn_norm: 'post_attention_layernorm',
  ffn_gate: 'mlp.gate_proj',
  ffn_up: 'mlp.up_proj',
  ffn_down: 'mlp.down_proj',
};

/** llama.cpp tensor name → HF name (unknown names pass through, so the loader reports them). */
export function hfNameFromGGUF(name: string): string {
  if (name === 'token_embd.weight') return 'model.embed_tokens.weight';
  if (name === 'output_norm.weight') return 'model.norm.weight';
  if (name === 'output.weight') return 'lm_head.weight';
  const m = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(name);
  if (m !== null && LAYER_NAMES[m[2]!] !== undefined) return `model.layers.${m[1]}.${LAYER_NAMES[m[2]!]}.${m[3]}`;
  return name;
}

/** Loads a LLaMA / Qwen2 .gguf (tensors dequantised to float32). */
export function loadLlamaGGUF(path: string): Llama {
  return loadLlamaGGUFFile(path).model;
}

/**
 * loadLlamaGGUF, with the tensors `keepRaw` names left as zeros instead of dequantised (the caller
 * replaces their layers from the returned file's blocks), and the parsed file with its bytes.
 */
export function loadLlamaGGUFFile(path: string, keepRaw?: (info: GGUFTensorInfo) => boolean): { model: Llama; file: GGUFFile; bytes: Uint8Array } {
  const { file, bytes, tensors } = readGGUFTensors(path, keepRaw);
  const config = llamaConfigFromGGUF(file, tensors, path);
  const model = withoutInit(() => new Llama(config));
  const c = model.config;
  const hf = new Map<string, Tensor>();
  for (const [name, t] of tensors) {
    const hfName = hfNameFromGGUF(name);
    const q = /\.self_attn\.(q|k)_proj\.(weight|bias)$/.exec(hfName);
    if (q !== null && c.modelType === 'llama') {
      const heads = q[1] === 'q' ? c.nHead : c.nKVHead;
      const cols = t.ndim === 2 ? t.shape[1]! : 1;
      if (t.numel !== heads * c.headDim * cols) {
        throw new Error(`gguf ${path}: tensor '${name}' has shape [${t.shape.join(', ')}], expected [${heads * c.headDim}, ${c.hiddenSize}]`);
      }
      hf.set(hfName, Tensor.fromArray(interleavedToRotateHalf(t.f32('loadLlamaGGUF'), heads, c.headDim, cols), t.shape));
    } else {
      hf.set(hfName, t);
    }
  }
  model.loadHFTensors(hf, path);
  return { model, file, bytes };
}
