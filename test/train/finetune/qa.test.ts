/**
 * Extractive QA: the head and loss match HF BertForQuestionAnswering (logits, loss, every gradient;
 * fixture from scripts/fixtures/finetune_heads_hf.py), answer spans are found through character
 * offsets across doc-stride windows, decoding respects start ≤ end and the length cap, and
 * `weft finetune --task qa` learns "the answer is the word after 'is'" with `weft predict`
 * reproducing its exact match and F1.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../../src/models/index.js';
import { BertForPreTraining } from '../../../src/models/bert.js';
import { GPT } from '../../../src/models/gpt.js';
import { loadPretrained } from '../../../src/models/registry.js';
import { loadSafetensors } from '../../../src/io/safetensors.js';
import { Generator } from '../../../src/tensor/random.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { bertTokenizer } from '../../../src/tokenizers/formats/bert-vocab.js';
import { registerFinetune } from '../../../src/cli/finetune.js';
import { parseMethod, runFinetune } from '../../../src/train/finetune/run.js';
import { QuestionAnswering, bestSpan, qaExample, qaFeatures, qaLoss, qaScores } from '../../../src/train/finetune/qa.js';
import { specialIds } from '../../../src/train/finetune/tokens.js';
import { type ArraySpec, decodeArray, mismatch } from '../../tensor/fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'finetune');
const t = (spec: ArraySpec): Tensor => Tensor.fromArray(decodeArray(spec), spec.shape, spec.dtype === 'i32' ? 'i32' : 'f32');

describe('QuestionAnswering parity with HF BertForQuestionAnswering', () => {
  it('gives the same start/end logits, loss and gradients on the same weights', async () => {
    const f = JSON.parse(readFileSync(join(DIR, 'heads.json'), 'utf8')) as {
      input_ids: ArraySpec;
      token_type_ids: ArraySpec;
      attention_mask: ArraySpec;
      start_positions: number[];
      end_positions: number[];
      qa: { logits: ArraySpec; loss: number; grads: Record<string, ArraySpec> };
    };
    const model = await loadPretrained(join(DIR, 'bert'));
    const tok = { encodeFull: () => { throw new Error('unused'); }, tokenToId: (s: string) => ({ '[PAD]': 0, '[CLS]': 1, '[SEP]': 2 })[s] };
    const qa = new QuestionAnswering(model, tok);
    const head = await loadSafetensors(join(DIR, 'qa.safetensors'));
    qa.qa_outputs.loadStateDict(new Map([...head.tensors].map(([k, v]) => [k.replace(/^qa_outputs\./, ''), v])));
    qa.eval();
    const logits = qa.forward({ ids: t(f.input_ids), typeIds: t(f.token_type_ids), attentionMask: t(f.attention_mask) });
    expect(mismatch(logits.dense(), decodeArray(f.qa.logits))).toBeNull();
    const loss = qaLoss(logits, f.start_positions, f.end_positions);
    expect(loss.item()).toBeCloseTo(f.qa.loss, 5);
    loss.backward();
    const params = new Map([...qa.model.namedParameters(), ...qa.qa_outputs.namedParameters('qa_outputs')]);
    for (const [name, spec] of Object.entries(f.qa.grads)) {
      expect(params.get(name), name).toBeDefined();
      expect(mismatch(params.get(name)!.grad!.dense(), decodeArray(spec)), name).toBeNull();
    }
  });
});

describe('answer spans through offsets and windows', () => {
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'where', 'is', 'it', '?', 'in', 'new', '##york', 'the', 'cat', 'sat', '.'];
  const tok = bertTokenizer(new Map(vocab.map((w, i) => [w, i])));
  const special = specialIds(tok, 'masked');
  const fields = { question: 'question', context: 'context', answer: 'answer', answerStart: 'answer_start' };
  const ex = qaExample({ question: 'Where is it?', context: 'The cat sat. It is in Newyork.', answers: { text: ['Newyork'], answer_start: [22] } }, 0, 'x', fields, true);

  it('marks the answer tokens (a word split into sub-tokens spans both)', () => {
    const [feat, ...rest] = qaFeatures(tok, special, ex, { maxLength: 64, docStride: 4 });
    expect(rest).toHaveLength(0);
    // [CLS] where is it ? [SEP] the cat sat . it is in new ##york . [SEP]
    expect(feat!.ids).toEqual([2, 5, 6, 7, 8, 3, 12, 13, 14, 15, 7, 6, 9, 10, 11, 15, 3]);
    expect(feat!.typeIds).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect([feat!.start, feat!.end]).toEqual([13, 14]);
  });

  it('splits a long context into overlapping windows; those without the answer point at [CLS]', () => {
    // 4 question tokens + 3 markers leave 4 context tokens per window, 2 shared.
    const feats = qaFeatures(tok, special, ex, { maxLength: 11, docStride: 2 });
    expect(feats.map((f) => f.ids.slice(6, -1))).toEqual([
      [12, 13, 14, 15],
      [14, 15, 7, 6],
      [7, 6, 9, 10],
      [9, 10, 11, 15],
    ]);
    expect(feats.map((f) => [f.start, f.end])).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
      [7, 8],
    ]);
  });

  it('decodes the best start ≤ end span within the length cap and the context', () => {
    const start = [9, 0, 1, 5, 0, 0];
    const end = [9, 0, 3, 0, 0, 4];
    const inContext = [false, true, true, true, true, true];
    // [CLS] is never an answer; (3, 5) is best overall but 3 tokens long.
    expect(bestSpan((i) => start[i]!, (i) => end[i]!, inContext, 2)).toEqual({ start: 3, end: 3, score: 5 });
    expect(bestSpan((i) => start[i]!, (i) => end[i]!, inContext, 3)).toEqual({ start: 3, end: 5, score: 9 });
    expect(qaScores(['the Newyork', 'cat'], [['Newyork'], ['a dog']])).toEqual({ exact_match: 0.5, f1: 0.5 });
  });

  it('refuses a causal LM (a start token cannot see the context after it)', () => {
    const gpt = new GPT({ vocabSize: 16, blockSize: 8, nLayer: 1, nHead: 1, nEmbd: 8, dropout: 0 });
    expect(() => new QuestionAnswering(gpt, tok)).toThrow(/--task qa needs a bidirectional encoder \(BERT\)/);
  });

  it('refuses an answer that is not where the record says', () => {
    expect(() => qaExample({ question: 'q', context: 'abc', answer: 'b', answer_start: 0 }, 4, 'd.jsonl', fields, true)).toThrow(/d.jsonl: record 5: answer "b" is not in the context at 0/);
  });
});

// ---------------------------------------------------------------------------------------------
// End to end
// ---------------------------------------------------------------------------------------------

const FILLER = Array.from({ length: 16 }, (_, i) => `w${i}`);
const WORDS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'what', 'is', 'the', 'key', '?', ...FILLER];

function tokenizerJSON(): unknown {
  return {
    version: '1.0',
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: Object.fromEntries(WORDS.map((w, i) => [w, i])), unk_token: '[UNK]' },
  };
}

/** "… the key is wK …": the answer is the word after "is"; some contexts need two windows. */
function dataset(n: number, seed: number): string {
  const g = new Generator(seed);
  const rows: string[] = [];
  for (let i = 0; i < n; i++) {
    const before = Array.from({ length: g.int(0, 14) }, () => FILLER[g.int(0, FILLER.length)]!);
    const after = Array.from({ length: g.int(0, 6) }, () => FILLER[g.int(0, FILLER.length)]!);
    const answer = FILLER[g.int(0, FILLER.length)]!;
    const prefix = [...before, 'the', 'key', 'is'].join(' ') + ' ';
    const context = prefix + [answer, ...after].join(' ');
    rows.push(JSON.stringify({ question: 'what is the key ?', context, answers: { text: [answer], answer_start: [prefix.length] } }));
  }
  return rows.join('\n') + '\n';
}

let root = '';
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'weft-ft-qa-'));
  const bert = new BertForPreTraining(
    { vocabSize: WORDS.length, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64, maxPositionEmbeddings: 32, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 },
    { generator: new Generator(4) },
  );
  await bert.savePretrained(join(root, 'bert'));
  writeFileSync(join(root, 'bert', 'tokenizer.json'), JSON.stringify(tokenizerJSON()));
  writeFileSync(join(root, 'train.jsonl'), dataset(240, 1));
  writeFileSync(join(root, 'eval.jsonl'), dataset(50, 2));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('weft finetune --task qa', () => {
  it.each([['full'], ['lora:8']])('bert with %s learns the span and predict reproduces EM and F1', async (method) => {
    const out = join(root, `out-${method.replace(':', '')}`);
    const r = await runFinetune({
      model: join(root, 'bert'),
      task: 'qa',
      train: join(root, 'train.jsonl'),
      eval: join(root, 'eval.jsonl'),
      method: parseMethod(method),
      out,
      epochs: method.startsWith('lora') ? 14 : 12,
      lr: method.startsWith('lora') ? 3e-2 : 3e-3,
      // 5 question tokens + 3 markers: 16 leaves 8 context tokens, so long contexts take several windows.
      maxLength: 16,
      docStride: 3,
      maxAnswerLength: 4,
    });
    // Chance is ~1/10 per position; learning finds the word after "is" (LoRA on a frozen random
    // encoder less reliably).
    expect(r.metrics.exact_match).toBeGreaterThan(method === 'full' ? 0.95 : 0.75);
    expect(r.metrics.f1).toBeGreaterThan(method === 'full' ? 0.95 : 0.75);

    let printed = '';
    const program = new Command().exitOverride();
    registerFinetune(program, { stdout: { write: (s: string) => (printed += s) }, stderr: { write: () => true } });
    await program.parseAsync(['node', 'weft', 'predict', '--model', join(root, 'bert'), '--adapter', out, '--input', join(root, 'eval.jsonl')]);
    const answers = printed.split('\n').slice(0, -1);
    const gold = readFileSync(join(root, 'eval.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { answers: { text: string[] } }).answers.text);
    const s = qaScores(answers, gold);
    expect(s.exact_match).toBeCloseTo(r.metrics.exact_match!, 10);
    expect(s.f1).toBeCloseTo(r.metrics.f1!, 10);
  }, 180_000);
});
