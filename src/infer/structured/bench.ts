/**
 * `weft bench structured`: time per decoding step of structured-output masking over a real
 * vocabulary (GPT-2's 50k tokens by default), walking realistic documents token by token, against
 * the naive method in the same run (every token simulated separately from the current state, what
 * masking costs without the token trie). Prints ours, the naive anchor and the speed-up.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { ConstraintSpec } from '../api.js';
import { loadTokenizer } from '../../tokenizers/load.js';
import { createConstraint } from './constraint.js';
import { tokenVocabulary, type TokenVocabulary } from './vocabulary.js';

export interface StructuredBenchRecord {
  case: string;
  vocab_size: number;
  steps: number;
  /** Trie-walk mask: mean / median / max milliseconds per step (best of `reps` per step). */
  mask_ms_mean: number;
  mask_ms_p50: number;
  mask_ms_max: number;
  /** Naive mask (each token fed alone) on the first `naive_steps` steps. */
  naive_ms_mean: number;
  naive_steps: number;
  /** naive / ours on the same steps. */
  speedup: number;
}

const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 40 },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    email: { type: ['string', 'null'] },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 5 },
    score: { type: 'number', minimum: 0, maximum: 1 },
  },
  required: ['name', 'age'],
  additionalProperties: false,
};

const CASES: { name: string; spec: ConstraintSpec; doc: string }[] = [
  { name: 'json_schema person', spec: { type: 'json_schema', schema: PERSON }, doc: '{"name": "Ada Lovelace", "age": 36, "email": null, "tags": ["math", "poetry"], "score": 0.95}' },
  { name: 'json_object', spec: { type: 'json_object' }, doc: '{"city": "Paris", "population": 2102650, "landmarks": ["Eiffel Tower", "Louvre"], "capital": true}' },
  {
    name: 'tool_calls hermes',
    spec: {
      type: 'tool_calls',
      format: 'hermes',
      tools: [
        { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { enum: ['celsius', 'fahrenheit'] } }, required: ['city'] } },
        { name: 'search', parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] } },
      ],
    },
    doc: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>',
  },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] ?? 0;
}

function naiveMask(c: ReturnType<typeof createConstraint>, vocab: TokenVocabulary, logits: Float32Array): void {
  for (let id = 0; id < vocab.size; id++) if (!c.accepts(id)) logits[id] = -Infinity;
}

/** Runs the cases over `tokenizerPath`'s vocabulary. */
export function benchStructured(opts: { tokenizerPath: string; eosIds: number[]; reps: number; naiveSteps: number }): StructuredBenchRecord[] {
  const tok = loadTokenizer(opts.tokenizerPath);
  const vocab = tokenVocabulary(tok, opts.eosIds);
  createConstraint({ type: 'json_object' }, vocab).allowedIds(); // builds the trie outside the timings
  const logits = new Float32Array(vocab.size);
  const out: StructuredBenchRecord[] = [];
  for (const k of CASES) {
    const ids = tok.encode(k.doc, { addSpecialTokens: false });
    const c = createConstraint(k.spec, vocab);
    const ours: number[] = [];
    const naive: number[] = [];
    for (const [step, id] of ids.entries()) {
      let best = Infinity;
      for (let r = 0; r < opts.reps; r++) {
        const t0 = performance.now();
        c.mask(logits);
        best = Math.min(best, performance.now() - t0);
      }
      ours.push(best);
      if (step < opts.naiveSteps) {
        const t0 = performance.now();
        naiveMask(c, vocab, logits);
        naive.push(performance.now() - t0);
      }
      c.accept(id);
    }
    const oursOnNaiveSteps = ours.slice(0, naive.length).reduce((a, b) => a + b, 0);
    const r3 = (x: number): number => Math.round(x * 1000) / 1000;
    out.push({
      case: k.name,
      vocab_size: vocab.size,
      steps: ours.length,
      mask_ms_mean: r3(ours.reduce((a, b) => a + b, 0) / ours.length),
      mask_ms_p50: r3(median(ours)),
      mask_ms_max: r3(Math.max(...ours)),
      naive_ms_mean: r3(naive.reduce((a, b) => a + b, 0) / Math.max(1, naive.length)),
      naive_steps: naive.length,
      speedup: r3(naive.reduce((a, b) => a + b, 0) / Math.max(1e-9, oursOnNaiveSteps)),
    });
  }
  return out;
}

export function registerStructuredBench(bench: Command): void {
  bench
    .command('structured')
    .description('structured-output masking: ms per decoding step over a real vocabulary, against naive per-token masking')
    .option('--tokenizer <path>', 'tokenizer.json (or any file loadTokenizer reads)', '../shared/data/gpt2/tokenizer.json')
    .option('--eos <ids>', 'comma-separated EOS ids', '50256')
    .option('--reps <n>', 'repeats per step (best is kept)', '5')
    .option('--naive-steps <n>', 'steps per case timed with the naive method', '12')
    .option('--json', 'one JSON object per line')
    .action((o: { tokenizer: string; eos: string; reps: string; naiveSteps: string; json?: boolean }) => {
      if (!existsSync(o.tokenizer)) throw new Error(`bench structured: ${o.tokenizer} does not exist (pass --tokenizer)`);
      const reps = Number(o.reps);
      const naiveSteps = Number(o.naiveSteps);
      if (!Number.isInteger(reps) || reps < 1) throw new Error(`bench structured: --reps must be a positive integer, got '${o.reps}'`);
      if (!Number.isInteger(naiveSteps) || naiveSteps < 0) throw new Error(`bench structured: --naive-steps must be a non-negative integer, got '${o.naiveSteps}'`);
      const eosIds = o.eos === '' ? [] : o.eos.split(',').map(Number);
      const records = benchStructured({ tokenizerPath: o.tokenizer, eosIds, reps, naiveSteps });
      if (o.json === true) {
        for (const r of records) console.log(JSON.stringify(r));
        return;
      }
      console.log('case                 vocab  steps  mask ms/step (mean  p50   max)  naive ms/step  speed-up');
      for (const r of records) {
        console.log(
          `${r.case.padEnd(20)} ${String(r.vocab_size).padStart(6)} ${String(r.steps).padStart(6)}  ${r.mask_ms_mean.toFixed(3).padStart(17)} ${r.mask_ms_p50.toFixed(3).padStart(5)} ${r.mask_ms_max.toFixed(2).padStart(6)}  ${r.naive_ms_mean.toFixed(1).padStart(13)}  ${r.speedup.toFixed(1).padStart(7)}×`,
        );
      }
    });
}
