/**
 * `weft train transformer` and `weft train palm` on tiny, quick configurations (the full
 * transformer run that reaches ≥ 99% held-out exact match is the command's default; see its docs).
 */
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerTrainPaLM } from '../../src/cli/train-palm.js';
import { registerTrainTransformer } from '../../src/cli/train-transformer.js';
import { PaLM } from '../../src/models/palm.js';
import { Transformer } from '../../src/models/transformer.js';
import { loadPretrained } from '../../src/models/registry.js';
import { loadTrainerState } from '../../src/train/checkpoint.js';
import { encodeBatch, isHeldOut } from '../../src/train/train-transformer.js';
import { Capture, smallCorpus, tempDir } from '../train/helpers.js';

function cli(): { run: (...args: string[]) => Promise<void>; stdout: Capture; stderr: Capture } {
  const stdout = new Capture();
  const stderr = new Capture();
  const program = new Command().name('weft').exitOverride().configureOutput({ writeOut: (s) => void stdout.write(s), writeErr: (s) => void stderr.write(s) });
  const train = program.command('train');
  registerTrainTransformer(train, { stdout, stderr });
  registerTrainPaLM(train, { stdout, stderr });
  return { run: async (...args) => void (await program.parseAsync(args, { from: 'user' })), stdout, stderr };
}

describe('weft train transformer', () => {
  it('learns to reverse short digit strings (held-out exact match), saves a loadable model and result.json', async () => {
    const out = join(tempDir(), 'run');
    const c = cli();
    await c.run('train', 'transformer', '--min-length', '1', '--max-length', '3', '--d-model', '32', '--n-head', '2', '--n-layer', '1', '--d-ff', '64', '--batch-size', '32', '--max-iters', '600', '--lr', '3e-3', '--warmup-iters', '20', '--eval-interval', '100', '--eval-examples', '100', '--beam-size', '2', '--target-accuracy', '0.9', '--out', out, '--json');
    const lines = c.stdout.text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, number | boolean | null>);
    const evals = lines.filter((r) => 'exact_match' in r);
    expect(evals.length).toBeGreaterThan(0);
    for (const r of evals) expect(Object.keys(r)).toEqual(['iter', 'exact_match', 'seconds']);
    const done = lines[lines.length - 1]!;
    expect(done.done).toBe(true);
    // Far above chance (a 1–3 digit answer guessed right is ≤ 10%): it generalises to unseen strings.
    expect(done.greedy_exact_match).toBeGreaterThanOrEqual(0.9);
    expect(done.beam_exact_match).toBeGreaterThanOrEqual(0.8);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { task: string; greedyExactMatch: number };
    expect(result.task).toBe('reverse');
    expect(result.greedyExactMatch).toBe(done.greedy_exact_match);
    const model = await loadPretrained(out);
    expect(model).toBeInstanceOf(Transformer);
    expect((model as Transformer).greedyDecode(encodeBatch('reverse', [[4, 0, 7]], 3).src)[0]).toEqual([7 + 3, 0 + 3, 4 + 3]);
  }, 60_000);

  it('held-out strings are a fixed tenth never used for training; bad flags are named', async () => {
    let held = 0;
    for (let n = 0; n < 1000; n++) if (isHeldOut(String(n).padStart(3, '0').split('').map(Number))) held++;
    expect(held).toBeGreaterThan(60);
    expect(held).toBeLessThan(140);
    const c = cli();
    await expect(c.run('train', 'transformer', '--task', 'shuffle')).rejects.toThrow(/--task shuffle: expected 'reverse' or 'sort'/);
    await expect(c.run('train', 'transformer', '--d-model', '30', '--n-head', '4')).rejects.toThrow(/--d-model 30 must be even and divisible by --n-head 4/);
  });
});

describe('weft train palm', () => {
  it('trains a tiny PaLM on text with the GPT trainer (loss falls) and leaves a loadable checkpoint', async () => {
    const dir = tempDir();
    const out = join(dir, 'run');
    const c = cli();
    await c.run('train', 'palm', '--data', smallCorpus(dir), '--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--block-size', '16', '--batch-size', '8', '--max-iters', '60', '--eval-interval', '30', '--eval-iters', '4', '--lr', '1e-2', '--min-lr', '1e-3', '--warmup-iters', '5', '--lr-decay-iters', '60', '--out', out, '--json');
    const records = c.stdout.text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const evals = records.filter((r) => 'val_loss' in r);
    expect(evals.map((r) => r.iter)).toEqual([0, 30, 60]);
    expect(evals[2]!.train_loss).toBeLessThan(evals[0]!.train_loss! - 0.5);
    expect(c.stderr.text).toMatch(/PaLM: 0\.\d\dM parameters \(1 parallel layers, 2 query heads \/ 1 key-value head, 16 embd/);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
    expect(await loadPretrained(out)).toBeInstanceOf(PaLM);
    // --resume reloads the PaLM checkpoint and continues with the saved settings.
    await c.run('train', 'palm', '--out', out, '--resume', '--max-iters', '70', '--lr-decay-iters', '70');
    expect(c.stdout.text).toMatch(/done at iteration 70: train loss \d\.\d{4}, val loss \d\.\d{4}/);
    expect(loadTrainerState(out).iter).toBe(70);
    await expect(c.run('train', 'palm', '--out', out, '--resume', '--n-embd', '32')).rejects.toThrow(/--n-embd 32 differs from the checkpoint's 16/);
  }, 60_000);
});
