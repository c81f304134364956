/** Contrastive fine-tuning: the InfoNCE loss by hand, learning on pairs, SimCSE, and the saved directory. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SentenceTransformer } from '../../src/rag/embeddings.js';
import { inBatchContrastiveLoss, trainEmbedder } from '../../src/rag/train-embedder.js';
import { BertForPreTraining } from '../../src/models/bert.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { bertTokenizerFromVocab } from '../../src/tokenizers/formats/bert-vocab.js';

const root = mkdtempSync(join(tmpdir(), 'weft-rag-embtrain-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const WORDS = ['cat', 'dog', 'fish', 'bird', 'paris', 'tokyo', 'rome', 'oslo', 'red', 'blue', 'green', 'gold', 'meows', 'barks', 'swims', 'sings', 'france', 'japan', 'italy', 'norway', 'rose', 'sky', 'grass', 'coin', 'what', 'does', 'the', 'a', 'is', 'in', 'capital', 'of', 'color'];

function tinyEmbedder(dropout: number): SentenceTransformer {
  const vocab = join(root, `vocab-${dropout}.txt`);
  writeFileSync(vocab, ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...WORDS].join('\n') + '\n');
  const tok = bertTokenizerFromVocab(vocab);
  const model = new BertForPreTraining(
    { vocabSize: 5 + WORDS.length, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 64, maxPositionEmbeddings: 32, hiddenDropoutProb: dropout, attentionProbsDropoutProb: dropout, pooler: false, nspHead: false },
    { generator: new Generator(7) },
  );
  return new SentenceTransformer(model.eval(), tok, { transformerDir: root, pooling: 'mean', normalize: true, maxSeqLength: 32, doLowerCase: false, note: 'test' }, { id: 'tiny' });
}

describe('inBatchContrastiveLoss', () => {
  it('is cross-entropy over similarities / τ with the diagonal as targets (hand-computed)', () => {
    const a = Tensor.fromArray(new Float32Array([1, 0, 0, 1]), [2, 2]);
    const b = Tensor.fromArray(new Float32Array([1, 0, 0.6, 0.8]), [2, 2]);
    // logits = a·bᵀ / 0.5 = [[2, 1.2], [0, 1.6]]
    const want = (-2 + Math.log(Math.exp(2) + Math.exp(1.2)) + (-1.6 + Math.log(1 + Math.exp(1.6)))) / 2;
    expect(inBatchContrastiveLoss(a, b, 0.5).item()).toBeCloseTo(want, 5);
  });
});

describe('trainEmbedder', () => {
  const PAIRS = [
    ['what does the cat', 'cat meows'],
    ['what does the dog', 'dog barks'],
    ['what does the fish', 'fish swims'],
    ['what does the bird', 'bird sings'],
    ['capital of france', 'paris'],
    ['capital of japan', 'tokyo'],
    ['capital of italy', 'rome'],
    ['capital of norway', 'oslo'],
  ].map(([anchor, positive]) => ({ anchor: anchor!, positive: positive! }));

  async function accuracy(st: SentenceTransformer): Promise<number> {
    const a = await st.embed(PAIRS.map((p) => p.anchor));
    const p = await st.embed(PAIRS.map((x) => x.positive));
    let right = 0;
    a.forEach((v, i) => {
      const sims = p.map((w) => w.reduce((s, x, j) => s + x * v[j]!, 0));
      if (sims.indexOf(Math.max(...sims)) === i) right++;
    });
    return right / PAIRS.length;
  }

  it('learns to match anchors to positives with in-batch negatives, and saves a loadable directory', async () => {
    const st = tinyEmbedder(0);
    const before = await accuracy(st);
    const out = join(root, 'pairs-model');
    const r = await trainEmbedder({ model: st, pairs: PAIRS, outDir: out, steps: 60, batchSize: 8, lr: 3e-3, warmupSteps: 5, seed: 3 });
    expect(r.lastLoss).toBeLessThan(r.firstLoss * 0.3);
    const after = await accuracy(st);
    expect(after).toBe(1);
    expect(after).toBeGreaterThan(before);
    const reloaded = await SentenceTransformer.load(out);
    expect(reloaded.spec.pooling).toBe('mean');
    const [x] = await st.embed(['capital of japan']);
    const [y] = await reloaded.embed(['capital of japan']);
    for (let i = 0; i < x!.length; i++) expect(y![i]).toBeCloseTo(x![i]!, 5);
  });

  it('SimCSE: dropout views of the same sentence become each other\'s positives', async () => {
    const st = tinyEmbedder(0.1);
    const texts = PAIRS.flatMap((p) => [p.anchor, p.positive]);
    const r = await trainEmbedder({ model: st, texts, outDir: join(root, 'simcse'), steps: 40, batchSize: 8, lr: 3e-3, warmupSteps: 4, seed: 5 });
    // Untrained, the two dropout views are already closer than other sentences (loss < ln 8 ≈ 2.08); training must cut it well down.
    expect(r.firstLoss).toBeGreaterThan(0.3);
    expect(r.firstLoss).toBeLessThan(Math.log(8));
    expect(r.lastLoss).toBeLessThan(r.firstLoss / 2);
    await expect(trainEmbedder({ model: tinyEmbedder(0), texts, outDir: join(root, 'x'), steps: 1 })).rejects.toThrow(/SimCSE needs dropout/);
  });
});
