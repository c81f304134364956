import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Generator } from '../../src/tensor/random.js';
import { CharTokenizer } from '../../src/tokenizers/char.js';
import { Llama } from '../../src/models/llama.js';
import { GPT } from '../../src/models/gpt.js';
import type { Tokenizer } from '../../src/data/tokenizer.js';
import type { EngineEvent, EngineRequest, FinishReason, SamplingParams } from '../../src/infer/api.js';
import { Engine, type EngineOptions } from '../../src/infer/engine.js';
import { loadModel, loadedModelFrom, type LoadedModel } from '../../src/infer/load.js';

/** Letters a–z then digits: a readable stand-in for a real tokenizer. */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789 .,!?-ABCDEFGHIJKLMNOPQRSTUVWXYZ';
function charTokenizer(vocab: number): Tokenizer {
  return {
    vocabSize: vocab,
    encode: (text) => [...text].map((c) => ALPHABET.indexOf(c)),
    decode: (ids) => ids.map((i) => ALPHABET[i % ALPHABET.length]).join(''),
    toJSON: () => ({}),
  };
}

const VOCAB = 64;
function tinyLlama(seed = 1): LoadedModel {
  const m = new Llama(
    { vocabSize: VOCAB, hiddenSize: 32, intermediateSize: 64, nLayer: 2, nHead: 4, nKVHead: 2, maxPositionEmbeddings: 256, initializerRange: 0.3 },
    { generator: new Generator(seed) },
  );
  return loadedModelFrom(m, charTokenizer(VOCAB), { modelId: 'tiny' });
}

function prompt(n: number, seed: number): number[] {
  const g = new Generator(seed);
  return Array.from({ length: n }, () => g.nextU32() % VOCAB);
}

function greedy(maxTokens: number, extra: Partial<SamplingParams> = {}): SamplingParams {
  return { maxTokens, temperature: 0, ...extra };
}

interface Outcome {
  ids: number[];
  text: string;
  done: Extract<EngineEvent, { type: 'done' }>;
}

/** Submits everything, then steps the engine by hand until it is idle. */
function runAll(engine: Engine, reqs: EngineRequest[]): Map<string, Outcome> {
  const out = new Map<string, Outcome>();
  const partial = new Map<string, { ids: number[]; text: string }>();
  for (const r of reqs) {
    partial.set(r.id, { ids: [], text: '' });
    engine.submit(r, (e) => {
      const p = partial.get(e.id)!;
      if (e.type === 'token') {
        p.ids.push(...e.tokenIds);
        p.text += e.text;
      } else {
        out.set(e.id, { ids: p.ids, text: p.text + e.text, done: e });
      }
    });
  }
  for (let guard = 0; engine.step(); guard++) if (guard > 100_000) throw new Error('engine did not finish');
  return out;
}

function alone(model: LoadedModel, r: EngineRequest, options: EngineOptions = {}): Outcome {
  return runAll(new Engine(model, options), [r]).get(r.id)!;
}

describe('Engine', () => {
  it('batching invariance: concurrent greedy requests return exactly what they return alone (chunked prefill)', () => {
    const model = tinyLlama();
    const reqs: EngineRequest[] = Array.from({ length: 24 }, (_, i) => ({ id: `r${i}`, promptIds: prompt(1 + ((i * 7) % 70), i), sampling: greedy(6 + (i % 9)) }));
    const solo = reqs.map((r) => alone(model, r));
    // The outputs differ from request to request (the check below is not comparing constants).
    expect(new Set(solo.map((o) => o.ids.join(','))).size).toBeGreaterThan(reqs.length / 2);
    const engine = new Engine(model, { maxBatch: 16, maxPrefillTokens: 24 });
    const together = runAll(engine, reqs);
    reqs.forEach((r, i) => {
      expect(together.get(r.id)!.ids).toEqual(solo[i]!.ids);
      expect(together.get(r.id)!.done.finishReason).toBe('length');
    });
    const s = engine.stats();
    expect(s.running + s.waiting).toBe(0);
    expect(s.kvBlocksUsed).toBe(0);
    expect(s.generationTokensTotal).toBe(reqs.reduce((a, r) => a + r.sampling.maxTokens, 0));
  });

  it('batching invariance under preemption (tiny KV cache) and with 64 concurrent requests', () => {
    const model = tinyLlama(2);
    const reqs: EngineRequest[] = Array.from({ length: 64 }, (_, i) => ({ id: `p${i}`, promptIds: prompt(5 + ((i * 13) % 40), 100 + i), sampling: greedy(20) }));
    const solo = reqs.map((r) => alone(model, r));
    const engine = new Engine(model, { maxBatch: 64, maxPrefillTokens: 64, kvBlocks: 24 });
    const together = runAll(engine, reqs);
    reqs.forEach((r, i) => expect(together.get(r.id)!.ids).toEqual(solo[i]!.ids));
    expect(engine.stats().preemptionsTotal).toBeGreaterThan(0);
    expect(engine.stats().kvBlocksUsed).toBe(0);
    engine.kv.checkInvariants();
  });

  it('GPT-2 through the engine: batched equals alone', () => {
    const gpt = new GPT({ vocabSize: VOCAB, blockSize: 128, nLayer: 2, nHead: 2, nEmbd: 32, bias: true }, { generator: new Generator(9) });
    const model = loadedModelFrom(gpt, charTokenizer(VOCAB));
    const reqs: EngineRequest[] = Array.from({ length: 8 }, (_, i) => ({ id: `g${i}`, promptIds: prompt(3 + i * 5, 50 + i), sampling: greedy(10) }));
    const solo = reqs.map((r) => alone(model, r));
    const together = runAll(new Engine(model, { maxPrefillTokens: 16 }), reqs);
    reqs.forEach((r, i) => expect(together.get(r.id)!.ids).toEqual(solo[i]!.ids));
  });

  it('chunked prefill: a long prompt does not stall a running decode', () => {
    const model = tinyLlama();
    const engine = new Engine(model, { maxPrefillTokens: 16 });
    const aTokens: number[] = [];
    let bFirst = -1;
    let step = 0;
    engine.submit({ id: 'a', promptIds: prompt(4, 1), sampling: greedy(40) }, (e) => {
      if (e.type === 'token') aTokens.push(step);
    });
    engine.step();
    engine.submit({ id: 'b', promptIds: prompt(200, 2), sampling: greedy(2) }, (e) => {
      if (e.type === 'token' && bFirst < 0) bFirst = step;
    });
    for (step = 1; step <= 14; step++) engine.step();
    // a decoded one token in every step while b's 200 prompt tokens went through 16 at a time.
    expect(aTokens).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(bFirst).toBe(13);
    while (engine.step());
  });

  it('prefix cache: a second request with the same 48-token prefix skips that prefill and answers the same', () => {
    const model = tinyLlama(3);
    const shared = prompt(48, 7);
    const second: EngineRequest = { id: 'b', promptIds: [...shared, 1, 2, 3], sampling: greedy(8) };
    const reference = alone(model, second);
    const engine = new Engine(model);
    runAll(engine, [{ id: 'a', promptIds: [...shared, 9], sampling: greedy(4) }]);
    const before = engine.stats();
    expect(before.prefixCacheHits).toBe(0);
    const got = runAll(engine, [second]).get('b')!;
    expect(got.ids).toEqual(reference.ids);
    expect(got.done.usage.cachedPromptTokens).toBe(48);
    expect(engine.stats().prefixCacheHits - before.prefixCacheHits).toBe(48);
    expect(engine.stats().prefixCacheQueries - before.prefixCacheQueries).toBe(51);
  });

  it('cancel: abort event and every KV block freed at once', () => {
    const model = tinyLlama();
    const engine = new Engine(model, { kvBlocks: 64 });
    const events: EngineEvent[] = [];
    engine.submit({ id: 'x', promptIds: prompt(40, 1), sampling: greedy(100) }, (e) => events.push(e));
    for (let i = 0; i < 5; i++) engine.step();
    expect(engine.stats().kvBlocksUsed).toBeGreaterThan(0);
    engine.cancel('x');
    const done = events.at(-1)!;
    expect(done.type).toBe('done');
    expect(done.type === 'done' && done.finishReason).toBe('abort');
    expect(engine.stats().kvBlocksUsed).toBe(0);
    expect(engine.stats().running).toBe(0);
    expect(engine.step()).toBe(false);
    engine.kv.checkInvariants();
  });

  it('finish reasons: EOS → stop (not emitted), stop string → stop (never emitted), maxTokens → length', () => {
    const model = tinyLlama(4);
    const p = prompt(10, 4);
    const free = alone(model, { id: 'f', promptIds: p, sampling: greedy(12) });
    expect(free.done.finishReason).toBe('length');
    expect(free.ids).toHaveLength(12);
    // EOS = the 5th generated token (first occurrence) ends there.
    const eos = free.ids[4]!;
    const firstAt = free.ids.indexOf(eos);
    const withEos = alone({ ...model, eosTokenIds: [eos] }, { id: 'e', promptIds: p, sampling: greedy(12) });
    expect(withEos.done.finishReason).toBe('stop');
    expect(withEos.ids).toEqual(free.ids.slice(0, firstAt));
    expect(withEos.done.usage.completionTokens).toBe(firstAt + 1);
    const ignored = alone({ ...model, eosTokenIds: [eos] }, { id: 'i', promptIds: p, sampling: greedy(12, { ignoreEos: true }) });
    expect(ignored.ids).toEqual(free.ids);
    // A stop string spanning tokens 3–4 of the text.
    const stop = free.text.slice(3, 5);
    const cut = free.text.indexOf(stop);
    const withStop = alone(model, { id: 's', promptIds: p, sampling: greedy(12, { stop: [stop] }) });
    expect(withStop.done.finishReason).toBe('stop');
    expect(withStop.text).toBe(free.text.slice(0, cut));
  });

  it('refuses what cannot fit: context overflow and a sequence larger than the cache', () => {
    const model = tinyLlama();
    const tooLong = alone(model, { id: 'l', promptIds: prompt(250, 1), sampling: greedy(10) });
    expect(tooLong.done.finishReason).toBe('error');
    expect(tooLong.done.error).toMatch(/context_length_exceeded/);
    const unfit = alone(model, { id: 'u', promptIds: prompt(100, 1), sampling: greedy(10) }, { kvBlocks: 4 });
    expect(unfit.done.finishReason).toBe('error');
    expect(unfit.done.error).toMatch(/KV blocks/);
  });

  it('timeout frees the sequence', async () => {
    const model = tinyLlama();
    const engine = new Engine(model);
    const events: EngineEvent[] = [];
    engine.submit({ id: 't', promptIds: prompt(8, 1), sampling: greedy(50), timeoutMs: 5 }, (e) => events.push(e));
    engine.step();
    await new Promise((r) => setTimeout(r, 20));
    engine.step();
    const done = events.at(-1)!;
    expect(done.type === 'done' && done.finishReason).toBe('timeout');
    expect(engine.stats().kvBlocksUsed).toBe(0);
  });

  it('drives itself: submit() alone completes requests; shutdown waits for them', async () => {
    const model = tinyLlama(5);
    const engine = new Engine(model);
    const expected = alone(model, { id: 'q', promptIds: prompt(12, 2), sampling: greedy(9) });
    const got = await new Promise<{ ids: number[]; reason: FinishReason }>((resolve) => {
      const ids: number[] = [];
      engine.submit({ id: 'q', promptIds: prompt(12, 2), sampling: greedy(9) }, (e) => {
        if (e.type === 'token') ids.push(...e.tokenIds);
        else resolve({ ids, reason: e.finishReason });
      });
    });
    expect(got.ids).toEqual(expected.ids);
    let finished = false;
    engine.submit({ id: 'z', promptIds: prompt(5, 3), sampling: greedy(5) }, (e) => {
      if (e.type === 'done') finished = true;
    });
    await engine.shutdown();
    expect(finished).toBe(true);
    const late: EngineEvent[] = [];
    engine.submit({ id: 'late', promptIds: [1], sampling: greedy(1) }, (e) => late.push(e));
    expect(late[0]!.type === 'done' && late[0]!.finishReason).toBe('error');
  });

  it('seeded sampling is reproducible whatever runs next to it', () => {
    const model = tinyLlama(6);
    const r: EngineRequest = { id: 's', promptIds: prompt(9, 9), sampling: { maxTokens: 15, temperature: 0.9, topP: 0.95, seed: 1234 } };
    const solo = alone(model, r);
    const mixed = runAll(new Engine(model), [r, { id: 'n', promptIds: prompt(30, 1), sampling: { maxTokens: 15, temperature: 1, seed: 5 } }]);
    expect(mixed.get('s')!.ids).toEqual(solo.ids);
  });

  it('embeddings: unit norm, equal for equal inputs, different otherwise; cache left empty', () => {
    const model = tinyLlama();
    const engine = new Engine(model);
    const [a, b, c] = engine.embed([prompt(20, 1), prompt(20, 1), prompt(20, 2)]);
    let n = 0;
    for (const x of a!) n += x * x;
    expect(Math.sqrt(n)).toBeCloseTo(1, 5);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(engine.stats().kvBlocksUsed).toBe(0);
  });

  it('constraints: mask before sampling, accept after, finish with stop when done', () => {
    const model = tinyLlama(7);
    const target = [5, 17, 3, 3, 40];
    const specs: unknown[] = [];
    const engine = new Engine(model, {
      constraints: (spec) => {
        specs.push(spec);
        let at = 0;
        return {
          mask(logits) {
            for (let i = 0; i < logits.length; i++) if (i !== target[at]) logits[i] = -Infinity;
          },
          accept(id) {
            expect(id).toBe(target[at]);
            at++;
          },
          get done() {
            return at === target.length;
          },
        };
      },
    });
    const out = runAll(engine, [{ id: 'c', promptIds: prompt(6, 1), sampling: greedy(50, { temperature: 1, seed: 3 }), constraint: { type: 'json_object' } }]).get('c')!;
    expect(specs).toEqual([{ type: 'json_object' }]);
    expect(out.ids).toEqual(target);
    expect(out.done.finishReason).toBe('stop');
    const failing = new Engine(model, {
      constraints: () => {
        throw new Error('schema has no type');
      },
    });
    const bad = runAll(failing, [{ id: 'b', promptIds: [1], sampling: greedy(5), constraint: { type: 'json_object' } }]).get('b')!;
    expect(bad.done.finishReason).toBe('error');
    expect(bad.done.error).toMatch(/schema has no type/);
  });

  it('structured output through src/infer/structured (loaded on first use): the text parses and validates', async () => {
    const chars = [...'{}[]":,. \nabcdefghijklmnopqrstuvwxyz0123456789-'];
    const m = new Llama({ vocabSize: chars.length, hiddenSize: 32, intermediateSize: 64, nLayer: 1, nHead: 2, maxPositionEmbeddings: 256, initializerRange: 0.5 }, { generator: new Generator(12) });
    const model = loadedModelFrom(m, CharTokenizer.fromVocab(chars) as unknown as Tokenizer);
    const engine = new Engine(model);
    const schema = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['ok', 'n'], additionalProperties: false };
    const outcomes = await Promise.all(
      [1, 2, 3].map(
        (seed) =>
          new Promise<{ text: string; done: Extract<EngineEvent, { type: 'done' }> }>((resolve) => {
            let text = '';
            engine.submit({ id: `j${seed}`, promptIds: [chars.indexOf('{')], sampling: { maxTokens: 120, temperature: 1, seed }, constraint: { type: 'json_schema', schema } }, (e) => {
              if (e.type === 'token') text += e.text;
              else resolve({ text: text + e.text, done: e });
            });
          }),
      ),
    );
    for (const o of outcomes) {
      expect(o.done.error).toBeUndefined();
      expect(o.done.finishReason).toBe('stop');
      const doc = JSON.parse(o.text) as { ok: unknown; n: unknown };
      expect(Object.keys(doc).sort()).toEqual(['n', 'ok']);
      expect(typeof doc.ok).toBe('boolean');
      expect(Number.isInteger(doc.n)).toBe(true);
    }
  });

  const storiesDir = '../shared/data/models/stories260K';
  const haveStories = existsSync(`${storiesDir}/stories260K.bin`) && existsSync(`${storiesDir}/tok512.bin`);
  it.skipIf(!haveStories)('stories260K (llama2.c) greedy through the engine reproduces run.c’s 32 reference ids', async () => {
    const model = await loadModel(`${storiesDir}/stories260K.bin`, { tokenizer: `${storiesDir}/tok512.bin` });
    expect(model.family).toBe('llama');
    expect(model.modelId).toBe('stories260K.bin');
    const reference = '403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385'.split(' ').map(Number);
    const engine = new Engine(model, { maxBatch: 4 });
    // Four copies at once: batched decoding gives every one the reference.
    const reqs = [0, 1, 2, 3].map((i) => ({ id: `s${i}`, promptIds: [1], sampling: greedy(32) }));
    const out = runAll(engine, reqs);
    for (const r of reqs) expect(out.get(r.id)!.ids).toEqual(reference);
    expect(out.get('s0')!.text).toContain('Once upon a time, there was a little girl named Lily.');
  });
});
