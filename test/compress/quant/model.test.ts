import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dequantizeMatrix, quantizeMatrix, type QuantFormat } from '../../../src/compress/quant/formats.js';
import { quantMatmul } from '../../../src/compress/quant/kernels.js';
import { QuantizedLinear } from '../../../src/compress/quant/linear.js';
import { loadQuantized, quantizeModelWeights, quantizedModules, saveQuantized } from '../../../src/compress/quant/model.js';
import { GPT } from '../../../src/models/gpt.js';
import { Llama } from '../../../src/models/llama.js';
import { Linear } from '../../../src/nn/layers.js';
import { Generator } from '../../../src/tensor/random.js';
import { Tensor } from '../../../src/tensor/tensor.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'weft-quant-'));
  dirs.push(d);
  return d;
}

const llamaConfig = { vocabSize: 97, hiddenSize: 64, intermediateSize: 128, nLayer: 2, nHead: 4, nKVHead: 2, maxPositionEmbeddings: 64 };
const ids = Tensor.fromArray(Int32Array.from([3, 14, 15, 92, 65, 35, 8, 9]), [1, 8], 'i32');

describe('QuantizedLinear', () => {
  it('maps [.., k] to [.., n] with the bias, as the kernel does, and refuses wrong widths', () => {
    const g = new Generator(1);
    const lin = new Linear(64, 24, { generator: g });
    const q = quantizeMatrix(lin.weight.f32(), 24, 64, 'q4_1');
    const ql = new QuantizedLinear(q, lin.bias!.detach());
    const x = Tensor.fromArray(Float32Array.from({ length: 2 * 3 * 64 }, (_, i) => Math.sin(i)), [2, 3, 64]);
    const y = ql.forward(x);
    expect(y.shape).toEqual([2, 3, 24]);
    expect(y.f32()).toEqual(quantMatmul(q, x.f32(), 6, { bias: lin.bias!.f32() }));
    // And it approximates the f32 layer (4-bit weights: a few percent of the output scale).
    const ref = lin.forward(x).f32();
    const scale = Math.max(...Array.from(ref, Math.abs));
    for (let i = 0; i < ref.length; i++) expect(Math.abs(y.f32()[i]! - ref[i]!)).toBeLessThan(0.1 * scale);
    expect(() => ql.forward(Tensor.zeros([2, 32]))).toThrow(/must end in 64/);
    expect(() => new QuantizedLinear(q, Tensor.zeros([3]))).toThrow(/bias \[3\] must be \[24\]/);
    expect(() => new QuantizedLinear(q, null, { activations: 'per-token' })).toThrow(/need int8 weights/);
  });

  it("per-token (W8A8) mode runs the INT8 GEMM and stays close to f32", () => {
    const g = new Generator(2);
    const lin = new Linear(96, 40, { generator: g });
    const ql = new QuantizedLinear(quantizeMatrix(lin.weight.f32(), 40, 96, 'int8'), lin.bias!.detach(), { activations: 'per-token' });
    const x = Tensor.fromArray(Float32Array.from({ length: 5 * 96 }, (_, i) => Math.cos(i * 0.37)), [5, 96]);
    const y = ql.forward(x).f32();
    const ref = lin.forward(x).f32();
    for (let i = 0; i < ref.length; i++) expect(Math.abs(y[i]! - ref[i]!)).toBeLessThan(0.02);
  });
});

describe('quantizeModelWeights on LLaMA', () => {
  it('replaces every projection but the head, and the model still predicts like the f32 one', () => {
    const f32 = new Llama(llamaConfig, { generator: new Generator(3) });
    const model = new Llama(llamaConfig, { generator: new Generator(3) });
    const want = f32.logits(ids).f32();
    const { replaced, skipped } = quantizeModelWeights(model, 'q8_0');
    expect(replaced).toHaveLength(14);
    expect(replaced).toContain('model.layers.1.mlp.down_proj');
    expect(replaced.some((n) => n.includes('lm_head'))).toBe(false);
    expect(skipped).toEqual([]);
    // Fields, the child map (named modules) and the state dict all see the new layers.
    expect(model.model.layers.items[0]!.self_attn.q_proj).toBeInstanceOf(QuantizedLinear);
    expect(quantizedModules(model)).toHaveLength(14);
    expect([...model.stateDict().keys()].some((k) => k.endsWith('q_proj.weight'))).toBe(false);
    const got = model.logits(ids).f32();
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    // q8_0 weights and activations: errors ~1/254 relative per matmul, far below logit spreads.
    const spread = Math.max(...Array.from(want)) - Math.min(...Array.from(want));
    expect(worst).toBeLessThan(0.02 * spread);
    // The cached decode path goes through the same layers.
    const out = model.generate([1, 2, 3], { maxNewTokens: 4, temperature: 0 });
    expect(out).toHaveLength(4);
  });

  it('skips layers whose width does not fit the block and says why; a custom quantizer is used', () => {
    const model = new Llama({ ...llamaConfig, hiddenSize: 128, intermediateSize: 96 }, { generator: new Generator(4) });
    const seen: string[] = [];
    const { replaced, skipped } = quantizeModelWeights(model, 'q4_g128', {
      include: /mlp/,
      quantizer: (name, w, rows, cols) => {
        seen.push(name);
        return quantizeMatrix(w, rows, cols, 'q4_g128');
      },
    });
    expect(replaced).toEqual(['model.layers.0.mlp.gate_proj', 'model.layers.0.mlp.up_proj', 'model.layers.1.mlp.gate_proj', 'model.layers.1.mlp.up_proj']);
    expect(seen).toEqual(replaced);
    expect(skipped).toEqual([
      { name: 'model.layers.0.mlp.down_proj', reason: 'input width 96 is not a multiple of 128' },
      { name: 'model.layers.1.mlp.down_proj', reason: 'input width 96 is not a multiple of 128' },
    ]);
    expect(model.model.layers.items[0]!.mlp.down_proj).toBeInstanceOf(Linear);
  });
});

describe('saveQuantized / loadQuantized', () => {
  for (const format of ['q4_0', 'int8', 'q4_1'] as QuantFormat[]) {
    it(`${format}: LLaMA round trip gives bit-identical logits; config and sizes are right`, async () => {
      const model = new Llama(llamaConfig, { generator: new Generator(5) });
      quantizeModelWeights(model, format);
      const want = model.logits(ids).f32().slice();
      const dir = tempDir();
      await saveQuantized(model, dir);
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { quantization_config: Record<string, unknown>; model_type: string };
      expect(config.model_type).toBe('llama');
      expect(config.quantization_config).toMatchObject({ quant_method: 'weft', format, group_size: format === 'int8' ? null : 32 });
      expect(config.quantization_config.modules).toHaveLength(14);
      const loaded = (await loadQuantized(dir)) as Llama;
      expect(quantizedModules(loaded).map(([n, l]) => [n, l.format])).toEqual(quantizedModules(model).map(([n, l]) => [n, l.format]));
      expect(loaded.logits(ids).f32()).toEqual(want);
    });
  }

  it('GPT-2 (Conv1D layers, biases) round trip', async () => {
    const gpt = new GPT({ vocabSize: 50, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 64 }, { generator: new Generator(6) });
    const f32Logits = gpt.forward(Tensor.fromArray(Int32Array.from([1, 2, 3]), [1, 3], 'i32')).logits.f32().slice();
    const { replaced } = quantizeModelWeights(gpt, 'q8_0');
    expect(replaced.length).toBeGreaterThanOrEqual(4);
    const ids3 = Tensor.fromArray(Int32Array.from([1, 2, 3]), [1, 3], 'i32');
    const want = gpt.forward(ids3).logits.f32().slice();
    for (let i = 0; i < want.length; i++) expect(Math.abs(want[i]! - f32Logits[i]!)).toBeLessThan(0.05);
    const dir = tempDir();
    await saveQuantized(gpt, dir);
    const loaded = (await loadQuantized(dir)) as GPT;
    expect(loaded.forward(ids3).logits.f32()).toEqual(want);
  });

  it('clear errors: nothing quantized, not a weft directory', async () => {
    const model = new Llama(llamaConfig, { generator: new Generator(7) });
    await expect(saveQuantized(model, tempDir())).rejects.toThrow(/no quantized layers/);
    const dir = tempDir();
    await model.savePretrained(dir);
    await expect(loadQuantized(dir)).rejects.toThrow(/quantization_config/);
  });

  it('dequantized weights in an f32 model reproduce the quantized layer up to activation rounding', () => {
    const lin = new Linear(64, 8, { bias: false, generator: new Generator(8) });
    const q = quantizeMatrix(lin.weight.f32(), 8, 64, 'q4_0');
    const w = dequantizeMatrix(q);
    const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 1.3));
    const y = new QuantizedLinear(q, null).forward(Tensor.fromArray(x, [1, 64])).f32();
    for (let j = 0; j < 8; j++) {
      let s = 0;
      let mag = 0;
      for (let p = 0; p < 64; p++) {
        s += x[p]! * w[j * 64 + p]!;
        mag += Math.abs(w[j * 64 + p]!);
      }
      expect(Math.abs(y[j]! - s)).toBeLessThanOrEqual((mag * 1) / 254 + 1e-5);
    }
  });
});
