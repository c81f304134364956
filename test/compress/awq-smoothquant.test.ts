/**
 * AWQ and SmoothQuant: scale folding keeps the f32 function, AWQ's search lowers the quantized
 * output error below round-to-nearest on activation-skewed inputs, clipping never raises it, and the
 * W8A8 linear matches an explicit integer computation.
 */
import { describe, expect, it } from 'vitest';
import { awqLlama, fakeQuantize, searchClipping, searchScales } from '../../src/compress/awq.js';
import { collectActivationStats, findLinears } from '../../src/compress/calibrate.js';
import { smoothLlama, smoothingScales, W8A8Linear } from '../../src/compress/smoothquant.js';
import { Linear } from '../../src/nn/layers.js';
import { Llama } from '../../src/models/llama.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';

const g = new Generator(11);
const cols = 64;
const rows = 48;
const n = 256;
/** Inputs with a few salient channels (×20), as LLM activations have. */
const X = new Float32Array(n * cols);
for (let t = 0; t < n; t++) for (let c = 0; c < cols; c++) X[t * cols + c] = g.normal() * (c % 16 === 3 ? 20 : 1);
const W = new Float32Array(rows * cols);
for (let i = 0; i < W.length; i++) W[i] = g.normal() * 0.05;

function outErr(q: Float32Array, x = X, w = W): number {
  let e = 0;
  for (let t = 0; t < n; t++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += x[t * cols + c]! * (w[r * cols + c]! - q[r * cols + c]!);
      e += s * s;
    }
  }
  return e;
}

describe('AWQ', () => {
  it('finds scales that beat round-to-nearest for q4_0', () => {
    const res = searchScales(X, n, cols, [{ w: W, rows }], 'q4_0');
    expect(res.alpha).toBeGreaterThan(0);
    expect(res.errorAfter).toBeLessThan(res.errorBefore * 0.9);
    // Reconstruct: Q(W·s)/s is the effective weight.
    const scaled = W.map((v, i) => v * res.scales[i % cols]!);
    const q = fakeQuantize(scaled, rows, cols, 'q4_0').map((v, i) => v / res.scales[i % cols]!);
    expect(outErr(q)).toBeLessThan(outErr(fakeQuantize(W, rows, cols, 'q4_0')));
  });

  it('clipping search never increases the output error', () => {
    const w = W.slice();
    searchClipping(w, rows, cols, X, n, 'q4_1', 32);
    expect(outErr(fakeQuantize(w, rows, cols, 'q4_1'))).toBeLessThanOrEqual(outErr(fakeQuantize(W, rows, cols, 'q4_1')) * 1.0001);
  });

  it('scales a LLaMA without changing its f32 function', () => {
    const cfg = { vocabSize: 50, hiddenSize: 32, intermediateSize: 64, nLayer: 2, nHead: 4, maxPositionEmbeddings: 16, tieWordEmbeddings: true };
    const model = new Llama(cfg, { generator: new Generator(2) });
    const ids = Tensor.fromArray(Int32Array.from({ length: 32 }, (_, i) => (i * 13) % 50), [2, 16], 'i32');
    const before = model.logits(ids).f32().slice();
    const reports = awqLlama(model, [ids], { format: 'q4_0', clip: false, grid: 5 });
    expect(reports.length).toBe(2 * 4); // qkv, v→o, gate/up, up→down per layer
    const after = model.logits(ids).f32();
    after.forEach((v, i) => expect(v).toBeCloseTo(before[i]!, 3));
    for (const r of reports) expect(r.errorAfter).toBeLessThanOrEqual(r.errorBefore);
  });
});

describe('SmoothQuant', () => {
  it('s_j = max|X_j|^α / max|W_j|^(1−α)', () => {
    const l = new Linear(2, 1, { bias: false });
    l.weight.f32().set([0.5, -2]);
    const s = smoothingScales(new Float64Array([8, 1]), [l], 0.5);
    expect(s[0]).toBeCloseTo(Math.sqrt(8) / Math.sqrt(0.5), 10);
    expect(s[1]).toBeCloseTo(1 / Math.sqrt(2), 10);
  });

  it('smoothing keeps the function and flattens the activation outliers', () => {
    const cfg = { vocabSize: 50, hiddenSize: 32, intermediateSize: 64, nLayer: 1, nHead: 4, maxPositionEmbeddings: 16, tieWordEmbeddings: true };
    const model = new Llama(cfg, { generator: new Generator(4) });
    // An outlier channel in the norm weight, as trained LLMs develop.
    model.model.layers.items[0]!.input_layernorm.weight.f32()[5] = 30;
    const ids = Tensor.fromArray(Int32Array.from({ length: 32 }, (_, i) => (i * 7) % 50), [2, 16], 'i32');
    const before = model.logits(ids).f32().slice();
    const layers = findLinears(model);
    const stats = collectActivationStats(model, layers, [ids]);
    const ratio = (m: Float64Array): number => Math.max(...m) / (m.reduce((a, b) => a + b, 0) / m.length);
    const spreadBefore = ratio(stats.get('model.layers.0.self_attn.q_proj')!.absMax);
    smoothLlama(model, stats, 0.5);
    model.logits(ids).f32().forEach((v, i) => expect(v).toBeCloseTo(before[i]!, 3));
    const after = collectActivationStats(model, layers, [ids]);
    expect(ratio(after.get('model.layers.0.self_attn.q_proj')!.absMax)).toBeLessThan(spreadBefore / 2);
  });

  it('W8A8 static and dynamic linears equal explicit int8 arithmetic', () => {
    const l = new Linear(32, 8, { generator: new Generator(9) });
    const x = Tensor.fromArray(Float32Array.from({ length: 3 * 32 }, () => g.normal()), [3, 32]);
    const xd = x.f32();
    const w = l.weight.f32();
    const b = l.bias!.f32();
    const wScale = Array.from({ length: 8 }, (_, r) => Math.max(...Array.from(w.subarray(r * 32, r * 32 + 32), Math.abs)) / 127);
    const T = 1.5;
    const got = W8A8Linear.fromLinear(l, { kind: 'static', threshold: T }).forward(x).f32();
    const dyn = W8A8Linear.fromLinear(l, { kind: 'dynamic' }).forward(x).f32();
    for (let i = 0; i < 3; i++) {
      const xmax = Math.max(...Array.from(xd.subarray(i * 32, i * 32 + 32), Math.abs));
      for (let r = 0; r < 8; r++) {
        let acc = 0;
        let accDyn = 0;
        for (let c = 0; c < 32; c++) {
          const wc = Math.round(w[r * 32 + c]! / Math.fround(wScale[r]!));
          acc += Math.max(-127, Math.min(127, Math.round(xd[i * 32 + c]! / (T / 127)))) * wc;
          accDyn += Math.round(xd[i * 32 + c]! / Math.fround(xmax / 127)) * wc;
        }
        expect(got[i * 8 + r]).toBeCloseTo(acc * (T / 127) * Math.fround(wScale[r]!) + b[r]!, 4);
        expect(dyn[i * 8 + r]).toBeCloseTo(accDyn * Math.fround(xmax / 127) * Math.fround(wScale[r]!) + b[r]!, 3);
      }
    }
  });
});
