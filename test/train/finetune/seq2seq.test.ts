/**
 * Seq2seq (T5 text-to-text): batches are built as transformers' DataCollatorForSeq2Seq builds them
 * and the loss with labels equals T5ForConditionalGeneration's (logits, loss and gradients from the
 * existing fixture scripts/fixtures/t5_hf.py), and `weft finetune --task seq2seq` teaches a tiny
 * random T5 to reverse and upper-case words, with `weft predict` reproducing its exact match.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../../src/models/index.js';
import { T5ForConditionalGeneration } from '../../../src/models/t5.js';
import { loadPretrained } from '../../../src/models/registry.js';
import { Generator } from '../../../src/tensor/random.js';
import { registerFinetune } from '../../../src/cli/finetune.js';
import { parseMethod, runFinetune } from '../../../src/train/finetune/run.js';
import { asT5, encodeWithEos, seq2seqBatch, seq2seqLoss, seq2seqScores } from '../../../src/train/finetune/seq2seq.js';
import { type ArraySpec, decodeArray, mismatch } from '../../tensor/fixtures.js';

const T5_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 't5');

describe('seq2seq loss parity with HF T5ForConditionalGeneration (labels=)', () => {
  it.each(['v1_0', 'v1_1'])('%s: the collated batch, the loss and every gradient match', async (name) => {
    const f = JSON.parse(readFileSync(join(T5_DIR, `${name}.json`), 'utf8')) as { input_ids: ArraySpec; attention_mask: ArraySpec; labels: ArraySpec; loss: number; grads: Record<string, ArraySpec> };
    const model = asT5(await loadPretrained(join(T5_DIR, name)), 'test');
    const ids = decodeArray(f.input_ids);
    const mask = decodeArray(f.attention_mask);
    const labels = decodeArray(f.labels);
    const [B, S] = f.input_ids.shape as [number, number];
    const T = f.labels.shape[1]!;
    // Unpadded pairs, as a dataset gives them: the collator must reproduce HF's padded tensors.
    const pairs = Array.from({ length: B }, (_, b) => ({
      source: [...ids.subarray(b * S, (b + 1) * S)].filter((_, s) => mask[b * S + s] === 1),
      target: [...labels.subarray(b * T, (b + 1) * T)].filter((v) => v !== -100),
    }));
    const batch = seq2seqBatch(pairs, model.config.padTokenId);
    expect([...batch.inputIds.i32('t')]).toEqual([...ids]);
    expect([...batch.attentionMask.i32('t')]).toEqual([...mask]);
    expect([...batch.labels.i32('t')]).toEqual([...labels]);
    const loss = seq2seqLoss(model, batch);
    expect(loss.item()).toBeCloseTo(f.loss, 5);
    loss.backward();
    const params = new Map(model.namedParameters());
    for (const [n, spec] of Object.entries(f.grads)) expect(mismatch(params.get(n)!.grad!.dense(), decodeArray(spec)), n).toBeNull();
  });

  it('ends sources and targets with </s> and truncates before it', () => {
    const tok = { encode: (s: string) => s.split(' ').map(Number), decode: () => '' };
    expect(encodeWithEos(tok, '5 6 7', 1, 8)).toEqual([5, 6, 7, 1]);
    expect(encodeWithEos(tok, '5 6 7 1', 1, 3)).toEqual([5, 6, 1]);
    expect(seq2seqScores(['W1 W2', 'W3'], ['W1 W2', 'W4'])).toEqual({ exact_match: 0.5, rougeL: 0.5 });
  });
});

// ---------------------------------------------------------------------------------------------
// End to end
// ---------------------------------------------------------------------------------------------

const N = 10;
const LOWER = Array.from({ length: N }, (_, i) => `w${i}`);
const UPPER = Array.from({ length: N }, (_, i) => `W${i}`);
const SPECIAL = ['<pad>', '</s>', '<unk>'];
const WORDS = [...SPECIAL, ...LOWER, ...UPPER];

function tokenizerJSON(): unknown {
  return {
    version: '1.0',
    added_tokens: SPECIAL.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: Object.fromEntries(WORDS.map((w, i) => [w, i])), unk_token: '<unk>' },
  };
}

/** "w3 w7" → "W7 W3": the words reversed and upper-cased. */
function dataset(n: number, seed: number): string {
  const g = new Generator(seed);
  return (
    Array.from({ length: n }, () => {
      const ks = Array.from({ length: 1 + g.int(0, 2) }, () => g.int(0, N));
      return JSON.stringify({ src: ks.map((k) => LOWER[k]).join(' '), tgt: [...ks].reverse().map((k) => UPPER[k]).join(' ') });
    }).join('\n') + '\n'
  );
}

let root = '';
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'weft-ft-s2s-'));
  const t5 = new T5ForConditionalGeneration({ vocabSize: WORDS.length, dModel: 32, dKv: 8, dFf: 64, numLayers: 2, numHeads: 4, dropoutRate: 0, relativeAttentionNumBuckets: 8, relativeAttentionMaxDistance: 16 }, { generator: new Generator(5) });
  await t5.savePretrained(join(root, 't5'));
  writeFileSync(join(root, 't5', 'tokenizer.json'), JSON.stringify(tokenizerJSON()));
  writeFileSync(join(root, 'train.jsonl'), dataset(300, 1));
  writeFileSync(join(root, 'eval.jsonl'), dataset(50, 2));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('weft finetune --task seq2seq', () => {
  it.each([['full'], ['freeze:1'], ['lora:8']])('t5 with %s learns to reverse and upper-case, and predict reproduces its exact match', async (method) => {
    const out = join(root, `out-${method.replace(':', '')}`);
    const r = await runFinetune({
      model: join(root, 't5'),
      task: 'seq2seq',
      train: join(root, 'train.jsonl'),
      eval: join(root, 'eval.jsonl'),
      method: parseMethod(method),
      out,
      epochs: method.startsWith('lora') ? 20 : 10,
      lr: method.startsWith('lora') ? 2e-2 : 5e-3,
      sourceField: 'src',
      targetField: 'tgt',
      maxTargetLength: 8,
      // A random base has no useful features to steer: adapt the FFN too, not only q and v.
      ...(method.startsWith('lora') ? { loraTargets: ['q', 'v', 'o', 'wi', 'wo'] } : {}),
    });
    // Chance is ~1/10 for one word and ~1/100 for two in order. LoRA steers a frozen *random* T5,
    // so it is held to clearly-beyond-chance rather than mastery.
    expect(r.metrics.exact_match).toBeGreaterThan(method.startsWith('lora') ? 0.6 : 0.8);
    expect(r.metrics.eval_loss).toBeLessThan(r.history[0]!.metrics.eval_loss! * 0.5);
    if (method !== 'full') expect(r.trainable).toBeLessThan(r.total);

    let printed = '';
    const program = new Command().exitOverride();
    registerFinetune(program, { stdout: { write: (s: string) => (printed += s) }, stderr: { write: () => true } });
    const base = method === 'lora:8' ? ['--model', join(root, 't5'), '--adapter', out] : ['--model', out];
    await program.parseAsync(['node', 'weft', 'predict', ...base, '--input', join(root, 'eval.jsonl')]);
    const outputs = printed.split('\n').slice(0, -1);
    const targets = readFileSync(join(root, 'eval.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { tgt: string }).tgt);
    expect(seq2seqScores(outputs, targets).exact_match).toBeCloseTo(r.metrics.exact_match!, 10);
  }, 240_000);

  it('runs from the command line with mapped fields and generates for a .txt input', async () => {
    const out = join(root, 'out-cli');
    let printed = '';
    const io = { stdout: { write: (s: string) => (printed += s) }, stderr: { write: () => true } };
    const program = new Command().exitOverride();
    registerFinetune(program, io);
    await program.parseAsync(['node', 'weft', 'finetune', '--model', join(root, 't5'), '--task', 'seq2seq', '--train', join(root, 'train.jsonl'), '--eval', join(root, 'eval.jsonl'), '--method', 'full', '--out', out, '--epochs', '10', '--lr', '5e-3', '--source-field', 'src', '--target-field', 'tgt', '--max-target-length', '8', '--json']);
    const done = printed
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event?: string; metrics?: Record<string, number> })
      .find((e) => e.event === 'done')!;
    expect(done.metrics!.exact_match).toBeGreaterThan(0.8);
    expect(Object.keys(done.metrics!).sort()).toEqual(['eval_loss', 'exact_match', 'rougeL']);
    printed = '';
    writeFileSync(join(root, 'sources.txt'), 'w1 w2\nw7\n');
    const predict = new Command().exitOverride();
    registerFinetune(predict, io);
    await predict.parseAsync(['node', 'weft', 'predict', '--model', out, '--input', join(root, 'sources.txt'), '--json']);
    const outputs = printed.trim().split('\n').map((l) => JSON.parse(l) as { input: string; output: string });
    expect(outputs.map((o) => o.input)).toEqual(['w1 w2', 'w7']);
    // Graded as a whole by exact match above; two fresh inputs should mostly come out right too.
    expect(outputs.filter((o, i) => o.output === ['W2 W1', 'W7'][i]).length).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it('refuses a model that is not T5', async () => {
    const gptDir = join(root, 'not-t5');
    const { GPT } = await import('../../../src/models/gpt.js');
    await new GPT({ vocabSize: WORDS.length, blockSize: 16, nLayer: 1, nHead: 1, nEmbd: 8, dropout: 0 }).savePretrained(gptDir);
    writeFileSync(join(gptDir, 'tokenizer.json'), JSON.stringify(tokenizerJSON()));
    await expect(
      runFinetune({ model: gptDir, task: 'seq2seq', train: join(root, 'train.jsonl'), eval: join(root, 'eval.jsonl'), method: parseMethod('full'), out: join(root, 'x'), sourceField: 'src', targetField: 'tgt' }),
    ).rejects.toThrow(/--task seq2seq needs an encoder-decoder T5 model; got GPT/);
  });
});
