/**
 * Shared contract of the pre-training data pipeline (issue 11).
 *
 * Every stage sees documents as {@link Doc}; readers produce them, transforms rewrite `text`,
 * filters keep or drop them, and the orchestrator (run.ts) accumulates a {@link StageStats} per stage.
 */

/** One document flowing through the pipeline. */
export interface Doc {
  /** Stable id (source path + ordinal, or the id field of the input record); used for deterministic tie-breaks. */
  id: string;
  /** The document text (UTF-16 JS string; byte counts in stats are UTF-8). */
  text: string;
  /** Where it came from (file path or a user label); mixing weights are keyed on it. */
  source: string;
  /** ISO 639-1 code once language identification has run ("en", "zh", …; "und" when unknown). */
  lang?: string;
  /** Free-form extras (e.g. language confidence, original record fields). */
  meta?: Record<string, unknown>;
}

/** Per-stage counters; `drops` is keyed by the rule name that dropped a document. */
export interface StageStats {
  name: string;
  docsIn: number;
  docsOut: number;
  bytesIn: number;
  bytesOut: number;
  drops: Record<string, { count: number; examples: string[] }>;
  /** Optional stage-specific numbers (e.g. masked PII counts, boilerplate lines removed). */
  counters?: Record<string, number>;
  /** Wall-clock seconds spent in the stage, when measured. */
  seconds?: number;
  /** Tokens in/out, for stages that see tokens (tokenize/pack, mixing). */
  tokensIn?: number;
  tokensOut?: number;
}

/** A keep/drop decision. `check` returns null to keep, otherwise the name of the rule that dropped it. */
export type DocFilter = {
  name: string;
  check(doc: Doc): string | null;
};

/**
 * A text rewrite (normalisation, PII masking, boilerplate stripping). Returns the new document;
 * `counters` lets a transform report what it changed (added into StageStats.counters).
 */
export type DocTransform = {
  name: string;
  apply(doc: Doc, counters?: Record<string, number>): Doc;
};

/** What a {@link DocStage} decided: keep (possibly rewritten) or drop with the rule's name. */
export type StageResult = { keep: true; doc: Doc } | { keep: false; rule: string };

/**
 * The general stage shape: filters and transforms both fit it, and so do rules that rewrite and may
 * drop (C4 removes lines, then drops the document if too few sentences remain).
 */
export interface DocStage {
  name: string;
  process(doc: Doc, counters?: Record<string, number>): StageResult;
}
