/**
 * Text splitters. The recursive character splitter reproduces LangChain's
 * RecursiveCharacterTextSplitter (chunkSize 1000, chunkOverlap 200, separators "\n\n", "\n", " ",
 * "", separators kept at the start of the next piece, chunks trimmed), so chunks match what users of
 * LangChain.js get. The token splitter counts with any Weft tokenizer; the sentence splitter packs
 * whole sentences; the Markdown splitter keeps each chunk's heading path. Chinese and Japanese text
 * splits on its own punctuation (。！？；，、).
 *
 * Every splitter maps a Document to pieces with their [start, end) span in the document text, so a
 * chunk can always be traced back to its characters.
 */
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import { type Chunk, type Document, type Location, sha256Hex } from './types.js';

/** A piece of a document's text and where it sits. */
export interface Piece {
  text: string;
  start: number;
  end: number;
  headingPath?: string[];
}

export interface TextSplitter {
  /** The chunks' texts. */
  splitText(text: string): string[];
  /** The chunks with their spans in `text`. */
  splitWithSpans(text: string): Piece[];
}

export const DEFAULT_SEPARATORS = ['\n\n', '\n', ' ', ''] as const;
/** Chinese/Japanese: paragraphs, lines, then full-width sentence and clause punctuation. */
export const CJK_SEPARATORS = ['\n\n', '\n', '。', '！', '？', '；', '，', '、', ' ', ''] as const;
/** Markdown (LangChain's fromLanguage('markdown') list): headings, code fences, rules, then the defaults. */
export const MARKDOWN_SEPARATORS = ['\n#{1,6} ', '```\n', '\n\\*\\*\\*+\n', '\n---+\n', '\n___+\n', '\n\n', '\n', ' ', ''] as const;

export type KeepSeparator = boolean | 'start' | 'end';

export interface RecursiveSplitterOptions {
  /** Maximum chunk length (default 1000, LangChain's). */
  chunkSize?: number;
  /** Characters shared by consecutive chunks (default 200, LangChain's). */
  chunkOverlap?: number;
  /** Tried in order; "" splits into characters. Default "\n\n", "\n", " ", "". 'auto' picks CJK_SEPARATORS for mostly-CJK text. */
  separators?: readonly string[] | 'auto';
  /** Separators are regular expressions (as LangChain's isSeparatorRegex). */
  separatorsAreRegex?: boolean;
  /** Keep separators attached to the following (true/'start', LangChain's default) or preceding ('end') piece, or drop them (false). */
  keepSeparator?: KeepSeparator;
  /** Length measure (default: UTF-16 length, as LangChain's). */
  lengthFunction?: (text: string) => number;
}

function checkSizes(chunkSize: number, chunkOverlap: number, who: string): void {
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`${who}: chunkSize must be a positive integer, got ${chunkSize}`);
  if (!Number.isInteger(chunkOverlap) || chunkOverlap < 0) throw new RangeError(`${who}: chunkOverlap must be a non-negative integer, got ${chunkOverlap}`);
  if (chunkOverlap >= chunkSize) throw new RangeError(`${who}: chunkOverlap (${chunkOverlap}) must be smaller than chunkSize (${chunkSize})`);
}

const escapeRegex = (s: string): string => s.replace(/[/\-\\^$*+?.()|[\]{}]/g, '\\$&');

const CJK_RE = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]/g;

/** Whether more than a third of the non-space characters are CJK. */
export function isMostlyCJK(text: string): boolean {
  const sample = text.slice(0, 5000);
  const cjk = sample.match(CJK_RE)?.length ?? 0;
  const visible = sample.replace(/\s/g, '').length;
  return visible > 0 && cjk / visible > 1 / 3;
}

/** Locates each chunk in the text, searching forward from where the previous one could overlap (LangChain's add_start_index). */
export function spansOf(text: string, chunks: readonly string[], chunkOverlap: number): Piece[] {
  const out: Piece[] = [];
  let index = 0;
  let previousLength = 0;
  for (const chunk of chunks) {
    const from = Math.max(0, index + previousLength - chunkOverlap);
    let at = text.indexOf(chunk, from);
    if (at < 0) at = text.indexOf(chunk);
    if (at < 0) at = index; // joined with a dropped separator: the span is approximate
    out.push({ text: chunk, start: at, end: at + chunk.length });
    index = at;
    previousLength = chunk.length;
  }
  return out;
}

/** LangChain's RecursiveCharacterTextSplitter, separator for separator and merge for merge. */
export class RecursiveCharacterTextSplitter implements TextSplitter {
  readonly chunkSize: number;
  readonly chunkOverlap: number;
  readonly separators: readonly string[] | 'auto';
  readonly keepSeparator: KeepSeparator;
  readonly separatorsAreRegex: boolean;
  private readonly len: (text: string) => number;

  constructor(options: RecursiveSplitterOptions = {}) {
    this.chunkSize = options.chunkSize ?? 1000;
    this.chunkOverlap = options.chunkOverlap ?? 200;
    checkSizes(this.chunkSize, this.chunkOverlap, 'RecursiveCharacterTextSplitter');
    this.separators = options.separators ?? DEFAULT_SEPARATORS;
    this.keepSeparator = options.keepSeparator ?? true;
    this.separatorsAreRegex = options.separatorsAreRegex ?? false;
    this.len = options.lengthFunction ?? ((t) => t.length);
  }

  splitText(text: string): string[] {
    const seps = this.separators === 'auto' ? (isMostlyCJK(text) ? CJK_SEPARATORS : DEFAULT_SEPARATORS) : this.separators;
    // The CJK list keeps punctuation with the sentence it ends.
    const keep = this.separators === 'auto' && seps === CJK_SEPARATORS && this.keepSeparator !== false ? 'end' : this.keepSeparator;
    return this.split(text, seps, keep);
  }

  splitWithSpans(text: string): Piece[] {
    return spansOf(text, this.splitText(text), this.chunkOverlap);
  }

  private pattern(sep: string): string {
    return this.separatorsAreRegex ? sep : escapeRegex(sep);
  }

  private splitOnSeparator(text: string, sep: string, keep: KeepSeparator): string[] {
    let splits: string[];
    if (sep === '') splits = [...text];
    else if (keep === false) splits = text.split(this.separatorsAreRegex ? new RegExp(sep) : sep);
    else if (keep === 'end') {
      splits = [];
      const re = new RegExp(this.pattern(sep), 'g');
      let last = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        splits.push(text.slice(last, m.index + m[0].length));
        last = m.index + m[0].length;
      }
      splits.push(text.slice(last));
    } else splits = text.split(new RegExp(`(?=${this.pattern(sep)})`));
    return splits.filter((s) => s !== '');
  }

  private split(text: string, separators: readonly string[], keep: KeepSeparator): string[] {
    const finalChunks: string[] = [];
    let separator = separators[separators.length - 1] ?? '';
    let newSeparators: readonly string[] | undefined;
    for (let i = 0; i < separators.length; i++) {
      const s = separators[i]!;
      if (s === '') {
        separator = s;
        break;
      }
      if (this.separatorsAreRegex ? new RegExp(s).test(text) : text.includes(s)) {
        separator = s;
        newSeparators = separators.slice(i + 1);
        break;
      }
    }
    const splits = this.splitOnSeparator(text, separator, keep);
    let goodSplits: string[] = [];
    const joiner = keep !== false ? '' : separator;
    for (const s of splits) {
      if (this.len(s) < this.chunkSize) {
        goodSplits.push(s);
        continue;
      }
      if (goodSplits.length > 0) {
        finalChunks.push(...this.mergeSplits(goodSplits, joiner));
        goodSplits = [];
      }
      if (newSeparators === undefined) finalChunks.push(s);
      else finalChunks.push(...this.split(s, newSeparators, keep));
    }
    if (goodSplits.length > 0) finalChunks.push(...this.mergeSplits(goodSplits, joiner));
    return finalChunks;
  }

  private joinDocs(docs: readonly string[], separator: string): string | null {
    const text = docs.join(separator).trim();
    return text === '' ? null : text;
  }

  /** Greedy packing with overlap, exactly as LangChain's TextSplitter.mergeSplits. */
  private mergeSplits(splits: readonly string[], separator: string): string[] {
    const docs: string[] = [];
    const current: string[] = [];
    let total = 0;
    const sepLen = this.len(separator);
    for (const d of splits) {
      const l = this.len(d);
      if (total + l + current.length * sepLen > this.chunkSize) {
        if (current.length > 0) {
          const doc = this.joinDocs(current, separator);
          if (doc !== null) docs.push(doc);
          while (total > this.chunkOverlap || (total + l + current.length * sepLen > this.chunkSize && total > 0)) {
            total -= this.len(current[0]!);
            current.shift();
          }
        }
      }
      current.push(d);
      total += l;
    }
    const doc = this.joinDocs(current, separator);
    if (doc !== null) docs.push(doc);
    return docs;
  }
}

export interface TokenSplitterOptions {
  tokenizer: Tokenizer;
  /** Tokens per chunk (default 512). */
  chunkSize?: number;
  /** Tokens shared by consecutive chunks (default 64). */
  chunkOverlap?: number;
}

/** Fixed windows of tokens (any Weft tokenizer); each chunk is the exact source text its tokens cover. */
export class TokenTextSplitter implements TextSplitter {
  readonly chunkSize: number;
  readonly chunkOverlap: number;
  private readonly tokenizer: Tokenizer;

  constructor(options: TokenSplitterOptions) {
    this.tokenizer = options.tokenizer;
    this.chunkSize = options.chunkSize ?? 512;
    this.chunkOverlap = options.chunkOverlap ?? 64;
    checkSizes(this.chunkSize, this.chunkOverlap, 'TokenTextSplitter');
  }

  splitText(text: string): string[] {
    return this.splitWithSpans(text).map((p) => p.text);
  }

  splitWithSpans(text: string): Piece[] {
    const enc = this.tokenizer.encodeFull(text, null, { addSpecialTokens: false });
    const offsets = enc.offsets.filter(([s, e]) => e > s);
    const out: Piece[] = [];
    const step = this.chunkSize - this.chunkOverlap;
    for (let i = 0; i < offsets.length; i += step) {
      const last = Math.min(offsets.length, i + this.chunkSize) - 1;
      const start = offsets[i]![0];
      const end = offsets[last]![1];
      out.push({ text: text.slice(start, end), start, end });
      if (last === offsets.length - 1) break;
    }
    return out;
  }
}

/**
 * Sentence boundaries: after . ! ? (and closing quotes/brackets) followed by whitespace, after
 * 。！？ (and closing “」』）), and at blank lines.
 */
export function sentenceSpans(text: string): { start: number; end: number }[] {
  const re = /[.!?]+["'”’)\]]*(?=\s)|[。！？!?]+[”’」』）)]*|\n\s*\n/g;
  const out: { start: number; end: number }[] = [];
  let start = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const end = m.index + m[0].length;
    pushTrimmed(text, start, end, out);
    start = end;
  }
  pushTrimmed(text, start, text.length, out);
  return out;
}

function pushTrimmed(text: string, start: number, end: number, out: { start: number; end: number }[]): void {
  while (start < end && /\s/.test(text[start]!)) start++;
  while (end > start && /\s/.test(text[end - 1]!)) end--;
  if (end > start) out.push({ start, end });
}

export interface SentenceSplitterOptions {
  /** Maximum characters per chunk (default 1000); a longer sentence is cut by the recursive splitter. */
  chunkSize?: number;
  /** Characters of whole trailing sentences repeated at the start of the next chunk (default 200). */
  chunkOverlap?: number;
}

/** Packs whole sentences into chunks (LlamaIndex's SentenceSplitter idea), never cutting one unless it alone is too long. */
export class SentenceSplitter implements TextSplitter {
  readonly chunkSize: number;
  readonly chunkOverlap: number;

  constructor(options: SentenceSplitterOptions = {}) {
    this.chunkSize = options.chunkSize ?? 1000;
    this.chunkOverlap = options.chunkOverlap ?? 200;
    checkSizes(this.chunkSize, this.chunkOverlap, 'SentenceSplitter');
  }

  splitText(text: string): string[] {
    return this.splitWithSpans(text).map((p) => p.text);
  }

  splitWithSpans(text: string): Piece[] {
    // Sentences longer than a chunk are cut first, so every unit fits.
    const units: { start: number; end: number }[] = [];
    const fallback = new RecursiveCharacterTextSplitter({ chunkSize: this.chunkSize, chunkOverlap: 0, separators: 'auto' });
    for (const s of sentenceSpans(text)) {
      if (s.end - s.start <= this.chunkSize) units.push(s);
      else for (const p of fallback.splitWithSpans(text.slice(s.start, s.end))) units.push({ start: s.start + p.start, end: s.start + p.end });
    }
    const out: Piece[] = [];
    let i = 0;
    while (i < units.length) {
      let j = i;
      while (j + 1 < units.length && units[j + 1]!.end - units[i]!.start <= this.chunkSize) j++;
      const start = units[i]!.start;
      const end = units[j]!.end;
      out.push({ text: text.slice(start, end), start, end });
      if (j === units.length - 1) break;
      // Overlap: the trailing sentences of this chunk that fit in chunkOverlap, but always advance.
      let k = j + 1;
      while (k - 1 > i && end - units[k - 1]!.start <= this.chunkOverlap) k--;
      i = k;
    }
    return out;
  }
}

export interface MarkdownSplitterOptions {
  chunkSize?: number;
  chunkOverlap?: number;
}

/** A heading-delimited section of a Markdown text. */
export interface MarkdownSection {
  headingPath: string[];
  start: number;
  end: number;
}

/** ATX headings (# … ######) outside fenced code blocks cut the text into sections, each with its heading path. */
export function markdownSections(text: string): MarkdownSection[] {
  const sections: MarkdownSection[] = [];
  const path: { level: number; title: string }[] = [];
  let sectionStart = 0;
  let currentPath: string[] = [];
  let inFence = false;
  let pos = 0;
  for (const line of text.split('\n')) {
    const lineStart = pos;
    pos += line.length + 1;
    if (/^\s{0,3}(```|~~~)/.test(line)) {
      inFence = !inFence;
      continue;
    }
    if (inFence) continue;
    const m = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (m === null) continue;
    if (lineStart > sectionStart) sections.push({ headingPath: currentPath, start: sectionStart, end: lineStart });
    const level = m[1]!.length;
    while (path.length > 0 && path[path.length - 1]!.level >= level) path.pop();
    path.push({ level, title: m[2]! });
    currentPath = path.map((p) => p.title);
    sectionStart = lineStart;
  }
  if (text.length > sectionStart) sections.push({ headingPath: currentPath, start: sectionStart, end: text.length });
  return sections.filter((s) => text.slice(s.start, s.end).trim() !== '');
}

/** Splits Markdown by headings first, then each section with the recursive splitter; every chunk keeps its heading path. */
export class MarkdownTextSplitter implements TextSplitter {
  private readonly inner: RecursiveCharacterTextSplitter;

  constructor(options: MarkdownSplitterOptions = {}) {
    this.inner = new RecursiveCharacterTextSplitter({ chunkSize: options.chunkSize, chunkOverlap: options.chunkOverlap, separators: DEFAULT_SEPARATORS });
  }

  splitText(text: string): string[] {
    return this.splitWithSpans(text).map((p) => p.text);
  }

  splitWithSpans(text: string): Piece[] {
    const out: Piece[] = [];
    for (const s of markdownSections(text)) {
      const body = text.slice(s.start, s.end);
      const inner = isMostlyCJK(body) ? new RecursiveCharacterTextSplitter({ chunkSize: this.inner.chunkSize, chunkOverlap: this.inner.chunkOverlap, separators: 'auto' }) : this.inner;
      for (const p of inner.splitWithSpans(body)) out.push({ text: p.text, start: s.start + p.start, end: s.start + p.end, headingPath: s.headingPath });
    }
    return out;
  }
}

/** A chunk id that is the same whenever the same text sits at the same place in the same source. */
export function chunkId(source: string, index: number, hash: string): string {
  return sha256Hex(`${source}\u0000${index}\u0000${hash}`).slice(0, 32);
}

/** Splits documents into chunks, carrying source, location (span and heading path) and metadata. */
export function splitDocuments(docs: readonly Document[], splitter: TextSplitter): Chunk[] {
  const out: Chunk[] = [];
  const perSource = new Map<string, number>();
  for (const doc of docs) {
    const base = doc.location.start ?? 0;
    for (const p of splitter.splitWithSpans(doc.text)) {
      const index = perSource.get(doc.source) ?? 0;
      perSource.set(doc.source, index + 1);
      const hash = sha256Hex(p.text);
      const outer = doc.location.headingPath ?? [];
      const inner = p.headingPath ?? [];
      // A Markdown section re-split by the Markdown splitter repeats its own path: do not double it.
      const headingPath = outer.every((h, i) => inner[i] === h) && inner.length > 0 ? inner : [...outer, ...inner];
      const location: Location = { ...doc.location, start: base + p.start, end: base + p.end };
      if (headingPath.length > 0) location.headingPath = headingPath;
      else delete location.headingPath;
      out.push({ id: chunkId(doc.source, index, hash), text: p.text, source: doc.source, location, hash, metadata: { ...doc.metadata } });
    }
  }
  return out;
}
