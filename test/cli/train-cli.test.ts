import { Command, CommanderError } from 'commander';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerQuickstart, runQuickstart } from '../../src/cli/quickstart.js';
import { registerSample } from '../../src/cli/sample.js';
import { registerTrain } from '../../src/cli/train.js';
import { loadTrainerState } from '../../src/train/checkpoint.js';
import { Capture, smallCorpus, tempDir } from '../train/helpers.js';

/** A `weft` program wired to captured streams; commander errors throw instead of exiting. */
function cli(): { run: (...args: string[]) => Promise<void>; stdout: Capture; stderr: Capture; commanderErr: Capture } {
  const stdout = new Capture();
  const stderr = new Capture();
  const commanderErr = new Capture();
  const program = new Command().name('weft').exitOverride().configureOutput({ writeOut: (s) => void stdout.write(s), writeErr: (s) => void commanderErr.write(s) });
  const io = { stdout, stderr };
  registerTrain(program, io);
  registerSample(program, io);
  registerQuickstart(program, io);
  return { run: async (...args) => void (await program.parseAsync(args, { from: 'user' })), stdout, stderr, commanderErr };
}

const TINY = ['--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--block-size', '16', '--batch-size', '4', '--eval-iters', '2'];

describe('weft train gpt', () => {
  it('--json prints only JSON lines: {"iter","loss","lr","ms","tokens_per_s"} per iteration, {"iter","train_loss","val_loss"} per evaluation', async () => {
    const dir = tempDir();
    const out = join(dir, 'run');
    const c = cli();
    await c.run('train', 'gpt', '--data', smallCorpus(dir), '--tokenizer', 'char', ...TINY, '--max-iters', '12', '--eval-interval', '5', '--lr', '1e-2', '--min-lr', '1e-3', '--warmup-iters', '2', '--lr-decay-iters', '12', '--dropout', '0', '--weight-decay', '0.1', '--beta2', '0.99', '--grad-clip', '1', '--seed', '1337', '--out', out, '--json');
    const lines = c.stdout.text.trimEnd().split('\n');
    const records = lines.map((l) => JSON.parse(l) as Record<string, number>);
    const iters = records.filter((r) => 'loss' in r);
    const evals = records.filter((r) => 'val_loss' in r);
    expect(iters.length).toBe(12);
    expect(evals.map((r) => r.iter)).toEqual([0, 5, 10, 12]);
    for (const r of iters) {
      expect(Object.keys(r)).toEqual(['iter', 'loss', 'lr', 'ms', 'tokens_per_s']);
      for (const v of Object.values(r)) expect(Number.isFinite(v)).toBe(true);
    }
    for (const r of evals) expect(Object.keys(r)).toEqual(['iter', 'train_loss', 'val_loss']);
    expect(records.length).toBe(16);
    // Human notes went to stderr.
    expect(c.stderr.text).toMatch(/GPT: 0\.00M parameters \(1 layers, 2 heads, 16 embd, block 16, vocab \d+\)/);
    expect(loadTrainerState(out).trainConfig).toMatchObject({ maxIters: 12, lr: 1e-2, beta2: 0.99, seed: 1337, blockSize: 16 });
  });

  it('--resume continues a run with its saved settings; a flag given again overrides (max-iters)', async () => {
    const dir = tempDir();
    const out = join(dir, 'run');
    const c = cli();
    await c.run('train', 'gpt', '--data', smallCorpus(dir), ...TINY, '--max-iters', '6', '--eval-interval', '3', '--out', out);
    expect(c.stdout.text).toMatch(/done at iteration 6: train loss \d\.\d{4}, val loss \d\.\d{4}/);
    await c.run('train', 'gpt', '--out', out, '--resume', '--max-iters', '9');
    expect(c.stdout.text).toMatch(/resuming .* at iteration 6 \(max iters 9\)/);
    expect(loadTrainerState(out).iter).toBe(9);
    expect(loadTrainerState(out).trainConfig.batchSize).toBe(4);
    await expect(c.run('train', 'gpt', '--out', out, '--resume', '--n-layer', '2')).rejects.toThrow(
      /--n-layer 2 differs from the checkpoint's 1: a resumed run keeps its model; drop --n-layer/,
    );
  });

  it('rejects bad flag values naming the flag and what it takes', async () => {
    const c = cli();
    for (const [args, want] of [
      [['--n-layer', 'abc'], /option '--n-layer <n>' argument 'abc' is invalid\. expected a positive integer/],
      [['--n-head', '0'], /'--n-head <n>' argument '0' is invalid\. expected a positive integer/],
      [['--lr', 'fast'], /'--lr <x>' argument 'fast' is invalid\. expected a number > 0/],
      [['--dropout', '1.5'], /'--dropout <p>' argument '1\.5' is invalid\. expected a number in \[0, 1\)/],
      [['--max-iters', '2.5'], /'--max-iters <n>' argument '2\.5' is invalid\. expected an integer ≥ 0/],
      [['--nlayer', '4'], /unknown option '--nlayer'/],
    ] as const) {
      const err = await c.run('train', 'gpt', '--data', 'x.txt', ...args).then(() => null, (e: unknown) => e);
      expect(err, args.join(' ')).toBeInstanceOf(CommanderError);
      expect((err as Error).message).toMatch(want);
    }
  });

  it('explains missing or unusable data and inconsistent settings', async () => {
    const dir = tempDir();
    const data = smallCorpus(dir);
    const out = join(dir, 'run');
    const c = cli();
    const fails = (...args: string[]): Promise<unknown> => c.run('train', 'gpt', ...args).then(() => null, (e: unknown) => e);
    expect(String(await fails('--data', join(dir, 'missing.txt'), '--out', out))).toMatch(/--data .*missing\.txt: no such file; pass the path of a UTF-8 text file \(the bundled corpus is data\/tinyshakespeare\.txt\)/);
    expect(String(await fails('--out', out))).toMatch(/--data: required/);
    expect(String(await fails('--data', data, '--n-embd', '130', '--n-head', '4', '--out', out))).toMatch(/--n-embd 130 is not divisible by --n-head 4/);
    expect(String(await fails('--data', data, '--lr', '1e-4', '--min-lr', '1e-3', '--out', out))).toMatch(/--min-lr: min-lr must not exceed --lr/);
    expect(String(await fails('--data', data, '--warmup-iters', '100', '--lr-decay-iters', '50', '--out', out))).toMatch(/--lr-decay-iters: the decay must end after the warm-up: pass a value ≥ --warmup-iters/);
    expect(String(await fails('--data', data, '--tokenizer', 'bpe', '--out', out))).toMatch(/--tokenizer bpe: only 'char' is available/);
    expect(String(await fails('--data', data, '--block-size', '5000', '--out', out))).toMatch(/val split has 2000 tokens, too few for --block-size 5000/);
    mkdirSync(join(dir, 'empty'));
    expect(String(await fails('--out', join(dir, 'empty'), '--resume'))).toMatch(/--resume: .*empty holds no checkpoint .*drop --resume to start a new run/);
  });
});

describe('weft sample', () => {
  it('--json prints {"ids","text"}: the prompt plus max-new-tokens ids and their text; the seed makes it reproducible', async () => {
    const dir = tempDir();
    const out = join(dir, 'run');
    const c = cli();
    await c.run('train', 'gpt', '--data', smallCorpus(dir), ...TINY, '--max-iters', '5', '--eval-interval', '5', '--out', out, '--json');
    const sample = async (...extra: string[]): Promise<{ ids: number[]; text: string }> => {
      const s = cli();
      await s.run('sample', out, '--prompt', 'ROMEO:', '--max-new-tokens', '30', '--temperature', '0.8', '--top-k', '200', ...extra, '--json');
      const lines = s.stdout.text.trimEnd().split('\n');
      expect(lines.length).toBe(1);
      const r = JSON.parse(lines[0]!) as { ids: number[]; text: string };
      expect(Object.keys(r)).toEqual(['ids', 'text']);
      return r;
    };
    const a = await sample('--seed', '1');
    expect(a.ids.length).toBe(6 + 30);
    expect(a.text.length).toBe(36);
    expect(a.text.startsWith('ROMEO:')).toBe(true);
    expect(await sample('--seed', '1')).toEqual(a);
    expect((await sample('--seed', '2')).text).not.toBe(a.text);

    // Plain output streams the prompt and its continuation.
    const p = cli();
    await p.run('sample', out, '--prompt', 'ROMEO:', '--max-new-tokens', '30', '--seed', '1', '--temperature', '0.8');
    expect(p.stdout.text).toBe(`${a.text}\n`);

    const bad = cli();
    await expect(bad.run('sample', out, '--prompt', 'ROMEO:\u00e9')).rejects.toThrow(/--prompt: .*"é" .*is not in the vocabulary.*use characters from the training text/);
    await expect(bad.run('sample', join(dir, 'nope'))).rejects.toThrow(/no such run directory; train one first/);
    await expect(bad.run('sample', out, '--top-k', '0')).rejects.toThrow(/'--top-k <n>' argument '0' is invalid/);
  });
});

describe('weft quickstart', () => {
  it('trains, reports final losses, prints a sample and the next commands (shortened here)', async () => {
    const dir = tempDir();
    const stdout = new Capture();
    const r = await runQuickstart(
      { out: join(dir, 'qs'), config: { maxIters: 8, evalInterval: 4, evalIters: 2, batchSize: 4, blockSize: 16 }, model: { nLayer: 1, nHead: 2, nEmbd: 16 }, sampleTokens: 20 },
      { stdout, stderr: new Capture() },
    );
    expect(r.train.iter).toBe(8);
    expect(r.sample.text.startsWith('ROMEO:')).toBe(true);
    expect(stdout.text).toMatch(/data: .*tinyshakespeare\.txt: 1,003,854 train \/ 111,540 val tokens/);
    expect(stdout.text).toMatch(/done at iteration 8: train loss \d\.\d{4}, val loss \d\.\d{4}/);
    expect(stdout.text).toContain(r.sample.text);
    expect(stdout.text).toMatch(/Next, try:\n {2}npx weft sample .*qs --prompt "JULIET:"/);
  });
});
