/** `weft serve` flags and refusals, without loading a model. */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerServe, runServe, servedModelId } from '../../src/cli/serve.js';

const sink = { write: () => true };
const io = { stdout: sink, stderr: sink };

describe('weft serve: command line', () => {
  it('the model id is the base name of the path unless --model-id is given', () => {
    expect(servedModelId('../shared/data/models/stories260K/stories260K.bin', {})).toBe('stories260K.bin');
    expect(servedModelId('/models/Qwen2-0.5B/', {})).toBe('Qwen2-0.5B');
    expect(servedModelId('/models/x.gguf', { modelId: 'mine' })).toBe('mine');
  });

  it('refuses a missing model path and a missing tokenizer, naming them', async () => {
    await expect(runServe('/no/such/model.gguf', {}, io)).rejects.toThrow(/<model path>: \/no\/such\/model.gguf does not exist/);
    await expect(runServe('.', { tokenizer: '/no/tok.bin' }, io)).rejects.toThrow(/--tokenizer: \/no\/tok.bin does not exist/);
  });

  it('refuses a non-loopback address without an API key before loading anything', async () => {
    const saved = process.env.WEFT_API_KEY;
    delete process.env.WEFT_API_KEY;
    try {
      await expect(runServe('.', { host: '0.0.0.0', port: 0 }, io)).rejects.toThrow(/refusing to serve on 0\.0\.0\.0.*--api-key/);
    } finally {
      if (saved !== undefined) process.env.WEFT_API_KEY = saved;
    }
  });

  it('parses and checks its flags', async () => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    registerServe(program, io);
    await expect(program.parseAsync(['node', 'weft', 'serve', 'm', '--port', 'eighty'])).rejects.toThrow(/expected an integer/);
    await expect(program.parseAsync(['node', 'weft', 'serve', 'm', '--max-batch', '0'])).rejects.toThrow(/positive integer/);
    await expect(program.parseAsync(['node', 'weft', 'serve', 'm', '--timeout', '-1'])).rejects.toThrow(/number > 0/);
    await expect(program.parseAsync(['node', 'weft', 'serve'])).rejects.toThrow(/missing required argument/);
  });
});
