/**
 * The quality stages by name, as `--filters gopher,c4,pii` selects them. Order is fixed (not the
 * order of the flag) so the same set of names always gives the same output: PII masking first
 * (filters then see placeholder tokens, and examples in the stats carry no PII), then C4 (it
 * rewrites lines), then the Gopher and CJK rules on the cleaned text.
 */
import { filterStage, transformStage } from '../stats.js';
import type { DocStage } from '../types.js';
import { c4Stage, type C4Options } from './c4.js';
import { cjkFilter, type CjkOptions } from './cjk.js';
import { gopherQualityFilter, gopherRepetitionFilter, type GopherQualityOptions, type GopherRepetitionOptions } from './gopher.js';
import { piiTransform, type PiiOptions } from './pii.js';

export { c4Stage, c4Lines, badWordsRegExp, type C4Options } from './c4.js';
export { cjkFilter, type CjkOptions } from './cjk.js';
export { gopherQualityFilter, gopherRepetitionFilter, type GopherQualityOptions, type GopherRepetitionOptions } from './gopher.js';
export { maskPii, piiTransform, type PiiOptions } from './pii.js';

/** Names accepted by `--filters`. "gopher" means both Gopher rule sets; "cjk" is added to "gopher" by default. */
export const FILTER_NAMES = ['pii', 'c4', 'gopher', 'gopher_quality', 'gopher_repetition', 'cjk'] as const;
export type FilterName = (typeof FILTER_NAMES)[number];

export interface FilterConfig {
  gopherQuality?: GopherQualityOptions;
  gopherRepetition?: GopherRepetitionOptions;
  c4?: C4Options;
  cjk?: CjkOptions;
  pii?: PiiOptions;
  /** With "gopher" selected, also apply the CJK rules to CJK documents (Gopher skips them). Default true. */
  cjkWithGopher?: boolean;
}

/** Parse "gopher,c4,pii" (commas and/or spaces); unknown names are an error listing the valid ones. */
export function parseFilterNames(spec: string): FilterName[] {
  const names = spec
    .split(/[\s,]+/)
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.length > 0 && s !== 'none');
  for (const n of names) {
    if (!(FILTER_NAMES as readonly string[]).includes(n)) {
      throw new Error(`filters: unknown filter '${n}' (expected some of ${FILTER_NAMES.join(', ')}, or none)`);
    }
  }
  return names as FilterName[];
}

/** The stages for a set of filter names, in the canonical order. */
export function buildFilterStages(names: readonly FilterName[], config: FilterConfig = {}): DocStage[] {
  const want = new Set(names);
  const stages: DocStage[] = [];
  if (want.has('pii')) stages.push(transformStage(piiTransform(config.pii)));
  if (want.has('c4')) stages.push(c4Stage(config.c4));
  if (want.has('gopher') || want.has('gopher_quality')) stages.push(filterStage(gopherQualityFilter(config.gopherQuality)));
  if (want.has('gopher') || want.has('gopher_repetition')) stages.push(filterStage(gopherRepetitionFilter(config.gopherRepetition)));
  if (want.has('cjk') || (want.has('gopher') && (config.cjkWithGopher ?? true))) stages.push(filterStage(cjkFilter(config.cjk)));
  return stages;
}
