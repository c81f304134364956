/**
 * AWQ and SmoothQuant: scale folding keeps the f32 function, AWQ's search lowers the quantized
 * output error below round-to-nearest on activation-skewed inputs, clipping never raises it, and the
 * W8A8 linear matches an explicit integer computation.
 */
import { describe, expect, it } from 'vitest';
import { attentionBlock, awqLlama, type BlockOutput, fakeQuantize, mlpBlock, searchClipping, searchScales } from '../../src/compress/awq.js';
import { quantizeLlama } from '../../src/compress/index.js';
import { collectActivationStats, collectLinearInputs, findLinears } from '../../src/compress/calibrate.js';
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

/** Q(W·diag(s))·diag(s)⁻¹: the quantized weight as the unscaled input sees it. */
function scaledQuantize(w: Float32Array, r: number, c: number, s: Float64Array, format: 'q4_0' | 'q4_1'): Float32Array {
  const q = fakeQuantize(w.map((v, i) => v * s[i % c]!), r, c, format);
  return q.map((v, i) => v / s[i % c]!);
}

function meanSq(a: Float32Array, b: Float32Array): number {
  let e = 0;
  for (let i = 0; i < a.length; i++) e += (a[i]! - b[i]!) ** 2;
  return e / a.length;
}

describe('AWQ, the reference recipe: one scale per shared input, scored on the block output, then auto_clip', () => {
  // A LLaMA whose RMSNorm weights carry outlier channels (×12), as trained LLMs develop: the inputs
  // of q/k/v and of gate/up then have a few salient channels.
  const cfg = { vocabSize: 64, hiddenSize: 64, intermediateSize: 96, nLayer: 2, nHead: 4, maxPositionEmbeddings: 32, tieWordEmbeddings: true };
  const build = (): Llama => {
    const m = new Llama(cfg, { generator: new Generator(21) });
    for (const layer of m.model.layers.items) {
      for (const norm of [layer.input_layernorm, layer.post_attention_layernorm]) {
        const w = norm.weight.f32();
        for (const c of [3, 17, 40]) w[c] = 12;
      }
    }
    m.eval();
    return m;
  };
  const T = 32;
  const gen = new Generator(5);
  const batches = [0, 1, 2].map(() => Tensor.fromArray(Int32Array.from({ length: 4 * T }, () => Math.floor(gen.uniform() * 64)), [4, T], 'i32'));
  const held = Tensor.fromArray(Int32Array.from({ length: 4 * T }, () => Math.floor(gen.uniform() * 64)), [4, T], 'i32');

  for (const format of ['q4_1', 'q4_0'] as const) {
    it(`${format}: the gate/up scale chosen on the MLP's output beats round-to-nearest on that output`, () => {
      const model = build();
      const mlp = model.model.layers.items[0]!.mlp;
      const C = cfg.hiddenSize;
      // The MLP's input: the post-attention norm's output, here taken as salient-channel Gaussian rows.
      const n = 512;
      const x = new Float32Array(n * C);
      for (let t = 0; t < n; t++) for (let c = 0; c < C; c++) x[t * C + c] = gen.normal() * ([3, 17, 40].includes(c) ? 12 : 1);
      const block = mlpBlock(mlp, x, n, C);
      const weights = [mlp.gate_proj, mlp.up_proj].map((l) => ({ w: l.weight.f32().slice(), rows: l.outFeatures }));
      const res = searchScales(x, n, C, weights, format, 20, block);
      expect(res.alpha).toBeGreaterThan(0);
      expect(res.errorAfter).toBeLessThan(res.errorBefore * 0.8);
      // Recompute both errors from scratch: one shared s for gate and up, Q(W·s)/s, the MLP's output.
      const ref = block(weights.map((w) => w.w));
      const rtn = meanSq(block(weights.map(({ w, rows }) => fakeQuantize(w, rows, C, format))), ref);
      const awq = meanSq(block(weights.map(({ w, rows }) => scaledQuantize(w, rows, C, res.scales, format))), ref);
      expect(awq).toBeCloseTo(res.errorAfter, 12);
      expect(rtn).toBeCloseTo(res.errorBefore, 12);
      expect(awq).toBeLessThan(rtn * 0.8);
    });
  }

  it("q4_1: the q/k/v scale is scored on the attention's output (softmax and o_proj included)", () => {
    const model = build();
    const attn = model.model.layers.items[0]!.self_attn;
    const C = cfg.hiddenSize;
    const windows = 4;
    const x = new Float32Array(windows * T * C);
    for (let i = 0; i < x.length; i++) x[i] = gen.normal() * ([3, 17, 40].includes(i % C) ? 12 : 1);
    const block = attentionBlock(model, attn, x, windows, T);
    const lins = [attn.q_proj, attn.k_proj, attn.v_proj];
    const weights = lins.map((l) => ({ w: l.weight.f32().slice(), rows: l.outFeatures }));
    const res = searchScales(x, windows * T, C, weights, 'q4_1', 20, block);
    const ref = block(weights.map((w) => w.w));
    // The block really is the attention: its output equals LlamaAttention.forward on the windows.
    expect(ref.length).toBe(windows * T * C);
    const awq = meanSq(block(weights.map(({ w, rows }) => scaledQuantize(w, rows, C, res.scales, 'q4_1'))), ref);
    const rtn = meanSq(block(weights.map(({ w, rows }) => fakeQuantize(w, rows, C, 'q4_1'))), ref);
    expect(awq).toBeLessThan(rtn * 0.8);
    // The weights are back as they were after the search.
    lins.forEach((l, k) => expect(l.weight.f32()).toEqual(weights[k]!.w));
  });

  it('q4_1 clipping: an outlier weight on a quiet input channel is clipped, and the output error drops', () => {
    const c = 32;
    const r = 16;
    const n = 256;
    const x = new Float32Array(n * c);
    // Channel 5's input is small: its weight's own error costs little, its range costs every other weight.
    for (let i = 0; i < x.length; i++) x[i] = gen.normal() * (i % c === 5 ? 0.05 : 1);
    const w = new Float32Array(r * c);
    for (let i = 0; i < w.length; i++) w[i] = gen.normal() * 0.02 + 0.05; // mostly positive, narrow
    for (let row = 0; row < r; row++) w[row * c + 5] = 0.6; // a large positive outlier per row
    const clipped = w.slice();
    searchClipping(clipped, r, c, x, n, 'q4_1', 32);
    const err = (q: Float32Array): number => {
      let e = 0;
      for (let t = 0; t < n; t++) {
        for (let row = 0; row < r; row++) {
          let s = 0;
          for (let j = 0; j < c; j++) s += x[t * c + j]! * (w[row * c + j]! - q[row * c + j]!);
          e += s * s;
        }
      }
      return e;
    };
    expect(err(fakeQuantize(clipped, r, c, 'q4_1'))).toBeLessThan(err(fakeQuantize(w, r, c, 'q4_1')) * 0.95);
  });

  it('awqLlama scores q/k/v on the attention block and gate/up on the MLP block (its α = 0 errors are those blocks\' RTN errors)', () => {
    const model = build();
    const layer = model.model.layers.items[0]!;
    const named = [
      ['model.layers.0.self_attn.q_proj', layer.self_attn.q_proj],
      ['model.layers.0.mlp.gate_proj', layer.mlp.gate_proj],
    ] as const;
    const inputs = collectLinearInputs(model, named, batches, 8192);
    const rtnError = (block: BlockOutput, lins: readonly Linear[]): number => {
      const ws = lins.map((l) => l.weight.f32().slice());
      return meanSq(block(ws.map((w, k) => fakeQuantize(w, lins[k]!.outFeatures, lins[k]!.inFeatures, 'q4_1'))), block(ws));
    };
    const qIn = inputs.get(named[0][0])!;
    const gIn = inputs.get(named[1][0])!;
    const attnRtn = rtnError(attentionBlock(model, layer.self_attn, qIn.x, qIn.rows / T, T), [layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj]);
    const mlpRtn = rtnError(mlpBlock(layer.mlp, gIn.x, gIn.rows, gIn.cols), [layer.mlp.gate_proj, layer.mlp.up_proj]);
    const reports = awqLlama(model, batches, { format: 'q4_1', clip: false, grid: 4 });
    expect(reports[0]!.linears).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.k_proj', 'model.layers.0.self_attn.v_proj']);
    expect(reports[0]!.errorBefore).toBeCloseTo(attnRtn, 12);
    expect(reports[2]!.linears).toEqual(['model.layers.0.mlp.gate_proj', 'model.layers.0.mlp.up_proj']);
    expect(reports[2]!.errorBefore).toBeCloseTo(mlpRtn, 12);
  });

  for (const format of ['q4_1', 'q4_0'] as const) {
    it(`${format}: the whole model's logits on held-out ids are closer to f32 with AWQ than with round-to-nearest`, () => {
      const f32 = build().logits(held).f32().slice();
      const rtn = build();
      quantizeLlama(rtn, { method: 'rtn', format });
      const awq = build();
      quantizeLlama(awq, { method: 'awq', format, calibration: batches });
      const eRtn = meanSq(rtn.logits(held).f32(), f32);
      const eAwq = meanSq(awq.logits(held).f32(), f32);
      expect(eAwq).toBeLessThan(eRtn * 0.9);
    });
  }
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
