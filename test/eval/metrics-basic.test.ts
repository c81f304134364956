/** Hand-computed values and error behaviour for the metrics (the reference file covers the rest). */
import { describe, expect, it } from 'vitest';
import {
  accuracy,
  averageRanks,
  bitsPerByte,
  bytePerplexity,
  chrf,
  ciderD,
  corpusBleu,
  countBytes,
  countWords,
  exactMatch,
  makeDisjointWindow,
  matthewsCorrelation,
  meanPassAtK,
  normalizeAnswer,
  passAtK,
  pearson,
  perplexity,
  porterStem,
  precisionRecallF1,
  rollingLoglikelihood,
  rollingTokenWindows,
  rouge,
  sentenceBleu,
  sentenceChrf,
  spearman,
  squadF1,
  tokenPerplexity,
  wordPerplexity,
} from '../../src/eval/index.js';
import { tokenize13a, tokenizeZh } from '../../src/eval/metrics/sacrebleu-tokenizers.js';
import { pyRstrip, pySplit } from '../../src/eval/metrics/text.js';

describe('Python string helpers', () => {
  it('split and strip on CPython whitespace, not JavaScript\'s', () => {
    expect(pySplit('  a\u001fb\u0085c\u3000d  ')).toEqual(['a', 'b', 'c', 'd']);
    // U+FEFF is whitespace to JavaScript's \s but not to Python's str.split().
    expect(pySplit('a\ufeffb')).toEqual(['a\ufeffb']);
    expect(pyRstrip('x \u00a0\n')).toBe('x');
    expect(pySplit('')).toEqual([]);
  });
});

describe('classification metrics', () => {
  const pred = [1, 0, 1, 1];
  const gold = [1, 1, 1, 0];
  it('accuracy', () => {
    expect(accuracy(pred, gold)).toBe(0.5);
  });
  it('binary precision / recall / F1 (tp=2, fp=1, fn=1)', () => {
    const s = precisionRecallF1(pred, gold);
    expect(s.precision).toBeCloseTo(2 / 3, 15);
    expect(s.recall).toBeCloseTo(2 / 3, 15);
    expect(s.f1).toBeCloseTo(2 / 3, 15);
    // positive label 0: tp=0 -> all zero (sklearn's zero_division=0)
    expect(precisionRecallF1(pred, gold, { positiveLabel: 0 })).toEqual({ precision: 0, recall: 0, f1: 0 });
  });
  it('macro and micro averages', () => {
    const p = ['a', 'b', 'c', 'a'];
    const g = ['a', 'b', 'b', 'c'];
    // per label (P, R, F): a (1/2, 1, 2/3), b (1, 1/2, 2/3), c (0, 0, 0)
    const macro = precisionRecallF1(p, g, { average: 'macro' });
    expect(macro.precision).toBeCloseTo(0.5, 15);
    expect(macro.recall).toBeCloseTo(0.5, 15);
    expect(macro.f1).toBeCloseTo(4 / 9, 15);
    const micro = precisionRecallF1(p, g, { average: 'micro' });
    expect(micro).toEqual({ precision: 0.5, recall: 0.5, f1: 0.5 });
    expect(() => precisionRecallF1(p, g)).toThrow(/binary' needs at most 2 labels, found 3/);
  });
  it('Matthews correlation', () => {
    // (tp*tn - fp*fn) / sqrt(...) = (0 - 1) / sqrt(3*3*1*1)
    expect(matthewsCorrelation(pred, gold)).toBeCloseTo(-1 / 3, 15);
    expect(matthewsCorrelation([1, 0, 1, 0], [1, 0, 1, 0])).toBe(1);
    expect(matthewsCorrelation([1, 1, 1, 1], [1, 0, 1, 0])).toBe(0);
  });
  it('Pearson and Spearman (average ranks for ties)', () => {
    expect(pearson([1, 2, 3, 4], [2, 4, 5, 9])).toBeCloseTo(11 / Math.sqrt(130), 14);
    expect(averageRanks([10, 20, 20, 5])).toEqual([2, 3.5, 3.5, 1]);
    expect(spearman([1, 2, 2, 3], [1, 3, 2, 4])).toBeCloseTo(3 / Math.sqrt(10), 14);
    expect(Number.isNaN(pearson([1, 1, 1], [1, 2, 3]))).toBe(true);
  });
  it('rejects mismatched inputs', () => {
    expect(() => accuracy([1, 2], [1])).toThrow(/accuracy: 2 predictions but 1 references/);
    expect(() => pearson([], [])).toThrow(/no items/);
  });
});

describe('SQuAD exact match and token F1', () => {
  it('normalize_answer', () => {
    expect(normalizeAnswer('The  Cat, sat!')).toBe('cat sat');
    expect(normalizeAnswer('theatre an apple')).toBe('theatre apple');
    expect(normalizeAnswer('Éa the')).toBe('éa');
  });
  it('exact match and F1', () => {
    expect(exactMatch('the cat sat', 'Cat sat.')).toBe(1);
    expect(exactMatch('a dog', ['cat', 'the dog'])).toBe(1);
    expect(exactMatch('dog', 'cat')).toBe(0);
    // pred [red, cat], gold [big, red, cat]: P = 1, R = 2/3
    expect(squadF1('a red cat', 'the big red cat')).toBeCloseTo(0.8, 15);
    expect(squadF1('a red cat', ['dog', 'the big red cat'])).toBeCloseTo(0.8, 15);
    expect(squadF1('', '')).toBe(1);
    expect(squadF1('', 'x')).toBe(0);
    expect(squadF1('the', 'a')).toBe(1); // both normalize to no tokens
  });
});

describe('perplexity family (lm-eval definitions)', () => {
  it('token perplexity and per-document perplexity', () => {
    expect(tokenPerplexity([Math.log(0.5), Math.log(0.25)])).toBeCloseTo(Math.sqrt(8), 14);
    expect(perplexity([-2, -4])).toBeCloseTo(Math.exp(3), 12);
    expect(() => tokenPerplexity([0.5])).toThrow(/must be finite and <= 0/);
  });
  it('word / byte perplexity and bits per byte weight by the totals', () => {
    const items = [
      { loglikelihood: -10, weight: 5 },
      { loglikelihood: -6, weight: 3 },
    ];
    expect(wordPerplexity(items)).toBeCloseTo(Math.exp(2), 12);
    expect(bytePerplexity(items)).toBeCloseTo(Math.exp(2), 12);
    expect(bitsPerByte(items)).toBeCloseTo(2 / Math.LN2, 14);
  });
  it('counts words as re.split(r"\\s+") and bytes as UTF-8', () => {
    expect(countWords('hello world')).toBe(2);
    expect(countWords(' a b ')).toBe(4);
    expect(countBytes('é€')).toBe(5);
  });
  it('rolling windows predict every token exactly once', () => {
    const tokens = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const windows = rollingTokenWindows(tokens, 0, 4, 1);
    expect(windows).toEqual([
      { context: [0, 1, 2, 3], continuation: [1, 2, 3, 4] },
      { context: [4, 5, 6, 7], continuation: [5, 6, 7, 8] },
      { context: [6, 7, 8, 9], continuation: [9, 10] },
    ]);
    expect(windows.map(makeDisjointWindow).map((w) => w.context)).toEqual([[0], [4], [6, 7, 8]]);
    const seen: number[] = [];
    const res = rollingLoglikelihood(tokens, { prefixToken: 0, maxSeqLen: 4 }, (ctx, cont) => {
      // the model input is context + continuation minus its last token: at most maxSeqLen tokens
      expect(ctx.length + cont.length - 1).toBeLessThanOrEqual(4);
      seen.push(...cont);
      return cont.map((t) => -t / 100);
    });
    expect(seen).toEqual(tokens);
    expect(res.loglikelihood).toBeCloseTo(-0.55, 14);
    expect(rollingTokenWindows([], 0, 4)).toEqual([]);
    expect(() => rollingTokenWindows(tokens, 0, 4, 5)).toThrow(/contextLen/);
  });
});

describe('pass@k', () => {
  it('matches 1 - C(n-c,k)/C(n,k)', () => {
    expect(passAtK(4, 2, 2)).toBeCloseTo(5 / 6, 15);
    expect(passAtK(10, 3, 1)).toBeCloseTo(0.3, 15);
    expect(passAtK(5, 0, 3)).toBe(0);
    expect(passAtK(5, 3, 3)).toBe(1); // n - c < k
    // C(5000, 10) overflows nothing here: 1 - (4999/5000)^... product form
    expect(passAtK(5000, 1, 10)).toBeCloseTo(10 / 5000, 15);
    expect(meanPassAtK([4, 2], [2, 1], [1, 2, 3])).toEqual({ 'pass@1': 0.5, 'pass@2': (passAtK(4, 2, 2) + 1) / 2 });
  });
  it('rejects impossible counts', () => {
    expect(() => passAtK(3, 4, 1)).toThrow(/c \(correct samples\)/);
    expect(() => passAtK(3, 1, 4)).toThrow(/exceeds/);
  });
});

describe('BLEU (hand-computed)', () => {
  // hyp "a b c d" vs ref "a b c e": matches 3/4, 2/3, 1/2, 0/1
  it('smoothing methods', () => {
    const exp = corpusBleu(['a b c d'], [['a b c e']]);
    expect(exp.counts).toEqual([3, 2, 1, 0]);
    expect(exp.totals).toEqual([4, 3, 2, 1]);
    expect(exp.precisions[3]).toBe(50); // 100 / (2 * 1)
    expect(exp.score).toBeCloseTo(59.46035575013605, 12);
    expect(corpusBleu(['a b c d'], [['a b c e']], { smoothMethod: 'floor' }).score).toBeCloseTo(39.76353643835254, 12);
    const addk = corpusBleu(['a b c d'], [['a b c e']], { smoothMethod: 'add-k' });
    expect(addk.counts).toEqual([3, 3, 2, 1]);
    expect(addk.score).toBeCloseTo(65.80370064762461, 12);
    expect(corpusBleu(['a b c d'], [['a b c e']], { smoothMethod: 'none' }).score).toBe(0);
  });
  it('brevity penalty, effective order, clipping over several references', () => {
    const s = sentenceBleu('a b', ['a b c d']);
    expect(s.bp).toBeCloseTo(Math.exp(-1), 15);
    expect(s.score).toBeCloseTo(100 * Math.exp(-1), 12);
    expect(corpusBleu(['a b'], [['a b c d']]).score).toBe(0); // no effective order in corpus BLEU
    const clip = corpusBleu(['the the the the'], [['the cat', 'the the dog']]);
    expect(clip.counts[0]).toBe(2);
    expect(clip.refLen).toBe(3); // |4-3| < |4-2|
    expect(corpusBleu(['x y z'], [['x y', 'x y z w']]).refLen).toBe(2); // tie: the shorter
    expect(sentenceBleu('The cat sat on the mat.', ['The cat sat on the mat.']).score).toBeCloseTo(100, 10);
    expect(sentenceBleu('THE CAT', ['the cat'], { lowercase: true }).score).toBeCloseTo(100, 10);
  });
  it('13a and zh tokenizers keep sacrebleu\'s quirks', () => {
    expect(tokenize13a('well-\nknown &amp; 3.5, x.')).toBe('wellknown & 3.5 , x .');
    // sacrebleu's u'\u20000' bound is U+2000 + '0': general punctuation such as an em dash is
    // split off, while a real Extension B ideograph (U+20000) is not.
    expect(tokenizeZh('a\u2014b')).toBe('a \u2014 b');
    expect(tokenizeZh('x\u{20000}y')).toBe('x\u{20000}y');
    expect(tokenizeZh('我们ok')).toBe('我 们 ok');
  });
  it('rejects bad input', () => {
    expect(() => corpusBleu(['a', 'b'], [['a']])).toThrow(/2 hypotheses but 1 reference lists/);
    expect(() => sentenceBleu('a', [])).toThrow(/has no reference/);
    // @ts-expect-error wrong tokenizer name on purpose
    expect(() => corpusBleu(['a'], [['a']], { tokenize: 'moses' })).toThrow(/unknown tokenizer 'moses'/);
  });
});

describe('chrF / ROUGE / CIDEr-D / Porter (hand-computed)', () => {
  it('chrF averages precision and recall over orders', () => {
    // orders 1, 2: P = R = 2/3 and 1/2 -> mean 7/12 -> F = 7/12
    expect(sentenceChrf('abc', ['abd'], { charOrder: 2 }).score).toBeCloseTo((100 * 7) / 12, 12);
    expect(sentenceChrf('ab', ['ab']).score).toBeCloseTo(100, 12);
    // the better of two references wins
    expect(sentenceChrf('abc', ['xyz', 'abc']).score).toBeCloseTo(100, 12);
    expect(chrf(['abc', 'xyz'], [['abc'], ['xyz']]).score).toBeCloseTo(100, 12);
    expect(() => chrf(['a'], [])).toThrow(/1 hypotheses but 0 reference lists/);
    // n-grams are over code points (Python str), not UTF-16 units
    const astral = sentenceChrf('😀ab', ['😀ab'], { charOrder: 2 });
    expect(astral.stats).toEqual([3, 3, 3, 2, 2, 2]);
    // no hypothesis n-grams are counted at an order where the reference has none (sacrebleu)
    expect(sentenceChrf('abcd', ['a'], { charOrder: 2 }).stats).toEqual([4, 1, 1, 0, 0, 0]);
  });
  it('ROUGE-1/2/L', () => {
    const r = rouge('the cat sat', 'The cat sat down.');
    expect(r.rouge1).toEqual({ precision: 1, recall: 0.75, fmeasure: 6 / 7 });
    expect(r.rouge2?.recall).toBeCloseTo(2 / 3, 15);
    expect(r.rougeL?.recall).toBe(0.75);
    // rougeLsum on lines: reordered lines still match fully
    expect(rouge('b c\na', 'a\nb c', { types: ['rougeLsum'] }).rougeLsum?.fmeasure).toBe(1);
    expect(rouge('b c a', 'a b c', { types: ['rougeL'] }).rougeL?.fmeasure).toBeCloseTo(2 / 3, 15);
    expect(() => rouge('a', 'a', { types: ['rougeX'] })).toThrow(/invalid rouge type 'rougeX'/);
  });
  it('NLTK Porter stemmer (NLTK_EXTENSIONS mode)', () => {
    const cases: Record<string, string> = {
      caresses: 'caress',
      flies: 'fli',
      dies: 'die',
      mules: 'mule',
      denied: 'deni',
      died: 'die',
      agreed: 'agre',
      owned: 'own',
      humbled: 'humbl',
      sized: 'size',
      meeting: 'meet',
      stating: 'state',
      itemization: 'item',
      sensational: 'sensat',
      traditional: 'tradit',
      reference: 'refer',
      plotted: 'plot',
      happy: 'happi',
      enjoy: 'enjoy',
      dying: 'die',
      skies: 'sky',
    };
    for (const [word, stem] of Object.entries(cases)) expect(porterStem(word), word).toBe(stem);
  });
  it('CIDEr-D: one image scores 0, IDF comes from the corpus, ids must be unique', () => {
    expect(ciderD([{ id: 'x', hyp: 'a dog', refs: ['a dog'] }]).score).toBe(0);
    const two = ciderD([
      { id: 'x', hyp: 'a black dog runs', refs: ['a black dog runs'] },
      { id: 'y', hyp: 'a red car', refs: ['a blue bus'] },
    ]);
    expect(two.perImage[0]).toBeGreaterThan(two.perImage[1]);
    expect(two.score).toBeCloseTo((two.perImage[0] + two.perImage[1]) / 2, 15);
    expect(() => ciderD([{ id: 'x', hyp: 'a', refs: ['a'] }, { id: 'x', hyp: 'b', refs: ['b'] }])).toThrow(/duplicate id 'x'/);
  });
});
