import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModelWeights, loadSafetensorsSync, saveSafetensorsSync } from '../../src/io/safetensors.js';
import { GPT } from '../../src/models/gpt.js';
import { loadPretrained } from '../../src/models/registry.js';
import { Generator, tensor } from '../../src/tensor/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-sharded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sharded model.safetensors.index.json', () => {
  it('a model split into shards loads to the same logits as the single file', async () => {
    const model = new GPT({ vocabSize: 17, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 8, bias: true }, { generator: new Generator(3) });
    await model.savePretrained(dir);
    const all = loadSafetensorsSync(join(dir, 'model.safetensors')).tensors;
    const names = [...all.keys()];
    const half = Math.ceil(names.length / 2);
    const shards: [string, string[]][] = [
      ['model-00001-of-00002.safetensors', names.slice(0, half)],
      ['model-00002-of-00002.safetensors', names.slice(half)],
    ];
    const weightMap: Record<string, string> = {};
    for (const [file, part] of shards) {
      saveSafetensorsSync(join(dir, file), new Map(part.map((n) => [n, all.get(n)!] as [string, Tensor])));
      for (const n of part) weightMap[n] = file;
    }
    rmSync(join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));

    const { tensors, source } = await loadModelWeights(dir);
    expect(source).toMatch(/index\.json$/);
    expect([...tensors.keys()].sort()).toEqual([...names].sort());
    const loaded = (await loadPretrained(dir)) as GPT;
    const ids = tensor([[1, 2, 3, 4]], { dtype: 'i32' });
    expect(loaded.eval().forward(ids).logits.toArray()).toEqual(model.eval().forward(ids).logits.toArray());
  });

  it('a broken index names the file and what is missing', async () => {
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {} }));
    await expect(loadModelWeights(dir)).rejects.toThrow(/index\.json: no "weight_map"/);
  });
});
