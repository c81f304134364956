/**
 * Per-stage statistics: documents and bytes in/out, drops per rule with the first few examples,
 * stage counters, language distribution — accumulated per worker and merged deterministically
 * (examples are kept in arrival order, merged in the order the caller merges), then written as JSON
 * and rendered by report.ts.
 */
import type { Doc, DocFilter, DocStage, DocTransform, StageResult, StageStats } from './types.js';

export interface StatsOptions {
  /** Examples kept per drop rule. Default 5. */
  maxExamples?: number;
  /** Characters kept per example (the start of the document). Default 300. */
  exampleChars?: number;
}

/** UTF-8 byte length (what MB/s and "bytes" in the stats mean). */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

export function emptyStageStats(name: string): StageStats {
  return { name, docsIn: 0, docsOut: 0, bytesIn: 0, bytesOut: 0, drops: {}, counters: {} };
}

/** Accumulates one stage's StageStats. */
export class StageStatsCollector {
  readonly stats: StageStats;
  private readonly maxExamples: number;
  private readonly exampleChars: number;

  constructor(name: string, opts: StatsOptions = {}) {
    this.stats = emptyStageStats(name);
    this.maxExamples = opts.maxExamples ?? 5;
    this.exampleChars = opts.exampleChars ?? 300;
  }

  get counters(): Record<string, number> {
    return (this.stats.counters ??= {});
  }

  /** Count a document entering the stage; returns its UTF-8 size (`bytes` when the caller knows it; reuse it for `out` when unchanged). */
  in(doc: Doc, bytes = utf8Bytes(doc.text)): number {
    this.stats.docsIn++;
    this.stats.bytesIn += bytes;
    return bytes;
  }

  out(doc: Doc, bytes?: number): void {
    this.stats.docsOut++;
    this.stats.bytesOut += bytes ?? utf8Bytes(doc.text);
  }

  drop(rule: string, doc: Doc): void {
    const entry = (this.stats.drops[rule] ??= { count: 0, examples: [] });
    entry.count++;
    if (entry.examples.length < this.maxExamples) entry.examples.push(exampleOf(doc, this.exampleChars));
  }

  addSeconds(s: number): void {
    this.stats.seconds = (this.stats.seconds ?? 0) + s;
  }
}

function exampleOf(doc: Doc, chars: number): string {
  const text = doc.text.length > chars ? `${doc.text.slice(0, chars)}…` : doc.text;
  return `[${doc.id}] ${text}`;
}

/** Sum `b` into `a` (same stage from another worker); examples appended up to `maxExamples`. */
export function mergeStageStats(a: StageStats, b: StageStats, maxExamples = 5): StageStats {
  if (a.name !== b.name) throw new Error(`stats: cannot merge stage '${b.name}' into '${a.name}'`);
  a.docsIn += b.docsIn;
  a.docsOut += b.docsOut;
  a.bytesIn += b.bytesIn;
  a.bytesOut += b.bytesOut;
  for (const [rule, d] of Object.entries(b.drops)) {
    const entry = (a.drops[rule] ??= { count: 0, examples: [] });
    entry.count += d.count;
    for (const ex of d.examples) if (entry.examples.length < maxExamples) entry.examples.push(ex);
  }
  if (b.counters) {
    const c = (a.counters ??= {});
    for (const [k, v] of Object.entries(b.counters)) c[k] = (c[k] ?? 0) + v;
  }
  if (b.tokensIn !== undefined) a.tokensIn = (a.tokensIn ?? 0) + b.tokensIn;
  if (b.tokensOut !== undefined) a.tokensOut = (a.tokensOut ?? 0) + b.tokensOut;
  if (b.seconds !== undefined) a.seconds = (a.seconds ?? 0) + b.seconds;
  return a;
}

export function filterStage(filter: DocFilter): DocStage {
  return {
    name: filter.name,
    process(doc: Doc): StageResult {
      const rule = filter.check(doc);
      return rule === null ? { keep: true, doc } : { keep: false, rule };
    },
  };
}

export function transformStage(transform: DocTransform): DocStage {
  return {
    name: transform.name,
    process(doc: Doc, counters?: Record<string, number>): StageResult {
      return { keep: true, doc: transform.apply(doc, counters) };
    },
  };
}

/** Run one stage on one document, recording it; returns the kept document or null. */
export function runStage(stage: DocStage, doc: Doc, collector: StageStatsCollector): Doc | null {
  return runMeasuredStage(stage, doc, collector, utf8Bytes(doc.text))?.doc ?? null;
}

/** runStage for a document of known UTF-8 size; returns the output with its size (measured only when the text changed). */
function runMeasuredStage(stage: DocStage, doc: Doc, collector: StageStatsCollector, bytes: number): { doc: Doc; bytes: number } | null {
  collector.in(doc, bytes);
  const r = stage.process(doc, collector.counters);
  if (!r.keep) {
    collector.drop(r.rule, doc);
    return null;
  }
  const bytesOut = r.doc.text === doc.text ? bytes : utf8Bytes(r.doc.text);
  collector.out(r.doc, bytesOut);
  return { doc: r.doc, bytes: bytesOut };
}

/** A chain of stages with one collector each: the single-thread building block of run.ts workers. */
export class StageChain {
  readonly collectors: StageStatsCollector[];
  private readonly timed: boolean;

  constructor(
    readonly stages: readonly DocStage[],
    opts: StatsOptions & { timed?: boolean } = {},
  ) {
    const names = new Set<string>();
    for (const s of stages) {
      if (names.has(s.name)) throw new Error(`stats: two stages are named '${s.name}'; stage names key the statistics`);
      names.add(s.name);
    }
    this.collectors = stages.map((s) => new StageStatsCollector(s.name, opts));
    this.timed = opts.timed ?? false;
  }

  /** The document after every stage, or null when one dropped it. */
  process(doc: Doc): Doc | null {
    return this.processMeasured(doc, utf8Bytes(doc.text))?.doc ?? null;
  }

  /**
   * process() for a document of known UTF-8 size, returning the output's size too: each document is
   * measured once, then again only after a stage changes its text (not once per stage).
   */
  processMeasured(doc: Doc, bytes: number): { doc: Doc; bytes: number } | null {
    let cur: { doc: Doc; bytes: number } | null = { doc, bytes };
    for (let i = 0; i < this.stages.length && cur !== null; i++) {
      const collector = this.collectors[i] as StageStatsCollector;
      const stage = this.stages[i] as DocStage;
      if (this.timed) {
        const t0 = performance.now();
        cur = runMeasuredStage(stage, cur.doc, collector, cur.bytes);
        collector.addSeconds((performance.now() - t0) / 1000);
      } else cur = runMeasuredStage(stage, cur.doc, collector, cur.bytes);
    }
    return cur;
  }

  async *run(docs: AsyncIterable<Doc> | Iterable<Doc>): AsyncGenerator<Doc> {
    for await (const doc of docs) {
      const out = this.process(doc);
      if (out !== null) yield out;
    }
  }

  stats(): StageStats[] {
    return this.collectors.map((c) => c.stats);
  }
}

/** Documents and UTF-8 bytes per language (doc.lang, "und" when unset). */
export class LanguageCounter {
  readonly counts: Record<string, { docs: number; bytes: number; tokens?: number }> = {};

  add(doc: Doc, bytes?: number, tokens?: number): void {
    const lang = doc.lang ?? 'und';
    const e = (this.counts[lang] ??= { docs: 0, bytes: 0 });
    e.docs++;
    e.bytes += bytes ?? utf8Bytes(doc.text);
    if (tokens !== undefined) e.tokens = (e.tokens ?? 0) + tokens;
  }

  merge(other: Record<string, { docs: number; bytes: number; tokens?: number }>): void {
    for (const [lang, v] of Object.entries(other)) {
      const e = (this.counts[lang] ??= { docs: 0, bytes: 0 });
      e.docs += v.docs;
      e.bytes += v.bytes;
      if (v.tokens !== undefined) e.tokens = (e.tokens ?? 0) + v.tokens;
    }
  }
}

/** The whole run's statistics: what `weft data stats` prints and report.ts renders. */
export interface PipelineStats {
  /** Stages in pipeline order. */
  stages: StageStats[];
  /** Output language distribution (after all filters). */
  languages?: Record<string, { docs: number; bytes: number; tokens?: number }>;
  /** Duplicate clusters found by dedup. */
  duplicates?: {
    method: string;
    clusters: number;
    docsRemoved: number;
    largestCluster: number;
    /** A few clusters: the kept id and the removed ids. */
    examples?: Array<{ kept: string; removed: string[] }>;
  };
  /** Totals of the final output. */
  output?: { docs: number; tokens?: number; sequences?: number; shards?: number; bytes?: number };
  /** Seconds for the whole run. */
  seconds?: number;
  /** Anything else a stage wants shown (rendered as JSON). */
  extra?: Record<string, unknown>;
}
