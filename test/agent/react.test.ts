import { describe, expect, it } from 'vitest';
import { parseReact, reactSystemPrompt } from '../../src/agent/react.js';

describe('ReAct parser', () => {
  it('reads the canonical form with JSON input', () => {
    expect(parseReact('Thought: I need to add.\nAction: calculator\nAction Input: {"expression": "2 + 2"}')).toEqual({ kind: 'action', thought: 'I need to add.', tool: 'calculator', input: '{"expression": "2 + 2"}' });
  });

  it('tolerates case, extra whitespace and markdown bold', () => {
    const r = parseReact('  thought :   add them  \n\n**ACTION**:   calculator  \n  action input :  {"expression":"1+1"}  \n');
    expect(r).toMatchObject({ kind: 'action', tool: 'calculator', input: '{"expression":"1+1"}', thought: 'add them' });
  });

  it('strips code fences around the whole reply and around the input', () => {
    expect(parseReact('```\nThought: x\nAction: calculator\nAction Input: 3*3\n```')).toMatchObject({ kind: 'action', tool: 'calculator', input: '3*3' });
    expect(parseReact('Thought: x\nAction: calculator\nAction Input:\n```json\n{"expression": "3*3"}\n```')).toMatchObject({ input: '{"expression": "3*3"}' });
  });

  it('plain and quoted inputs, tool names in backticks or quotes', () => {
    expect(parseReact('Action: `search_documents`\nAction Input: "what is weft"')).toMatchObject({ tool: 'search_documents', input: 'what is weft' });
    expect(parseReact("Action: 'calculator'\nAction Input: 5 - 2")).toMatchObject({ tool: 'calculator', input: '5 - 2' });
  });

  it("the paper's Action: tool[input] form and tool(input)", () => {
    expect(parseReact('Thought: look it up\nAction: search_documents[weft kernels]')).toMatchObject({ kind: 'action', tool: 'search_documents', input: 'weft kernels' });
    expect(parseReact('Action: calculator(2+3)')).toMatchObject({ tool: 'calculator', input: '2+3' });
  });

  it('a final answer, with or without a thought, any case', () => {
    expect(parseReact('Thought: I know it.\nFinal Answer: 42')).toEqual({ kind: 'final', thought: 'I know it.', answer: '42' });
    expect(parseReact('final answer:   The answer is\ntwo lines.')).toMatchObject({ kind: 'final', answer: 'The answer is\ntwo lines.' });
    expect(parseReact('FINAL_ANSWER: ok')).toMatchObject({ kind: 'final', answer: 'ok' });
  });

  it('drops an Observation the model invented, and what follows it', () => {
    const r = parseReact('Thought: add\nAction: calculator\nAction Input: {"expression":"1+1"}\nObservation: 3\nThought: done\nFinal Answer: 3');
    expect(r).toMatchObject({ kind: 'action', tool: 'calculator', input: '{"expression":"1+1"}' });
  });

  it('whichever of action and final answer comes first wins', () => {
    expect(parseReact('Final Answer: 5\nAction: calculator\nAction Input: 1')).toMatchObject({ kind: 'final', answer: '5\nAction: calculator\nAction Input: 1' });
    expect(parseReact('Action: calculator\nAction Input: 1\nFinal Answer: 5')).toMatchObject({ kind: 'action', input: '1' });
  });

  it('reports what is missing', () => {
    expect(parseReact('I think the answer is 4.')).toMatchObject({ kind: 'invalid', error: expect.stringContaining('no "Action:" line') });
    expect(parseReact('Thought: hm\nAction:   \nAction Input: 3')).toMatchObject({ kind: 'invalid', error: expect.stringContaining('names no tool') });
  });

  it('the system prompt lists tools with schemas and the untrusted-data rule', () => {
    const p = reactSystemPrompt([{ name: 'calculator', description: 'math', parameters: { type: 'object' } }]);
    expect(p).toContain('- calculator: math');
    expect(p).toContain('Action Input');
    expect(p).toContain('<tool_output>');
  });
});
