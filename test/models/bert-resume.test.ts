/**
 * `weft train bert` on the shared Trainer: its run directory follows `weft train gpt`'s conventions
 * (metrics.jsonl with one record per iteration and evaluation, a verified checkpoint with the
 * WordPiece tokenizer as tokenizer.json), and --resume is exact: N straight iterations and
 * N/2 + resume + N/2 give the same losses, weights, optimizer moments and generator states, with
 * dropout and gradient accumulation on so the model's generator and the micro-batch loop count.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerTrainBert } from '../../src/cli/train-bert.js';
import { Generator } from '../../src/tensor/random.js';
import { Tokenizer } from '../../src/tokenizers/tokenizer.js';
import { loadTrainerState } from '../../src/train/checkpoint.js';
import { MetricsLog } from '../../src/train/metrics.js';
import { NonFiniteLossError } from '../../src/train/trainer.js';
import { Capture, tempDir } from '../train/helpers.js';

/** Documents of 3–5 sentences "<name> <verb> <colour> <fruit> ." separated by blank lines. */
function corpus(dir: string, seed = 3, docs = 40): string {
  const names = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
  const fruit = [['apples', 'red'], ['bananas', 'yellow'], ['grapes', 'purple'], ['limes', 'green']] as const;
  const verbs = ['likes', 'eats', 'buys'];
  const g = new Generator(seed);
  const out: string[] = [];
  for (let d = 0; d < docs; d++) {
    const name = names[g.int(0, names.length)]!;
    const lines: string[] = [];
    for (let s = 0; s < 3 + g.int(0, 3); s++) {
      const [f, colour] = fruit[g.int(0, fruit.length)]!;
      lines.push(`${name} ${verbs[g.int(0, verbs.length)]!} ${colour} ${f} .`);
    }
    out.push(lines.join('\n'));
  }
  const path = join(dir, 'corpus.txt');
  writeFileSync(path, out.join('\n\n') + '\n');
  return path;
}

function cli(): { run: (...args: string[]) => Promise<void>; stdout: Capture; stderr: Capture } {
  const stdout = new Capture();
  const stderr = new Capture();
  const program = new Command().name('weft').exitOverride();
  registerTrainBert(program.command('train'), { stdout, stderr });
  return { run: async (...args) => void (await program.parseAsync(args, { from: 'user' })), stdout, stderr };
}

const TINY = ['--vocab-size', '80', '--hidden-size', '16', '--n-layer', '1', '--n-head', '2', '--intermediate-size', '32', '--max-length', '16', '--batch-size', '4', '--eval-iters', '2'];
const CHECKPOINT_FILES = ['config.json', 'model.safetensors', 'optimizer.safetensors', 'tokenizer.json', 'trainer_state.json'];

describe('weft train bert on the shared Trainer', () => {
  it('logs every iteration and evaluation to metrics.jsonl, checkpoints with tokenizer.json, and prints the usual progress', async () => {
    const dir = tempDir('weft-bert-');
    const out = join(dir, 'run');
    const c = cli();
    await c.run('train', 'bert', '--data', corpus(dir), ...TINY, '--max-iters', '20', '--eval-interval', '10', '--lr', '5e-3', '--seed', '5', '--out', out);
    const records = MetricsLog.read(join(out, 'metrics.jsonl'));
    const evals = records.filter((r) => 'val_loss' in r);
    const iters = records.filter((r) => 'loss' in r);
    expect(evals.map((r) => r.iter)).toEqual([0, 10, 20]);
    expect(iters.map((r) => r.iter)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const r of iters) expect(Object.keys(r).sort()).toEqual(['iter', 'loss', 'lr', 'ms', 'tokens_per_s']);
    for (const r of evals) expect(Object.keys(r).sort()).toEqual(['iter', 'train_loss', 'val_loss']);
    // MLM over ~80 ids + NSP over 2 at initialisation: about ln 80 + ln 2 ≈ 5.1.
    expect(evals[0]!.val_loss).toBeGreaterThan(4);
    expect(evals.at(-1)!.train_loss).toBeLessThan(evals[0]!.train_loss);
    // Warm-up defaults to 30 iterations: lr·(it+1)/31.
    expect(iters[0]!.lr).toBeCloseTo(5e-3 / 31, 12);

    const state = loadTrainerState(out); // verifies every file's size and hash
    expect(state.iter).toBe(20);
    expect(Object.keys(state.files).sort()).toEqual(CHECKPOINT_FILES.filter((f) => f !== 'trainer_state.json'));
    expect(Object.keys(state.rng).sort()).toEqual(['data', 'default', 'model']);
    expect(state.trainConfig).toMatchObject({ blockSize: 16, batchSize: 4, weightDecay: 0.01, beta2: 0.999, minLr: 5e-4, lrDecayIters: 30 });
    const tok = Tokenizer.fromJSON(JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')));
    expect(tok.tokenToId('[MASK]')).toBeTypeOf('number');
    expect(tok.decode(tok.encode('bob eats red apples .', { addSpecialTokens: false }))).toBe('bob eats red apples.');

    expect(c.stdout.text).toMatch(/^iter 10: loss \d+\.\d{4}, lr /m);
    expect(c.stdout.text).toMatch(/^step 20: train loss \d+\.\d{4}, val loss \d+\.\d{4}$/m);
    expect(c.stdout.text).toMatch(/^saved checkpoint at iteration 10 to /m);
    expect(c.stdout.text).toMatch(/^held-out @ 20: MLM accuracy \d+\.\d%, NSP accuracy \d+\.\d%$/m);
    expect(c.stdout.text).toMatch(/^done at iteration 20: /m);
  });

  it('resumes exactly: 20 straight iterations = 10 + --resume + 10 (losses, weights, moments, generators)', async () => {
    const dir = tempDir('weft-bert-');
    const data = corpus(dir);
    const base = [...TINY, '--dropout', '0.1', '--gradient-accumulation-steps', '2', '--eval-interval', '5', '--lr', '5e-3', '--warmup-iters', '4', '--lr-decay-iters', '20', '--seed', '11'];
    const straight = join(dir, 'straight');
    await cli().run('train', 'bert', '--data', data, ...base, '--max-iters', '20', '--out', straight, '--json');
    const split = join(dir, 'split');
    await cli().run('train', 'bert', '--data', data, ...base, '--max-iters', '10', '--out', split, '--json');
    expect(loadTrainerState(split).iter).toBe(10);
    const resumed = cli();
    await resumed.run('train', 'bert', '--max-iters', '20', '--out', split, '--resume', '--json');
    expect(resumed.stderr.text).toMatch(/resuming .* at iteration 10/);
    const lines = resumed.stdout.text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(lines.filter((r) => 'loss' in r).map((r) => r.iter)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);

    const strip = (run: string): string[] => MetricsLog.read(join(run, 'metrics.jsonl')).map((r) => JSON.stringify('loss' in r ? { iter: r.iter, loss: r.loss, lr: r.lr } : r));
    const a = strip(straight);
    expect(a.length).toBe(20 + 5);
    expect(strip(split)).toEqual(a);
    for (const f of ['model.safetensors', 'optimizer.safetensors', 'tokenizer.json', 'config.json']) {
      expect(readFileSync(join(split, f)).equals(readFileSync(join(straight, f))), f).toBe(true);
    }
    const [sa, sb] = [loadTrainerState(straight), loadTrainerState(split)];
    expect(sb.rng).toEqual(sa.rng);
    expect(sb.iter).toBe(20);
    expect(sb.tokensSeen).toBe(sa.tokensSeen);
  });

  it('--resume keeps the model and tokenizer, and needs a checkpoint', async () => {
    const dir = tempDir('weft-bert-');
    const out = join(dir, 'run');
    await expect(cli().run('train', 'bert', '--out', out, '--resume')).rejects.toThrow(/--resume: .* holds no checkpoint/);
    await cli().run('train', 'bert', '--data', corpus(dir), ...TINY, '--max-iters', '2', '--eval-interval', '2', '--out', out, '--json');
    await expect(cli().run('train', 'bert', '--out', out, '--resume', '--max-iters', '4', '--hidden-size', '32')).rejects.toThrow(/--resume keeps the saved model and tokenizer/);
  });

  it('stops on a non-finite loss, naming the iteration, and keeps the last good checkpoint', async () => {
    const dir = tempDir('weft-bert-');
    const out = join(dir, 'run');
    await cli().run('train', 'bert', '--data', corpus(dir), ...TINY, '--max-iters', '4', '--eval-interval', '2', '--out', out, '--json');
    const weights = readFileSync(join(out, 'model.safetensors'));
    // An absurd learning rate without clipping: the first step blows the weights up.
    const err = await cli()
      .run('train', 'bert', '--out', out, '--resume', '--max-iters', '40', '--lr', '1e30', '--warmup-iters', '0', '--grad-clip', '0', '--json')
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(NonFiniteLossError);
    expect((err as NonFiniteLossError).iter).toBeGreaterThanOrEqual(5);
    expect((err as Error).message).toMatch(/is (NaN|-?Infinity) at iteration \d+; training stopped\. The last good checkpoint \(iteration 4\) is intact/);
    expect(loadTrainerState(out).iter).toBe(4); // verifies the files' hashes too
    expect(readFileSync(join(out, 'model.safetensors')).equals(weights)).toBe(true);
  });
});
