/** A seeded random-logits "model" that generates under a constraint, for the structured-output tests. */
import type { StructuredConstraint } from '../../../src/infer/structured/constraint.js';
import type { TokenVocabulary } from '../../../src/infer/structured/vocabulary.js';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Generation {
  ids: number[];
  text: string;
  /** Ended by `done` or by EOS (false: the step limit was reached). */
  finished: boolean;
  maskMs: number[];
}

/**
 * Samples the argmax of random logits after masking. A static per-token bias (favouring tokens
 * with structural characters and EOS, growing with the step count) keeps documents short; it
 * changes which allowed token wins, never which tokens are allowed.
 */
export function generate(constraint: StructuredConstraint, vocab: TokenVocabulary, seed: number, maxSteps = 400, onStep?: (c: StructuredConstraint, step: number) => void): Generation {
  const rng = mulberry32(seed);
  const closers = new Set([0x22, 0x7d, 0x5d, 0x2c]);
  const bias = new Float32Array(vocab.size);
  for (let id = 0; id < vocab.size; id++) {
    const b = vocab.bytes(id);
    if (b.some((x) => closers.has(x))) bias[id] = 1;
    if (b.length > 4) bias[id] -= 0.5;
  }
  const eos = new Set(vocab.eosIds);
  const ids: number[] = [];
  const bytes: number[] = [];
  const maskMs: number[] = [];
  const logits = new Float32Array(vocab.size);
  let finished = false;
  for (let step = 0; step < maxSteps; step++) {
    onStep?.(constraint, step);
    const urgency = step / 40;
    for (let i = 0; i < logits.length; i++) logits[i] = rng() * 3 + bias[i]! * (1 + urgency) + (eos.has(i) ? 1 + urgency : 0);
    const t0 = performance.now();
    constraint.mask(logits);
    maskMs.push(performance.now() - t0);
    let best = -1;
    for (let i = 0; i < logits.length; i++) if (logits[i]! > -Infinity && (best < 0 || logits[i]! > logits[best]!)) best = i;
    if (best < 0) throw new Error('every token was masked');
    constraint.accept(best);
    if (eos.has(best)) {
      finished = true;
      break;
    }
    ids.push(best);
    bytes.push(...vocab.bytes(best));
    if (constraint.done) {
      finished = true;
      break;
    }
  }
  return { ids, text: new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes)), finished, maskMs };
}
