#!/usr/bin/env node
/**
 * Agent-loop overhead per tool step: Weft's function-calling loop (OpenAIChatClient + Agent +
 * ToolExecutor: argument validation, timeouts, fencing, repeat detection, tracing) against the
 * `openai` SDK's tool runner (`client.chat.completions.runTools`), both driving the same local
 * OpenAI-compatible server (node:http on loopback) through the same N-step conversations: the
 * server calls the calculator N times, then answers. Both sides run the same calculator function,
 * so the figure is what each loop adds around the model calls. Rounds alternate between the two
 * sides; each keeps its best time.
 *
 *   npm run build && node bench/agent/loop-vs-openai.mjs [--steps 1,4,16] [--rounds 20] [--json]
 *
 * Prints one JSON line per step count: ours and the SDK's milliseconds per step, and the ratio
 * (ours / SDK's: below 1 is faster). Both answers are checked to be the same.
 */
import { setMaxListeners } from 'node:events';
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import { Agent, calculatorTool, evaluateExpression, formatNumber, OpenAIChatClient, ToolExecutor } from '../../dist/agent/index.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const stepsList = arg('steps', '1,4,16').split(',').map(Number);
const rounds = Number(arg('rounds', '20'));
const json = process.argv.includes('--json');
// The SDK's runner adds an abort listener per request to its run-wide signal; 16 steps pass Node's default of 10.
setMaxListeners(100);

// The scripted endpoint: call the calculator until `steps` results are in, then answer with the last one.
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const r = JSON.parse(body);
    const steps = Number(/steps=(\d+)/.exec(r.messages.find((m) => m.role === 'user').content)[1]);
    const results = r.messages.filter((m) => m.role === 'tool').map((m) => m.content);
    const k = results.length;
    const last = k === 0 ? '0' : /(-?[\d.]+)\s*(<\/tool_output>)?\s*$/.exec(results[k - 1])[1];
    const message =
      k < steps
        ? { role: 'assistant', content: null, tool_calls: [{ id: `call_${k}`, type: 'function', function: { name: 'calculator', arguments: JSON.stringify({ expression: `${last} + ${k + 1}` }) } }] }
        : { role: 'assistant', content: `result ${last}` };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'x', object: 'chat.completion', created: 0, model: 'm', choices: [{ index: 0, message, finish_reason: k < steps ? 'tool_calls' : 'stop', logprobs: null }], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } }));
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const baseURL = `http://127.0.0.1:${server.address().port}/v1`;

const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
const ourModel = new OpenAIChatClient({ baseURL, model: 'm' });
const executor = new ToolExecutor([calculatorTool()]);
const calcSpec = { type: 'object', properties: { expression: { type: 'string' } }, required: ['expression'], additionalProperties: false };

async function ours(steps) {
  const r = await new Agent({ model: ourModel, executor, limits: { maxSteps: steps + 2, repeatLimit: steps + 2 } }).run(`steps=${steps}`);
  return r.answer;
}

async function sdk(steps) {
  const runner = client.chat.completions.runTools(
    {
      model: 'm',
      messages: [{ role: 'user', content: `steps=${steps}` }],
      tools: [{ type: 'function', function: { name: 'calculator', description: 'arithmetic', parameters: calcSpec, parse: JSON.parse, function: ({ expression }) => formatNumber(evaluateExpression(expression)) } }],
    },
    { maxChatCompletions: steps + 2 },
  );
  return runner.finalContent();
}

const time = async (fn) => {
  const t0 = performance.now();
  const answer = await fn();
  return { ms: performance.now() - t0, answer };
};

for (const steps of stepsList) {
  await ours(steps); // warm-up (connection, JIT)
  await sdk(steps);
  let bestOurs = Infinity;
  let bestSdk = Infinity;
  let a = null;
  let b = null;
  for (let i = 0; i < rounds; i++) {
    const x = await time(() => ours(steps));
    const y = await time(() => sdk(steps));
    bestOurs = Math.min(bestOurs, x.ms);
    bestSdk = Math.min(bestSdk, y.ms);
    a = x.answer;
    b = y.answer;
  }
  const expected = `result ${(steps * (steps + 1)) / 2}`;
  const row = {
    bench: 'agent-loop',
    steps,
    ours_ms_per_step: +(bestOurs / (steps + 1)).toFixed(3),
    openai_sdk_ms_per_step: +(bestSdk / (steps + 1)).toFixed(3),
    ratio: +(bestOurs / bestSdk).toFixed(3),
    same_answer: a === b && a === expected,
    rounds,
  };
  if (json) console.log(JSON.stringify(row));
  else console.log(`${steps} tool steps: weft ${row.ours_ms_per_step} ms/step, openai runTools ${row.openai_sdk_ms_per_step} ms/step, ratio ${row.ratio}${row.same_answer ? '' : '  ANSWERS DIFFER'}`);
}
server.close();
