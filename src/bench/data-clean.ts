/**
 * Benchmarks of the cleaning half of the data pipeline (src/data/pipeline), one thread:
 *  - `benchLangid`: accuracy of eld and franc (the two candidate language identifiers) on windows
 *    of English (tinyshakespeare, wikitext-2) and Chinese (Sanguo Yanyi, Lunyu) text from
 *    ../shared/data, and their time per window — the measurement behind the choice in langid.ts;
 *  - `benchCleanStages`: MB/s (UTF-8 input) of each stage alone — reading, normalisation, language
 *    id, boilerplate pass 1 and 2, PII masking, C4, Gopher quality/repetition, CJK — on those corpora.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BoilerplateSketch } from '../data/pipeline/boilerplate.js';
import { c4Stage, cjkFilter, gopherQualityFilter, gopherRepetitionFilter, piiTransform } from '../data/pipeline/filters/index.js';
import { LanguageIdentifier, type EldModelSize } from '../data/pipeline/langid.js';
import { normalizeTransform } from '../data/pipeline/normalize.js';
import { readFileDocs, type TextMode } from '../data/pipeline/readers.js';
import { filterStage, transformStage, utf8Bytes } from '../data/pipeline/stats.js';
import type { Doc, DocStage } from '../data/pipeline/types.js';
import { packageRoot } from './common.js';

/** ../shared/data next to the package root (where this repository keeps its test corpora). */
export function sharedDataDir(): string {
  return join(packageRoot(), '..', 'shared', 'data');
}

export interface LangidCorpus {
  lang: 'en' | 'zh';
  name: string;
  text: string;
}

export function langidCorpora(dataDir = sharedDataDir()): LangidCorpus[] {
  const lunyu = JSON.parse(readFileSync(join(dataDir, 'zh', 'lunyu.json'), 'utf8')) as Array<{ paragraphs: string[] }>;
  return [
    { lang: 'en', name: 'tinyshakespeare', text: readFileSync(join(dataDir, 'tinyshakespeare', 'input.txt'), 'utf8') },
    { lang: 'en', name: 'wikitext2', text: readFileSync(join(dataDir, 'wikitext2', 'wiki.test.raw'), 'utf8') },
    { lang: 'zh', name: 'sanguo_yanyi', text: readFileSync(join(dataDir, 'zh', 'sanguo_yanyi.txt'), 'utf8') },
    { lang: 'zh', name: 'lunyu', text: lunyu.flatMap((c) => c.paragraphs).join('\n') },
  ];
}

/** `count` evenly spaced windows of `size` characters, whitespace folded (what a document snippet looks like). */
export function textWindows(text: string, size: number, count: number): string[] {
  const out: string[] = [];
  const step = Math.max(1, Math.floor((text.length - size) / count));
  for (let i = 0; i < count; i++) {
    const w = text
      .slice(i * step, i * step + size)
      .replace(/\s+/g, ' ')
      .trim();
    if (w.length > 0) out.push(w);
  }
  return out;
}

/** franc answers ISO 639-3; the two codes that count as right here, and the rest kept as is (they are wrong answers). */
const FRANC_TO_639_1: Record<string, string> = { eng: 'en', cmn: 'zh', zho: 'zh' };

export interface LangidBenchRecord {
  bench: 'data-langid';
  detector: string;
  lang: string;
  window_chars: number;
  windows: number;
  accuracy: number;
  us_per_window: number;
  /** Most frequent wrong answers. */
  confusions: Record<string, number>;
}

export async function benchLangid(
  opts: { sizes?: number[]; windowsPerCorpus?: number; eldModels?: EldModelSize[]; dataDir?: string } = {},
): Promise<LangidBenchRecord[]> {
  const sizes = opts.sizes ?? [20, 50, 100, 200, 500];
  const perCorpus = opts.windowsPerCorpus ?? 500;
  const corpora = langidCorpora(opts.dataDir);
  const { franc } = await import('franc');
  const detectors: Array<{ name: string; detect: (s: string) => string }> = [];
  for (const model of opts.eldModels ?? ['medium']) {
    // sampleBytes above the largest window and minLetters 1: measure eld itself, not our sampling.
    const id = await LanguageIdentifier.load({ model, sampleBytes: 100_000, minLetters: 1 });
    detectors.push({ name: `eld-${model}`, detect: (s) => id.detect(s).lang });
  }
  // What the pipeline runs: eld on our start/middle/end sample of each document.
  const sampled = await LanguageIdentifier.load();
  detectors.push({ name: 'eld-medium, pipeline sample', detect: (s) => sampled.detect(s).lang });
  detectors.push({
    name: 'franc',
    detect: (s) => {
      const code = franc(s, { minLength: 1 });
      return FRANC_TO_639_1[code] ?? code;
    },
  });
  const records: LangidBenchRecord[] = [];
  for (const size of sizes) {
    for (const lang of ['en', 'zh'] as const) {
      const windows = corpora.filter((c) => c.lang === lang).flatMap((c) => textWindows(c.text, size, perCorpus));
      for (const d of detectors) {
        let right = 0;
        const confusions: Record<string, number> = {};
        const t0 = performance.now();
        for (const w of windows) {
          const got = d.detect(w);
          if (got === lang) right++;
          else confusions[got] = (confusions[got] ?? 0) + 1;
        }
        const us = ((performance.now() - t0) * 1000) / windows.length;
        const top = Object.fromEntries(Object.entries(confusions).sort((a, b) => b[1] - a[1]).slice(0, 4));
        records.push({
          bench: 'data-langid',
          detector: d.name,
          lang,
          window_chars: size,
          windows: windows.length,
          accuracy: right / windows.length,
          us_per_window: Math.round(us),
          confusions: top,
        });
      }
    }
  }
  return records;
}

export interface CleanStageBenchRecord {
  bench: 'data-clean';
  corpus: string;
  stage: string;
  docs: number;
  mbytes: number;
  seconds: number;
  mbps: number;
}

interface BenchCorpus {
  name: string;
  path: string;
  mode: TextMode;
}

function benchCorpora(dataDir: string): BenchCorpus[] {
  return [
    { name: 'tinyshakespeare (paragraphs)', path: join(dataDir, 'tinyshakespeare', 'input.txt'), mode: 'paragraph' },
    { name: 'wikitext2 (lines)', path: join(dataDir, 'wikitext2', 'wiki.test.raw'), mode: 'line' },
    { name: 'sanguo_yanyi (file, 100k-char parts)', path: join(dataDir, 'zh', 'sanguo_yanyi.txt'), mode: 'file' },
  ];
}

/** Time `fn` over all documents, repeating until `minSeconds` has passed; best pass wins. */
function timeStage(docs: readonly Doc[], fn: (d: Doc) => void, minSeconds: number): number {
  let best = Infinity;
  let spent = 0;
  let reps = 0;
  while (reps < 2 || spent < minSeconds) {
    const t0 = performance.now();
    for (const d of docs) fn(d);
    const s = (performance.now() - t0) / 1000;
    best = Math.min(best, s);
    spent += s;
    reps++;
  }
  return best;
}

export async function benchCleanStages(opts: { dataDir?: string; minSeconds?: number } = {}): Promise<CleanStageBenchRecord[]> {
  const dataDir = opts.dataDir ?? sharedDataDir();
  const minSeconds = opts.minSeconds ?? 1;
  const langid = await LanguageIdentifier.load();
  const records: CleanStageBenchRecord[] = [];
  for (const corpus of benchCorpora(dataDir)) {
    // Reading, timed on its own (a fresh pass each repetition, from the page cache).
    let readBest = Infinity;
    let raw: Doc[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const t0 = performance.now();
      const docs: Doc[] = [];
      for await (const d of readFileDocs(corpus.path, { textMode: corpus.mode })) docs.push(d);
      readBest = Math.min(readBest, (performance.now() - t0) / 1000);
      raw = docs;
    }
    const bytes = raw.reduce((s, d) => s + utf8Bytes(d.text), 0);
    const rec = (stage: string, seconds: number, docs: number): void => {
      records.push({
        bench: 'data-clean',
        corpus: corpus.name,
        stage,
        docs,
        mbytes: bytes / 1e6,
        seconds,
        mbps: bytes / 1e6 / seconds,
      });
    };
    rec('read', readBest, raw.length);
    const norm = normalizeTransform();
    const normalized = raw.map((d) => norm.apply(d));
    rec('normalize NFC', timeStage(raw, (d) => norm.apply(d), minSeconds), raw.length);
    const nfkc = normalizeTransform({ form: 'NFKC' });
    rec('normalize NFKC', timeStage(raw, (d) => nfkc.apply(d), minSeconds), raw.length);
    rec('langid (eld medium)', timeStage(normalized, (d) => langid.detect(d.text), minSeconds), raw.length);
    // Pass 1 keeps counting into one sketch across repetitions: the cost per line does not depend on the counts.
    const sketch = new BoilerplateSketch();
    rec('boilerplate pass 1', timeStage(normalized, (d) => sketch.observe(d.text), minSeconds), raw.length);
    const bp = sketch.stage();
    rec('boilerplate pass 2', timeStage(normalized, (d) => bp.process(d), minSeconds), raw.length);
    const stages: DocStage[] = [
      transformStage(piiTransform()),
      c4Stage(),
      filterStage(gopherQualityFilter()),
      filterStage(gopherRepetitionFilter()),
      filterStage(cjkFilter()),
    ];
    for (const st of stages) rec(st.name, timeStage(normalized, (d) => st.process(d), minSeconds), raw.length);
    const all = (d: Doc): void => {
      let cur: Doc | null = norm.apply(d);
      const g = langid.detect(cur.text);
      cur = { ...cur, lang: g.lang };
      for (const st of stages) {
        if (cur === null) break;
        const r = st.process(cur);
        cur = r.keep ? r.doc : null;
      }
    };
    rec('all cleaning stages (no read, no boilerplate)', timeStage(raw, all, minSeconds), raw.length);
  }
  return records;
}
