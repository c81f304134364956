/**
 * Token classification: the head matches HF BertForTokenClassification (logits, loss, every
 * gradient; fixture from scripts/fixtures/finetune_heads_hf.py), labels sit on each word's first
 * sub-token, the entity metric matches seqeval, and `weft finetune --task tokens` learns a tagging
 * task on tiny BERT and GPT models with `weft predict` reproducing its eval F1.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import { noGrad } from '../../../src/tensor/autograd.js';
import { loadTokenizer } from '../../../src/tokenizers/load.js';
import { bertTokenizer, bertTokenizerFromVocab } from '../../../src/tokenizers/formats/bert-vocab.js';
import { registerFinetune } from '../../../src/cli/finetune.js';
import { parseMethod, runFinetune } from '../../../src/train/finetune/run.js';
import { TOKEN_IGNORE, Tagger, TokenClassifier, encodeWords, entityScores, getEntities, specialIds, taggedWords } from '../../../src/train/finetune/tokens.js';
import { type ArraySpec, decodeArray, mismatch } from '../../tensor/fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'finetune');

interface HeadFx {
  input_ids: ArraySpec;
  token_type_ids: ArraySpec;
  attention_mask: ArraySpec;
  labels: ArraySpec;
  tokens: { logits: ArraySpec; loss: number; grads: Record<string, ArraySpec> };
  seqeval: { true: string[][]; pred: string[][]; precision: number; recall: number; f1: number }[];
}
const fx = (): HeadFx => JSON.parse(readFileSync(join(DIR, 'heads.json'), 'utf8')) as HeadFx;
const t = (spec: ArraySpec): Tensor => Tensor.fromArray(decodeArray(spec), spec.shape, spec.dtype === 'i32' ? 'i32' : 'f32');
const specialsOnly = { encodeFull: () => ({ ids: [], tokens: [], offsets: [], typeIds: [], attentionMask: [], specialTokensMask: [], sequenceIds: [], overflowing: [] }), tokenToId: (s: string) => ({ '[PAD]': 0, '[CLS]': 1, '[SEP]': 2 })[s] };

describe('TokenClassifier parity with HF BertForTokenClassification', () => {
  it('gives the same logits, loss and gradients on the same weights', async () => {
    const f = fx();
    const model = await loadPretrained(join(DIR, 'bert'));
    const clf = new TokenClassifier(model, specialsOnly, 5);
    const head = await loadSafetensors(join(DIR, 'tokens.safetensors'));
    clf.classifier.loadStateDict(new Map([...head.tensors].map(([k, v]) => [k.replace(/^classifier\./, ''), v])));
    clf.eval();
    const ids = t(f.input_ids);
    const mask = t(f.attention_mask);
    const types = t(f.token_type_ids);
    expect(mismatch(clf.forward(ids, mask, types).dense(), decodeArray(f.tokens.logits))).toBeNull();
    const loss = clf.loss({ ids, attentionMask: mask, labels: t(f.labels) }, types);
    expect(loss.item()).toBeCloseTo(f.tokens.loss, 5);
    loss.backward();
    const params = new Map([...clf.model.namedParameters(), ...clf.classifier.namedParameters('classifier')]);
    const names = Object.keys(f.tokens.grads);
    expect(names.length).toBeGreaterThan(30);
    for (const name of names) {
      const p = params.get(name);
      expect(p, name).toBeDefined();
      expect(mismatch(p!.grad!.dense(), decodeArray(f.tokens.grads[name]!)), name).toBeNull();
    }
  });
});

describe('word → sub-token label alignment', () => {
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'new', '##york', 'is', 'big', 'ci', '##ty', '.'];
  const tok = bertTokenizer(new Map(vocab.map((w, i) => [w, i])));

  it('labels the first sub-token of each word and ignores the rest, [CLS] and [SEP]', () => {
    const special = specialIds(tok, 'masked');
    // "Newyork" → new ##york; "city." → ci ##ty . (the BERT pre-tokenizer splits the period off).
    const ex = encodeWords(tok, special, ['Newyork', 'is', 'big', 'city.'], [1, 0, 0, 2], 32);
    expect(ex.ids).toEqual([2, 5, 6, 7, 8, 9, 10, 11, 3]);
    const I = TOKEN_IGNORE;
    expect(ex.labels).toEqual([I, 1, I, 0, 0, 2, I, I, I]);
    expect(ex.firstToken).toEqual([1, 3, 4, 5]);
  });

  const VOCAB = join(DIR, '..', '..', '..', '..', 'shared', 'data', 'tokenizers', 'bert-base-uncased', 'vocab.txt');
  it.skipIf(!existsSync(VOCAB))('puts labels where HF word_ids() does on bert-base-uncased (needs ../shared/data)', () => {
    const ref = JSON.parse(readFileSync(join(DIR, 'word_ids.json'), 'utf8')) as { cases: { words: string[]; ids: number[]; word_ids: number[] }[] };
    const bert = bertTokenizerFromVocab(VOCAB);
    for (const c of ref.cases) {
      const ex = encodeWords(bert, { cls: null, sep: null, pad: 0 }, c.words, c.words.map((_, i) => i), 512);
      expect(ex.ids, c.words.join(' ')).toEqual(c.ids);
      // HF's run_ner rule: the label goes where a word id first appears.
      expect(ex.labels).toEqual(c.word_ids.map((w, i) => (i === c.word_ids.indexOf(w) ? w : TOKEN_IGNORE)));
    }
  });

  it('truncates to max-length with [SEP] kept; words cut off have no position', () => {
    const ex = encodeWords(tok, specialIds(tok, 'masked'), ['Newyork', 'is', 'big'], [1, 0, 0], 4);
    expect(ex.ids).toEqual([2, 5, 6, 3]);
    expect(ex.firstToken).toEqual([1, -1, -1]);
  });

  it('reads {text, entities} records as BIO-tagged words', () => {
    const r = { text: 'I flew to New York  today', entities: [{ start: 10, end: 18, label: 'LOC' }] };
    expect(taggedWords(r, 0, 'x', { tokens: 'tokens', tags: 'tags', text: 'text' })).toEqual({ words: ['I', 'flew', 'to', 'New', 'York', 'today'], tags: ['O', 'O', 'O', 'B-LOC', 'I-LOC', 'O'] });
    expect(() => taggedWords({ tokens: ['a', 'b'], tags: ['O'] }, 2, 'f.jsonl', { tokens: 'tokens', tags: 'tags', text: 'text' })).toThrow(/f.jsonl: record 3 has 2 words but 1 tags/);
  });
});

describe('entity-level metric', () => {
  it('matches seqeval (default mode, micro average) on BIO and IOBES cases', () => {
    for (const c of fx().seqeval) {
      const s = entityScores(c.true, c.pred);
      expect(s.precision, JSON.stringify(c.pred)).toBeCloseTo(c.precision, 10);
      expect(s.recall, JSON.stringify(c.pred)).toBeCloseTo(c.recall, 10);
      expect(s.f1, JSON.stringify(c.pred)).toBeCloseTo(c.f1, 10);
    }
    expect(getEntities(['O', 'I-PER', 'I-PER', 'B-LOC', 'I-ORG'])).toEqual([
      ['PER', 1, 2],
      ['LOC', 3, 3],
      ['ORG', 4, 4],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// End to end
// ---------------------------------------------------------------------------------------------

const FILLER = Array.from({ length: 16 }, (_, i) => `w${i}`);
const WORDS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'new', 'york', 'good', 'bad', ...FILLER];

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

/** Filler words with "new york" (LOC), "good" (POS) and "bad" (NEG) mixed in. */
function dataset(n: number, seed: number): string {
  const g = new Generator(seed);
  const rows: string[] = [];
  for (let i = 0; i < n; i++) {
    const tokens: string[] = [];
    const tags: string[] = [];
    const len = 4 + g.int(0, 5);
    const add = (words: string[], labels: string[]): void => {
      tokens.push(...words);
      tags.push(...labels);
    };
    while (tokens.length < len) {
      const k = g.int(0, 6);
      if (k === 0) add(['new', 'york'], ['B-LOC', 'I-LOC']);
      else if (k === 1) add(['good'], ['B-POS']);
      else if (k === 2) add(['bad'], ['B-NEG']);
      else add([FILLER[g.int(0, FILLER.length)]!], ['O']);
    }
    rows.push(JSON.stringify({ words: tokens, labels: tags }));
  }
  return rows.join('\n') + '\n';
}

let root = '';
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'weft-ft-tokens-'));
  const tok = JSON.stringify(tokenizerJSON());
  const bert = new BertForPreTraining(
    { vocabSize: WORDS.length, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64, maxPositionEmbeddings: 32, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 },
    { generator: new Generator(4) },
  );
  await bert.savePretrained(join(root, 'bert'));
  writeFileSync(join(root, 'bert', 'tokenizer.json'), tok);
  const gpt = new GPT({ vocabSize: WORDS.length, blockSize: 32, nLayer: 2, nHead: 2, nEmbd: 32, dropout: 0 }, { generator: new Generator(3) });
  await gpt.savePretrained(join(root, 'gpt'));
  writeFileSync(join(root, 'gpt', 'tokenizer.json'), tok);
  writeFileSync(join(root, 'train.jsonl'), dataset(200, 1));
  writeFileSync(join(root, 'eval.jsonl'), dataset(50, 2));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('weft finetune --task tokens', () => {
  it.each([
    ['bert', 'full'],
    ['bert', 'lora:4'],
    ['gpt', 'freeze:1'],
  ])('%s with %s learns to tag entities and predict reproduces its F1', async (family, method) => {
    const out = join(root, `out-${family}-${method.replace(':', '')}`);
    const r = await runFinetune({
      model: join(root, family),
      task: 'tokens',
      train: join(root, 'train.jsonl'),
      eval: join(root, 'eval.jsonl'),
      method: parseMethod(method),
      out,
      epochs: 5,
      lr: method.startsWith('lora') ? 1e-2 : 3e-3,
      tokensField: 'words',
      tagsField: 'labels',
    });
    // Chance-level tagging finds almost no exact entity spans; learning finds nearly all.
    expect(r.metrics.f1).toBeGreaterThan(0.9);
    expect(r.metrics.accuracy).toBeGreaterThan(0.9);
    if (method.startsWith('lora')) expect(r.trainable).toBeLessThan(r.total / 4);

    let printed = '';
    const program = new Command().exitOverride();
    registerFinetune(program, { stdout: { write: (s: string) => (printed += s) }, stderr: { write: () => true } });
    await program.parseAsync(['node', 'weft', 'predict', '--model', join(root, family), '--adapter', out, '--input', join(root, 'eval.jsonl'), '--json']);
    const got = printed.trim().split('\n').map((l) => (JSON.parse(l) as { tags: string[] }).tags);
    const gold = readFileSync(join(root, 'eval.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { labels: string[] }).labels);
    expect(entityScores(gold, got).f1).toBeCloseTo(r.metrics.f1!, 10);
  }, 180_000);

  it('runs from the command line on {text, entities} records and prints word/TAG', async () => {
    // The same data as character-span entities over the text.
    const asEntities = (file: string): string =>
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => {
          const { words, labels } = JSON.parse(l) as { words: string[]; labels: string[] };
          const text = words.join(' ');
          const entities: { start: number; end: number; label: string }[] = [];
          let pos = 0;
          words.forEach((w, i) => {
            const tag = labels[i]!;
            if (tag.startsWith('B-')) entities.push({ start: pos, end: pos + w.length, label: tag.slice(2) });
            else if (tag.startsWith('I-')) entities.at(-1)!.end = pos + w.length;
            pos += w.length + 1;
          });
          return JSON.stringify({ sentence: text, entities });
        })
        .join('\n');
    writeFileSync(join(root, 'train-ents.jsonl'), asEntities(join(root, 'train.jsonl')));
    writeFileSync(join(root, 'eval-ents.jsonl'), asEntities(join(root, 'eval.jsonl')));
    const out = join(root, 'out-cli');
    let printed = '';
    const io = { stdout: { write: (s: string) => (printed += s) }, stderr: { write: () => true } };
    const program = new Command().exitOverride();
    registerFinetune(program, io);
    await program.parseAsync(['node', 'weft', 'finetune', '--model', join(root, 'bert'), '--task', 'tokens', '--train', join(root, 'train-ents.jsonl'), '--eval', join(root, 'eval-ents.jsonl'), '--method', 'full', '--out', out, '--epochs', '5', '--lr', '3e-3', '--text-field', 'sentence', '--json']);
    const done = printed
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event?: string; metrics?: Record<string, number> })
      .find((e) => e.event === 'done')!;
    expect(done.metrics!.f1).toBeGreaterThan(0.9);
    printed = '';
    writeFileSync(join(root, 'sentences.txt'), 'w1 new york w2 good\n');
    const predict = new Command().exitOverride();
    registerFinetune(predict, io);
    await predict.parseAsync(['node', 'weft', 'predict', '--model', out, '--input', join(root, 'sentences.txt')]);
    expect(printed.trim()).toBe('w1/O new/B-LOC york/I-LOC w2/O good/B-POS');
  }, 180_000);

  it("caps inputs at the model's positions; words past them get O", () => {
    const tok = loadTokenizer(join(root, 'gpt'));
    const gpt = new GPT({ vocabSize: WORDS.length, blockSize: 8, nLayer: 1, nHead: 1, nEmbd: 8, dropout: 0 });
    const tagger = new Tagger(new TokenClassifier(gpt, tok, 3), tok, ['B-X', 'I-X', 'O'], 128);
    const words = Array.from({ length: 20 }, (_, i) => FILLER[i % FILLER.length]!);
    const tags = noGrad(() => tagger.tag([words]))[0]!;
    expect(tags).toHaveLength(20);
    expect(tags.slice(8)).toEqual(Array<string>(12).fill('O'));
  });

  it('refuses prompt tuning for tagging and names the way out', async () => {
    await expect(
      runFinetune({ model: join(root, 'bert'), task: 'tokens', train: join(root, 'train.jsonl'), eval: join(root, 'eval.jsonl'), method: parseMethod('prompt:4'), out: join(root, 'x'), tokensField: 'words', tagsField: 'labels' }),
    ).rejects.toThrow(/--task tokens supports --method full, freeze:N and lora:R/);
  });
});
