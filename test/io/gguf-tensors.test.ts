/**
 * GGUF tensor data: dequantisation of hand-built blocks (values worked out from ggml's block
 * layouts), and LLaMA / Qwen2 models written to GGUF the way llama.cpp's converter does (q/k rows
 * interleaved for LLaMA, llama.cpp tensor names, output.weight absent when tied) loading back with
 * the same logits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type GGUFTensorInfo, type GGUFValue, saveGGUFSync } from '../../src/io/gguf.js';
import { dequantizeGGUF, f16ToF32 } from '../../src/io/gguf-tensors.js';
import { loadLlamaGGUF } from '../../src/io/llama-gguf.js';
import { Llama } from '../../src/models/llama.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';

const info = (typeName: string, type: number, n: number, byteSize: number): GGUFTensorInfo => ({ name: 't', dims: [n], type, typeName, offset: 0, byteSize });

describe('GGUF dequantisation', () => {
  it('f16 bit patterns', () => {
    expect([0x3c00, 0x3800, 0xc000, 0x0001, 0x7bff, 0x7c00, 0x0000].map(f16ToF32)).toEqual([1, 0.5, -2, 2 ** -24, 65504, Infinity, 0]);
    expect(Number.isNaN(f16ToF32(0x7e00))).toBe(true);
  });

  it('Q8_0: int8 × the block scale', () => {
    const bytes = new Uint8Array(34 * 2);
    const v = new DataView(bytes.buffer);
    v.setUint16(0, 0x3800, true); // d = 0.5
    v.setUint16(34, 0xc000, true); // d = -2
    for (let j = 0; j < 32; j++) {
      v.setInt8(2 + j, j - 16);
      v.setInt8(36 + j, 3);
    }
    const out = dequantizeGGUF(info('Q8_0', 8, 64, 68), bytes);
    expect(Array.from(out.subarray(0, 32))).toEqual(Array.from({ length: 32 }, (_, j) => (j - 16) * 0.5));
    expect(Array.from(out.subarray(32))).toEqual(Array(32).fill(-6));
  });

  it('Q4_0: low nibbles are values 0–15, high nibbles 16–31, offset by 8', () => {
    const bytes = new Uint8Array(18);
    new DataView(bytes.buffer).setUint16(0, 0x3400, true); // d = 0.25
    for (let j = 0; j < 16; j++) bytes[2 + j] = (15 - j) * 16 + j;
    const out = dequantizeGGUF(info('Q4_0', 2, 32, 18), bytes);
    const want = [...Array.from({ length: 16 }, (_, j) => (j - 8) * 0.25), ...Array.from({ length: 16 }, (_, j) => (15 - j - 8) * 0.25)];
    expect(Array.from(out)).toEqual(want);
  });

  it('Q4_1: nibble × d + m; BF16: the high half of an f32', () => {
    const q = new Uint8Array(20);
    const v = new DataView(q.buffer);
    v.setUint16(0, 0x3c00, true); // d = 1
    v.setUint16(2, 0xc000, true); // m = -2
    for (let j = 0; j < 16; j++) q[4 + j] = 0x50 + j;
    const out = dequantizeGGUF(info('Q4_1', 3, 32, 20), q);
    expect(Array.from(out)).toEqual([...Array.from({ length: 16 }, (_, j) => j - 2), ...Array(16).fill(3)]);
    const bf = new Uint8Array(4);
    new DataView(bf.buffer).setUint16(0, 0x3fc0, true); // 1.5
    new DataView(bf.buffer).setUint16(2, 0xc040, true); // -3
    expect(Array.from(dequantizeGGUF(info('BF16', 30, 2, 4), bf))).toEqual([1.5, -3]);
  });

  it('unsupported types and wrong byte counts are named', () => {
    expect(() => dequantizeGGUF(info('Q6_K', 14, 256, 210), new Uint8Array(210))).toThrow(/'t' has type Q6_K, which Weft does not dequantise/);
    expect(() => dequantizeGGUF(info('F32', 0, 4, 16), new Uint8Array(12))).toThrow(/got 12 bytes, expected 16/);
  });
});

/** llama.cpp's LLaMA convert: HF rotate-half rows → Meta's interleaved rows (inverse of HF's permute). */
function toInterleaved(w: Float32Array, heads: number, D: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < D / 2; j++) {
      out.set(w.subarray((h * D + j) * cols, (h * D + j + 1) * cols), (h * D + 2 * j) * cols);
      out.set(w.subarray((h * D + j + D / 2) * cols, (h * D + j + D / 2 + 1) * cols), (h * D + 2 * j + 1) * cols);
    }
  }
  return out;
}

function writeGGUF(path: string, model: Llama): void {
  const c = model.config;
  const arch = c.modelType;
  const u32 = (value: number): GGUFValue => ({ type: 'uint32', value });
  const f32 = (value: number): GGUFValue => ({ type: 'float32', value });
  const meta: [string, GGUFValue][] = [
    ['general.architecture', { type: 'string', value: arch }],
    [`${arch}.context_length`, u32(c.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, u32(c.hiddenSize)],
    [`${arch}.block_count`, u32(c.nLayer)],
    [`${arch}.feed_forward_length`, u32(c.intermediateSize)],
    [`${arch}.attention.head_count`, u32(c.nHead)],
    [`${arch}.attention.head_count_kv`, u32(c.nKVHead)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(c.rmsNormEps)],
    [`${arch}.rope.freq_base`, f32(c.ropeTheta)],
  ];
  const names: Record<string, string> = {
    input_layernorm: 'attn_norm',
    'self_attn.q_proj': 'attn_q',
    'self_attn.k_proj': 'attn_k',
    'self_attn.v_proj': 'attn_v',
    'self_attn.o_proj': 'attn_output',
    post_attention_layernorm: 'ffn_norm',
    'mlp.gate_proj': 'ffn_gate',
    'mlp.up_proj': 'ffn_up',
    'mlp.down_proj': 'ffn_down',
  };
  const tensors = [...model.stateDict()].map(([name, t]) => {
    let data: Float32Array<ArrayBufferLike> = Float32Array.from(t.toArray() as ArrayLike<number>);
    let ggName = name === 'model.embed_tokens.weight' ? 'token_embd.weight' : name === 'model.norm.weight' ? 'output_norm.weight' : 'output.weight';
    const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
    if (m !== null) {
      ggName = `blk.${m[1]}.${names[m[2]!]!}.${m[3]}`;
      const qk = /self_attn\.(q|k)_proj/.exec(m[2]!);
      if (qk !== null && arch === 'llama') data = toInterleaved(data, qk[1] === 'q' ? c.nHead : c.nKVHead, c.headDim, t.ndim === 2 ? t.shape[1]! : 1);
    }
    return { name: ggName, dims: [...t.shape].reverse(), type: 0, data: new Uint8Array(data.buffer) };
  });
  saveGGUFSync(path, meta, tensors);
}

describe('LLaMA-family GGUF checkpoints', () => {
  it.each([
    ['llama', false],
    ['qwen2', true],
  ] as const)('%s (tied %s): llama.cpp names and rope layout load back with the same logits', (modelType, tied) => {
    const model = new Llama(
      { modelType, vocabSize: 19, hiddenSize: 16, intermediateSize: 20, nLayer: 2, nHead: 4, nKVHead: 2, maxPositionEmbeddings: 16, rmsNormEps: 2 ** -16, ropeTheta: 1000, tieWordEmbeddings: tied, qkvBias: modelType === 'qwen2' },
      { generator: new Generator(3) },
    );
    const dir = mkdtempSync(join(tmpdir(), 'weft-gguf-'));
    try {
      writeGGUF(join(dir, 'm.gguf'), model);
      const loaded = loadLlamaGGUF(join(dir, 'm.gguf'));
      expect(loaded.config).toEqual(model.config);
      const ids = Tensor.fromArray(Int32Array.from([1, 5, 7, 2, 18, 0, 3]), [1, 7], 'i32');
      expect(loaded.logits(ids).toArray()).toEqual(model.logits(ids).toArray());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
