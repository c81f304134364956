import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ConstraintSpec } from '../../../src/infer/api.js';
import { parseToolCalls } from '../../../src/infer/chat/index.js';
import { createConstraint, SchemaError, tokenVocabulary, type TokenVocabulary } from '../../../src/infer/structured/index.js';
import type { StructuredConstraint } from '../../../src/infer/structured/constraint.js';
import { CharTokenizer } from '../../../src/tokenizers/char.js';
import { loadTokenizer } from '../../../src/tokenizers/load.js';
import { generate, mulberry32 } from './harness.js';
import { validate } from './validate.js';

const GPT2 = '../shared/data/gpt2/tokenizer.json';
const LLAMA_SPM = '../shared/data/tokenizers/llama.cpp/ggml-vocab-llama-spm.gguf';
const hasGpt2 = existsSync(GPT2);
const hasLlama = existsSync(LLAMA_SPM);

// A character vocabulary: printable ASCII, whitespace, a few multi-byte characters, and NUL as EOS.
const CHARS = ['\u0000', '\t', '\n', ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), 'é', '€', '😀', 'ß'];
const charTok = CharTokenizer.fromVocab(CHARS);
const charVocab = tokenVocabulary(charTok, [0]);

const gpt2 = hasGpt2 ? loadTokenizer(GPT2) : null;
const gpt2Vocab = gpt2 === null ? null : tokenVocabulary(gpt2, [50256]);

const person = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 12 },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    email: { type: ['string', 'null'], maxLength: 20 },
    tags: { type: 'array', items: { type: 'string', maxLength: 5 }, maxItems: 3 },
    score: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  },
  required: ['name', 'age'],
  additionalProperties: false,
};

const tree = {
  $defs: {
    node: {
      type: 'object',
      properties: { value: { enum: ['a', 1, null, true, { k: [1, 2] }] }, children: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 } },
      required: ['value'],
      additionalProperties: false,
    },
  },
  $ref: '#/$defs/node',
};

const tuple = {
  type: 'array',
  prefixItems: [{ type: 'number', minimum: -5, maximum: 5 }, { type: 'boolean' }, { const: 'x' }],
  items: false,
  minItems: 2,
};

const shapes = {
  oneOf: [
    { type: 'object', properties: { kind: { const: 'circle' }, r: { type: 'number', minimum: 0 } }, required: ['kind', 'r'], additionalProperties: false },
    { type: 'object', properties: { kind: { const: 'square' }, side: { type: 'integer', minimum: 1, maximum: 99 } }, required: ['kind', 'side'], additionalProperties: false },
  ],
};

const dict = { type: 'object', additionalProperties: { type: 'integer', minimum: -3, maximum: 1000 }, minProperties: 1, maxProperties: 3 };
const boundedInt = { type: 'integer', minimum: 10, maximum: 20 };
const boundedNum = { type: 'number', minimum: 0.5, exclusiveMaximum: 2.5 };
const anyValue = {};
const nested = {
  type: 'object',
  properties: {
    items: {
      type: 'array',
      minItems: 1,
      maxItems: 3,
      items: {
        type: 'object',
        properties: { id: { type: 'integer' }, ok: { type: 'boolean' }, note: { anyOf: [{ type: 'string', maxLength: 8 }, { type: 'null' }] } },
        required: ['id', 'ok'],
        additionalProperties: false,
      },
    },
    total: { type: 'number' },
  },
  required: ['items', 'total'],
  additionalProperties: false,
};

const formats = {
  type: 'object',
  properties: {
    d: { type: 'string', format: 'date' },
    t: { type: 'string', format: 'time' },
    dt: { type: 'string', format: 'date-time' },
    id: { type: 'string', format: 'uuid' },
    mail: { type: 'string', format: 'email', maxLength: 6 },
  },
  required: ['d', 't', 'dt', 'id'],
  additionalProperties: false,
};

const SCHEMAS: Record<string, Record<string, unknown>> = { person, tree, tuple, shapes, dict, boundedInt, boundedNum, anyValue, nested, formats };

const tools = [
  { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, unit: { enum: ['c', 'f'] } }, required: ['city', 'unit'], additionalProperties: false } },
  { name: 'add', parameters: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } }, required: ['a', 'b'], additionalProperties: false } },
  { name: 'noop', parameters: {} },
];

function decodeText(vocab: TokenVocabulary, ids: number[]): string {
  const bytes: number[] = [];
  for (const id of ids) bytes.push(...vocab.bytes(id));
  return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
}

function checkJson(spec: ConstraintSpec, text: string): void {
  const value: unknown = JSON.parse(text);
  if (spec.type === 'json_object') expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
  if (spec.type === 'json_schema') expect(validate(value, spec.schema as Record<string, unknown>), text).toEqual([]);
}

function checkToolCalls(spec: Extract<ConstraintSpec, { type: 'tool_calls' }>, text: string): void {
  const parsed = parseToolCalls(text, spec.format);
  expect(parsed.toolCalls.length, text).toBeGreaterThan(0);
  expect(parsed.content, text).toBeNull();
  for (const call of parsed.toolCalls) {
    const tool = tools.find((t) => t.name === call.function.name);
    expect(tool, text).toBeDefined();
    if (spec.name !== undefined) expect(call.function.name).toBe(spec.name);
    const args: unknown = JSON.parse(call.function.arguments);
    expect(typeof args === 'object' && args !== null && !Array.isArray(args)).toBe(true);
    expect(validate(args, tool!.parameters as Record<string, unknown>), text).toEqual([]);
  }
}

function runMany(vocab: TokenVocabulary, spec: ConstraintSpec, runs: number, seed0: number, maxSteps: number): number {
  let finished = 0;
  for (let r = 0; r < runs; r++) {
    const c = createConstraint(spec, vocab);
    const g = generate(c, vocab, seed0 + r, maxSteps);
    expect(decodeText(vocab, g.ids)).toBe(g.text);
    if (!g.finished) continue;
    finished++;
    if (spec.type === 'tool_calls') checkToolCalls(spec, g.text);
    else checkJson(spec, g.text);
  }
  return finished;
}

describe('tokenVocabulary', () => {
  it('gives a character tokenizer its characters and EOS no bytes', () => {
    expect(charVocab.size).toBe(CHARS.length);
    expect(new TextDecoder().decode(charVocab.bytes(CHARS.indexOf('€')))).toBe('€');
    expect(charVocab.bytes(0).length).toBe(0);
    expect(charVocab.isText?.(0)).toBe(false);
    expect(tokenVocabulary(charTok, [0])).toBe(charVocab);
  });

  it.skipIf(!hasGpt2)('gives GPT-2 tokens the bytes decode() produces, and marks <|endoftext|> as not text', () => {
    const vocab = gpt2Vocab!;
    expect(vocab.size).toBe(50257);
    expect(vocab.isText?.(50256)).toBe(false);
    expect(new TextDecoder().decode(vocab.bytes(gpt2!.encode(' hello')[0]!))).toBe(' hello');
    const rng = mulberry32(7);
    for (let trial = 0; trial < 300; trial++) {
      const ids = Array.from({ length: 1 + Math.floor(rng() * 6) }, () => Math.floor(rng() * 50256));
      const bytes = ids.flatMap((id) => [...vocab.bytes(id)]);
      expect(new TextDecoder().decode(Uint8Array.from(bytes))).toBe(gpt2!.decode(ids));
    }
  });

  it.skipIf(!hasLlama)('maps SentencePiece ▁ to a space and <0xNN> pieces to their byte', () => {
    const tok = loadTokenizer(LLAMA_SPM);
    const vocab = tokenVocabulary(tok, [2]);
    expect(vocab.isText?.(0)).toBe(false); // <unk>
    expect(vocab.isText?.(1)).toBe(false); // <s>
    expect(Array.from(vocab.bytes(tok.tokenToId('<0x41>')!))).toEqual([0x41]);
    const hello = tok.tokenToId('▁hello')!;
    expect(new TextDecoder().decode(vocab.bytes(hello))).toBe(' hello');
    const rng = mulberry32(3);
    for (let trial = 0; trial < 300; trial++) {
      // Ordinary pieces (byte pieces alone need not form valid UTF-8).
      const ids = Array.from({ length: 1 + Math.floor(rng() * 6) }, () => 259 + Math.floor(rng() * (vocab.size - 259)));
      const text = new TextDecoder().decode(Uint8Array.from(ids.flatMap((id) => [...vocab.bytes(id)])));
      // The decoder strips one leading space of the whole text: the only place bytes differ.
      expect(text.startsWith(' ') ? text.slice(1) : text).toBe(tok.decode(ids));
    }
  });
});

describe('tokenVocabulary: added tokens and WordPiece', () => {
  it.skipIf(!hasGpt2)('gives non-special added tokens their text (Qwen-style <tool_call>) and special ones none', () => {
    const tok = loadTokenizer(GPT2);
    tok.addTokens(['<tool_call>']);
    tok.addSpecialTokens(['<|im_end|>']);
    const vocab = tokenVocabulary(tok, [50256]);
    const call = tok.tokenToId('<tool_call>')!;
    const end = tok.tokenToId('<|im_end|>')!;
    expect(new TextDecoder().decode(vocab.bytes(call))).toBe('<tool_call>');
    expect(vocab.isText?.(call)).toBe(true);
    expect(vocab.isText?.(end)).toBe(false);
    expect(vocab.bytes(end).length).toBe(0);
    // The constraint takes the one-token marker as readily as its spelling in pieces.
    const c = createConstraint({ type: 'tool_calls', tools, format: 'hermes' }, vocab);
    expect(c.allowedIds()).toContain(call);
    expect(c.allowedIds()).not.toContain(end);
  });

  const BERT = '../shared/data/tokenizers/bert-base-uncased/vocab.txt';
  it.skipIf(!existsSync(BERT))('gives WordPiece continuations no space and word starts a space', () => {
    const tok = loadTokenizer(BERT);
    const vocab = tokenVocabulary(tok, []);
    const text = (t: string): string => new TextDecoder().decode(vocab.bytes(tok.tokenToId(t)!));
    expect(text('##ing')).toBe('ing');
    expect(text('hello')).toBe(' hello');
    expect(vocab.isText?.(tok.tokenToId('[CLS]')!)).toBe(false);
    expect(vocab.isText?.(tok.tokenToId('[UNK]')!)).toBe(false);
  });
});

describe('createConstraint: random-logits generation always parses and validates', () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    it(`json_schema ${name} (char vocabulary, 40 runs)`, () => {
      const spec: ConstraintSpec = { type: 'json_schema', schema };
      const finished = runMany(charVocab, spec, 40, 1000, 300);
      expect(finished).toBeGreaterThan(30);
    });
  }
  it('json_object (char vocabulary, 60 runs)', () => {
    expect(runMany(charVocab, { type: 'json_object' }, 60, 1, 300)).toBeGreaterThan(45);
  });
  it('tool_calls hermes / llama3-json, auto and named (char vocabulary, 30 runs each)', () => {
    for (const spec of [
      { type: 'tool_calls', tools, format: 'hermes' },
      { type: 'tool_calls', tools, format: 'hermes', name: 'add' },
      { type: 'tool_calls', tools, format: 'llama3-json' },
      { type: 'tool_calls', tools, format: 'llama3-json', name: 'get_weather' },
    ] as const) {
      expect(runMany(charVocab, spec, 30, 77, 400)).toBeGreaterThan(20);
    }
  });

  it.skipIf(!hasGpt2)('json_schema, json_object and tool calls over the GPT-2 vocabulary (96 runs)', () => {
    const vocab = gpt2Vocab!;
    let finished = 0;
    for (const schema of [person, tree, tuple, shapes, dict, boundedInt, boundedNum, nested, formats]) finished += runMany(vocab, { type: 'json_schema', schema }, 8, 500, 200);
    finished += runMany(vocab, { type: 'json_object' }, 8, 9, 200);
    finished += runMany(vocab, { type: 'tool_calls', tools, format: 'hermes' }, 8, 11, 200);
    finished += runMany(vocab, { type: 'tool_calls', tools, format: 'llama3-json', name: 'add' }, 8, 13, 200);
    expect(finished).toBeGreaterThan(76);
  });
});

describe('createConstraint over a SentencePiece vocabulary', () => {
  it.skipIf(!hasLlama)('LLaMA SPM (byte fallback): generated ids decode, through the tokenizer, to valid documents', () => {
    const tok = loadTokenizer(LLAMA_SPM);
    const vocab = tokenVocabulary(tok, [2]);
    let finished = 0;
    for (const [i, spec] of ([{ type: 'json_schema', schema: person }, { type: 'json_schema', schema: nested }, { type: 'tool_calls', tools, format: 'hermes' }] as ConstraintSpec[]).entries()) {
      for (let r = 0; r < 6; r++) {
        const g = generate(createConstraint(spec, vocab), vocab, 300 + 10 * i + r, 200);
        if (!g.finished) continue;
        finished++;
        // The tokenizer's own decode (its Strip drops one leading space) gives the same document.
        expect(tok.decode(g.ids)).toBe(g.text.startsWith(' ') ? g.text.slice(1) : g.text);
        if (spec.type === 'tool_calls') checkToolCalls(spec, g.text);
        else checkJson(spec, g.text);
      }
    }
    expect(finished).toBeGreaterThan(12);
  });
});

/** Every token: allowed by mask() iff accept() takes it (and accepts() says so without changing the state). */
function checkMaskAgreesWithAccept(c: StructuredConstraint, ids: Iterable<number>): void {
  const logits = new Float32Array(c.vocab.size);
  c.fork().mask(logits);
  for (const id of ids) {
    const allowed = logits[id] !== -Infinity;
    let accepted = true;
    try {
      c.fork().accept(id);
    } catch {
      accepted = false;
    }
    if (c.accepts(id) !== accepted) throw new Error(`token ${id}: accepts() says ${!accepted}, accept() says ${accepted}`);
    if (allowed !== accepted) throw new Error(`token ${id} (${JSON.stringify(new TextDecoder().decode(c.vocab.bytes(id)))}): mask says ${allowed}, accept says ${accepted}`);
  }
}

describe('mask and accept agree', () => {
  it('on every token of the character vocabulary, at every step', () => {
    const all = Array.from({ length: charVocab.size }, (_, i) => i);
    for (const [i, schema] of Object.values(SCHEMAS).entries()) {
      for (let r = 0; r < 4; r++) {
        generate(createConstraint({ type: 'json_schema', schema }, charVocab), charVocab, 40 + i * 10 + r, 200, (c) => checkMaskAgreesWithAccept(c as StructuredConstraint, all));
      }
    }
  });

  it.skipIf(!hasGpt2)('on GPT-2 tokens (every non-plain-text token and a random 4000 others), at sampled steps', () => {
    const vocab = gpt2Vocab!;
    const rng = mulberry32(11);
    const plain = (id: number): boolean => vocab.bytes(id).every((b) => b >= 0x20 && b < 0x80 && b !== 0x22 && b !== 0x5c);
    const tricky = Array.from({ length: vocab.size }, (_, i) => i).filter((id) => !plain(id));
    let checked = 0;
    for (const spec of [{ type: 'json_schema', schema: person }, { type: 'json_object' }, { type: 'tool_calls', tools, format: 'hermes' }] as ConstraintSpec[]) {
      generate(createConstraint(spec, vocab), vocab, 5, 60, (c, step) => {
        if (step % 5 === 0) {
          const sample = Array.from({ length: 4000 }, () => Math.floor(rng() * vocab.size));
          checkMaskAgreesWithAccept(c, [...tricky, ...sample]);
          checked++;
        }
      });
    }
    expect(checked).toBeGreaterThan(8);
  });
});

describe('constraint semantics', () => {
  const feed = (c: StructuredConstraint, text: string): void => {
    for (const ch of text) c.accept(CHARS.indexOf(ch));
  };

  it('allows EOS only once the value is complete, and is done after a closed root', () => {
    const c = createConstraint({ type: 'json_object' }, charVocab);
    feed(c, '{"a": [1, 2');
    expect(c.allowedIds()).not.toContain(0);
    expect(() => c.fork().accept(0)).toThrow(/before the output is complete/);
    feed(c, ']}');
    expect(c.done).toBe(true);
    expect(c.allowedIds()).toEqual([0]);
  });

  it('ends a root number only by EOS, within its bounds', () => {
    const c = createConstraint({ type: 'json_schema', schema: boundedInt }, charVocab);
    feed(c, '1');
    expect(c.allowedIds()).not.toContain(0);
    const digits = c.allowedIds().map((id) => CHARS[id]);
    expect(digits.sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    feed(c, '5');
    expect(c.allowedIds()).toContain(0);
    expect(c.done).toBe(false);
    c.accept(0);
    expect(c.done).toBe(true);
  });

  it('without EOS ids, ends a complete value that nothing can extend', () => {
    const noEos = tokenVocabulary(CharTokenizer.fromVocab(CHARS.slice(1)), []);
    const c = createConstraint({ type: 'json_schema', schema: boundedInt }, noEos);
    c.accept(CHARS.indexOf('1') - 1);
    expect(c.done).toBe(false);
    c.accept(CHARS.indexOf('5') - 1);
    expect(c.done).toBe(true);
  });

  it('forces required properties when maxProperties leaves no room for others', () => {
    const c = createConstraint({ type: 'json_schema', schema: { type: 'object', properties: { a: { type: 'null' }, b: { type: 'null' } }, required: ['b'], maxProperties: 1 } }, charVocab);
    feed(c, '{"');
    expect(c.allowedIds().map((id) => CHARS[id])).toEqual(['b']);
  });

  it('enforces date formats field by field (no February 29 outside leap years, no day past the month)', () => {
    const next = (prefix: string): string[] => {
      const c = createConstraint({ type: 'json_schema', schema: { type: 'string', format: 'date' } }, charVocab);
      feed(c, prefix);
      return c.allowedIds().map((id) => CHARS[id]!);
    };
    expect(next('"2023-02-2')).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8']);
    expect(next('"2024-02-2')).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(next('"2023-04-3')).toEqual(['0']);
    expect(next('"2023-1')).toEqual(['0', '1', '2']);
    expect(next('"2023-12-31')).toEqual(['"']);
    expect(() => createConstraint({ type: 'json_schema', schema: { type: 'string', format: 'uuid', maxLength: 10 } }, charVocab)).toThrow(/"uuid" string has 36 characters/);
  });

  it('bounds whitespace runs', () => {
    const c = createConstraint({ type: 'json_object' }, charVocab);
    feed(c, '{' + ' '.repeat(8));
    expect(c.allowedIds().map((id) => CHARS[id])).not.toContain(' ');
  });

  it('refuses unsupported keywords by name', () => {
    expect(() => createConstraint({ type: 'json_schema', schema: { type: 'string', pattern: '^a+$' } }, charVocab)).toThrow(/unsupported keyword "pattern"/);
    expect(() => createConstraint({ type: 'json_schema', schema: { type: 'object', properties: { x: { not: {}, uniqueItems: true } } } }, charVocab)).toThrow(
      /at \/properties\/x: unsupported keywords "not", "uniqueItems"/,
    );
    expect(() => createConstraint({ type: 'json_schema', schema: { $ref: '#/$defs/missing' } }, charVocab)).toThrow(SchemaError);
    expect(() => createConstraint({ type: 'tool_calls', tools, format: 'hermes', name: 'nope' }, charVocab)).toThrow(/not among the tools/);
    expect(() => createConstraint({ type: 'tool_calls', tools, format: 'xml' }, charVocab)).toThrow(/unknown tool-call format "xml"/);
  });
});
