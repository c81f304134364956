/**
 * BERT directories: savePretrained → fromPretrained round-trips exactly (config and every tensor),
 * HF-style checkpoint variants load (bare BertModel names, the position_ids buffer, an untied decoder
 * is refused), and config.json validation refuses what the model cannot reproduce.
 *
 * With WEFT_HF_CHECK_DIR set, also writes a model and its logits there for
 * scripts/fixtures/check_bert_hf_load.py (loads it in transformers and compares).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BertForPreTraining, bertConfigFromHF, bertConfigToHF } from '../../src/models/bert.js';
import { loadSafetensors, saveSafetensors } from '../../src/io/safetensors.js';
import { Generator, Tensor } from '../../src/tensor/index.js';

const cfg = { vocabSize: 30, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 16, maxPositionEmbeddings: 12 };

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-bert-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function perturbed(config: typeof cfg & { hiddenAct?: 'gelu' | 'gelu_new' | 'relu' }, seed: number): BertForPreTraining {
  const m = new BertForPreTraining(config, { generator: new Generator(seed) });
  const g = new Generator(seed + 1);
  // Larger than BERT's init (and nonzero biases and LayerNorm affines) so that every term moves the logits.
  for (const [, p] of m.namedParameters()) p.storage.data.set(p.toArray().map((v) => v + 0.2 * g.normal()));
  return m.eval();
}

function inputs(g: Generator, B: number, T: number, V: number): { ids: Tensor; types: Tensor; mask: Tensor; raw: { ids: number[][]; types: number[][]; mask: number[][] } } {
  const ids = Array.from({ length: B }, () => Array.from({ length: T }, () => g.int(0, V)));
  const types = Array.from({ length: B }, () => Array.from({ length: T }, (_, t) => (t >= T / 2 ? 1 : 0)));
  const mask = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b === 1 && t >= T - 2 ? 0 : 1)));
  const t = (a: number[][]): Tensor => Tensor.fromArray(Int32Array.from(a.flat()), [B, T], 'i32');
  return { ids: t(ids), types: t(types), mask: t(mask), raw: { ids, types, mask } };
}

describe('BERT savePretrained / fromPretrained', () => {
  it('round-trips config and weights exactly (same logits)', async () => {
    const m = perturbed({ ...cfg, hiddenAct: 'gelu_new' }, 3);
    const dir = join(root, 'rt');
    await m.savePretrained(dir);
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.model_type).toBe('bert');
    expect(config.architectures).toEqual(['BertForPreTraining']);
    const back = await BertForPreTraining.fromPretrained(dir);
    expect(back.config).toEqual(m.config);
    const { ids, types, mask } = inputs(new Generator(5), 2, 10, cfg.vocabSize);
    const a = m.forward(ids, { tokenTypeIds: types, attentionMask: mask });
    const b = back.forward(ids, { tokenTypeIds: types, attentionMask: mask });
    expect(b.mlmLogits.toArray()).toEqual(a.mlmLogits.toArray());
    expect(b.nspLogits!.toArray()).toEqual(a.nspLogits!.toArray());
  });

  it('loads a bare BertModel checkpoint (no bert. prefix, old position_ids buffer) and a decoder.* alias', async () => {
    const m = perturbed(cfg, 11);
    const dir = join(root, 'bare');
    await m.savePretrained(dir);
    const { tensors } = await loadSafetensors(join(dir, 'model.safetensors'));
    const renamed = new Map<string, Tensor>();
    for (const [k, t] of tensors) renamed.set(k.startsWith('bert.') ? k.slice(5) : k, t);
    renamed.set('embeddings.position_ids', Tensor.fromArray(Int32Array.from({ length: 12 }, (_, i) => i), [1, 12], 'i32'));
    renamed.set('cls.predictions.decoder.weight', tensors.get('bert.embeddings.word_embeddings.weight')!);
    await saveSafetensors(join(dir, 'model.safetensors'), renamed);
    const back = await BertForPreTraining.fromPretrained(dir);
    const { ids } = inputs(new Generator(6), 2, 6, cfg.vocabSize);
    expect(back.forward(ids).mlmLogits.toArray()).toEqual(m.forward(ids).mlmLogits.toArray());

    // A decoder that is not the word embeddings cannot be represented by this (tied) model.
    renamed.set('cls.predictions.decoder.weight', Tensor.zeros([cfg.vocabSize, cfg.hiddenSize]));
    await saveSafetensors(join(dir, 'model.safetensors'), renamed);
    await expect(BertForPreTraining.fromPretrained(dir)).rejects.toThrow(/cls\.predictions\.decoder\.weight differs from bert\.embeddings\.word_embeddings\.weight/);
  });

  it('config.json: HF fields map both ways; unsupported variants are refused by name', () => {
    const m = new BertForPreTraining(cfg);
    expect(bertConfigFromHF(bertConfigToHF(m.config))).toEqual(m.config);
    const hf = bertConfigToHF(m.config);
    expect(() => bertConfigFromHF({ ...hf, position_embedding_type: 'relative_key' })).toThrow(/position_embedding_type 'relative_key'/);
    expect(() => bertConfigFromHF({ ...hf, hidden_act: 'swish' })).toThrow(/hidden_act 'swish'/);
    expect(() => bertConfigFromHF({ ...hf, is_decoder: true })).toThrow(/is_decoder/);
    expect(() => bertConfigFromHF({ ...hf, num_attention_heads: 3 })).toThrow(/divisible/);
  });

  it('rejects ids outside the vocabulary and segment ids outside type_vocab_size', () => {
    const m = new BertForPreTraining(cfg);
    const bad = Tensor.fromArray(Int32Array.from([1, 30]), [1, 2], 'i32');
    expect(() => m.forward(bad)).toThrow(/ids value 30 at flat position 1 is outside \[0, 30\)/);
    const ids = Tensor.fromArray(Int32Array.from([1, 2]), [1, 2], 'i32');
    expect(() => m.forward(ids, { tokenTypeIds: Tensor.fromArray(Int32Array.from([0, 2]), [1, 2], 'i32') })).toThrow(/tokenTypeIds value 2/);
  });

  it.skipIf(process.env.WEFT_HF_CHECK_DIR === undefined)('writes a model and its logits for check_bert_hf_load.py', async () => {
    const out = process.env.WEFT_HF_CHECK_DIR!;
    const m = perturbed({ vocabSize: 50, hiddenSize: 32, numHiddenLayers: 3, numAttentionHeads: 4, intermediateSize: 64, maxPositionEmbeddings: 32 }, 7);
    await m.savePretrained(join(out, 'model'));
    const { ids, types, mask, raw } = inputs(new Generator(8), 2, 24, 50);
    const o = m.forward(ids, { tokenTypeIds: types, attentionMask: mask });
    await writeFile(
      join(out, 'logits.json'),
      JSON.stringify({ ids: raw.ids, token_type_ids: raw.types, attention_mask: raw.mask, mlm_shape: o.mlmLogits.shape, mlm_logits: o.mlmLogits.toArray(), nsp_logits: o.nspLogits!.toArray() }),
    );
  });
});
