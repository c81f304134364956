/**
 * `weft finetune` / `weft predict` end to end on tiny GPT-2 and BERT models with a word-level
 * tokenizer and a task they can only solve by learning (the label is whether "good" or "bad"
 * appears among random filler words): every method must beat chance clearly, save what it claims
 * (a model, a PEFT adapter, a prompt or a prefix), and predict must reproduce its eval accuracy.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BertForPreTraining } from '../../../src/models/bert.js';
import { GPT } from '../../../src/models/gpt.js';
import { Generator } from '../../../src/tensor/random.js';
import { registerFinetune } from '../../../src/cli/finetune.js';
import { runFinetune, parseMethod } from '../../../src/train/finetune/run.js';

const FILLER = Array.from({ length: 20 }, (_, i) => `w${i}`);
const WORDS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'good', 'bad', 'positive', 'negative', 'Sentence:', 'Sentiment:', ...FILLER];

function tokenizerJSON(): unknown {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: Object.fromEntries(WORDS.map((w, i) => [w, i])), unk_token: '[UNK]' },
  };
}

function dataset(n: number, seed: number): string {
  const g = new Generator(seed);
  const rows = ['sentence\tlabel'];
  for (let i = 0; i < n; i++) {
    const words = Array.from({ length: 3 + g.int(0, 4) }, () => FILLER[g.int(0, FILLER.length)]!);
    const label = g.int(0, 2);
    words.splice(g.int(0, words.length + 1), 0, label === 1 ? 'good' : 'bad');
    rows.push(`${words.join(' ')}\t${label === 1 ? 'positive' : 'negative'}`);
  }
  return rows.join('\n') + '\n';
}

let root = '';
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'weft-ft-'));
  const tok = JSON.stringify(tokenizerJSON());
  const gpt = new GPT({ vocabSize: WORDS.length, blockSize: 32, nLayer: 2, nHead: 2, nEmbd: 32, dropout: 0 }, { generator: new Generator(3) });
  await gpt.savePretrained(join(root, 'gpt'));
  writeFileSync(join(root, 'gpt', 'tokenizer.json'), tok);
  const bert = new BertForPreTraining(
    { vocabSize: WORDS.length, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64, maxPositionEmbeddings: 32, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 },
    { generator: new Generator(4) },
  );
  await bert.savePretrained(join(root, 'bert'));
  writeFileSync(join(root, 'bert', 'tokenizer.json'), tok);
  writeFileSync(join(root, 'train.tsv'), dataset(240, 1));
  writeFileSync(join(root, 'eval.tsv'), dataset(60, 2));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('weft finetune (classify)', () => {
  it.each([
    ['gpt', 'full'],
    ['gpt', 'lora:4'],
    ['bert', 'freeze:1'],
    ['bert', 'lora:4'],
    ['gpt', 'prompt:4'],
    ['bert', 'prefix:4'],
  ])('%s with %s learns the task and saves its artefacts', async (family, method) => {
    const out = join(root, `out-${family}-${method.replace(':', '')}`);
    const r = await runFinetune({
      model: join(root, family),
      task: 'classify',
      train: join(root, 'train.tsv'),
      eval: join(root, 'eval.tsv'),
      method: parseMethod(method),
      out,
      epochs: method.startsWith('prompt') || method.startsWith('prefix') ? 12 : 6,
      batchSize: 16,
      lr: method.startsWith('prompt') || method.startsWith('prefix') ? 5e-2 : method.startsWith('lora') ? 1e-2 : 3e-3,
    });
    const kind = parseMethod(method).kind;
    if (kind === 'prompt' || kind === 'prefix') {
      // A frozen *random* model gives prompts little to steer: demand learning, not mastery (the
      // SST-2 evidence on pre-trained models is in the README), and exactly the prompt's parameters.
      expect(r.history.at(-1)!.trainLoss).toBeLessThan(r.history[0]!.trainLoss);
      expect(r.trainable).toBe(kind === 'prompt' ? 4 * 32 : 2 * 2 * 2 * 4 * 16);
    } else {
      expect(r.metrics.accuracy).toBeGreaterThan(0.85);
    }

    if (kind === 'lora' || kind === 'prompt') expect(existsSync(join(out, 'adapter', 'adapter_config.json'))).toBe(true);
    if (kind === 'prefix') expect(existsSync(join(out, 'prefix.safetensors'))).toBe(true);
    if (kind === 'full' || kind === 'freeze') expect(existsSync(join(out, 'model', 'model.safetensors'))).toBe(true);
    if (kind !== 'full' && kind !== 'freeze') expect(r.trainable).toBeLessThan(r.total / 4);

    // predict reproduces the best epoch's accuracy from the saved artefacts alone.
    let printed = '';
    const program = new Command().exitOverride();
    registerFinetune(program, { stdout: { write: (s: string) => (printed += s) }, stderr: { write: () => true } });
    await program.parseAsync(['node', 'weft', 'predict', '--model', join(root, family), '--adapter', out, '--input', join(root, 'eval.tsv')]);
    const want = readFileSync(join(root, 'eval.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t')[1]);
    const got = printed.trim().split('\n').map((l) => l.split('\t')[0]);
    const acc = got.filter((g, i) => g === want[i]).length / want.length;
    expect(acc).toBeCloseTo(r.metrics.accuracy!, 5);
  }, 120_000);

  it('refuses an unknown method and a missing field clearly', async () => {
    expect(() => parseMethod('lora')).toThrow(/full, freeze:N, prompt:P, prefix:P or lora:R/);
    await expect(
      runFinetune({ model: join(root, 'gpt'), task: 'classify', train: join(root, 'train.tsv'), eval: join(root, 'eval.tsv'), method: { kind: 'full' }, out: join(root, 'x'), textField: 'text', epochs: 1 }),
    ).rejects.toThrow(/no field 'text' \(fields: sentence, label\)/);
  });
});

describe('weft finetune (sft, dpo)', () => {
  // Prompt "wN" → response "good" for even N, "bad" for odd N.
  const rows = (n: number, seed: number, dpo: boolean): string => {
    const g = new Generator(seed);
    return Array.from({ length: n }, () => {
      const k = g.int(0, FILLER.length);
      const right = k % 2 === 0 ? 'good' : 'bad';
      const wrong = right === 'good' ? 'bad' : 'good';
      return JSON.stringify(dpo ? { prompt: `Sentence: w${k}`, chosen: right, rejected: wrong } : { prompt: `Sentence: w${k}`, response: right });
    }).join('\n');
  };

  it('SFT learns the responses and predict generates them', async () => {
    writeFileSync(join(root, 'sft-train.jsonl'), rows(200, 5, false));
    writeFileSync(join(root, 'sft-eval.jsonl'), rows(40, 6, false));
    const out = join(root, 'out-sft');
    const r = await runFinetune({ model: join(root, 'gpt'), task: 'sft', train: join(root, 'sft-train.jsonl'), eval: join(root, 'sft-eval.jsonl'), method: parseMethod('full'), out, epochs: 6, lr: 3e-3, template: '{prompt} Sentiment:' });
    expect(r.history.at(-1)!.metrics.eval_loss!).toBeLessThan(0.5 * r.history[0]!.metrics.eval_loss!);
    let printed = '';
    const program = new Command().exitOverride();
    registerFinetune(program, { stdout: { write: (s: string) => (printed += s) }, stderr: { write: () => true } });
    writeFileSync(join(root, 'prompts.txt'), 'Sentence: w4\nSentence: w7\n');
    await program.parseAsync(['node', 'weft', 'predict', '--model', out, '--input', join(root, 'prompts.txt'), '--max-new-tokens', '1']);
    expect(printed.trim().split('\n')).toEqual(['good', 'bad']);
  }, 120_000);

  it('DPO raises the reward accuracy against the frozen reference', async () => {
    writeFileSync(join(root, 'dpo-train.jsonl'), rows(160, 7, true));
    writeFileSync(join(root, 'dpo-eval.jsonl'), rows(40, 8, true));
    const r = await runFinetune({ model: join(root, 'gpt'), task: 'dpo', train: join(root, 'dpo-train.jsonl'), eval: join(root, 'dpo-eval.jsonl'), method: parseMethod('lora:8'), out: join(root, 'out-dpo'), epochs: 4, lr: 2e-2, template: '{prompt} Sentiment:' });
    expect(r.metrics.reward_accuracy).toBeGreaterThan(0.9);
    expect(r.metrics.reward_margin).toBeGreaterThan(0);
  }, 120_000);
});

describe('weft finetune --task lm (domain-adaptive pre-training)', () => {
  it.each(['gpt', 'bert'])('%s: held-out domain perplexity drops from where it started', async (family) => {
    const g = new Generator(9);
    // The "domain": filler words always in the same cyclic order, which the random model has never seen.
    const line = (): string => {
      const start = g.int(0, FILLER.length);
      return JSON.stringify({ text: Array.from({ length: 8 }, (_, i) => FILLER[(start + i) % FILLER.length]).join(' ') });
    };
    writeFileSync(join(root, `dom-train-${family}.jsonl`), Array.from({ length: 160 }, line).join('\n'));
    writeFileSync(join(root, `dom-eval-${family}.jsonl`), Array.from({ length: 40 }, line).join('\n'));
    const r = await runFinetune({ model: join(root, family), task: 'lm', train: join(root, `dom-train-${family}.jsonl`), eval: join(root, `dom-eval-${family}.jsonl`), method: parseMethod('full'), out: join(root, `out-dom-${family}`), epochs: 10, lr: family === 'gpt' ? 3e-3 : 1e-3 });
    expect(r.initialMetrics!.perplexity).toBeGreaterThan(1.25 * r.metrics.perplexity!);
    expect(existsSync(join(root, `out-dom-${family}`, 'model', 'tokenizer.json'))).toBe(true);
  }, 120_000);
});
