import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Generator } from '../../src/tensor/random.js';
import { Llama } from '../../src/models/llama.js';
import { loadModel } from '../../src/infer/load.js';
import { Engine } from '../../src/infer/engine.js';
import { serializeLlama2c } from '../../src/io/llama2c.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'weft-infer-load-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function greedyIds(engine: Engine, promptIds: number[], maxTokens: number): number[] {
  const ids: number[] = [];
  engine.submit({ id: 'g', promptIds, sampling: { maxTokens, temperature: 0, ignoreEos: true } }, (e) => {
    if (e.type === 'token') ids.push(...e.tokenIds);
    else if (e.finishReason !== 'length') throw new Error(`finished with ${e.finishReason}: ${e.error}`);
  });
  while (engine.step());
  return ids;
}

describe('loadModel', () => {
  it('an HF directory: model through the registry, tokenizer.json, EOS from generation_config, tokenizer_config kept', async () => {
    const dir = tempDir();
    const m = new Llama({ vocabSize: 40, hiddenSize: 16, intermediateSize: 32, nLayer: 1, nHead: 2, maxPositionEmbeddings: 64, initializerRange: 0.3 }, { generator: new Generator(2) });
    await m.savePretrained(dir);
    const vocab: Record<string, number> = { '<unk>': 0 };
    for (let i = 1; i < 40; i++) vocab[`w${i}`] = i;
    writeFileSync(
      join(dir, 'tokenizer.json'),
      JSON.stringify({ version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null, pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null, model: { type: 'WordLevel', vocab, unk_token: '<unk>' } }),
    );
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [3, 4], bos_token_id: 1 }));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: '{{ messages }}', eos_token: 'w5' }));
    const loaded = await loadModel(dir);
    expect(loaded.family).toBe('llama');
    expect(loaded.modelId).toBe(dir.split('/').at(-1));
    expect(loaded.eosTokenIds).toEqual([3, 4]);
    expect(loaded.bosTokenId).toBe(1);
    expect(loaded.tokenizerConfig?.chat_template).toBe('{{ messages }}');
    expect(loaded.contextLength).toBe(64);
    expect(loaded.tokenizer.encode('w7 w9')).toEqual([7, 9]);
    const prompt = [7, 9, 11];
    expect(greedyIds(new Engine(loaded), prompt, 8)).toEqual(m.generate(prompt, { maxNewTokens: 8, temperature: 0 }));
    // Without generation_config's EOS, tokenizer_config's eos_token is looked up in the vocabulary.
    rmSync(join(dir, 'generation_config.json'));
    const cfg = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    delete cfg.eos_token_id;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    expect((await loadModel(dir, { modelId: 'mine' })).eosTokenIds).toEqual([5]);
    expect((await loadModel(dir, { modelId: 'mine' })).modelId).toBe('mine');
  });

  it('a llama2.c checkpoint with its tokenizer next to it or given explicitly; clear errors otherwise', async () => {
    const dir = tempDir();
    const m = new Llama({ vocabSize: 32, hiddenSize: 16, intermediateSize: 24, nLayer: 1, nHead: 2, maxPositionEmbeddings: 32, tieWordEmbeddings: true, initializerRange: 0.3 }, { generator: new Generator(3) });
    writeFileSync(join(dir, 'model.bin'), serializeLlama2c(m));
    await expect(loadModel(join(dir, 'model.bin'))).rejects.toThrow(/--tokenizer/);
    await expect(loadModel(join(dir, 'nothing.bin'))).rejects.toThrow(/does not exist/);
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    await expect(loadModel(join(dir, 'notes.txt'))).rejects.toThrow(/not a model this engine loads/);
    await expect(loadModel(dir)).rejects.toThrow(/no config.json/);
  });

  const gguf = '../shared/data/models/llama-2-tiny-random/llama-2-tiny-random.gguf';
  it.skipIf(!existsSync(gguf))('a .gguf file: weights, embedded tokenizer and EOS/BOS from its metadata', async () => {
    const loaded = await loadModel(gguf);
    expect(loaded.family).toBe('llama');
    expect(loaded.eosTokenIds).toEqual([2]);
    expect(loaded.bosTokenId).toBe(1);
    expect(loaded.vocabSize).toBe(32000);
    const prompt = loaded.tokenizer.encode('Hello world');
    expect(prompt[0]).toBe(1);
    const module = loaded.adapter.module as Llama;
    expect(greedyIds(new Engine(loaded, { kvBlocks: 8 }), prompt, 6)).toEqual(module.generate(prompt, { maxNewTokens: 6, temperature: 0 }));
  });
});
