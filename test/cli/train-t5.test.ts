/**
 * `weft train t5`: span-corruption pre-training through the shared Trainer. A tiny T5 on a small
 * corpus must lower its validation loss well below the start; --json prints only JSON records; the
 * run directory holds a T5 that fromPretrained loads and --resume continues; bad flags fail clearly.
 */
import { Command } from 'commander';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerTrainT5 } from '../../src/cli/train-t5.js';
import { T5ForConditionalGeneration } from '../../src/models/t5.js';
import { loadTrainerState } from '../../src/train/checkpoint.js';
import { Capture, smallCorpus, tempDir } from '../train/helpers.js';

function cli(): { run: (...args: string[]) => Promise<void>; stdout: Capture; stderr: Capture } {
  const stdout = new Capture();
  const stderr = new Capture();
  const program = new Command().name('weft').exitOverride().configureOutput({ writeOut: (s) => void stdout.write(s), writeErr: (s) => void stderr.write(s) });
  const train = program.command('train');
  registerTrainT5(train, { stdout, stderr });
  return { run: async (...args) => void (await program.parseAsync(args, { from: 'user' })), stdout, stderr };
}

const TINY = ['--d-model', '32', '--d-kv', '8', '--d-ff', '64', '--num-layers', '1', '--num-heads', '2', '--block-size', '24', '--batch-size', '8', '--eval-iters', '4'];

describe('weft train t5', () => {
  it('learns span corruption (val loss falls), prints JSON records, saves a loadable T5; --resume continues', async () => {
    const dir = tempDir();
    const out = join(dir, 'run');
    const c = cli();
    await c.run('train', 't5', '--data', smallCorpus(dir), ...TINY, '--max-iters', '80', '--eval-interval', '40', '--lr', '1e-2', '--min-lr', '1e-3', '--warmup-iters', '5', '--lr-decay-iters', '80', '--out', out, '--json');
    const records = c.stdout.text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const evals = records.filter((r) => 'val_loss' in r);
    expect(evals.map((r) => r.iter)).toEqual([0, 40, 80]);
    expect(records.filter((r) => 'loss' in r).length).toBe(80);
    const [first, , last] = evals as [Record<string, number>, Record<string, number>, Record<string, number>];
    // From ~ln(vocab) at the start to well below it: the model learned the sentinel/EOS structure and text statistics.
    expect(first.val_loss).toBeGreaterThan(3.5);
    // Uniform guessing over the ~160-id vocabulary would be ln 160 ≈ 5.1.
    expect(last.val_loss).toBeLessThan(3.5);
    expect(c.stderr.text).toMatch(/T5 v1\.1 \(gated GELU\): .* \(1\+1 layers, 2 heads × 8, d_model 32, d_ff 64, vocab \d+\)/);
    expect(c.stderr.text).toMatch(/span corruption: 26 characters → 24 input \/ 6 target tokens/);
    const model = await T5ForConditionalGeneration.fromPretrained(out);
    expect(model.config.gated).toBe(true);

    await c.run('train', 't5', '--out', out, '--resume', '--max-iters', '85', '--eval-interval', '40');
    expect(loadTrainerState(out).iter).toBe(85);
    expect(c.stdout.text).toMatch(/predicted: ".*"\ntarget: {4}"<extra_id_0>/);
  }, 60_000);

  it('rejects a bad variant and missing data', async () => {
    const c = cli();
    await expect(c.run('train', 't5', '--variant', 'v2')).rejects.toThrow();
    expect(c.stderr.text).toMatch(/expected v1\.0 .* or v1\.1/);
    await expect(c.run('train', 't5', '--out', join(tempDir(), 'x'))).rejects.toThrow(/--data: required/);
  });
});
