import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assembleToolCalls, parseToolCalls, ToolCallStreamParser, type OpenAIToolCall, type OpenAIToolCallDelta } from '../../../src/infer/chat/index.js';

const WEATHER = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>';
const ADD = '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 40}}\n</tool_call>';

/** Calls without their (random) ids. */
function shape(calls: readonly OpenAIToolCall[]): { name: string; args: unknown }[] {
  return calls.map((c) => {
    expect(c.id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(c.type).toBe('function');
    return { name: c.function.name, args: JSON.parse(c.function.arguments) as unknown };
  });
}

describe('parseToolCalls (hermes)', () => {
  it('parses one call and leaves no content', () => {
    const r = parseToolCalls(WEATHER, 'hermes');
    expect(r.content).toBeNull();
    expect(shape(r.toolCalls)).toEqual([{ name: 'get_weather', args: { city: 'Paris', unit: 'celsius' } }]);
  });

  it('parses parallel calls after some text; whitespace around calls is dropped', () => {
    const r = parseToolCalls(`Let me check both.\n\n${WEATHER}\n${ADD}\n`, 'hermes');
    expect(r.content).toBe('Let me check both.');
    expect(shape(r.toolCalls)).toEqual([
      { name: 'get_weather', args: { city: 'Paris', unit: 'celsius' } },
      { name: 'add', args: { a: 2, b: 40 } },
    ]);
    expect(new Set(r.toolCalls.map((c) => c.id)).size).toBe(2);
  });

  it('keeps plain text exactly, including markup that only looks like a marker', () => {
    for (const text of ['Hello!', '  spaced  ', 'a <tool x> b', 'ends with <tool_ca', 'x < y and </tool_call>', '']) {
      const r = parseToolCalls(text, 'hermes');
      expect(r.toolCalls).toEqual([]);
      expect(r.content).toBe(text === '' ? null : text);
    }
  });

  it('degrades malformed tool calls to content and never throws', () => {
    for (const text of [
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": \n</tool_call>',
      '<tool_call>not json</tool_call>',
      '<tool_call>\n{"arguments": {}}\n</tool_call>',
      '<tool_call>\n[1, 2]\n</tool_call>',
      '<tool_call>\n{"name": "x", "arguments": {"a": 1}',
    ]) {
      const r = parseToolCalls(`Note: ${text}`, 'hermes');
      expect(r.toolCalls).toEqual([]);
      expect(r.content).toBe(`Note: ${text}`);
    }
  });

  it('accepts an unterminated last call whose JSON is complete, and arguments given as a JSON string', () => {
    const r = parseToolCalls('<tool_call>\n{"name": "add", "arguments": "{\\"a\\": 1, \\"b\\": 2}"}\n', 'hermes');
    expect(r.content).toBeNull();
    expect(shape(r.toolCalls)).toEqual([{ name: 'add', args: { a: 1, b: 2 } }]);
  });
});

describe('parseToolCalls (llama3-json)', () => {
  it('parses a bare JSON call with "parameters"', () => {
    const r = parseToolCalls('{"name": "get_weather", "parameters": {"city": "Paris"}}', 'llama3-json');
    expect(r.content).toBeNull();
    expect(shape(r.toolCalls)).toEqual([{ name: 'get_weather', args: { city: 'Paris' } }]);
  });

  it('leaves text, and JSON that is not a call, as content', () => {
    for (const text of ['The weather is fine.', '{"answer": 42}', '{"name": "x", "parameters": {', '  ']) {
      const r = parseToolCalls(text, 'llama3-json');
      expect(r.toolCalls).toEqual([]);
      expect(r.content).toBe(text);
    }
  });
});

/** Streams `text` split at the given cut points; returns the concatenated content and assembled calls. */
function stream(text: string, format: string, cuts: readonly number[]): { content: string; calls: OpenAIToolCall[]; deltas: OpenAIToolCallDelta[]; contentChunks: string[] } {
  const p = new ToolCallStreamParser(format);
  let content = '';
  const deltas: OpenAIToolCallDelta[] = [];
  const contentChunks: string[] = [];
  let prev = 0;
  for (const cut of [...cuts, text.length]) {
    const r = cut === text.length && prev === text.length ? {} : p.push(text.slice(prev, cut));
    prev = cut;
    if (r.content !== undefined) {
      content += r.content;
      contentChunks.push(r.content);
    }
    deltas.push(...(r.toolCallDeltas ?? []));
  }
  const f = p.finish();
  if (f.content !== undefined) content += f.content;
  deltas.push(...(f.toolCallDeltas ?? []));
  return { content, calls: assembleToolCalls(deltas), deltas, contentChunks };
}

describe('ToolCallStreamParser', () => {
  const texts: [string, string][] = [
    ['hermes', `Sure.\n${WEATHER}\n${ADD}`],
    ['hermes', WEATHER],
    ['hermes', 'No tools needed: a < b, <tool_cal and </tool_call> are just text.\n'],
    ['hermes', `Oops ${'<tool_call>'}{"name": 1}</tool_call> then ${ADD} done`],
    ['llama3-json', '{"name": "add", "parameters": {"a": 2, "b": 40}}'],
    ['llama3-json', 'Plain answer with {braces}.'],
  ];

  for (const [format, text] of texts) {
    it(`${format}: every split into two pieces, and every one-character stream, give the whole-text result (${JSON.stringify(text.slice(0, 30))}…)`, () => {
      const whole = parseToolCalls(text, format);
      const expected = { content: whole.content ?? '', calls: shape(whole.toolCalls) };
      const splits: number[][] = [Array.from({ length: text.length - 1 }, (_, i) => i + 1)];
      for (let i = 0; i <= text.length; i++) splits.push([i]);
      for (const cuts of splits) {
        const s = stream(text, format, cuts);
        expect({ content: s.content, calls: shape(s.calls) }).toEqual(expected);
      }
    });
  }

  it('random mixtures of markers, JSON and text: never throws, and any chunking gives the whole-text result', () => {
    const pieces = ['<tool_call>', '</tool_call>', '\n', ' ', 'ab', '{"name": "f", "arguments": {"x": [1, "}"]}}', '<', 'tool_', '{', '}', '"', '\\', 'é😀'];
    fc.assert(
      fc.property(
        fc.constantFrom('hermes', 'llama3-json'),
        fc.array(fc.constantFrom(...pieces), { maxLength: 14 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (format, parts, rawCuts) => {
          const text = parts.join('');
          const whole = parseToolCalls(text, format);
          const cuts = [...new Set(rawCuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
          const s = stream(text, format, cuts);
          expect(s.content).toBe(whole.content ?? '');
          expect(s.calls.map((c) => c.function)).toEqual(whole.toolCalls.map((c) => c.function));
        },
      ),
      { numRuns: 400, seed: 42 },
    );
  });

  it('emits each call as OpenAI deltas: index, id, type and name first, then the arguments', () => {
    const s = stream(`Hi ${WEATHER}${ADD}`, 'hermes', [5, 20, 60]);
    expect(s.deltas.length).toBe(4);
    expect(s.deltas[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(s.deltas[0]!.id).toMatch(/^call_/);
    expect(s.deltas[1]).toEqual({ index: 0, function: { arguments: '{"city":"Paris","unit":"celsius"}' } });
    expect(s.deltas[2]).toMatchObject({ index: 1, type: 'function', function: { name: 'add' } });
  });

  it('passes plain content through at once, holding back only a possible marker start', () => {
    const p = new ToolCallStreamParser('hermes');
    expect(p.push('Hello wor')).toEqual({ content: 'Hello wor' });
    expect(p.push('ld <tool')).toEqual({ content: 'ld' });
    expect(p.push('s are handy')).toEqual({ content: ' <tools are handy' });
    expect(p.finish()).toEqual({});
  });
});
