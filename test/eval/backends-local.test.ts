/**
 * The local back end against the model computed directly: loglikelihoods are log-softmax sums over the
 * right positions of one forward pass (in float64 here), long contexts keep their last blockSize
 * tokens, rolling windows score every token exactly once, and generation is generate()'s output cut
 * at the stop string.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CharTokenizer } from '../../src/data/char-tokenizer.js';
import { LocalBackend, loadRunTokenizer } from '../../src/eval/backends/local.js';
import { EfficiencyMeter } from '../../src/eval/efficiency.js';
import { generate } from '../../src/infer/generate.js';
import type { GPT } from '../../src/models/gpt.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { tinyRunDir } from './helpers.js';

let dir: string;
let model: GPT;
let tok: CharTokenizer;
let backend: LocalBackend;
const BLOCK = 32;
const GPT2_TOKENIZER = join(process.cwd(), '..', 'shared', 'data', 'gpt2', 'tokenizer.json');

beforeAll(async () => {
  ({ dir, model, tokenizer: tok } = await tinyRunDir(BLOCK));
  backend = await LocalBackend.fromDir(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** log p(ids[i] | ids[<i]) for i in [from, ids.length), from one forward of ids[:-1] (float64 log-softmax). */
function direct(ids: number[], from: number): number {
  const input = ids.slice(0, -1);
  const logits = noGrad(() => model.forward(Tensor.fromArray(Int32Array.from(input), [1, input.length], 'i32')).logits).toArray();
  const V = model.config.vocabSize;
  let total = 0;
  for (let i = from; i < ids.length; i++) {
    const row = logits.slice((i - 1) * V, i * V);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    total += row[ids[i]!]! - lse;
  }
  return total;
}

describe('LocalBackend', () => {
  it('scores a continuation as the sum of its token log-probs given the context', async () => {
    const [r] = await backend.loglikelihood([{ context: 'To be, or', continuation: ' not to be' }]);
    const ids = tok.encode('To be, or not to be');
    expect(r!.logprob).toBeCloseTo(direct(ids, tok.encode('To be, or').length), 4);
    // lm-eval's _encode_pair: trailing context whitespace moves into the continuation.
    const [moved] = await backend.loglikelihood([{ context: 'To be, or ', continuation: 'not to be' }]);
    expect(moved!.logprob).toBeCloseTo(r!.logprob, 6);
  });

  it('keeps the last blockSize tokens of a long context, and reports greedy continuations', async () => {
    const context = 'First Citizen:\nBefore we proceed any further, hear me speak.';
    const [r] = await backend.loglikelihood([{ context, continuation: '\nAll' }]);
    const ids = tok.encode(context + '\nAll').slice(-(BLOCK + 1));
    expect(r!.logprob).toBeCloseTo(direct(ids, ids.length - 4), 4);
    // The greedy next character is, by definition, a greedy continuation.
    const next = generate(model, tok.encode(context).slice(-BLOCK), { maxNewTokens: 1, temperature: 0 }).at(-1)!;
    const [g] = await backend.loglikelihood([{ context, continuation: tok.decode([next]) }]);
    expect(g!.isGreedy).toBe(true);
    const other = (next + 1) % tok.vocabSize;
    const [ng] = await backend.loglikelihood([{ context, continuation: tok.decode([other]) }]);
    expect(ng!.isGreedy).toBe(false);
  });

  it('rolling loglikelihood scores every token once, in windows of at most blockSize', async () => {
    const short = 'Speak, speak.';
    const [s] = await backend.loglikelihoodRolling([short], 1);
    const prefix = tok.encode('\n');
    expect(s!.tokens).toBe(short.length);
    expect(s!.logprob).toBeCloseTo(direct([...prefix, ...tok.encode(short)], 1), 4);
    // Longer than the block: window k predicts tokens [32k, 32k+32) from an input of the 32 tokens
    // ending just before the window's last one (so the last, shorter window sees more context).
    const long = 'You are all resolved rather to die than to famish? Resolved. resolved.';
    const ids = tok.encode(long);
    let expected = direct([...prefix, ...ids.slice(0, BLOCK)], 1);
    for (let s0 = BLOCK; s0 < ids.length; s0 += BLOCK) {
      const e = Math.min(s0 + BLOCK, ids.length);
      const start = e - BLOCK - 1;
      expected += direct(ids.slice(start, e), s0 - start);
    }
    const meter = new EfficiencyMeter().start();
    const [l] = await backend.loglikelihoodRolling([long], 1, { meter });
    meter.stop();
    expect(l!.tokens).toBe(ids.length);
    expect(l!.logprob).toBeCloseTo(expected, 3);
    const eff = meter.summary();
    expect(eff.scored_tokens).toBe(ids.length);
    expect(eff.scoring_tokens_per_s).toBeGreaterThan(0);
    expect(eff.peak_rss_mb).toBeGreaterThan(10);
  });

  it('generates greedily like generate(), cut at the first stop string, with time to first token', async () => {
    const context = 'ROMEO:\n';
    const full = tok.decode(generate(model, tok.encode(context), { maxNewTokens: 20, temperature: 0 }).slice(tok.encode(context).length));
    const stop = full.slice(5, 7);
    const meter = new EfficiencyMeter().start();
    const [[out]] = (await backend.generate([{ context, until: [stop], maxTokens: 20, temperature: 0, samples: 1, seed: 1 }], { meter })) as [[string]];
    meter.stop();
    expect(out).toBe(full.slice(0, full.indexOf(stop)));
    const eff = meter.summary();
    expect(eff.ttft_ms_p50).toBeGreaterThan(0);
    expect(eff.generated_tokens).toBeGreaterThan(0);
    expect(eff.generated_tokens).toBeLessThanOrEqual(20);
    // Sampling is seeded: same seed, same completions.
    const req = { context, until: [], maxTokens: 10, temperature: 1, samples: 2, seed: 5 };
    expect(await backend.generate([req])).toEqual(await backend.generate([req]));
  });

  it('replaces characters outside the vocabulary and says so', async () => {
    const before = backend.warnings().length;
    await backend.loglikelihood([{ context: 'Price: 42€', continuation: ' yes' }]);
    expect(before).toBe(0);
    expect(backend.warnings()[0]).toMatch(/^\d+ characters outside the model's character vocabulary/);
  });

  it.skipIf(!existsSync(GPT2_TOKENIZER))('reads a Hugging Face tokenizer.json (GPT-2: no special tokens added, <|endoftext|> prefix)', () => {
    const d = mkdtempSync(join(tmpdir(), 'weft-eval-hf-'));
    try {
      copyFileSync(GPT2_TOKENIZER, join(d, 'tokenizer.json'));
      const t = loadRunTokenizer(d);
      expect(t.prefixTokenId).toBe(50256);
      expect(t.vocabSize).toBe(50257);
      // GPT-2 ids of "Hello world" (tiktoken's gpt2 encoding).
      expect(t.encode('Hello world')).toEqual([15496, 995]);
      expect(t.decode([15496, 995])).toBe('Hello world');
      writeFileSync(join(d, 'tokenizer.json'), '{"type":"sentencepiece-v9"}');
      expect(() => loadRunTokenizer(d)).toThrow(/tokenizer type "sentencepiece-v9" is not supported by weft eval/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('names the problem with a bad model directory', async () => {
    await expect(LocalBackend.fromDir('/nonexistent/run')).rejects.toThrow(/--model \/nonexistent\/run: no such directory/);
  });
});
