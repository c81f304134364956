import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runExportGGUF } from '../../src/cli/export.js';
import { loadLlamaGGUF } from '../../src/io/llama-gguf.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { tinyLlama, tinyTokenizer } from './gguf-export.helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-export-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('weft export gguf', () => {
  it('reads an HF directory (config, safetensors, tokenizer.json) and writes a GGUF our loader reads back', async () => {
    const model = tinyLlama(21);
    const modelDir = join(dir, 'model');
    await model.savePretrained(modelDir);
    writeFileSync(join(modelDir, 'tokenizer.json'), JSON.stringify(tinyTokenizer().toJSON()));
    const out = join(dir, 'model.gguf');
    const r = await runExportGGUF(modelDir, { out, type: 'f32' });
    expect(r).toMatchObject({ out, type: 'f32' });
    expect(r.bytes).toBeGreaterThan(model.numParameters() * 4);
    const ids = Tensor.fromArray(Int32Array.from([1, 2, 3, 300]), [1, 4], 'i32');
    expect(loadLlamaGGUF(out).logits(ids).f32()).toEqual(model.logits(ids).f32());
    await expect(runExportGGUF(modelDir, { out, type: 'q5_k' })).rejects.toThrow(/--type must be one of f32, f16, q8_0, q4_0/);
    await expect(runExportGGUF(join(dir, 'nope'), { out, type: 'f32' })).rejects.toThrow(/not a model directory/);
  });
});
