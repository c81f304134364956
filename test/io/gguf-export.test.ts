import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dequantizeMatrix, quantizeMatrix } from '../../src/compress/quant/formats.js';
import { QuantizedLinear } from '../../src/compress/quant/linear.js';
import { loadQuantizedGGUF, quantizeModelWeights } from '../../src/compress/quant/model.js';
import { exportGGUF, rotateHalfToInterleaved } from '../../src/io/gguf-export.js';
import { ggufInt, ggufString, parseGGUF } from '../../src/io/gguf.js';
import { loadLlamaGGUF } from '../../src/io/llama-gguf.js';
import { interleavedToRotateHalf, type Llama } from '../../src/models/llama.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { tokenizerFromGGUF } from '../../src/tokenizers/formats/gguf-vocab.js';
import { tinyLlama, tinyTokenizer } from './gguf-export.helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-gguf-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ids = Tensor.fromArray(Int32Array.from([1, 300, 17, 260, 345, 5, 99, 280, 281]), [1, 9], 'i32');

function tensorBytes(path: string, name: string): Uint8Array {
  const bytes = new Uint8Array(readFileSync(path));
  const f = parseGGUF(bytes, path);
  const t = f.tensors.find((x) => x.name === name)!;
  return bytes.subarray(f.dataOffset + t.offset, f.dataOffset + t.offset + t.byteSize);
}

/** The model with every projection / embedding weight replaced by dequantize(quantize(w)). */
function roundTripWeights(model: Llama, format: 'q8_0' | 'q4_0', headFormat: 'q8_0' | 'q4_0'): void {
  const sd = model.stateDict();
  const patch = new Map<string, Tensor>();
  for (const [name, t] of sd) {
    if (t.ndim !== 2) continue;
    const [rows, cols] = t.shape as [number, number];
    const f = name === 'lm_head.weight' ? headFormat : format;
    patch.set(name, Tensor.fromArray(dequantizeMatrix(quantizeMatrix(t.f32(), rows, cols, f)), [rows, cols]));
  }
  model.loadStateDict(patch, { strict: false });
}

describe('GGUF export (LLaMA)', () => {
  it('rotateHalfToInterleaved inverts interleavedToRotateHalf', () => {
    const w = Float32Array.from({ length: 3 * 8 * 5 }, (_, i) => i);
    expect(interleavedToRotateHalf(rotateHalfToInterleaved(w, 3, 8, 5), 3, 8, 5)).toEqual(w);
    expect(rotateHalfToInterleaved(w, 3, 8, 5)).not.toEqual(w);
  });

  it('f32: our GGUF reader gets the same model back (identical logits) and llama.cpp keys are set', async () => {
    const model = tinyLlama(1);
    const path = join(dir, 'tiny-f32.gguf');
    await exportGGUF(model, tinyTokenizer(), path, 'f32');
    const back = loadLlamaGGUF(path);
    expect(back.logits(ids).f32()).toEqual(model.logits(ids).f32());
    const f = parseGGUF(new Uint8Array(readFileSync(path)), path);
    expect(f.version).toBe(3);
    expect(ggufString(f, 'general.architecture')).toBe('llama');
    expect(ggufInt(f, 'general.file_type')).toBe(0);
    expect(ggufInt(f, 'llama.rope.dimension_count')).toBe(16);
    expect(ggufInt(f, 'llama.attention.head_count_kv')).toBe(2);
    expect(ggufInt(f, 'llama.feed_forward_length')).toBe(160);
    expect(f.tensors.map((t) => t.name).slice(0, 4)).toEqual(['token_embd.weight', 'blk.0.attn_norm.weight', 'blk.0.attn_q.weight', 'blk.0.attn_k.weight']);
    expect(f.tensors.find((t) => t.name === 'blk.1.ffn_down.weight')!.dims).toEqual([160, 64]);
    expect(f.tensors.find((t) => t.name === 'output.weight')!.typeName).toBe('F32');
    expect(f.tensors.every((t) => t.offset % 32 === 0)).toBe(true);
    // Meta's interleaved q rows on disk.
    const q = new Float32Array(tensorBytes(path, 'blk.0.attn_q.weight').slice().buffer);
    expect(q).toEqual(rotateHalfToInterleaved(model.model.layers.items[0]!.self_attn.q_proj.weight.f32(), 4, 16, 64));
  });

  it('f16: close to f32 (half precision weights)', async () => {
    const model = tinyLlama(2);
    const path = join(dir, 'tiny-f16.gguf');
    await exportGGUF(model, tinyTokenizer(), path, 'f16');
    const got = loadLlamaGGUF(path).logits(ids).f32();
    const want = model.logits(ids).f32();
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(2e-2 * (1 + Math.abs(want[i]!)));
  });

  for (const type of ['q8_0', 'q4_0'] as const) {
    it(`${type}: blocks equal formats.ts bytes; loading gives exactly the round-to-nearest model`, async () => {
      const model = tinyLlama(3);
      const path = join(dir, `tiny-${type}.gguf`);
      await exportGGUF(model, tinyTokenizer(), path, type);
      const layer = model.model.layers.items[1]!;
      expect(Buffer.from(tensorBytes(path, 'blk.1.attn_v.weight')).equals(Buffer.from(quantizeMatrix(layer.self_attn.v_proj.weight.f32(), 32, 64, type).data))).toBe(true);
      expect(Buffer.from(tensorBytes(path, 'blk.1.ffn_down.weight')).equals(Buffer.from(quantizeMatrix(layer.mlp.down_proj.weight.f32(), 64, 160, type).data))).toBe(true);
      const f = parseGGUF(new Uint8Array(readFileSync(path)), path);
      expect(ggufInt(f, 'general.file_type')).toBe(type === 'q8_0' ? 7 : 2);
      expect(f.tensors.find((t) => t.name === 'blk.0.attn_norm.weight')!.typeName).toBe('F32');
      expect(f.tensors.find((t) => t.name === 'output.weight')!.typeName).toBe('Q8_0');
      const back = loadLlamaGGUF(path).logits(ids).f32();
      const want = model.logits(ids).f32().slice();
      roundTripWeights(model, type, 'q8_0');
      const rtn = model.logits(ids).f32();
      for (let i = 0; i < rtn.length; i++) expect(Math.abs(back[i]! - rtn[i]!)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(rtn[i]!)));
      if (type === 'q8_0') {
        // And q8_0 stays close to the f32 model (8-bit weights, errors amplified by these large random weights).
        const spread = Math.max(...Array.from(want)) - Math.min(...Array.from(want));
        for (let i = 0; i < want.length; i++) expect(Math.abs(back[i]! - want[i]!)).toBeLessThan(0.06 * spread);
      }
    });
  }

  it('loadQuantizedGGUF runs the file\'s q4_0 blocks on the kernels: same logits as quantizing the model in memory', async () => {
    const model = tinyLlama(6);
    const path = join(dir, 'tiny-q4-kernels.gguf');
    await exportGGUF(model, tinyTokenizer(), path, 'q4_0');
    const { model: fromFile, replaced } = loadQuantizedGGUF(path);
    expect(replaced).toHaveLength(15);
    expect(fromFile.model.layers.items[0]!.self_attn.q_proj).toBeInstanceOf(QuantizedLinear);
    // In memory: the same round-to-nearest blocks (q/k rows un-permuted), the head on the Q8_0 kernel
    // (the file stores it as Q8_0, and it runs quantized as in llama.cpp) and a q4_0-rounded embedding table.
    const embed = model.model.embed_tokens.weight;
    model.loadStateDict(
      new Map([['model.embed_tokens.weight', Tensor.fromArray(dequantizeMatrix(quantizeMatrix(embed.f32(), 352, 64, 'q4_0')), [352, 64])]]),
      { strict: false },
    );
    quantizeModelWeights(model, 'q4_0');
    quantizeModelWeights(model, 'q8_0', { include: /^lm_head$/, exclude: /(?!)/ });
    expect(fromFile.logits(ids).f32()).toEqual(model.logits(ids).f32());
  });

  it('tied embeddings write no output tensor; the vocabulary round-trips through tokenizer.ggml.*', async () => {
    const model = tinyLlama(4, { tieWordEmbeddings: true });
    const path = join(dir, 'tiny-tied.gguf');
    const tok = tinyTokenizer();
    await exportGGUF(model, tok, path, 'f32');
    const f = parseGGUF(new Uint8Array(readFileSync(path)), path);
    expect(f.tensors.some((t) => t.name === 'output.weight')).toBe(false);
    expect(loadLlamaGGUF(path).logits(ids).f32()).toEqual(model.logits(ids).f32());
    expect(ggufString(f, 'tokenizer.ggml.model')).toBe('llama');
    const back = tokenizerFromGGUF(path);
    for (const text of ['the cat sat on the mat', 'Hello, Wörld! 123', 'an earth in there']) expect(back.encode(text)).toEqual(tok.encode(text));
    expect(back.vocabSize).toBe(352);
  });

  it('refuses what llama.cpp cannot represent, with the way out', async () => {
    await expect(exportGGUF(tinyLlama(5, { ropeScaling: { type: 'dynamic', factor: 2 } }), tinyTokenizer(), join(dir, 'x.gguf'), 'f32')).rejects.toThrow(/rope scaling 'dynamic'/);
    await expect(exportGGUF(tinyLlama(5, { vocabSize: 100 }), tinyTokenizer(), join(dir, 'x.gguf'), 'f32')).rejects.toThrow(/the tokenizer has 322 tokens but the model's vocabulary is 100/);
    await expect(exportGGUF(tinyLlama(5), { encode: 1 }, join(dir, 'x.gguf'), 'f32')).rejects.toThrow(/must be a Weft Tokenizer/);
  });
});
