/**
 * GPT model: HF tensor names and shapes, GPT-2 initialisation statistics, config validation and the
 * HF config mapping, the loss, bias=false, input checks, and the fused attention op against the
 * explicit softmax(QKᵀ)V composition (forward and gradients). Numerics against transformers are in
 * gpt-hf-parity.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  GPT,
  IGNORE_INDEX,
  causalAttentionExplicit,
  causalAttentionFromQKV,
  gptConfigFromHF,
  gptConfigToHF,
  parseGPTConfig,
} from '../../src/models/index.js';
import { Generator, Tensor, crossEntropy, noGrad, randn, sum, mul } from '../../src/tensor/index.js';

const tiny = { vocabSize: 11, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 8 };

function ids(rows: number[][]): Tensor {
  return Tensor.fromArray(Int32Array.from(rows.flat()), [rows.length, rows[0]!.length], 'i32');
}

function randomIds(g: Generator, B: number, T: number, V: number): Tensor {
  return Tensor.fromArray(Int32Array.from({ length: B * T }, () => g.int(0, V)), [B, T], 'i32');
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return a.length === b.length ? m : Infinity;
}

function stats(t: Tensor): { mean: number; std: number } {
  const a = t.toArray();
  const mean = a.reduce((s, v) => s + v, 0) / a.length;
  const std = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
  return { mean, std };
}

describe('GPT structure and initialisation', () => {
  it('uses Hugging Face GPT-2 names and layouts (Conv1D weights in×out), lm_head tied to wte', () => {
    const m = new GPT(tiny, { generator: new Generator(0) });
    const C = 8;
    const want: [string, number[]][] = [
      ['transformer.wte.weight', [11, C]],
      ['transformer.wpe.weight', [8, C]],
    ];
    for (let i = 0; i < 2; i++) {
      const p = `transformer.h.${i}`;
      want.push(
        [`${p}.ln_1.weight`, [C]],
        [`${p}.ln_1.bias`, [C]],
        [`${p}.attn.c_attn.weight`, [C, 3 * C]],
        [`${p}.attn.c_attn.bias`, [3 * C]],
        [`${p}.attn.c_proj.weight`, [C, C]],
        [`${p}.attn.c_proj.bias`, [C]],
        [`${p}.ln_2.weight`, [C]],
        [`${p}.ln_2.bias`, [C]],
        [`${p}.mlp.c_fc.weight`, [C, 4 * C]],
        [`${p}.mlp.c_fc.bias`, [4 * C]],
        [`${p}.mlp.c_proj.weight`, [4 * C, C]],
        [`${p}.mlp.c_proj.bias`, [C]],
      );
    }
    want.push(['transformer.ln_f.weight', [C]], ['transformer.ln_f.bias', [C]]);
    expect(m.namedParameters().map(([n, t]) => [n, [...t.shape]])).toEqual(want);
    expect(m.numParameters()).toBe(want.reduce((s, [, sh]) => s + sh.reduce((a, b) => a * b, 1), 0));
    expect(m.numNonEmbeddingParameters()).toBe(m.numParameters() - 8 * C);
  });

  it('bias=false removes every LayerNorm and Conv1D bias', () => {
    const m = new GPT({ ...tiny, bias: false });
    expect(m.namedParameters().filter(([n]) => n.endsWith('.bias'))).toEqual([]);
    expect(m.namedParameters().length).toBe(2 + 2 * 6 + 1);
  });

  it('GPT-2 init: N(0, 0.02), residual projections N(0, 0.02/√(2·nLayer)), zero biases, unit LN weights; seeded', () => {
    const cfg = { vocabSize: 256, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 64 };
    const m = new GPT(cfg, { generator: new Generator(42) });
    const p = new Map(m.namedParameters());
    const scaled = 0.02 / Math.sqrt(8);
    for (const [name, std] of [
      ['transformer.wte.weight', 0.02],
      ['transformer.wpe.weight', 0.02],
      ['transformer.h.0.attn.c_attn.weight', 0.02],
      ['transformer.h.3.mlp.c_fc.weight', 0.02],
      ['transformer.h.1.attn.c_proj.weight', scaled],
      ['transformer.h.2.mlp.c_proj.weight', scaled],
    ] as const) {
      const s = stats(p.get(name)!);
      expect(Math.abs(s.mean), name).toBeLessThan(std * 0.1);
      expect(s.std / std, name).toBeGreaterThan(0.93);
      expect(s.std / std, name).toBeLessThan(1.07);
    }
    expect(p.get('transformer.h.0.mlp.c_fc.bias')!.toArray().every((v) => v === 0)).toBe(true);
    expect(p.get('transformer.ln_f.weight')!.toArray().every((v) => v === 1)).toBe(true);
    const again = new GPT(cfg, { generator: new Generator(42) });
    const other = new GPT(cfg, { generator: new Generator(43) });
    const w = (g: GPT): number[] => g.transformer.h.items[2]!.attn.c_attn.weight.toArray();
    expect(w(again)).toEqual(w(m));
    expect(w(other)).not.toEqual(w(m));
  });
});

describe('GPT config', () => {
  it('fills defaults and rejects bad values with the field named', () => {
    expect(parseGPTConfig(tiny)).toEqual({ ...tiny, dropout: 0, bias: true, activation: 'gelu', layerNormEps: 1e-5 });
    expect(() => parseGPTConfig({ ...tiny, nEmbd: 9 })).toThrow(/divisible by nHead/);
    expect(() => parseGPTConfig({ ...tiny, nLayer: 0 })).toThrow(/nLayer/);
    expect(() => parseGPTConfig({ ...tiny, dropout: 1 })).toThrow(/dropout/);
    expect(() => parseGPTConfig({ ...tiny, activation: 'relu' })).toThrow(/activation/);
    expect(() => parseGPTConfig({ ...tiny, nLayers: 3 })).toThrow(/nLayers/);
    expect(() => new GPT({ ...tiny, vocabSize: -1 })).toThrow(/vocabSize/);
  });

  it('round-trips through HF config.json names', () => {
    const c = parseGPTConfig({ ...tiny, dropout: 0.1, bias: false, activation: 'gelu_new', layerNormEps: 1e-6 });
    const hf = gptConfigToHF(c);
    expect(hf).toMatchObject({
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      vocab_size: 11,
      n_positions: 8,
      n_embd: 8,
      n_layer: 2,
      n_head: 2,
      activation_function: 'gelu_new',
      resid_pdrop: 0.1,
      embd_pdrop: 0.1,
      attn_pdrop: 0.1,
      layer_norm_epsilon: 1e-6,
      tie_word_embeddings: true,
      weft_bias: false,
    });
    expect(gptConfigFromHF(JSON.parse(JSON.stringify(hf)))).toEqual(c);
  });

  it('reads HF configs (defaults: gelu_new, biases) and refuses what it cannot reproduce', () => {
    const base = { model_type: 'gpt2', vocab_size: 50, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2 };
    expect(gptConfigFromHF(base)).toMatchObject({ activation: 'gelu_new', bias: true, dropout: 0.1 });
    expect(gptConfigFromHF({ ...base, activation_function: 'gelu_pytorch_tanh' }).activation).toBe('gelu_new');
    expect(() => gptConfigFromHF({ ...base, activation_function: 'relu' })).toThrow(/activation_function 'relu'/);
    expect(() => gptConfigFromHF({ ...base, model_type: 'llama' })).toThrow(/model_type 'llama'/);
    expect(() => gptConfigFromHF({ ...base, n_inner: 40 })).toThrow(/n_inner/);
    expect(() => gptConfigFromHF({ ...base, tie_word_embeddings: false })).toThrow(/tie_word_embeddings/);
    expect(() => gptConfigFromHF({ ...base, scale_attn_by_inverse_layer_idx: true })).toThrow(/scale_attn/);
    expect(() => gptConfigFromHF({ ...base, n_embd: undefined })).toThrow(/n_embd/);
  });
});

describe('GPT forward', () => {
  it('returns logits [B, T, V] and the mean cross-entropy, skipping targets = IGNORE_INDEX', () => {
    const g = new Generator(3);
    const m = new GPT(tiny, { generator: g });
    const x = randomIds(g, 3, 5, 11);
    const yData = Int32Array.from({ length: 15 }, () => g.int(0, 11));
    yData[4] = IGNORE_INDEX;
    const y = Tensor.fromArray(yData, [3, 5], 'i32');
    const { logits, loss } = m.forward(x, y);
    expect(logits.shape).toEqual([3, 5, 11]);
    const ref = crossEntropy(logits.reshape([15, 11]), y.reshape([15]), { ignoreIndex: IGNORE_INDEX });
    expect(loss!.item()).toBeCloseTo(ref.item(), 6);
    // An untrained GPT-2-initialised model predicts nearly uniformly.
    expect(Math.abs(loss!.item() - Math.log(11))).toBeLessThan(0.1);
    expect(m.forward(x).loss).toBeNull();
  });

  it('is causal: logits at position t do not depend on later tokens', () => {
    const m = new GPT(tiny, { generator: new Generator(5) });
    const a = m.forward(ids([[1, 2, 3, 4, 5, 6]])).logits.toArray();
    const b = m.forward(ids([[1, 2, 3, 9, 0, 7]])).logits.toArray();
    expect(maxAbsDiff(a.slice(0, 3 * 11), b.slice(0, 3 * 11))).toBeLessThan(1e-6);
    expect(maxAbsDiff(a.slice(3 * 11), b.slice(3 * 11))).toBeGreaterThan(1e-4);
  });

  it('rejects bad input with the problem named', () => {
    const m = new GPT(tiny);
    expect(() => m.forward(ids([[1, 2, 3, 4, 5, 6, 7, 8, 9]]))).toThrow(/sequence length 9 exceeds blockSize 8/);
    expect(() => m.forward(ids([[1, 11]]))).toThrow(/ids value 11 .* vocabulary \[0, 11\)/);
    expect(() => m.forward(Tensor.fromArray(new Float32Array(4), [1, 4]))).toThrow(/i32 tensor \[B, T\]/);
    expect(() => m.forward(ids([[1, 2]]), ids([[1, 2, 3]]))).toThrow(/targets \[1, 3\] must match ids \[1, 2\]/);
    expect(() => m.forward(ids([[1, 2]]), ids([[1, -5]]))).toThrow(/targets value -5/);
  });

  it('bias=false computes what a biased model with zero biases computes (logits and shared gradients)', () => {
    const g = new Generator(9);
    const plain = new GPT({ ...tiny, bias: false }, { generator: new Generator(1) });
    const biased = new GPT({ ...tiny, bias: true }, { generator: new Generator(2) });
    // Same weights: copy the bias-free model's tensors in; the biased model's biases are already zero.
    const sd = biased.stateDict();
    for (const [name, t] of plain.stateDict()) sd.get(name)!.storage.data.set(t.toArray());
    // Make the LayerNorm weights non-trivial so a missing or misplaced affine would show.
    for (const [name, t] of plain.namedParameters()) {
      if (name.includes('ln_')) {
        const vals = t.toArray().map((_, i) => 1 + 0.1 * Math.sin(i + name.length));
        t.storage.data.set(vals);
        sd.get(name)!.storage.data.set(vals);
      }
    }
    const x = randomIds(g, 2, 7, 11);
    const y = randomIds(g, 2, 7, 11);
    const a = plain.forward(x, y);
    const b = biased.forward(x, y);
    expect(maxAbsDiff(a.logits.toArray(), b.logits.toArray())).toBeLessThan(1e-6);
    a.loss!.backward();
    b.loss!.backward();
    const bp = new Map(biased.namedParameters());
    for (const [name, p] of plain.namedParameters()) {
      expect(maxAbsDiff(p.grad!.toArray(), bp.get(name)!.grad!.toArray()), name).toBeLessThan(1e-6);
    }
    // The biased model's bias gradients are real (nonzero), i.e. biases are in its graph.
    expect(bp.get('transformer.h.0.mlp.c_fc.bias')!.grad!.toArray().some((v) => v !== 0)).toBe(true);
  });

  it('dropout: eval() is deterministic and equals the no-dropout model; training drops (seeded)', () => {
    const make = (dropout: number, seed: number): GPT => new GPT({ ...tiny, dropout }, { generator: new Generator(seed) });
    const x = randomIds(new Generator(1), 2, 8, 11);
    const ref = make(0, 7).forward(x).logits.toArray();
    const withDrop = make(0.3, 7);
    withDrop.eval();
    expect(maxAbsDiff(withDrop.forward(x).logits.toArray(), ref)).toBeLessThan(1e-6);
    withDrop.train();
    const t1 = withDrop.forward(x).logits.toArray();
    expect(maxAbsDiff(t1, ref)).toBeGreaterThan(1e-3);
    const again = make(0.3, 7);
    expect(maxAbsDiff(again.forward(x).logits.toArray(), t1)).toBe(0);
  });
});

describe('activation reuse', () => {
  it('releasing the previous forward never frees tensors a live graph needs (two forwards, one backward)', () => {
    const g = new Generator(21);
    const m = new GPT(tiny, { generator: new Generator(4) });
    const [x1, y1, x2, y2] = [0, 1, 2, 3].map(() => randomIds(g, 2, 8, 11)) as [Tensor, Tensor, Tensor, Tensor];
    const gradsOf = (): number[][] => m.namedParameters().map(([, p]) => p.grad!.toArray());
    m.forward(x1, y1).loss!.backward();
    const g1 = gradsOf();
    m.zeroGrad();
    m.forward(x2, y2).loss!.backward();
    const g2 = gradsOf();
    m.zeroGrad();
    // Both graphs alive at once: the second forward must leave the first one's tensors intact.
    const l1 = m.forward(x1, y1).loss!;
    const l2 = m.forward(x2, y2).loss!;
    l1.add(l2).backward();
    gradsOf().forEach((gr, i) => expect(maxAbsDiff(gr, g1[i]!.map((v, j) => v + g2[i]![j]!))).toBeLessThan(1e-6));
    // Pooled buffers are reused across steps without changing results.
    m.zeroGrad();
    m.forward(x1, y1).loss!.backward();
    gradsOf().forEach((gr, i) => expect(gr).toEqual(g1[i]));
    m.releaseActivations();
  });
});

describe('causal attention from packed qkv', () => {
  it('the fused op equals the explicit softmax(QKᵀ/√D + mask)·V, forward and gradient', () => {
    const g = new Generator(11);
    for (const [B, T, H, D] of [
      [2, 7, 3, 5],
      [1, 16, 2, 8],
      [3, 1, 1, 4],
    ] as const) {
      const qkv = mul(randn([B, T, 3 * H * D], { generator: g }), 1.5).detach().requiresGrad_();
      const w = randn([B, T, H * D], { generator: g });
      const fused = causalAttentionFromQKV(qkv, H);
      sum(mul(fused, w)).backward();
      const gFused = qkv.grad!.toArray();
      qkv.zeroGrad();
      const explicit = causalAttentionExplicit(qkv, H);
      sum(mul(explicit, w)).backward();
      expect(fused.shape).toEqual([B, T, H * D]);
      expect(maxAbsDiff(fused.toArray(), explicit.toArray()), `forward ${[B, T, H, D]}`).toBeLessThan(1e-5);
      expect(maxAbsDiff(gFused, qkv.grad!.toArray()), `gradient ${[B, T, H, D]}`).toBeLessThan(1e-5);
    }
    expect(() => causalAttentionFromQKV(randn([2, 3, 10]), 2)).toThrow(/qkv \[B, T, 3·C\]/);
    noGrad(() => expect(causalAttentionFromQKV(randn([1, 2, 6]), 1).requiresGrad).toBe(false));
  });
});
