/**
 * QAT's fake-quant op (forward = round-to-nearest values, backward = straight-through inside the
 * clip range) and pruning: magnitude masks, the cubic schedule, Taylor importance as grad × activation,
 * and structured pruning producing a smaller LLaMA that saves and loads.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { enableFakeQuant, fakeQuant } from '../../src/compress/qat.js';
import { applyMasks, cubicSparsity, magnitudeMasks, pruneHeads, pruneLayers, pruneNeurons, sparsityOf, taylorImportance, topIndices } from '../../src/compress/prune.js';
import { dequantizeMatrix, quantizeMatrix } from '../../src/compress/quant/formats.js';
import { Llama } from '../../src/models/llama.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { mul, sum } from '../../src/tensor/index.js';

const g = new Generator(21);

describe('fake quantization with the straight-through estimator', () => {
  it('forward equals quantize→dequantize; gradient passes where not clipped', () => {
    const w = Tensor.fromArray(Float32Array.from({ length: 4 * 64 }, () => g.normal() * 0.1), [4, 64]).requiresGrad_();
    const q = fakeQuant(w, 'q4_0');
    expect(q.f32()).toEqual(dequantizeMatrix(quantizeMatrix(w.f32(), 4, 64, 'q4_0')));
    const up = Tensor.fromArray(Float32Array.from({ length: 256 }, (_, i) => (i % 7) - 3), [4, 64]);
    sum(mul(q, up)).backward();
    const grad = w.grad!.f32();
    let passed = 0;
    grad.forEach((v, i) => {
      expect(v === 0 || v === up.f32()[i]).toBe(true);
      if (v === up.f32()[i]) passed++;
    });
    // Only the few weights q4_0 clips (the positive extreme beyond 7·d) are blocked.
    expect(passed).toBeGreaterThan(256 - 16);
  });

  it('makes a model compute with quantized weights until undone', () => {
    const cfg = { vocabSize: 30, hiddenSize: 32, intermediateSize: 64, nLayer: 1, nHead: 2, maxPositionEmbeddings: 8, tieWordEmbeddings: true };
    const model = new Llama(cfg, { generator: new Generator(1) });
    const ids = Tensor.fromArray(Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), [1, 8], 'i32');
    const f32 = model.logits(ids).f32().slice();
    const undo = enableFakeQuant(model, 'q4_0');
    const fq = model.logits(ids).f32().slice();
    expect(fq.some((v, i) => Math.abs(v - f32[i]!) > 1e-5)).toBe(true);
    undo();
    expect(model.logits(ids).f32()).toEqual(f32);
  });
});

describe('pruning', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-prune-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = { vocabSize: 30, hiddenSize: 32, intermediateSize: 64, nLayer: 3, nHead: 4, nKVHead: 2, maxPositionEmbeddings: 16, tieWordEmbeddings: true };

  it('cubic schedule goes from the initial to the final sparsity, fastest at first', () => {
    expect(cubicSparsity(0, 4, 0.8)).toBe(0);
    expect(cubicSparsity(4, 4, 0.8)).toBeCloseTo(0.8, 12);
    expect(cubicSparsity(1, 4, 0.8)).toBeCloseTo(0.8 * (1 - 0.75 ** 3), 12);
    expect(cubicSparsity(1, 4, 0.8) - cubicSparsity(0, 4, 0.8)).toBeGreaterThan(cubicSparsity(4, 4, 0.8) - cubicSparsity(3, 4, 0.8));
  });

  it('magnitude masks remove exactly the smallest weights, per layer or globally', () => {
    for (const scope of ['layer', 'global'] as const) {
      const model = new Llama(cfg, { generator: new Generator(5) });
      const masks = magnitudeMasks(model, 0.5, { scope });
      applyMasks(model, masks);
      expect(sparsityOf(model)).toBeCloseTo(0.5, 2);
      if (scope === 'layer') {
        const w = model.model.layers.items[0]!.mlp.up_proj.weight.f32();
        const zeros = w.filter((v) => v === 0).length;
        expect(zeros).toBe(Math.floor(w.length / 2));
        const keptMin = Math.min(...Array.from(w).filter((v) => v !== 0).map(Math.abs));
        const orig = new Llama(cfg, { generator: new Generator(5) }).model.layers.items[0]!.mlp.up_proj.weight.f32();
        const droppedMax = Math.max(...Array.from(orig).filter((_, i) => w[i] === 0).map(Math.abs));
        expect(droppedMax).toBeLessThanOrEqual(keptMin);
      }
    }
  });

  it('Taylor importance of a neuron is |dL/dε| of scaling its activation by (1 + ε) (central differences)', () => {
    const model = new Llama({ ...cfg, nLayer: 1 }, { generator: new Generator(8) });
    const x = Tensor.fromArray(Int32Array.from({ length: 16 }, (_, i) => (i * 5) % 30), [1, 16], 'i32');
    const y = Tensor.fromArray(Int32Array.from({ length: 16 }, (_, i) => (i * 3) % 30), [1, 16], 'i32');
    const imp = taylorImportance(model, [{ x, y }]);
    const down = model.model.layers.items[0]!.mlp.down_proj.weight.f32();
    const lossWith = (j: number, factor: number): number => {
      const saved = Array.from({ length: 32 }, (_, r) => down[r * 64 + j]!);
      for (let r = 0; r < 32; r++) down[r * 64 + j] = saved[r]! * factor;
      const l = model.forward(x, y).loss!.item();
      for (let r = 0; r < 32; r++) down[r * 64 + j] = saved[r]!;
      return l;
    };
    const eps = 0.05;
    for (const j of topIndices(imp.neurons[0]!, 3)) {
      const fd = Math.abs((lossWith(j, 1 + eps) - lossWith(j, 1 - eps)) / (2 * eps));
      expect(Math.abs(imp.neurons[0]![j]! - fd)).toBeLessThan(0.05 * fd + 1e-5);
    }
  });

  it('structured pruning yields smaller LLaMAs that run, save and load', async () => {
    const model = new Llama(cfg, { generator: new Generator(6) });
    const x = Tensor.fromArray(Int32Array.from({ length: 32 }, (_, i) => (i * 5) % 30), [2, 16], 'i32');
    const y = Tensor.fromArray(Int32Array.from({ length: 32 }, (_, i) => (i * 11) % 30), [2, 16], 'i32');
    const imp = taylorImportance(model, [{ x, y }]);
    const neurons = pruneNeurons(model, imp, 40);
    expect(neurons.config.intermediateSize).toBe(40);
    expect(neurons.model.layers.items[0]!.mlp.down_proj.weight.shape).toEqual([32, 40]);
    // Kept neurons carry their weights over.
    const keep0 = topIndices(imp.neurons[0]!, 40);
    expect(neurons.model.layers.items[0]!.mlp.up_proj.weight.f32().subarray(0, 32)).toEqual(model.model.layers.items[0]!.mlp.up_proj.weight.f32().subarray(keep0[0]! * 32, keep0[0]! * 32 + 32));
    const heads = pruneHeads(model, imp, 1);
    expect(heads.config.nKVHead).toBe(1);
    expect(heads.config.nHead).toBe(2);
    expect(heads.model.layers.items[0]!.self_attn.o_proj.weight.shape).toEqual([32, 16]);
    const layers = pruneLayers(model, imp, 2);
    expect(layers.config.nLayer).toBe(2);
    for (const small of [neurons, heads, layers]) {
      expect(small.numParameters()).toBeLessThan(model.numParameters());
      const logits = small.logits(x);
      expect(logits.shape).toEqual([2, 16, 30]);
      await small.savePretrained(dir);
      const back = await Llama.fromPretrained(dir);
      back.logits(x).f32().forEach((v, i) => expect(v).toBeCloseTo(logits.f32()[i]!, 5));
    }
  });
});
