/**
 * `weft train transformer` on the shared Trainer: --resume is exact. 20 straight iterations and
 * 10 + --resume + 10 give the same metrics.jsonl losses and byte-identical weights, with dropout
 * on so the model's generator counts, and with exact-match scoring between segments.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerTrainTransformer } from '../../src/cli/train-transformer.js';
import { loadTrainerState } from '../../src/train/checkpoint.js';
import { MetricsLog } from '../../src/train/metrics.js';
import { Capture, tempDir } from '../train/helpers.js';

function cli(): { run: (...args: string[]) => Promise<void>; stdout: Capture; stderr: Capture } {
  const stdout = new Capture();
  const stderr = new Capture();
  const program = new Command().name('weft').exitOverride();
  registerTrainTransformer(program.command('train'), { stdout, stderr });
  return { run: async (...args) => void (await program.parseAsync(args, { from: 'user' })), stdout, stderr };
}

const TINY = ['--min-length', '1', '--max-length', '3', '--d-model', '16', '--n-head', '2', '--n-layer', '1', '--d-ff', '32', '--batch-size', '8', '--eval-iters', '2', '--eval-examples', '20', '--beam-size', '0'];

describe('weft train transformer --resume', () => {
  it('resumes exactly: 20 straight iterations = 10 + --resume + 10 (metrics.jsonl, model.safetensors)', async () => {
    const dir = tempDir('weft-transformer-');
    const base = [...TINY, '--dropout', '0.1', '--eval-interval', '5', '--lr', '3e-3', '--warmup-iters', '4', '--lr-decay-iters', '20', '--target-accuracy', '1', '--seed', '7', '--json'];
    const straight = join(dir, 'straight');
    await cli().run('train', 'transformer', ...base, '--max-iters', '20', '--out', straight);
    expect(loadTrainerState(straight).iter).toBe(20);
    const split = join(dir, 'split');
    await cli().run('train', 'transformer', ...base, '--max-iters', '10', '--out', split);
    expect(loadTrainerState(split).iter).toBe(10);
    const resumed = cli();
    await resumed.run('train', 'transformer', '--max-iters', '20', '--out', split, '--resume', '--json');
    expect(resumed.stderr.text).toMatch(/resuming .* at iteration 10/);
    const lines = resumed.stdout.text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(lines.filter((r) => 'loss' in r).map((r) => r.iter)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(lines.filter((r) => 'exact_match' in r).map((r) => r.iter)).toEqual([15, 20]);

    const strip = (run: string): string[] => MetricsLog.read(join(run, 'metrics.jsonl')).map((r) => JSON.stringify('loss' in r ? { iter: r.iter, loss: r.loss, lr: r.lr } : r));
    const a = strip(straight);
    expect(a.length).toBe(20 + 5);
    expect(strip(split)).toEqual(a);
    for (const f of ['model.safetensors', 'optimizer.safetensors', 'config.json']) {
      expect(readFileSync(join(split, f)).equals(readFileSync(join(straight, f))), f).toBe(true);
    }
    expect(loadTrainerState(split).rng).toEqual(loadTrainerState(straight).rng);
  }, 30_000);

  it('--resume needs a checkpoint and keeps the model and task', async () => {
    const dir = tempDir('weft-transformer-');
    const out = join(dir, 'run');
    await expect(cli().run('train', 'transformer', '--out', out, '--resume')).rejects.toThrow(/--resume: .* holds no checkpoint/);
    await cli().run('train', 'transformer', ...TINY, '--max-iters', '2', '--eval-interval', '2', '--out', out, '--json');
    await expect(cli().run('train', 'transformer', '--out', out, '--resume', '--max-iters', '4', '--d-model', '32')).rejects.toThrow(/--resume keeps the saved model and task/);
  });
});
