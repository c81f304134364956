/**
 * `weft train bert` end to end on a generated corpus whose masked words are predictable (each fruit
 * always comes with its own colour): a short run must beat chance by far on held-out MLM, write a
 * directory BertForPreTraining.fromPretrained reloads, and `weft fill-mask` must then put colours in
 * the colour slot and fruits in the fruit slot.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillMask, registerFillMask } from '../../src/cli/fill-mask.js';
import { registerTrainBert } from '../../src/cli/train-bert.js';
import { BertForPreTraining } from '../../src/models/bert.js';
import { Generator } from '../../src/tensor/random.js';
import { splitDocuments } from '../../src/train/train-bert.js';

const NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];
const FRUIT: [string, string][] = [['apples', 'red'], ['bananas', 'yellow'], ['grapes', 'purple'], ['limes', 'green']];
const VERBS = ['likes', 'eats', 'buys', 'wants'];

function corpus(seed: number, docs: number): string {
  const g = new Generator(seed);
  const out: string[] = [];
  for (let d = 0; d < docs; d++) {
    const name = NAMES[g.int(0, NAMES.length)]!;
    const lines: string[] = [];
    for (let s = 0; s < 4 + g.int(0, 3); s++) {
      const [fruit, colour] = FRUIT[g.int(0, FRUIT.length)]!;
      lines.push(`${name} ${VERBS[g.int(0, VERBS.length)]!} ${colour} ${fruit} .`);
    }
    out.push(lines.join('\n'));
  }
  return out.join('\n\n') + '\n';
}

class Sink {
  text = '';
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'weft-bert-train-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('weft train bert / weft fill-mask', () => {
  it('splits documents on blank lines and sentences on lines (or punctuation)', () => {
    expect(splitDocuments('a b.\nc d.\n\n\ne f. g h! i?\n')).toEqual([['a b.', 'c d.'], ['e f.', 'g h!', 'i?']]);
  });

  it('pre-trains, saves a reloadable directory, and fills a predictable mask', async () => {
    const data = join(root, 'corpus.txt');
    await writeFile(data, corpus(1, 60));
    const out = join(root, 'run');
    const stdout = new Sink();
    const stderr = new Sink();
    const program = new Command().exitOverride();
    registerTrainBert(program.command('train'), { stdout, stderr });
    registerFillMask(program, { stdout, stderr });
    await program.parseAsync(
      ['train', 'bert', '--data', data, '--out', out, '--vocab-size', '150', '--hidden-size', '32', '--n-layer', '1', '--n-head', '2', '--intermediate-size', '64', '--max-length', '24', '--batch-size', '16', '--max-iters', '150', '--eval-interval', '150', '--lr', '1e-2', '--dropout', '0', '--json'],
      { from: 'user' },
    );
    // The shared Trainer's --json lines (iterations, evaluations), then the held-out accuracy line.
    const records = stdout.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
    const evals = records.filter((r) => 'val_loss' in r);
    expect(evals.map((r) => r.iter)).toEqual([0, 150]);
    expect(records.filter((r) => 'loss' in r).map((r) => r.iter)).toEqual(Array.from({ length: 150 }, (_, i) => i));
    const [first, last] = [evals[0]!, evals[evals.length - 1]!];
    expect(last.val_loss).toBeLessThan(first.val_loss! - 1);
    const accuracy = records.at(-1)!;
    expect(Object.keys(accuracy).sort()).toEqual(['iter', 'val_mlm_accuracy', 'val_nsp_accuracy']);
    expect(accuracy.iter).toBe(150);
    // Chance is ~1/60; a short run learns the '.' and colour/fruit slots first.
    expect(accuracy.val_mlm_accuracy).toBeGreaterThan(0.15);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) expect(existsSync(join(out, f)), f).toBe(true);
    const reloaded = await BertForPreTraining.fromPretrained(out);
    expect(reloaded.config.nspHead).toBe(true);

    const results = await fillMask(out, 'bob likes [MASK] bananas .', { topK: 3 });
    expect(results).toHaveLength(1);
    const top = results[0]!.predictions[0]!;
    expect(results[0]!.position).toBe(3); // [CLS] bob likes [MASK]
    // The short run has learnt which words go in the colour slot (chance: 4 of ~100 tokens).
    const colours = FRUIT.map(([, c]) => c);
    expect(results[0]!.predictions.map((p) => p.token).every((t) => colours.includes(t))).toBe(true);
    expect(top.sequence).toBe(`bob likes ${top.token} bananas.`); // the WordPiece decoder's cleanup joins ' .'
    const cli = new Sink();
    const p2 = new Command().exitOverride();
    registerFillMask(p2, { stdout: cli, stderr });
    await p2.parseAsync(['fill-mask', '--model', out, '--text', 'grace eats purple [MASK] .', '--json'], { from: 'user' });
    const parsed = JSON.parse(cli.text) as { position: number; predictions: { token: string; score: number }[] }[];
    expect(parsed[0]!.position).toBe(4);
    const fruits = FRUIT.map(([f]) => f);
    expect(parsed[0]!.predictions.slice(0, 4).map((p) => p.token).sort()).toEqual([...fruits].sort());
    expect(parsed[0]!.predictions.map((p) => p.score)).toEqual([...parsed[0]!.predictions.map((p) => p.score)].sort((a, b) => b - a));
  });
});
