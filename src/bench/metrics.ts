/**
 * Metric throughput: corpus BLEU (13a), corpus chrF, ROUGE and CIDEr-D on a reproducible synthetic
 * corpus (default 10,000 sentence pairs), with sacrebleu on the same corpus in the same run as the
 * anchor (bench/metrics_sacrebleu.py; skipped, saying why, when no python imports sacrebleu).
 * Target (issue 6): corpus BLEU on 10,000 pairs in under 2 s.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chrf, ciderD, corpusBleu, rouge } from '../eval/metrics/index.js';
import { bestTime, packageRoot } from './common.js';

export interface MetricBenchRecord {
  metric: 'corpus_bleu' | 'corpus_chrf' | 'rouge' | 'cider_d';
  pairs: number;
  seconds: number;
  pairs_per_s: number;
  score: number;
  /** sacrebleu's time and score on the same corpus (BLEU and chrF only), or null. */
  anchor_seconds: number | null;
  anchor_score: number | null;
  /** ours / sacrebleu's time: < 1 means faster. */
  ratio: number | null;
}

const WORDS = (
  'the a of to and in is was for on that with as by at from it his her they we you this an be are ' +
  'has have had not but or which one all were when there their will would who more been can if out ' +
  'so said what up its about into than them only other new some could time these two may first then ' +
  'do any like my now over such our man me even most made after also did many before must through ' +
  'years where much your way well down should because each just those people how too little state ' +
  'good very make world still own see men work long get here between both life being under never day ' +
  'same another know while last might us great old year off come since against go came right used'
).split(' ');
const PUNCT = [',', '.', ';', ':', '?', '!', "'s", '(', ')', '"', '-', '%', '3.5', '1,000', '2019'];

/** Reproducible pseudo-random stream (LCG), so runs compare like with like. */
function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/**
 * `pairs` hypothesis/reference pairs of 10–40 words with punctuation and numbers (so the 13a regexes
 * do real work); each reference is its hypothesis with about a quarter of its words replaced,
 * dropped or inserted, which gives BLEU in the range machine translation produces.
 */
export function syntheticCorpus(pairs: number, seed = 1): { hyps: string[]; refs: string[][] } {
  const rnd = lcg(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const hyps: string[] = [];
  const refs: string[][] = [];
  for (let i = 0; i < pairs; i++) {
    const n = 10 + Math.floor(rnd() * 31);
    const words: string[] = [];
    for (let k = 0; k < n; k++) words.push(rnd() < 0.1 ? pick(PUNCT) : pick(WORDS));
    words[0] = words[0][0].toUpperCase() + words[0].slice(1);
    const ref: string[] = [];
    for (const w of words) {
      const r = rnd();
      if (r < 0.1) continue;
      if (r < 0.2) ref.push(pick(WORDS));
      else if (r < 0.25) ref.push(w, pick(WORDS));
      else ref.push(w);
    }
    hyps.push(`${words.join(' ')}.`);
    refs.push([`${ref.join(' ')}.`]);
  }
  return { hyps, refs };
}

interface AnchorRecord {
  metric: string;
  seconds: number;
  score: number;
  version: string;
}

/** sacrebleu's times on the same corpus, or the reason there are none. */
export function runSacrebleuAnchor(hyps: string[], refs: string[][], rounds: number): { records: AnchorRecord[] } | { error: string } {
  const script = join(packageRoot(), 'bench', 'metrics_sacrebleu.py');
  if (!existsSync(script)) return { error: `${script} is missing` };
  const candidates = [process.env.WEFT_SACREBLEU_PYTHON, 'python3', '/usr/bin/python3'].filter((x): x is string => !!x);
  const python = candidates.find((exe) => spawnSync(exe, ['-c', 'import sacrebleu'], { stdio: 'ignore' }).status === 0);
  if (python === undefined) {
    return { error: `no python with sacrebleu found (tried ${candidates.join(', ')}; set WEFT_SACREBLEU_PYTHON to one that has it)` };
  }
  const r = spawnSync(python, [script], { input: JSON.stringify({ hyps, refs, rounds }), encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) return { error: `sacrebleu anchor failed: ${(r.stderr || r.error?.message || '').trim()}` };
  return {
    records: r.stdout
      .split('\n')
      .filter((l) => l.trim().startsWith('{'))
      .map((l) => JSON.parse(l) as AnchorRecord),
  };
}

export interface MetricBenchOptions {
  pairs?: number;
  /** Run the sacrebleu anchor (default true). */
  anchor?: boolean;
  /** Rounds for the anchor (ours repeat until 0.5 s are spent, at least 3 times). */
  rounds?: number;
}

export function benchMetrics(opts: MetricBenchOptions = {}): { records: MetricBenchRecord[]; anchor: string } {
  const pairs = opts.pairs ?? 10_000;
  const { hyps, refs } = syntheticCorpus(pairs);
  let bleuScore = 0;
  let chrfScore = 0;
  let rougeScore = 0;
  let ciderScore = 0;
  const tBleu = bestTime(() => {
    bleuScore = corpusBleu(hyps, refs).score;
  }, 0.5);
  const tChrf = bestTime(() => {
    chrfScore = chrf(hyps, refs).score;
  }, 0.5);
  const tRouge = bestTime(() => {
    let sum = 0;
    for (let i = 0; i < hyps.length; i++) sum += (rouge(hyps[i], refs[i][0], { types: ['rouge1', 'rouge2', 'rougeL'] }).rougeL as { fmeasure: number }).fmeasure;
    rougeScore = sum / hyps.length;
  }, 0.5);
  const items = hyps.map((hyp, i) => ({ id: String(i), hyp: hyp.toLowerCase(), refs: refs[i].map((r) => r.toLowerCase()) }));
  const tCider = bestTime(() => {
    ciderScore = ciderD(items).score;
  }, 0.5);

  let anchorNote = 'sacrebleu anchor skipped (--no-anchor)';
  const anchorBy = new Map<string, AnchorRecord>();
  if (opts.anchor ?? true) {
    const a = runSacrebleuAnchor(hyps, refs, opts.rounds ?? 3);
    if ('error' in a) anchorNote = `sacrebleu anchor skipped: ${a.error}`;
    else {
      for (const r of a.records) anchorBy.set(r.metric, r);
      anchorNote = `anchor: sacrebleu ${a.records[0]?.version ?? '?'} on the same corpus, same run`;
    }
  }
  const rec = (metric: MetricBenchRecord['metric'], seconds: number, score: number): MetricBenchRecord => {
    const anchor = anchorBy.get(metric);
    return {
      metric,
      pairs,
      seconds,
      pairs_per_s: pairs / seconds,
      score,
      anchor_seconds: anchor?.seconds ?? null,
      anchor_score: anchor?.score ?? null,
      ratio: anchor ? seconds / anchor.seconds : null,
    };
  };
  return {
    records: [rec('corpus_bleu', tBleu, bleuScore), rec('corpus_chrf', tChrf, chrfScore), rec('rouge', tRouge, rougeScore), rec('cider_d', tCider, ciderScore)],
    anchor: anchorNote,
  };
}

/** The report of `weft bench metrics`: JSON lines with `json`, otherwise a table with the anchor note. */
export function metricBenchLines(result: { records: MetricBenchRecord[]; anchor: string }, json = false): string[] {
  if (json) return result.records.map((r) => JSON.stringify(r));
  const fmt = (x: number | null, w: number, d: number): string => (x === null ? '-' : x.toFixed(d)).padStart(w);
  const lines = [
    `metric throughput on ${result.records[0]?.pairs ?? 0} synthetic sentence pairs; ${result.anchor}`,
    'metric         weft s   pairs/s   sacrebleu s   ratio   score (weft / sacrebleu)',
  ];
  for (const r of result.records) {
    lines.push(
      `${r.metric.padEnd(12)}${fmt(r.seconds, 9, 3)}${fmt(r.pairs_per_s, 10, 0)}${fmt(r.anchor_seconds, 14, 3)}${fmt(r.ratio, 8, 3)}   ` +
        `${r.score.toFixed(4)}${r.anchor_score === null ? '' : ` / ${r.anchor_score.toFixed(4)}`}`,
    );
  }
  return lines;
}
