/**
 * savePretrained / fromPretrained: HF-shaped directories (config.json + model.safetensors +
 * generation_config.json), bias=false saved as zero biases plus `weft_bias: false`, clear errors for
 * files that do not fit, and a real HF GPT-2 checkpoint (../shared/data/models/gpt2-fake-tiny, skipped
 * when absent) whose logits must match transformers' (fixture from scripts/fixtures/gpt2_hf.py).
 *
 * With WEFT_HF_CHECK_DIR set, also writes a biased model and its logits there for
 * scripts/fixtures/check_hf_load.py (loads it in transformers and compares).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPT } from '../../src/models/index.js';
import { loadSafetensors, saveSafetensors } from '../../src/io/safetensors.js';
import { Generator, Tensor, logsumexp } from '../../src/tensor/index.js';
import { type ArraySpec, arrayTensor, decodeArray } from '../tensor/fixtures.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const FAKE_TINY = join(HERE, '..', '..', '..', 'shared', 'data', 'models', 'gpt2-fake-tiny');
const cfg = { vocabSize: 13, blockSize: 10, nLayer: 2, nHead: 2, nEmbd: 8 };

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-gpt-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function sampleIds(): Tensor {
  return Tensor.fromArray(Int32Array.from([1, 5, 2, 12, 0, 7, 3, 3, 9, 4, 11, 6]), [2, 6], 'i32');
}

/** A model with every tensor random (biases and LayerNorm affines too), so a mix-up would show. */
function randomModel(bias: boolean, seed = 1): GPT {
  const g = new Generator(seed);
  const m = new GPT({ ...cfg, bias }, { generator: g });
  for (const [, p] of m.namedParameters()) p.storage.data.set(p.toArray().map(() => 0.3 * g.normal()));
  return m;
}

async function copyDir(model: GPT, name: string): Promise<string> {
  const dir = join(root, name);
  await model.savePretrained(dir);
  return dir;
}

describe('savePretrained / fromPretrained', () => {
  it('writes an HF GPT-2 directory and loads it back exactly (with biases)', async () => {
    const m = randomModel(true);
    const dir = await copyDir(m, 'biased');
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_embd: 8, n_layer: 2, weft_bias: true });
    expect(JSON.parse(await readFile(join(dir, 'generation_config.json'), 'utf8'))).toBeTypeOf('object');
    const file = await loadSafetensors(join(dir, 'model.safetensors'));
    expect(file.metadata).toEqual({ format: 'pt' });
    expect([...file.tensors.keys()].sort()).toEqual(m.namedParameters().map(([n]) => n).sort());
    const back = await GPT.fromPretrained(dir);
    expect(back.config).toEqual(m.config);
    for (const [name, p] of back.namedParameters()) expect(p.toArray(), name).toEqual(new Map(m.namedParameters()).get(name)!.toArray());
    expect(back.forward(sampleIds()).logits.toArray()).toEqual(m.forward(sampleIds()).logits.toArray());
  });

  it('bias=false: saves zero biases (transformers needs them) and weft_bias=false, loads back bias-free', async () => {
    const m = randomModel(false, 2);
    const dir = await copyDir(m, 'plain');
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.weft_bias).toBe(false);
    const file = await loadSafetensors(join(dir, 'model.safetensors'));
    const biases = [...file.tensors.keys()].filter((k) => k.endsWith('.bias'));
    expect(biases.length).toBe(2 * 6 + 1);
    for (const k of biases) expect(file.tensors.get(k)!.toArray().every((v) => v === 0), k).toBe(true);
    expect(file.tensors.get('transformer.h.0.attn.c_attn.bias')!.shape).toEqual([24]);
    const back = await GPT.fromPretrained(dir);
    expect(back.config.bias).toBe(false);
    expect(back.namedParameters().some(([n]) => n.endsWith('.bias'))).toBe(false);
    expect(back.forward(sampleIds()).logits.toArray()).toEqual(m.forward(sampleIds()).logits.toArray());
  });

  it('refuses files that do not fit, naming the tensors', async () => {
    const m = randomModel(true, 3);
    const good = m.hfStateDict();
    const variant = async (name: string, edit: (sd: Map<string, Tensor>) => void, config?: (c: Record<string, unknown>) => void): Promise<string> => {
      const dir = await copyDir(m, name);
      const sd = new Map(good);
      edit(sd);
      await saveSafetensors(join(dir, 'model.safetensors'), sd, { format: 'pt' });
      if (config) {
        const c = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
        config(c);
        await writeFile(join(dir, 'config.json'), JSON.stringify(c));
      }
      return dir;
    };
    const missing = await variant('missing', (sd) => {
      sd.delete('transformer.h.1.mlp.c_fc.weight');
      sd.delete('transformer.ln_f.bias');
    });
    await expect(GPT.fromPretrained(missing)).rejects.toThrow(/missing tensors: transformer\.h\.1\.mlp\.c_fc\.weight, transformer\.ln_f\.bias/);
    const shape = await variant('shape', (sd) => sd.set('transformer.wpe.weight', Tensor.zeros([9, 8])));
    await expect(GPT.fromPretrained(shape)).rejects.toThrow(/transformer\.wpe\.weight has shape \[9, 8\], expected \[10, 8\]/);
    const extra = await variant('extra', (sd) => sd.set('transformer.h.2.ln_1.weight', Tensor.zeros([8])));
    await expect(GPT.fromPretrained(extra)).rejects.toThrow(/unexpected tensors: transformer\.h\.2\.ln_1\.weight/);
    const untied = await variant('untied', (sd) => sd.set('lm_head.weight', Tensor.zeros([13, 8])));
    await expect(GPT.fromPretrained(untied)).rejects.toThrow(/lm_head\.weight differs from transformer\.wte\.weight/);
    const biasNonzero = await variant(
      'bias-nonzero',
      () => undefined,
      (c) => (c.weft_bias = false),
    );
    await expect(GPT.fromPretrained(biasNonzero)).rejects.toThrow(/ln_1\.bias is nonzero but config\.json says weft_bias=false/);
    const badAct = await variant('bad-act', () => undefined, (c) => (c.activation_function = 'swish'));
    await expect(GPT.fromPretrained(badAct)).rejects.toThrow(/activation_function 'swish'/);
    await expect(GPT.fromPretrained(join(root, 'nowhere'))).rejects.toThrow(/cannot read .*config\.json/);
    const badJson = join(root, 'bad-json');
    await mkdir(badJson, { recursive: true });
    await writeFile(join(badJson, 'config.json'), '{"n_embd": ');
    await expect(GPT.fromPretrained(badJson)).rejects.toThrow(/config\.json is not valid JSON/);
  });

  it('accepts what HF files carry besides the weights: a tied lm_head.weight, old attn.bias buffers, no prefix', async () => {
    const m = randomModel(true, 4);
    const good = m.hfStateDict();
    const dir = await copyDir(m, 'hf-extras');
    const sd = new Map(good);
    sd.set('lm_head.weight', good.get('transformer.wte.weight')!);
    sd.set('transformer.h.0.attn.bias', Tensor.full([1, 1, 10, 10], 1));
    sd.set('transformer.h.0.attn.masked_bias', Tensor.full([], -1e4));
    await saveSafetensors(join(dir, 'model.safetensors'), sd, { format: 'pt' });
    const back = await GPT.fromPretrained(dir);
    expect(back.forward(sampleIds()).logits.toArray()).toEqual(m.forward(sampleIds()).logits.toArray());
    // GPT2Model checkpoints: names without `transformer.`.
    const bare = new Map([...good].map(([k, t]) => [k.replace(/^transformer\./, ''), t]));
    await saveSafetensors(join(dir, 'model.safetensors'), bare, { format: 'pt' });
    const back2 = await GPT.fromPretrained(dir);
    expect(back2.forward(sampleIds()).logits.toArray()).toEqual(m.forward(sampleIds()).logits.toArray());
  });

  it.skipIf(!existsSync(FAKE_TINY))('loads a real HF GPT-2 checkpoint (gpt2-fake-tiny) and matches transformers', async () => {
    const fx = JSON.parse(readFileSync(join(HERE, '..', 'fixtures', 'gpt2', 'fake-tiny.json'), 'utf8')) as {
      ids: ArraySpec;
      logits_first_256: ArraySpec;
      logsumexp: ArraySpec;
    };
    const model = await GPT.fromPretrained(FAKE_TINY);
    expect(model.config).toMatchObject({ vocabSize: 50257, blockSize: 1024, nEmbd: 2, nLayer: 1, nHead: 1, activation: 'gelu_new', bias: true });
    model.eval(); // the checkpoint's config has dropout 0.1
    const logits = model.forward(arrayTensor(fx.ids)).logits;
    const first = logits.narrow(2, 0, 256).toArray();
    const lse = logsumexp(logits, -1).toArray();
    const close = (got: number[], want: Float32Array | Int32Array): boolean =>
      got.every((v, i) => Math.abs(v - want[i]!) <= 1e-5 + 1e-4 * Math.abs(want[i]!));
    expect(close(first, decodeArray(fx.logits_first_256))).toBe(true);
    expect(close(lse, decodeArray(fx.logsumexp))).toBe(true);
  });

  it.skipIf(process.env.WEFT_HF_CHECK_DIR === undefined)('writes a biased model and its logits for check_hf_load.py', async () => {
    const out = process.env.WEFT_HF_CHECK_DIR!;
    const m = new GPT({ vocabSize: 65, blockSize: 32, nLayer: 3, nHead: 4, nEmbd: 32, bias: true, activation: 'gelu' }, { generator: new Generator(7) });
    const g = new Generator(8);
    // Larger than GPT-2's init so that every term moves the logits.
    for (const [, p] of m.namedParameters()) p.storage.data.set(p.toArray().map((v) => v + 0.2 * g.normal()));
    await m.savePretrained(join(out, 'model'));
    const ids = [Array.from({ length: 32 }, () => g.int(0, 65)), Array.from({ length: 32 }, () => g.int(0, 65))];
    const logits = m.forward(Tensor.fromArray(Int32Array.from(ids.flat()), [2, 32], 'i32')).logits;
    await writeFile(join(out, 'logits.json'), JSON.stringify({ ids, shape: logits.shape, logits: logits.toArray() }));
  });
});
