/** Turning documents into prompts (lm-eval's fewshot_context) and model requests. */
import type { TaskSpec } from './schema.js';
import { type Doc, render } from './template.js';

/** A small seeded generator (mulberry32): few-shot sampling and perturbations are reproducible. */
export class SeededRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** k distinct items, in sampled order (partial Fisher–Yates). */
  sample<T>(items: readonly T[], k: number): T[] {
    const pool = [...items];
    const n = Math.min(k, pool.length);
    for (let i = 0; i < n; i++) {
      const j = i + this.below(pool.length - i);
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    return pool.slice(0, n);
  }
}

export function choicesOf(spec: TaskSpec, doc: Doc): string[] {
  return (spec.docToChoice ?? []).map((c) => render(c, doc));
}

/** Index of the gold choice: docToTarget renders an index, or the text of one of the choices. */
export function goldIndex(spec: TaskSpec, doc: Doc, choices: readonly string[]): number {
  const t = render(spec.docToTarget, doc);
  const asIndex = Number(t);
  if (t.trim() !== '' && Number.isInteger(asIndex)) {
    if (asIndex < 0 || asIndex >= choices.length) throw new Error(`task ${spec.task}: gold index ${asIndex} is outside the ${choices.length} choices`);
    return asIndex;
  }
  const i = choices.indexOf(t);
  if (i < 0) throw new Error(`task ${spec.task}: target ${JSON.stringify(t)} is neither an index nor one of the choices ${JSON.stringify(choices)}`);
  return i;
}

/** The answer text a labelled few-shot example shows. */
export function exampleTarget(spec: TaskSpec, doc: Doc): string {
  if (spec.outputType === 'loglikelihood') {
    const choices = choicesOf(spec, doc);
    return choices[goldIndex(spec, doc, choices)]!;
  }
  return render(spec.docToTarget, doc);
}

/**
 * Chooses few-shot examples for each document. `sameSource`: the examples come from the evaluated
 * documents, so the document itself is excluded (lm-eval samples k+1 and drops it).
 */
export class FewshotSampler {
  private readonly rnd: SeededRandom;
  constructor(
    private readonly spec: TaskSpec,
    private readonly pool: readonly Doc[],
    private readonly sameSource: boolean,
  ) {
    this.rnd = new SeededRandom(spec.fewshot.seed);
  }

  examplesFor(doc: Doc): Doc[] {
    const k = this.spec.fewshot.num;
    if (k === 0) return [];
    const take = this.sameSource ? k + 1 : k;
    const picked = this.spec.fewshot.sampler === 'first_n' ? this.pool.slice(0, take) : this.rnd.sample(this.pool, take);
    return picked.filter((d) => d !== doc).slice(0, k);
  }
}

/** promptPrefix + labelled examples + the document's own text (lm-eval's fewshot_context). */
export function buildContext(spec: TaskSpec, doc: Doc, examples: readonly Doc[]): string {
  let labelled = '';
  if (examples.length > 0) {
    labelled = examples.map((ex) => render(spec.docToText, ex) + spec.targetDelimiter + exampleTarget(spec, ex)).join(spec.fewshotDelimiter) + spec.fewshotDelimiter;
  }
  return spec.promptPrefix + labelled + render(spec.docToText, doc);
}
