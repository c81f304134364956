/**
 * T5's pre-training objective (Raffel et al. 2020, §3.1.4; t5.data.preprocessors.span_corruption):
 * a random ~15% of the tokens, in spans of mean length 3, are each replaced in the input by one
 * sentinel (<extra_id_0>, <extra_id_1>, … in order); the target lists every sentinel followed by
 * the tokens it hid. Both end with EOS.
 *
 *   tokens   Thank you for inviting me to your party last week .
 *   inputs   Thank you <extra_id_0> me to your party <extra_id_1> week . </s>
 *   targets  <extra_id_0> for inviting <extra_id_1> last </s>
 *
 * The noise mask follows `random_spans_noise_mask` exactly in its counts: round(length·density)
 * noise tokens (at least 1, at most length−1), round(noise/meanSpan) spans (at least 1), the noise
 * and non-noise tokens each cut into that many non-empty segments uniformly at random, interleaved
 * starting with non-noise (so the first token is never noise). Rounding is half-to-even, as NumPy's
 * and TensorFlow's.
 */
import { defaultGenerator, type Generator } from '../../tensor/random.js';

export interface SpanCorruptionOptions {
  /** Fraction of tokens to corrupt (T5: 0.15). */
  noiseDensity?: number;
  /** Mean length of a corrupted span (T5: 3). */
  meanNoiseSpanLength?: number;
  generator?: Generator;
}

export const T5_NOISE_DENSITY = 0.15;
export const T5_MEAN_NOISE_SPAN_LENGTH = 3;

/** Round half to even (np.round / tf.round). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function checkOptions(noiseDensity: number, meanNoiseSpanLength: number, op: string): void {
  if (!(noiseDensity > 0 && noiseDensity < 1)) throw new RangeError(`${op}: noiseDensity must be in (0, 1), got ${noiseDensity}`);
  if (!(meanNoiseSpanLength >= 1)) throw new RangeError(`${op}: meanNoiseSpanLength must be ≥ 1, got ${meanNoiseSpanLength}`);
}

/** Numbers of noise tokens and noise spans for a sequence of `length` tokens (as random_spans_noise_mask). */
export function noiseCounts(length: number, noiseDensity = T5_NOISE_DENSITY, meanNoiseSpanLength = T5_MEAN_NOISE_SPAN_LENGTH): { noiseTokens: number; noiseSpans: number } {
  const noiseTokens = Math.min(Math.max(roundHalfEven(length * noiseDensity), 1), length - 1);
  const noiseSpans = Math.max(roundHalfEven(noiseTokens / meanNoiseSpanLength), 1);
  return { noiseTokens, noiseSpans };
}

/** `numItems` split into `numSegments` non-empty segments, uniformly at random; returns their lengths. */
function randomSegmentation(numItems: number, numSegments: number, g: Generator): number[] {
  // Choose which of the numItems−1 gaps start a new segment: a shuffled boolean vector with
  // numSegments−1 trues (Fisher–Yates), as the reference's np.random.shuffle.
  const starts = Array.from({ length: numItems - 1 }, (_, i) => i < numSegments - 1);
  for (let i = starts.length - 1; i > 0; i--) {
    const j = g.int(0, i + 1);
    [starts[i], starts[j]] = [starts[j]!, starts[i]!];
  }
  const lengths: number[] = [1];
  for (const s of starts) {
    if (s) lengths.push(1);
    else lengths[lengths.length - 1]! += 1;
  }
  return lengths;
}

/** Which of `length` positions are noise (1) — T5's random_spans_noise_mask. */
export function randomSpansNoiseMask(length: number, options: SpanCorruptionOptions = {}): Uint8Array {
  const op = 'randomSpansNoiseMask';
  const { noiseDensity = T5_NOISE_DENSITY, meanNoiseSpanLength = T5_MEAN_NOISE_SPAN_LENGTH, generator = defaultGenerator } = options;
  checkOptions(noiseDensity, meanNoiseSpanLength, op);
  if (!Number.isInteger(length) || length < 2) throw new RangeError(`${op}: length must be an integer ≥ 2, got ${length}`);
  const { noiseTokens, noiseSpans } = noiseCounts(length, noiseDensity, meanNoiseSpanLength);
  // Fewer non-noise tokens than spans (density near 1) cannot interleave; the reference clamps alike.
  const spans = Math.min(noiseSpans, length - noiseTokens, noiseTokens);
  const noiseLengths = randomSegmentation(noiseTokens, spans, generator);
  const keepLengths = randomSegmentation(length - noiseTokens, spans, generator);
  const mask = new Uint8Array(length);
  let pos = 0;
  for (let s = 0; s < spans; s++) {
    pos += keepLengths[s]!;
    mask.fill(1, pos, pos + noiseLengths[s]!);
    pos += noiseLengths[s]!;
  }
  return mask;
}

export interface SpanCorruptionExample {
  inputs: number[];
  targets: number[];
}

export interface SpanCorruptionFormat {
  /** Id of <extra_id_i>; T5's vocabularies count down from the top: vocabSize − 1 − i. */
  sentinelId: (i: number) => number;
  /** Appended to inputs and targets when given (T5: </s> = 1). */
  eosId?: number;
}

/** T5's sentinel ids for a vocabulary of `vocabSize`: <extra_id_i> = vocabSize − 1 − i. */
export const t5SentinelId =
  (vocabSize: number) =>
  (i: number): number =>
    vocabSize - 1 - i;

/** The sentinel's text form, as T5's SentencePiece vocabulary spells it. */
export const sentinelToken = (i: number): string => `<extra_id_${i}>`;

/** Applies a noise mask: noise spans → one sentinel each in the inputs; targets = sentinel + hidden span. */
export function applyNoiseMask(tokens: ArrayLike<number>, mask: ArrayLike<number>, format: SpanCorruptionFormat): SpanCorruptionExample {
  if (tokens.length !== mask.length) throw new RangeError(`applyNoiseMask: ${tokens.length} tokens but a mask of ${mask.length}`);
  const inputs: number[] = [];
  const targets: number[] = [];
  let span = -1;
  for (let i = 0; i < tokens.length; i++) {
    const noise = mask[i] !== 0;
    const starts = noise && (i === 0 || mask[i - 1] === 0);
    if (starts) span++;
    if (noise) {
      if (starts) {
        inputs.push(format.sentinelId(span));
        targets.push(format.sentinelId(span));
      }
      targets.push(tokens[i]!);
    } else {
      inputs.push(tokens[i]!);
    }
  }
  if (format.eosId !== undefined) {
    inputs.push(format.eosId);
    targets.push(format.eosId);
  }
  return { inputs, targets };
}

/** One span-corruption example from `tokens`. */
export function spanCorruption(tokens: ArrayLike<number>, format: SpanCorruptionFormat, options: SpanCorruptionOptions = {}): SpanCorruptionExample {
  return applyNoiseMask(tokens, randomSpansNoiseMask(tokens.length, options), format);
}

/**
 * T5's random_spans_helper: the raw token count whose corrupted inputs (with sentinels and EOS) fill
 * exactly `inputsLength`, and the resulting targets length (with EOS). E.g. 512 → 568 tokens, 114 targets.
 */
export function spanCorruptionLengths(
  inputsLength: number,
  noiseDensity = T5_NOISE_DENSITY,
  meanNoiseSpanLength = T5_MEAN_NOISE_SPAN_LENGTH,
): { tokensLength: number; targetsLength: number } {
  checkOptions(noiseDensity, meanNoiseSpanLength, 'spanCorruptionLengths');
  if (!Number.isInteger(inputsLength) || inputsLength < 3) throw new RangeError(`spanCorruptionLengths: inputsLength must be an integer ≥ 3, got ${inputsLength}`);
  const lengths = (tokens: number): [number, number] => {
    const noise = roundHalfEven(tokens * noiseDensity);
    const spans = roundHalfEven(noise / meanNoiseSpanLength);
    return [tokens - noise + spans + 1, noise + spans + 1];
  };
  let tokensLength = inputsLength - 1;
  while (lengths(tokensLength + 1)[0] <= inputsLength) tokensLength++;
  let targetsLength = lengths(tokensLength)[1];
  if (noiseDensity === 0.5 && targetsLength > inputsLength) {
    tokensLength--;
    targetsLength--;
  }
  return { tokensLength, targetsLength };
}

/** T5's text-to-text format: the task as a plain-text prefix ("translate English to German: …"). */
export function textToText(task: string, input: string): string {
  return `${task.trim()}: ${input}`;
}
