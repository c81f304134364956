import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/tokenizers/tokenizer.js';
import type { JsonObject } from '../../src/tokenizers/types.js';
import type { TrainerProgress } from '../../src/tokenizers/trainers/common.js';
import { countWords, linesWithEndings, preTokenizeForTraining, toByteLevelString } from '../../src/tokenizers/trainers/common.js';
import { trainingPipeline, trainTokenizer, trainTokenizerFromFiles, type TrainableType } from '../../src/tokenizers/trainers/index.js';

const SHAKESPEARE = readFileSync(new URL('../../data/tinyshakespeare.txt', import.meta.url), 'utf8');
const ZH_PATH = new URL('../../../shared/data/zh/sanguo_yanyi.txt', import.meta.url);
const ZH = existsSync(ZH_PATH) ? readFileSync(ZH_PATH, 'utf8').slice(0, 6000) : '第一回　宴桃园豪杰三结义　斩黄巾英雄首立功\n话说天下大势，分久必合，合久必分。\n';
const CORPUS = [SHAKESPEARE.slice(0, 40_000), ZH];

/** Texts the tokenizers never saw: held-out Shakespeare, Chinese, code, emoji, whitespace runs, accents. */
const PROBES = [
  SHAKESPEARE.slice(200_000, 203_000),
  '话说天下大势，分久必合，合久必分。周末七国分争，并入于秦。',
  'function f(x) {\n\treturn x  +  1;   // done\n}\n\n\n',
  'emoji 😀👍🏽 and naïve café — “quotes” — ＦＵＬＬＷＩＤＴＨ',
  '    leading spaces, trailing   ',
  'Ünïcödé ÅNGSTRÖM straße',
];

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'weft-tok-train-'));
}

const trained = new Map<TrainableType, Tokenizer>();
function trainedOf(type: TrainableType): Tokenizer {
  let t = trained.get(type);
  if (t === undefined) {
    t = trainTokenizer(CORPUS, { type, vocabSize: type === 'unigram' ? 1500 : 1200 });
    trained.set(type, t);
  }
  return t;
}

describe.each(['bpe', 'wordpiece', 'unigram'] as const)('trained %s tokenizer', (type) => {
  it('saves tokenizer.json, loads back and gives identical ids, tokens and offsets', () => {
    const tok = trainedOf(type);
    const dir = tempDir();
    tok.save(dir);
    const file = join(dir, 'tokenizer.json');
    const json = JSON.parse(readFileSync(file, 'utf8')) as JsonObject;
    expect(Object.keys(json)).toEqual(['version', 'truncation', 'padding', 'added_tokens', 'normalizer', 'pre_tokenizer', 'post_processor', 'decoder', 'model']);
    const loaded = Tokenizer.fromFile(file);
    expect(loaded.vocabSize).toBe(tok.vocabSize);
    expect(JSON.stringify(loaded.toJSON())).toBe(JSON.stringify(tok.toJSON()));
    for (const text of PROBES) {
      const a = tok.encodeFull(text);
      const b = loaded.encodeFull(text);
      expect(b.ids).toEqual(a.ids);
      expect(b.tokens).toEqual(a.tokens);
      expect(b.offsets).toEqual(a.offsets);
      expect(loaded.encode(text)).toEqual(a.ids);
      expect(loaded.decode(b.ids)).toBe(tok.decode(a.ids));
    }
  });

  it('has exactly the requested vocabulary size with the special tokens first and marked special', () => {
    const tok = trainedOf(type);
    const size = type === 'unigram' ? 1500 : 1200;
    expect(tok.vocabSize).toBe(size);
    const ids = [...tok.getVocab().values()].sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: size }, (_, i) => i));
    const specials = { bpe: ['<|endoftext|>'], wordpiece: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'], unigram: ['<unk>', '<s>', '</s>'] }[type];
    specials.forEach((s, i) => expect(tok.tokenToId(s)).toBe(i));
    expect(tok.addedTokens.map((t) => [t.content, t.id, t.special])).toEqual(specials.map((s, i) => [s, i, true]));
    // A special token in the text is one token, never split.
    expect(tok.encode(`a ${specials[0]} b`, { addSpecialTokens: false })).toContain(0);
  });
});

describe('byte-level BPE (GPT-2 pipeline)', () => {
  it('round-trips any text exactly, including characters never seen in training', () => {
    const tok = trainedOf('bpe');
    for (const text of [...PROBES, '\u0000\u0001 \uFFFD 𝔘𝔫𝔦 \r\n\t', '']) expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('is the GPT-2 layout: 256 byte tokens after the special token, merges for the rest, learned from the corpus', () => {
    const json = trainedOf('bpe').toJSON();
    const model = json.model as JsonObject;
    expect(model.type).toBe('BPE');
    expect((model.merges as string[]).length).toBe(1200 - 1 - 256);
    expect(json.pre_tokenizer).toEqual({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true });
    expect((json.decoder as JsonObject).type).toBe('ByteLevel');
    expect((json.post_processor as JsonObject).type).toBe('ByteLevel');
    const vocab = model.vocab as Record<string, number>;
    expect(vocab['Ġthe']).toBeGreaterThan(256);
    expect(vocab[toByteLevelString('，')]).toBeGreaterThan(256); // a frequent Chinese punctuation mark became one token
    expect(trainedOf('bpe').encode(' the')).toEqual([vocab['Ġthe']]);
  });

  it('counts words from the fast splitter exactly as the full pre-tokenizer pipeline does', () => {
    const pipeline = trainingPipeline('bpe');
    const text = CORPUS.join('') + ' 😀 \n\n  x';
    const fast = countWords(linesWithEndings(text), pipeline);
    const slow = new Map<string, number>();
    for (const line of linesWithEndings(text)) for (const w of preTokenizeForTraining(pipeline, line)) slow.set(w, (slow.get(w) ?? 0) + 1);
    expect(new Map([...fast].sort())).toEqual(new Map([...slow].sort()));
  });

  it('minFrequency: with a high threshold training stops early, below the requested size', () => {
    const tok = trainTokenizer(['ab ab ab ab cd cd xy\n'], { type: 'bpe', vocabSize: 1000, minFrequency: 3 });
    // Words "ab" ×1 (first, no space), "Ġab" ×3, "Ġcd" ×2, "Ġxy" ×1: only pairs seen ≥ 3 times merge.
    const merges = (tok.toJSON().model as JsonObject).merges;
    expect(merges).toEqual(['a b', 'Ġ ab']);
    expect(tok.vocabSize).toBe(1 + 256 + 2);
  });

  it('custom special tokens replace the defaults', () => {
    const tok = trainTokenizer(['hello world\n'], { type: 'bpe', vocabSize: 300, specialTokens: ['<pad>', '<eos>'] });
    expect(tok.tokenToId('<pad>')).toBe(0);
    expect(tok.tokenToId('<eos>')).toBe(1);
    expect(tok.tokenToId('<|endoftext|>')).toBeUndefined();
  });

  it('reports progress for counting and merging, ending at done = total', () => {
    const seen: TrainerProgress[] = [];
    trainTokenizer([SHAKESPEARE.slice(0, 5000)], { type: 'bpe', vocabSize: 400, onProgress: (p) => seen.push({ ...p }) });
    const phases = [...new Set(seen.map((p) => p.phase))];
    expect(phases).toEqual(['count words', 'merges']);
    const lastCount = seen.filter((p) => p.phase === 'count words').at(-1)!;
    expect(lastCount).toEqual({ phase: 'count words', done: 5000, total: 5000 });
    const lastMerge = seen.filter((p) => p.phase === 'merges').at(-1)!;
    expect(lastMerge.done).toBe(lastMerge.total);
  });
});

describe('WordPiece (BERT pipeline)', () => {
  it('lowercases, strips accents, splits Chinese characters, frames with [CLS] … [SEP] and uses ## pieces', () => {
    const tok = trainedOf('wordpiece');
    const e = tok.encodeFull('The KING’s crown, 三国!');
    expect(e.tokens[0]).toBe('[CLS]');
    expect(e.tokens.at(-1)).toBe('[SEP]');
    expect(e.tokens).toContain('the');
    expect(e.tokens).toContain('三');
    expect(e.tokens).toContain('国');
    expect(tok.encodeFull('Naïve').tokens.join(' ')).toBe(tok.encodeFull('naive').tokens.join(' '));
    const vocab = [...tok.getVocab().keys()];
    expect(vocab.some((t) => t.startsWith('##'))).toBe(true);
    expect(tok.decode(tok.encode('the king is dead'))).toBe('the king is dead');
  });

  it('unknown characters become [UNK]; without [UNK] among the special tokens training refuses', () => {
    const tok = trainedOf('wordpiece');
    expect(tok.encodeFull('ᚠᚢᚦ', null, { addSpecialTokens: false }).tokens).toEqual(['[UNK]']);
    expect(() => trainTokenizer(['a b\n'], { type: 'wordpiece', vocabSize: 50, specialTokens: ['[PAD]'] })).toThrow(/must include \[UNK\]/);
  });

  it('limitAlphabet keeps only the most frequent characters', () => {
    const tok = trainTokenizer(['aaaa bbb cc d\n'], { type: 'wordpiece', vocabSize: 100, limitAlphabet: 2, minFrequency: 1 });
    const singles = [...tok.getVocab().keys()].filter((t) => !t.startsWith('[') && !t.startsWith('##') && t.length === 1);
    expect(singles.sort()).toEqual(['a', 'b']);
  });
});

describe('Unigram (SentencePiece pipeline)', () => {
  it('keeps every character of the corpus, scores sorted after the special tokens, and never needs <unk> on training text', () => {
    const tok = trainedOf('unigram');
    const model = tok.toJSON().model as JsonObject;
    const vocab = model.vocab as [string, number][];
    expect(model.unk_id).toBe(0);
    const chars = new Set<string>();
    for (const t of CORPUS) for (const line of linesWithEndings(t)) for (const w of preTokenizeForTraining(trainingPipeline('unigram'), line)) for (const c of w) chars.add(c);
    const pieces = new Set(vocab.map(([p]) => p));
    for (const c of chars) expect(pieces.has(c)).toBe(true);
    const scores = vocab.slice(3).map(([, s]) => s);
    for (let i = 1; i < scores.length; i++) expect(scores[i]).toBeLessThanOrEqual(scores[i - 1]);
    expect(scores.every((s) => s < 0)).toBe(true);
    const ids = tok.encode(CORPUS[0].slice(0, 3000));
    expect(ids).not.toContain(0);
    expect(vocab.some(([p]) => p === '▁the')).toBe(true);
  });

  it('decodes what it encodes (text with single spaces, after NFKC)', () => {
    const tok = trainedOf('unigram');
    for (const text of ['First Citizen: before we proceed any further, hear me speak.', '话说天下大势，分久必合。']) {
      expect(tok.decode(tok.encode(text))).toBe(text.normalize('NFKC'));
    }
  });
});

describe('trainTokenizerFromFiles', () => {
  it('reads several files line by line and fails clearly on a missing one', () => {
    const dir = tempDir();
    const a = join(dir, 'a.txt');
    const b = join(dir, 'b.txt');
    writeFileSync(a, 'low lower lowest\n');
    writeFileSync(b, 'new newer newest\n');
    const tok = trainTokenizerFromFiles([a, b], { type: 'bpe', vocabSize: 280, minFrequency: 2 });
    expect(tok.encode(' newest lowest').length).toBeLessThan(' newest lowest'.length);
    expect(() => trainTokenizerFromFiles([join(dir, 'missing.txt')], { type: 'bpe', vocabSize: 300 })).toThrow(/cannot read input file '.*missing\.txt'/);
    expect(() => trainTokenizerFromFiles([], { type: 'bpe', vocabSize: 300 })).toThrow(/no input files/);
  });
});
