/**
 * Classification and correlation metrics with scikit-learn / SciPy semantics (what
 * lm-evaluation-harness calls): accuracy, precision/recall/F1 (binary, macro, micro; 0 where a
 * ratio is 0/0, sklearn's zero_division default), Matthews correlation (sklearn's multi-class
 * formula), Pearson and Spearman (average ranks for ties).
 */

export type Label = string | number | boolean;
export type Averaging = 'binary' | 'macro' | 'micro';

export interface PrecisionRecallF1 {
  precision: number;
  recall: number;
  f1: number;
}

function checkPaired(a: readonly unknown[], b: readonly unknown[], where: string, names = ['predictions', 'references']): void {
  if (a.length !== b.length) throw new Error(`${where}: ${a.length} ${names[0]} but ${b.length} ${names[1]}`);
  if (a.length === 0) throw new Error(`${where}: no items`);
}

/** Fraction of predictions equal to their reference. */
export function accuracy(predictions: readonly Label[], references: readonly Label[]): number {
  checkPaired(predictions, references, 'accuracy');
  let hits = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === references[i]) hits++;
  return hits / predictions.length;
}

function ratio(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}

function fromCounts(tp: number, fp: number, fn: number): PrecisionRecallF1 {
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  // sklearn computes F from counts: 2tp / (2tp + fp + fn).
  const f1 = ratio(2 * tp, 2 * tp + fp + fn);
  return { precision, recall, f1 };
}

/** Sorted union of the labels that occur (sklearn's `unique_labels`). */
function labelsOf(a: readonly Label[], b: readonly Label[]): Label[] {
  const set = new Set<Label>([...a, ...b]);
  return [...set].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
}

/**
 * Precision, recall and F1. `binary` scores `positiveLabel` (default 1); `macro` is the unweighted
 * mean of per-label scores over the labels present; `micro` pools the counts of all labels.
 */
export function precisionRecallF1(
  predictions: readonly Label[],
  references: readonly Label[],
  opts: { average?: Averaging; positiveLabel?: Label } = {},
): PrecisionRecallF1 {
  checkPaired(predictions, references, 'precisionRecallF1');
  const average = opts.average ?? 'binary';
  const perLabel = (label: Label): [number, number, number] => {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < predictions.length; i++) {
      const p = predictions[i] === label;
      const r = references[i] === label;
      if (p && r) tp++;
      else if (p) fp++;
      else if (r) fn++;
    }
    return [tp, fp, fn];
  };
  if (average === 'binary') {
    const labels = labelsOf(predictions, references);
    if (labels.length > 2) {
      throw new Error(`precisionRecallF1: average 'binary' needs at most 2 labels, found ${labels.length}; use 'macro' or 'micro'`);
    }
    return fromCounts(...perLabel(opts.positiveLabel ?? 1));
  }
  const labels = labelsOf(predictions, references);
  if (average === 'micro') {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (const l of labels) {
      const [a, b, c] = perLabel(l);
      tp += a;
      fp += b;
      fn += c;
    }
    return fromCounts(tp, fp, fn);
  }
  if (average !== 'macro') throw new Error(`precisionRecallF1: unknown average '${String(average)}' (binary, macro or micro)`);
  let p = 0;
  let r = 0;
  let f = 0;
  for (const l of labels) {
    const s = fromCounts(...perLabel(l));
    p += s.precision;
    r += s.recall;
    f += s.f1;
  }
  return { precision: p / labels.length, recall: r / labels.length, f1: f / labels.length };
}

/** F1 alone (see precisionRecallF1). */
export function f1Score(predictions: readonly Label[], references: readonly Label[], opts: { average?: Averaging; positiveLabel?: Label } = {}): number {
  return precisionRecallF1(predictions, references, opts).f1;
}

/** Matthews correlation coefficient, sklearn's multi-class form; 0 when a marginal is constant. */
export function matthewsCorrelation(predictions: readonly Label[], references: readonly Label[]): number {
  checkPaired(predictions, references, 'matthewsCorrelation');
  const labels = labelsOf(predictions, references);
  const index = new Map(labels.map((l, i) => [l, i]));
  const t = new Array<number>(labels.length).fill(0);
  const p = new Array<number>(labels.length).fill(0);
  let correct = 0;
  for (let i = 0; i < predictions.length; i++) {
    p[index.get(predictions[i]) as number]++;
    t[index.get(references[i]) as number]++;
    if (predictions[i] === references[i]) correct++;
  }
  const s = predictions.length;
  let tp = 0;
  let pp = 0;
  let tt = 0;
  for (let k = 0; k < labels.length; k++) {
    tp += t[k] * p[k];
    pp += p[k] * p[k];
    tt += t[k] * t[k];
  }
  const covYtYp = correct * s - tp;
  const covYpYp = s * s - pp;
  const covYtYt = s * s - tt;
  if (covYpYp * covYtYt === 0) return 0;
  return covYtYp / Math.sqrt(covYtYt * covYpYp);
}

/** Pearson's r; NaN when either input is constant (as SciPy returns). */
export function pearson(x: readonly number[], y: readonly number[]): number {
  checkPaired(x, y, 'pearson', ['x values', 'y values']);
  if (x.length < 2) throw new Error('pearson: needs at least 2 pairs');
  let mx = 0;
  let my = 0;
  for (let i = 0; i < x.length; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= x.length;
  my /= y.length;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    const dx = x[i] - mx;
    const dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return Number.NaN;
  const r = sxy / Math.sqrt(sxx * syy);
  return Math.max(-1, Math.min(1, r));
}

/** 1-based ranks, ties sharing their average rank (SciPy's `rankdata(method='average')`). */
export function averageRanks(values: readonly number[]): number[] {
  const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Array<number>(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start + 1;
    while (end < order.length && values[order[end]] === values[order[start]]) end++;
    const rank = (start + 1 + end) / 2; // mean of ranks start+1 .. end
    for (let k = start; k < end; k++) ranks[order[k]] = rank;
    start = end;
  }
  return ranks;
}

/** Spearman's rho: Pearson's r of average ranks. */
export function spearman(x: readonly number[], y: readonly number[]): number {
  checkPaired(x, y, 'spearman', ['x values', 'y values']);
  for (const v of [...x, ...y]) if (Number.isNaN(v)) throw new Error('spearman: NaN in the input');
  return pearson(averageRanks(x), averageRanks(y));
}
