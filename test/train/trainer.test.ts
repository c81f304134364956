import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CharTokenizer } from '../../src/data/char-tokenizer.js';
import { TextDataset } from '../../src/data/text-dataset.js';
import { GPT } from '../../src/models/gpt.js';
import { loadTrainerState } from '../../src/train/checkpoint.js';
import { parseTrainConfig } from '../../src/train/config.js';
import { MetricsLog } from '../../src/train/metrics.js';
import { ProgressReporter } from '../../src/train/progress.js';
import { trainGPT } from '../../src/train/train-gpt.js';
import { NonFiniteLossError, Trainer, type TrainableModel } from '../../src/train/trainer.js';
import { Generator } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { Capture, smallCorpus, tempDir, TINY_MODEL, tinyConfig } from './helpers.js';

const CHECKPOINT_FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'optimizer.safetensors', 'tokenizer.json', 'trainer_state.json'];

function snapshot(dir: string): Map<string, Buffer> {
  return new Map(CHECKPOINT_FILES.map((f) => [f, readFileSync(join(dir, f))]));
}

describe('Trainer', () => {
  it('lowers the loss, evaluates every eval_interval, checkpoints, and logs every record to metrics.jsonl', async () => {
    const dir = tempDir();
    const out = join(dir, 'run');
    const stdout = new Capture();
    const r = await trainGPT({ config: tinyConfig(smallCorpus(dir), { maxIters: 60 }), model: TINY_MODEL, outDir: out, stdout, stderr: new Capture() });
    const records = MetricsLog.read(join(out, 'metrics.jsonl'));
    const evals = records.filter((x) => 'val_loss' in x);
    const iters = records.filter((x) => 'loss' in x);
    expect(evals.map((e) => e.iter)).toEqual([0, 20, 40, 60]);
    expect(iters.map((e) => e.iter)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    for (const e of iters) expect(Object.keys(e).sort()).toEqual(['iter', 'loss', 'lr', 'ms', 'tokens_per_s']);
    for (const e of evals) expect(Object.keys(e).sort()).toEqual(['iter', 'train_loss', 'val_loss']);
    // ln(65) ≈ 4.17 at initialisation; a tiny model learns character frequencies within 60 steps.
    expect(evals[0]!.val_loss).toBeGreaterThan(3.9);
    expect(evals.at(-1)!.val_loss).toBeLessThan(evals[0]!.val_loss - 0.6);
    expect(r.valLoss).toBe(evals.at(-1)!.val_loss);
    // lr follows nanoGPT's warm-up: lr·(it+1)/(warmup+1).
    expect(iters[0]!.lr).toBeCloseTo(1e-2 / 6, 12);
    expect(iters[5]!.lr).toBeCloseTo(1e-2, 12);
    expect(iters[0]!.tokens_per_s).toBeCloseTo((4 * 16 * 1000) / iters[0]!.ms, 6);
    const state = loadTrainerState(out);
    expect(state.iter).toBe(60);
    expect(state.bestValLoss).toBe(Math.min(...evals.map((e) => e.val_loss)));
    expect(state.tokensSeen).toBe(60 * 4 * 16);
    // Non-TTY output: plain lines every log_interval (10) and the evaluations.
    expect(stdout.text).toMatch(/^iter 10: loss \d\.\d{4}, lr /m);
    expect(stdout.text).toMatch(/^step 60: train loss \d\.\d{4}, val loss \d\.\d{4}$/m);
    expect(stdout.text).not.toContain('\r');
  });

  it('resumes exactly: 100 straight iterations = 50 + resume + 50 (losses and bit-identical weights and moments)', async () => {
    const dir = tempDir();
    const data = smallCorpus(dir);
    // Dropout and gradient accumulation on, so the model's generator and the micro-batch loop are covered too.
    const model = { ...TINY_MODEL, dropout: 0.1 };
    const base = { evalInterval: 25, gradientAccumulationSteps: 2 };
    const quiet = { stdout: new Capture(), stderr: new Capture() };
    const straight = join(dir, 'straight');
    await trainGPT({ config: tinyConfig(data, { ...base, maxIters: 100 }), model, outDir: straight, ...quiet });
    const split = join(dir, 'split');
    await trainGPT({ config: tinyConfig(data, { ...base, maxIters: 50 }), model, outDir: split, ...quiet });
    expect(loadTrainerState(split).iter).toBe(50);
    await trainGPT({ config: { maxIters: 100 }, outDir: split, resume: true, ...quiet });

    const strip = (path: string): string[] =>
      MetricsLog.read(path).map((r) => JSON.stringify('loss' in r ? { iter: r.iter, loss: r.loss, lr: r.lr } : r));
    const a = strip(join(straight, 'metrics.jsonl'));
    const b = strip(join(split, 'metrics.jsonl'));
    expect(a.length).toBe(100 + 5);
    expect(b).toEqual(a);
    const sa = snapshot(straight);
    const sb = snapshot(split);
    expect(sb.get('model.safetensors')!.equals(sa.get('model.safetensors')!)).toBe(true);
    expect(sb.get('optimizer.safetensors')!.equals(sa.get('optimizer.safetensors')!)).toBe(true);
    const stateA = loadTrainerState(straight);
    const stateB = loadTrainerState(split);
    expect(stateB.rng).toEqual(stateA.rng);
    expect(stateB.iter).toBe(100);
    expect(stateB.tokensSeen).toBe(stateA.tokensSeen);
  });

  it('a resumed run cuts metrics.jsonl back to its checkpoint, so lines from after the checkpoint are not duplicated', async () => {
    const dir = tempDir();
    const out = join(dir, 'run');
    const quiet = { stdout: new Capture(), stderr: new Capture() };
    await trainGPT({ config: tinyConfig(smallCorpus(dir), { maxIters: 20, evalInterval: 10 }), model: TINY_MODEL, outDir: out, ...quiet });
    // Lines a crashed continuation wrote after the checkpoint.
    new MetricsLog(join(out, 'metrics.jsonl')).append({ iter: 20, loss: 9, lr: 0, ms: 1, tokens_per_s: 1 });
    await trainGPT({ config: { maxIters: 30 }, outDir: out, resume: true, ...quiet });
    const iters = MetricsLog.read(join(out, 'metrics.jsonl')).filter((r) => 'loss' in r);
    expect(iters.map((r) => r.iter)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(iters.some((r) => r.loss === 9)).toBe(false);
  });

  it('stops on a NaN loss with the iteration in the message and leaves the last good checkpoint intact', async () => {
    const dir = tempDir();
    const data = smallCorpus(dir);
    const out = join(dir, 'run');
    const quiet = { stdout: new Capture(), stderr: new Capture() };
    await trainGPT({ config: tinyConfig(data, { maxIters: 10, evalInterval: 10 }), model: TINY_MODEL, outDir: out, ...quiet });
    const before = snapshot(out);

    // Resume by hand with a model whose loss turns NaN at iteration 13 (after a clean eval-free stretch).
    const config = parseTrainConfig({ ...loadTrainerState(out).trainConfig, maxIters: 20, evalInterval: 5 });
    const tokenizer = CharTokenizer.fromJSON(JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')));
    const gpt = await GPT.fromPretrained(out, { generator: new Generator(0) });
    let iter = 10;
    const poisoned: TrainableModel = {
      forward: (ids: Tensor, targets?: Tensor) => {
        const r = gpt.forward(ids, targets);
        if (gpt.training && iter++ === 13) return { logits: r.logits, loss: r.loss!.mul(Number.NaN) };
        return r;
      },
      train: () => gpt.train(),
      eval: () => gpt.eval(),
      namedParameters: () => gpt.namedParameters(),
      savePretrained: (d: string) => gpt.savePretrained(d),
    };
    const trainer = new Trainer({
      model: poisoned,
      tokenizer,
      dataset: TextDataset.fromText(readFileSync(data, 'utf8'), tokenizer),
      config,
      outDir: out,
      progress: new ProgressReporter({ out: new Capture(), json: false, maxIters: 20 }),
      resume: true,
    });
    const err = await trainer.run().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NonFiniteLossError);
    expect((err as Error).message).toMatch(/the training loss is NaN at iteration 13; training stopped\. The last good checkpoint \(iteration 10\) is intact/);
    // Evaluation at 15 never happened, nothing was saved: every file is byte-identical and loads.
    const after = snapshot(out);
    for (const f of CHECKPOINT_FILES) expect(after.get(f)!.equals(before.get(f)!), f).toBe(true);
    expect(loadTrainerState(out).iter).toBe(10);
  });

  it('a learning rate that blows the weights up stops the run with an error naming the iteration', async () => {
    const dir = tempDir();
    const out = join(dir, 'run');
    const run = trainGPT({
      config: tinyConfig(smallCorpus(dir), { lr: 1e30, minLr: 0, warmupIters: 0, maxIters: 30, evalInterval: 100 }),
      model: TINY_MODEL,
      outDir: out,
      stdout: new Capture(),
      stderr: new Capture(),
    });
    await expect(run).rejects.toThrow(/is (NaN|Infinity|-Infinity) at iteration \d+; training stopped\. No checkpoint was saved before it/);
  });
});
