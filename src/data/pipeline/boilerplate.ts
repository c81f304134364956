/**
 * Boilerplate-line stripping: lines that occur in many different documents (navigation, cookie
 * banners, licence footers, "Share this article") are removed, as in RefinedWeb/Dolma line-level
 * deduplication.
 *
 * Two passes with bounded memory. Pass 1 (`observe`) counts, per distinct line, the number of
 * documents containing it in a count-min sketch (depth × width counters, fixed size whatever the
 * corpus — 16 MiB at the default 4 × 2^20 uint32); pass 2 (`stage`) removes lines whose estimated
 * document frequency reaches the threshold. Count-min only over-estimates, never under, so every
 * true boilerplate line is caught; a rare line is wrongly removed only if it collides with frequent
 * ones in all `depth` rows. Conservative update (raise only the minimum counters) keeps that
 * over-estimate small; `expectedNoise()` reports the mean per-row collision load so a caller can
 * widen the sketch when the corpus is large relative to it. Sketches from worker threads add up (`merge`).
 */
import type { Doc, DocStage, StageResult } from './types.js';

export interface BoilerplateOptions {
  /** Counters per row; rounded up to a power of two. Default 2^20. */
  width?: number;
  /** Rows (independent hashes). Default 4. */
  depth?: number;
  /** Lines shorter than this (after trimming) are never counted or removed (blank lines, "Chapter 1"). Default 10. */
  minLineChars?: number;
  /** A line is boilerplate when it is in at least this many documents… Default 10. */
  minDocs?: number;
  /** …and in at least this fraction of all observed documents. Default 0. */
  minDocFraction?: number;
}

export interface BoilerplateSnapshot {
  width: number;
  depth: number;
  docs: number;
  increments: number;
  table: Uint32Array;
}

function hashPair(s: string): [number, number] {
  // FNV-1a and a murmur-style mix over UTF-16 units: two independent 32-bit hashes, combined
  // per row as h1 + row·h2 (Kirsch–Mitzenmacher), which is as good as `depth` separate hashes.
  let h1 = 0x811c9dc5;
  let h2 = 0x2545f491;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 13;
  }
  h2 = Math.imul(h2 ^ (h2 >>> 15), 0x27d4eb2d);
  return [h1 >>> 0, (h2 | 1) >>> 0];
}

export class BoilerplateSketch {
  readonly width: number;
  readonly depth: number;
  readonly minLineChars: number;
  readonly minDocs: number;
  readonly minDocFraction: number;
  private readonly table: Uint32Array;
  private readonly mask: number;
  /** Documents observed. */
  docs = 0;
  /** Distinct (document, line) pairs counted: the load that collisions come from. */
  increments = 0;

  constructor(opts: BoilerplateOptions = {}) {
    const width = opts.width ?? 1 << 20;
    const depth = opts.depth ?? 4;
    if (!(Number.isInteger(width) && width >= 16 && width <= 1 << 28)) {
      throw new Error(`boilerplate: width must be an integer in [16, 2^28], got ${width}`);
    }
    if (!(Number.isInteger(depth) && depth >= 1 && depth <= 16)) {
      throw new Error(`boilerplate: depth must be an integer in [1, 16], got ${depth}`);
    }
    this.width = 2 ** Math.ceil(Math.log2(width));
    this.mask = this.width - 1;
    this.depth = depth;
    this.minLineChars = opts.minLineChars ?? 10;
    this.minDocs = opts.minDocs ?? 10;
    this.minDocFraction = opts.minDocFraction ?? 0;
    if (!(Number.isInteger(this.minDocs) && this.minDocs >= 2)) {
      throw new Error(`boilerplate: minDocs must be an integer ≥ 2 (a line in one document is not boilerplate), got ${this.minDocs}`);
    }
    if (!(this.minDocFraction >= 0 && this.minDocFraction <= 1)) {
      throw new Error(`boilerplate: minDocFraction must be in [0, 1], got ${this.minDocFraction}`);
    }
    this.table = new Uint32Array(this.width * this.depth);
  }

  private key(line: string): string | null {
    const t = line.trim();
    return t.length >= this.minLineChars ? t : null;
  }

  /** Pass 1: count each distinct qualifying line of the document once. */
  observe(text: string): void {
    this.docs++;
    const seen = new Set<string>();
    for (const raw of text.split('\n')) {
      const k = this.key(raw);
      if (k === null || seen.has(k)) continue;
      seen.add(k);
      this.increment(k);
    }
  }

  private increment(line: string): void {
    const [h1, h2] = hashPair(line);
    const { table, width, mask, depth } = this;
    let min = 0xffffffff;
    for (let r = 0; r < depth; r++) {
      const v = table[r * width + ((h1 + Math.imul(r, h2)) & mask)] as number;
      if (v < min) min = v;
    }
    if (min === 0xffffffff) return; // saturated
    const target = min + 1;
    // Conservative update: only counters below the new estimate move.
    for (let r = 0; r < depth; r++) {
      const idx = r * width + ((h1 + Math.imul(r, h2)) & mask);
      if ((table[idx] as number) < target) table[idx] = target;
    }
    this.increments++;
  }

  /** Upper bound on the number of observed documents containing this line (0 for lines too short to count). */
  estimate(line: string): number {
    const k = this.key(line);
    if (k === null) return 0;
    const [h1, h2] = hashPair(k);
    let min = 0xffffffff;
    for (let r = 0; r < this.depth; r++) {
      const v = this.table[r * this.width + ((h1 + Math.imul(r, h2)) & this.mask)] as number;
      if (v < min) min = v;
    }
    return min;
  }

  /** Document-frequency threshold at which a line counts as boilerplate. */
  threshold(): number {
    return Math.max(this.minDocs, Math.ceil(this.minDocFraction * this.docs));
  }

  isBoilerplate(line: string): boolean {
    return this.estimate(line) >= this.threshold();
  }

  /** Mean counter load per row (increments / width): if this nears the threshold, widen the sketch. */
  expectedNoise(): number {
    return this.increments / this.width;
  }

  /** Add another sketch of the same shape (e.g. one per worker thread). */
  merge(other: BoilerplateSketch | BoilerplateSnapshot): void {
    if (other.width !== this.width || other.depth !== this.depth) {
      throw new Error(`boilerplate: cannot merge a ${other.depth}×${other.width} sketch into ${this.depth}×${this.width}`);
    }
    const src = other instanceof BoilerplateSketch ? other.table : other.table;
    for (let i = 0; i < this.table.length; i++) {
      this.table[i] = Math.min(0xffffffff, (this.table[i] as number) + (src[i] as number));
    }
    this.docs += other.docs;
    this.increments += other.increments;
  }

  /** The counters and totals, for postMessage to/from worker threads (the table can be transferred). */
  snapshot(): BoilerplateSnapshot {
    return { width: this.width, depth: this.depth, docs: this.docs, increments: this.increments, table: this.table.slice() };
  }

  static fromSnapshot(s: BoilerplateSnapshot, opts: Omit<BoilerplateOptions, 'width' | 'depth'> = {}): BoilerplateSketch {
    if (s.table.length !== s.width * s.depth) {
      throw new Error(`boilerplate: snapshot table has ${s.table.length} counters, expected ${s.width}×${s.depth}`);
    }
    const sketch = new BoilerplateSketch({ ...opts, width: s.width, depth: s.depth });
    sketch.table.set(s.table);
    sketch.docs = s.docs;
    sketch.increments = s.increments;
    return sketch;
  }

  /** Remove boilerplate lines from one text; returns the text and how many lines went. */
  strip(text: string): { text: string; removed: number } {
    const threshold = this.threshold();
    const lines = text.split('\n');
    const kept: string[] = [];
    let removed = 0;
    for (const line of lines) {
      if (this.estimate(line) >= threshold) removed++;
      else kept.push(line);
    }
    if (removed === 0) return { text, removed };
    // Removing a line between two blank lines would leave a double gap; fold it back to one paragraph break.
    return { text: kept.join('\n').replace(/\n{3,}/g, '\n\n').trim(), removed };
  }

  /**
   * Pass 2 as a stage: strips boilerplate lines (counter "lines_removed"), drops documents left
   * with no text ("boilerplate_only").
   */
  stage(): DocStage {
    return {
      name: 'boilerplate',
      process: (doc: Doc, counters?: Record<string, number>): StageResult => {
        const { text, removed } = this.strip(doc.text);
        if (removed === 0) return { keep: true, doc };
        if (counters) {
          counters.lines_removed = (counters.lines_removed ?? 0) + removed;
          counters.docs_changed = (counters.docs_changed ?? 0) + 1;
        }
        if (text.trim().length === 0) return { keep: false, rule: 'boilerplate_only' };
        return { keep: true, doc: { ...doc, text } };
      },
    };
  }
}
