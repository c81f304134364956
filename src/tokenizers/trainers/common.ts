/**
 * What the trainers share: progress reporting, word counting (HF's `Trainer::feed`: each input line
 * goes through the tokenizer's normalizer and pre-tokenizer, and the resulting pieces are counted),
 * and option checks with clear errors.
 */
import { readFileSync } from 'node:fs';
import type { Normalizer, PreTokenizer } from '../types.js';
import { BYTE_TABLES, isFastSplitter } from '../util.js';

/** One progress report: `done` of `total` units of the named phase. */
export interface TrainerProgress {
  phase: 'count words' | 'merges' | 'em' | 'seed';
  done: number;
  total: number;
}

export type ProgressCallback = (progress: TrainerProgress) => void;

/** Word (pre-token) → occurrences. Insertion order is first-seen order, which keeps training deterministic. */
export type WordCounts = Map<string, number>;

/** The parts of a pipeline that turn a line into the pieces a trainer counts. */
export interface PreTokenizingPipeline {
  normalizer: Normalizer | null;
  preTokenizer: PreTokenizer | null;
}

/** The pieces of one input line as the model will see them (normalized, then pre-tokenized). */
export function preTokenizeForTraining(pipeline: PreTokenizingPipeline, line: string): string[] {
  let text = line;
  if (pipeline.normalizer !== null) {
    const align = new Array<number>(line.length + 1);
    for (let i = 0; i <= line.length; i++) align[i] = i;
    text = pipeline.normalizer.normalize({ text: line, align }).text;
  }
  if (pipeline.preTokenizer === null) return text.length === 0 ? [] : [text];
  return pipeline.preTokenizer.preTokenize([{ text, start: 0, end: text.length }]).map((p) => p.text);
}

/**
 * Lines with their line endings, as HF's `train_from_files` reads files (`lines_with_ending`):
 * the newline belongs to the line, so byte-level vocabularies learn "\n" tokens.
 */
export function* linesWithEndings(text: string): Generator<string> {
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const end = nl === -1 ? text.length : nl + 1;
    yield text.slice(start, end);
    start = end;
  }
}

/**
 * Counts the pre-tokenized pieces of `lines` into `counts` (created when absent); reports progress
 * in characters. Without a normalizer, a pre-tokenizer that can report word spans (the byte-level
 * one) is run on its fast path: raw words are counted first, and each distinct word is mapped to
 * the byte-level alphabet once — the same pieces as the full pipeline, far fewer strings built.
 */
export function countWords(
  lines: Iterable<string>,
  pipeline: PreTokenizingPipeline,
  options: { counts?: WordCounts; onProgress?: ProgressCallback; totalChars?: number } = {},
): WordCounts {
  const counts = options.counts ?? new Map<string, number>();
  const total = options.totalChars ?? 0;
  const pre = pipeline.preTokenizer;
  const fast = pipeline.normalizer === null && pre !== null && isFastSplitter(pre) ? pre : null;
  const raw = new Map<string, number>();
  let line = '';
  const emit = (s: number, e: number): void => {
    const w = line.slice(s, e);
    raw.set(w, (raw.get(w) ?? 0) + 1);
  };
  let done = 0;
  let nextReport = 0;
  for (const input of lines) {
    line = fast !== null && fast.fastPrefixSpace && input.length > 0 && !input.startsWith(' ') ? ' ' + input : input;
    if (fast === null || !fast.fastSplit(line, emit)) {
      for (const piece of preTokenizeForTraining(pipeline, input)) counts.set(piece, (counts.get(piece) ?? 0) + 1);
    }
    done += input.length;
    if (options.onProgress !== undefined && done >= nextReport) {
      options.onProgress({ phase: 'count words', done, total: Math.max(total, done) });
      nextReport = done + 65536;
    }
  }
  const byteLevel = fast?.fastByteLevel ?? false;
  for (const [w, c] of raw) {
    const key = byteLevel ? toByteLevelString(w) : w;
    counts.set(key, (counts.get(key) ?? 0) + c);
  }
  if (options.onProgress !== undefined) options.onProgress({ phase: 'count words', done, total: Math.max(total, done) });
  return counts;
}

/** A string's UTF-8 bytes as GPT-2's byte-level characters. */
export function toByteLevelString(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += BYTE_TABLES.byteToChar[b];
  return out;
}

/** Reads UTF-8 text files, failing with the file's name when one cannot be read. */
export function readTrainingFiles(paths: readonly string[]): string[] {
  if (paths.length === 0) throw new Error('tokenizer training: no input files given');
  return paths.map((path) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`tokenizer training: cannot read input file '${path}': ${err instanceof Error ? err.message : String(err)}`);
    }
  });
}

export function checkVocabSize(trainer: string, vocabSize: number): void {
  if (!Number.isSafeInteger(vocabSize) || vocabSize < 1) throw new RangeError(`${trainer}: vocabSize must be a positive integer, got ${vocabSize}`);
}

export function checkNonNegativeInt(trainer: string, name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${trainer}: ${name} must be an integer ≥ 0, got ${value}`);
}

/** HF stores the initial alphabet as a set of chars: each entry must be exactly one character (code point). */
export function alphabetChars(trainer: string, entries: Iterable<string>): string[] {
  const out: string[] = [];
  for (const entry of entries) {
    const chars = [...entry];
    if (chars.length !== 1) throw new RangeError(`${trainer}: initialAlphabet entries must be single characters, got ${JSON.stringify(entry)}`);
    out.push(chars[0]);
  }
  return out;
}

/** Special tokens must be distinct and non-empty (each becomes one vocabulary entry). */
export function checkSpecialTokens(trainer: string, tokens: readonly string[]): void {
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.length === 0) throw new RangeError(`${trainer}: a special token is the empty string`);
    if (seen.has(t)) throw new RangeError(`${trainer}: special token ${JSON.stringify(t)} is listed twice`);
    seen.add(t);
  }
}
