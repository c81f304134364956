/**
 * `weft train llama`: a tiny LLaMA trains on a small corpus through the shared Trainer (the loss
 * falls), its checkpoint is an HF LLaMA directory that `weft generate` drives, --resume continues
 * it, and bad shapes are refused with the flag named.
 */
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runGenerate } from '../../src/cli/generate.js';
import { registerTrainLlama } from '../../src/cli/train-llama.js';
import { Capture, smallCorpus, tempDir } from '../train/helpers.js';

function cli(): { run: (...args: string[]) => Promise<void>; stdout: Capture; stderr: Capture } {
  const stdout = new Capture();
  const stderr = new Capture();
  const program = new Command().name('weft').exitOverride();
  registerTrainLlama(program.command('train'), { stdout, stderr });
  return { run: async (...args) => void (await program.parseAsync(args, { from: 'user' })), stdout, stderr };
}

const TINY = ['--n-layer', '1', '--n-head', '2', '--n-kv-head', '1', '--n-embd', '16', '--block-size', '16', '--batch-size', '4', '--eval-iters', '2'];

describe('weft train llama', () => {
  it('trains (loss falls), saves an HF LLaMA directory that generate loads, and resumes', async () => {
    const dir = tempDir();
    const out = join(dir, 'run');
    const c = cli();
    await c.run('train', 'llama', '--data', smallCorpus(dir), ...TINY, '--max-iters', '30', '--eval-interval', '30', '--lr', '1e-2', '--warmup-iters', '2', '--lr-decay-iters', '30', '--seed', '7', '--out', out, '--json');
    const records = c.stdout.text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const evals = records.filter((r) => 'val_loss' in r);
    expect(evals.map((r) => r.iter)).toEqual([0, 30]);
    expect(evals[1]!.train_loss).toBeLessThan(evals[0]!.train_loss! - 0.3);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ model_type: 'llama', num_attention_heads: 2, num_key_value_heads: 1, hidden_size: 16, max_position_embeddings: 16 });

    const g = new Capture();
    const r = await runGenerate({ model: out, tokenizer: join(out, 'tokenizer.json'), prompt: 'the', maxNewTokens: 5, temperature: 0, json: true }, { stdout: g, stderr: new Capture() });
    expect(r.ids).toHaveLength(5);

    const c2 = cli();
    await c2.run('train', 'llama', ...TINY, '--max-iters', '34', '--eval-interval', '2', '--out', out, '--resume', '--json');
    const resumed = c2.stdout.text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((x) => 'loss' in x);
    expect(resumed.map((x) => x.iter)).toEqual([30, 31, 32, 33]);
  });

  it('refuses shapes LLaMA cannot build, naming the flag', async () => {
    const dir = tempDir();
    await expect(cli().run('train', 'llama', '--data', smallCorpus(dir), '--n-head', '4', '--n-kv-head', '3', '--out', join(dir, 'x'))).rejects.toThrow(/--n-head 4 is not a multiple of --n-kv-head 3/);
    await expect(cli().run('train', 'llama', '--data', smallCorpus(dir), '--n-embd', '12', '--n-head', '4', '--out', join(dir, 'x'))).rejects.toThrow(/must be even/);
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });
});
