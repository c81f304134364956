/**
 * Speculative decoding gives exactly the target's greedy output: with the target as its own draft
 * (every proposal accepted), with an unrelated random draft (almost none accepted), with a noisy
 * copy of the target (some accepted: the rewind path), with adaptive γ, stop ids, the token budget,
 * and for GPT as well as LLaMA.
 */
import { describe, expect, it } from 'vitest';
import { greedyDecode, ngramDrafter, speculativeGreedy, truncatedDraft } from '../../src/infer/speculative.js';
import { GPT } from '../../src/models/gpt.js';
import { Llama, type LlamaConfigInput } from '../../src/models/llama.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';

const V = 97;
// A large init keeps logits well apart, so batched and one-token forwards cannot flip an argmax.
const targetConfig: LlamaConfigInput = { vocabSize: V, hiddenSize: 64, intermediateSize: 128, nLayer: 2, nHead: 4, nKVHead: 2, maxPositionEmbeddings: 160, initializerRange: 0.3 };
const draftConfig: LlamaConfigInput = { ...targetConfig, hiddenSize: 32, intermediateSize: 64, nLayer: 1, nHead: 2, nKVHead: 1 };

const target = new Llama(targetConfig, { generator: new Generator(1) });
const unrelated = new Llama(draftConfig, { generator: new Generator(2) });

/** The target with every weight perturbed: a draft that agrees often but not always. */
function noisyCopy(model: Llama, scale: number, seed: number): Llama {
  const copy = new Llama(model.config, { generator: new Generator(seed) });
  const g = new Generator(seed);
  const sd = new Map<string, Tensor>();
  for (const [name, t] of model.stateDict()) {
    const src = t.f32('test');
    sd.set(name, Tensor.fromArray(Float32Array.from(src, (x) => x + scale * g.normal()), t.shape));
  }
  copy.loadStateDict(sd);
  return copy;
}

const prompts = [[1], [5, 17, 33], [90, 2, 2, 2, 41, 7, 60, 13], Array.from({ length: 20 }, (_, i) => (i * 31) % V)];

describe('speculativeGreedy', () => {
  it('draft == target: the same tokens, every proposal accepted', () => {
    for (const prompt of prompts) {
      const want = greedyDecode(target, prompt, { maxNewTokens: 40 });
      const { tokens, stats } = speculativeGreedy(target, target, prompt, { maxNewTokens: 40, gamma: 5 });
      expect(tokens).toEqual(want);
      expect(stats.acceptanceRate).toBe(1);
      expect(stats.targetForwards).toBeLessThanOrEqual(Math.ceil(40 / 6));
    }
  });

  it('an unrelated random draft: still the same tokens, acceptance near 0', () => {
    let proposed = 0;
    let accepted = 0;
    for (const prompt of prompts) {
      const want = greedyDecode(target, prompt, { maxNewTokens: 40 });
      const { tokens, stats } = speculativeGreedy(target, unrelated, prompt, { maxNewTokens: 40, gamma: 3 });
      expect(tokens).toEqual(want);
      proposed += stats.proposed;
      accepted += stats.accepted;
    }
    expect(accepted / proposed).toBeLessThan(0.15);
  });

  it('a noisy copy of the target (partial acceptance, rewinds both caches), fixed and adaptive γ', () => {
    const draft = noisyCopy(target, 0.01, 3);
    for (const prompt of prompts) {
      const want = greedyDecode(target, prompt, { maxNewTokens: 60 });
      for (const opts of [{ gamma: 1 }, { gamma: 4 }, { gamma: 7 }, { gamma: 2, adaptive: true, maxGamma: 8 }]) {
        const seen: number[] = [];
        const { tokens, stats } = speculativeGreedy(target, draft, prompt, { maxNewTokens: 60, ...opts, onTokens: (ids) => seen.push(...ids) });
        expect(tokens).toEqual(want);
        expect(seen).toEqual(want);
        expect(stats.tokens).toBe(60);
        expect(stats.acceptanceRate).toBeGreaterThan(0.05);
        expect(stats.acceptanceRate).toBeLessThan(1);
      }
    }
  });

  it("an early-exit draft (the target's first layer) gives the same tokens, and equals a 1-layer model with those weights", () => {
    const draft = truncatedDraft(target, 1);
    const oneLayer = new Llama({ ...targetConfig, nLayer: 1 });
    const sd = target.stateDict();
    oneLayer.loadStateDict(new Map([...oneLayer.stateDict().keys()].map((k) => [k, sd.get(k)!])));
    for (const prompt of prompts) {
      expect(speculativeGreedy(target, draft, prompt, { maxNewTokens: 30, gamma: 3 }).tokens).toEqual(greedyDecode(target, prompt, { maxNewTokens: 30 }));
      expect(greedyDecode(draft, prompt, { maxNewTokens: 20 })).toEqual(greedyDecode(oneLayer, prompt, { maxNewTokens: 20 }));
    }
    expect(() => truncatedDraft(target, 2)).toThrow(/layers must be an integer in \[1, 1\]/);
  });

  it('ngramDrafter proposes what followed the latest earlier match of the longest suffix n-gram', () => {
    const d = ngramDrafter({ maxNgram: 3 });
    expect(d.propose([1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 1, 2, 3], 3)).toEqual([7, 8, 1]);
    expect(d.propose([5, 6, 5], 4)).toEqual([6, 5]);
    expect(d.propose([1, 2, 3], 4)).toEqual([]);
    expect(() => ngramDrafter({ minNgram: 0 })).toThrow(/1 ≤ minNgram ≤ maxNgram/);
  });

  it('with an n-gram (prompt lookup) draft: the same tokens, and repetitive output gets accepted', () => {
    let accepted = 0;
    for (const prompt of [...prompts, [4, 8, 15, 16, 23, 42, 4, 8, 15, 16, 23, 42, 4, 8]]) {
      for (const gamma of [2, 5]) {
        const want = greedyDecode(target, prompt, { maxNewTokens: 80 });
        const { tokens, stats } = speculativeGreedy(target, ngramDrafter(), prompt, { maxNewTokens: 80, gamma });
        expect(tokens).toEqual(want);
        expect(stats.draftForwards).toBe(0);
        accepted += stats.accepted;
      }
    }
    expect(accepted).toBeGreaterThan(0);
  });

  it('stops after a stop id and never exceeds maxNewTokens', () => {
    const prompt = [5, 17, 33];
    const free = greedyDecode(target, prompt, { maxNewTokens: 30 });
    const stopId = free[11]!;
    const want = greedyDecode(target, prompt, { maxNewTokens: 30, stopIds: [stopId] });
    expect(want[want.length - 1]).toBe(stopId);
    expect(speculativeGreedy(target, target, prompt, { maxNewTokens: 30, gamma: 4, stopIds: [stopId] }).tokens).toEqual(want);
    for (const n of [0, 1, 2, 7]) expect(speculativeGreedy(target, target, prompt, { maxNewTokens: n, gamma: 4 }).tokens).toEqual(free.slice(0, n));
  });

  it('works for GPT models', () => {
    const cfg = { vocabSize: V, blockSize: 96, nLayer: 2, nHead: 2, nEmbd: 32, bias: true };
    const gTarget = new GPT(cfg, { generator: new Generator(4) });
    const gDraft = new GPT({ ...cfg, nLayer: 1 }, { generator: new Generator(5) });
    for (const prompt of prompts) {
      const want = greedyDecode(gTarget, prompt, { maxNewTokens: 30 });
      expect(speculativeGreedy(gTarget, gDraft, prompt, { maxNewTokens: 30, gamma: 3 }).tokens).toEqual(want);
      expect(speculativeGreedy(gTarget, gTarget, prompt, { maxNewTokens: 30, gamma: 3 }).stats.acceptanceRate).toBe(1);
    }
  });

  it('refuses mismatched vocabularies, bad γ and over-long requests', () => {
    const other = new Llama({ ...draftConfig, vocabSize: V + 1 });
    expect(() => speculativeGreedy(target, other, [1], { maxNewTokens: 4 })).toThrow(/vocabulary \(98\) differs from the target's \(97\)/);
    expect(() => speculativeGreedy(target, target, [1], { maxNewTokens: 4, gamma: 0 })).toThrow(/gamma must be a positive integer/);
    expect(() => speculativeGreedy(target, target, [1], { maxNewTokens: 200 })).toThrow(/exceeds the context length 160/);
    expect(() => speculativeGreedy(target, target, [], { maxNewTokens: 2 })).toThrow(/prompt is empty/);
  });
});
