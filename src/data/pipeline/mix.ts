/**
 * Mixing: how many copies of each document the packed output gets.
 *
 *   copies(doc) = languageFactor[lang] × sourceWeight[source] × epochs[source]
 *
 * - Temperature sampling over languages (XLM-R, mT5): with p_i = n_i / N the natural share of
 *   language i (n_i in UTF-8 bytes, a tokenizer-free proxy for tokens), the target share is
 *   q_i ∝ w_i · n_i^α (w_i the per-language weight, default 1), and languageFactor_i = q_i / p_i,
 *   so the total size stays N while α < 1 moves share from large languages to small ones
 *   (α = 1 with equal weights leaves every factor at 1; α = 0 makes the languages equal).
 * - No language is repeated more than `maxLanguageEpochs` times (UniMax, Chung et al. 2023): a
 *   language whose factor would pass the cap is held at it and its surplus share goes to the others
 *   in proportion to their targets (repeated until no factor passes the cap). Without it, a language
 *   with a few hundred bytes — often short lines misidentified as Tagalog or Danish — would be
 *   copied thousands of times.
 * - "und" (too few letters to identify) is not a language to balance: it keeps its natural size and
 *   the other languages share the rest.
 * - Per-source weights and epochs multiply on top (a weight of 2 or 2 epochs both double a source).
 *
 * A fractional expectation c becomes ⌊c⌋ copies plus one more with probability c − ⌊c⌋, drawn from
 * a hash of (seed, document index): each document's draw is independent of every other, so the
 * plan is deterministic for a seed and a resumed run reproduces it without replaying a generator.
 */
import { fmix32 } from './dedup.js';

export interface MixOptions {
  /** α of the temperature sampling over languages; undefined = no reweighting by size. */
  temperature?: number;
  /** Per-language weights w_i (default 1). A weight of 0 drops the language. */
  languageWeights?: Record<string, number>;
  /** Per-source multipliers (default 1), keyed by the document's `source`. */
  sourceWeights?: Record<string, number>;
  /** Passes over each source (default 1), keyed by `source`. */
  epochs?: Record<string, number>;
  /** Most copies the language reweighting may give a language (UniMax's epoch cap); default 4, ≥ 1 (Infinity: no cap). */
  maxLanguageEpochs?: number;
  seed?: number;
}

export const DEFAULT_MAX_LANGUAGE_EPOCHS = 4;
/** The language code of text too short to identify; never reweighted. */
export const UNDETERMINED = 'und';

/** What the plan is built from: bytes (after cleaning and deduplication) per language. */
export type LanguageSizes = Record<string, number>;

export interface MixPlan {
  /** Natural share p_i and target share q_i per language. */
  natural: Record<string, number>;
  target: Record<string, number>;
  languageFactor: Record<string, number>;
  sourceWeights: Record<string, number>;
  epochs: Record<string, number>;
  temperature: number | null;
  seed: number;
}

function checkWeights(what: string, w: Record<string, number> | undefined, allowZero: boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(w ?? {})) {
    if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) throw new RangeError(`mix: ${what} for ${JSON.stringify(k)} must be a finite number ${allowZero ? '≥ 0' : '> 0'}, got ${v}`);
    out[k] = v;
  }
  return out;
}

/** The mixing plan for languages of the given sizes. */
export function planMix(sizes: LanguageSizes, options: MixOptions = {}): MixPlan {
  const alpha = options.temperature;
  if (alpha !== undefined && !(Number.isFinite(alpha) && alpha >= 0 && alpha <= 1)) throw new RangeError(`mix: temperature α must be in [0, 1], got ${alpha}`);
  const seed = options.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`mix: seed must be a non-negative integer, got ${seed}`);
  const langWeights = checkWeights('language weight', options.languageWeights, true);
  const sourceWeights = checkWeights('source weight', options.sourceWeights, true);
  const epochs = checkWeights('epochs', options.epochs, true);

  const maxEpochs = options.maxLanguageEpochs ?? DEFAULT_MAX_LANGUAGE_EPOCHS;
  if (!(maxEpochs >= 1)) throw new RangeError(`mix: maxLanguageEpochs must be a number ≥ 1 (Infinity: no cap), got ${maxEpochs}`);

  const langs = Object.keys(sizes).filter((l) => sizes[l]! > 0).sort();
  const total = langs.reduce((s, l) => s + sizes[l]!, 0);
  const natural: Record<string, number> = {};
  const target: Record<string, number> = {};
  const languageFactor: Record<string, number> = {};
  if (total > 0) {
    for (const l of langs) natural[l] = sizes[l]! / total;
    // "und" keeps its natural share; the identified languages divide the rest.
    const und = natural[UNDETERMINED] ?? 0;
    if (und > 0) {
      target[UNDETERMINED] = und;
      languageFactor[UNDETERMINED] = 1;
    }
    const open = langs.filter((l) => l !== UNDETERMINED);
    const scoreOf = (l: string): number => (langWeights[l] ?? 1) * (alpha === undefined ? sizes[l]! : sizes[l]! ** alpha);
    // Water-filling: cap, give the surplus to the uncapped, repeat until nothing passes the cap.
    let budget = 1 - und;
    for (;;) {
      const scoreSum = open.reduce((s, l) => s + scoreOf(l), 0);
      const over = open.filter((l) => scoreSum > 0 && (budget * scoreOf(l)) / scoreSum / natural[l]! > maxEpochs);
      if (over.length === 0) {
        for (const l of open) {
          target[l] = scoreSum > 0 ? (budget * scoreOf(l)) / scoreSum : 0;
          languageFactor[l] = target[l] / natural[l]!;
        }
        break;
      }
      for (const l of over) {
        target[l] = maxEpochs * natural[l]!;
        languageFactor[l] = maxEpochs;
        budget -= target[l];
        open.splice(open.indexOf(l), 1);
      }
    }
  }
  return { natural, target, languageFactor, sourceWeights, epochs, temperature: alpha ?? null, seed };
}

/** Expected copies of a document of language `lang` from `source`. */
export function expectedCopies(plan: MixPlan, lang: string, source: string): number {
  const lf = plan.languageFactor[lang] ?? 1;
  return lf * (plan.sourceWeights[source] ?? 1) * (plan.epochs[source] ?? 1);
}

/** A uniform number in [0, 1) from (seed, index): the document's own draw. */
export function docUniform(seed: number, index: number): number {
  const h = fmix32(fmix32(seed ^ 0x6a09e667) ^ fmix32(index + 0x3c6ef372) ^ Math.floor(index / 0x100000000));
  return h / 0x100000000;
}

/** Copies of document `index` (its position in the deduplicated stream): ⌊c⌋ + Bernoulli(c − ⌊c⌋). */
export function copiesOf(plan: MixPlan, index: number, lang: string, source: string): number {
  const c = expectedCopies(plan, lang, source);
  const whole = Math.floor(c);
  return whole + (docUniform(plan.seed, index) < c - whole ? 1 : 0);
}
