/**
 * A seeded perturbation suite (after HELM's robustness perturbations and NL-Augmenter): the same
 * documents with typos, changed casing, extra whitespace, or an irrelevant sentence added. Only the
 * task's input fields are changed, never targets or choices, so each metric's drop measures how much
 * the model depends on surface form.
 */
import { SeededRandom } from './tasks/prompt.js';
import type { Doc } from './tasks/template.js';

export const PERTURBATIONS = ['typos', 'casing', 'whitespace', 'distractor'] as const;
export type Perturbation = (typeof PERTURBATIONS)[number];

/** Neutral sentences with no sentiment, numbers or answer-bearing content. */
const DISTRACTORS = [
  'The library on the corner closes at the usual time on weekdays.',
  'Some people prefer to read the news in the morning.',
  'The committee met in a room on the second floor.',
  'A train left the station a few minutes ago.',
  'Many gardens have a bench near the gate.',
];

function typo(word: string, rnd: SeededRandom): string {
  const chars = [...word];
  const i = rnd.below(chars.length - 1);
  switch (rnd.below(3)) {
    case 0: // swap two neighbours
      [chars[i], chars[i + 1]] = [chars[i + 1]!, chars[i]!];
      break;
    case 1: // drop one
      chars.splice(i, 1);
      break;
    default: // double one
      chars.splice(i, 0, chars[i]!);
  }
  return chars.join('');
}

/** Perturbs `text`; words are runs of letters, so numbers and punctuation stay intact. */
export function perturbText(text: string, kind: Perturbation, rnd: SeededRandom, rate = 0.1): string {
  switch (kind) {
    case 'typos':
      return text.replace(/\p{L}{3,}/gu, (w) => (rnd.next() < rate ? typo(w, rnd) : w));
    case 'casing':
      return text.replace(/\p{L}+/gu, (w) => {
        const r = rnd.next();
        if (r < 0.15) return w.toUpperCase();
        if (r < 0.3) return w.toLowerCase();
        if (r < 0.45) return w[0]!.toUpperCase() + w.slice(1).toLowerCase();
        return w;
      });
    case 'whitespace':
      return text.replace(/ /g, () => ' '.repeat(1 + rnd.below(3)));
    case 'distractor': {
      const s = DISTRACTORS[rnd.below(DISTRACTORS.length)]!;
      const trimmed = text.replace(/\s+$/, '');
      return `${trimmed}${/[.!?]$/.test(trimmed) ? '' : '.'} ${s}${text.slice(trimmed.length)}`;
    }
  }
}

/** A copy of `doc` with `fields` perturbed; the generator is seeded per document for reproducibility. */
export function perturbDoc(doc: Doc, fields: readonly string[], kind: Perturbation, seed: number): Doc {
  const rnd = new SeededRandom(seed);
  const out: Doc = { ...doc };
  for (const f of fields) {
    const v = doc[f];
    if (typeof v !== 'string') throw new Error(`robustness: field "${f}" is not text (got ${typeof v})`);
    out[f] = perturbText(v, kind, rnd);
  }
  return out;
}

export function parsePerturbations(list: string): Perturbation[] {
  const names = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const n of names) {
    if (!(PERTURBATIONS as readonly string[]).includes(n)) throw new Error(`unknown perturbation "${n}" (known: ${PERTURBATIONS.join(', ')})`);
  }
  return names as Perturbation[];
}
