import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runSample } from '../../src/cli/sample.js';
import { GPT } from '../../src/models/gpt.js';
import { Generator } from '../../src/tensor/index.js';
import { trainTokenizer } from '../../src/tokenizers/trainers/index.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-sample-bpe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sink = { write: (): boolean => true };

describe('weft sample on a run whose tokenizer.json is a byte-level BPE (e.g. trained from BPE shards)', () => {
  it('loads the HF tokenizer, encodes the prompt with it and decodes the continuation', async () => {
    const text = readFileSync(new URL('../../data/tinyshakespeare.txt', import.meta.url), 'utf8').slice(0, 20_000);
    const tokenizer = trainTokenizer([text], { type: 'bpe', vocabSize: 300 });
    const model = new GPT({ vocabSize: tokenizer.vocabSize, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16 }, { generator: new Generator(1) });
    await model.savePretrained(dir);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer.toJSON()));

    const result = await runSample(dir, { prompt: 'ROMEO: good', maxNewTokens: 8, json: true, seed: 1 }, { stdout: sink, stderr: sink });
    const promptIds = tokenizer.encode('ROMEO: good');
    expect(result.ids.slice(0, promptIds.length)).toEqual(promptIds);
    expect(result.ids.length).toBe(promptIds.length + 8);
    expect(result.text).toBe(tokenizer.decode(result.ids));
    expect(result.text.startsWith('ROMEO: good')).toBe(true);
  });
});
