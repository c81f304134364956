/**
 * Our exported GGUF files in llama.cpp itself (node-llama-cpp's prebuilt CPU binary, installed under
 * bench/anchors by `npm run bench:anchors`): greedy continuations of the same token ids must match
 * Weft's for f32 and q8_0. Skips, saying why, when node-llama-cpp is not installed.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNodeLlamaCpp, nodeLlamaCppPath } from '../../src/bench/llamacpp.js';
import { exportGGUF } from '../../src/io/gguf-export.js';
import { loadQuantizedGGUF } from '../../src/compress/quant/model.js';
import { loadLlamaGGUF } from '../../src/io/llama-gguf.js';
import { tinyLlama, tinyTokenizer } from './gguf-export.helpers.js';

const anchor = nodeLlamaCppPath();
const present = existsSync(anchor);
if (!present) console.warn(`gguf-export-llamacpp: skipped: ${anchor} is absent (npm run bench:anchors installs node-llama-cpp)`);

const dir = mkdtempSync(join(tmpdir(), 'weft-gguf-llamacpp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!present)('exported GGUF runs in llama.cpp', () => {
  for (const type of ['f32', 'q8_0'] as const) {
    it(`${type}: llama.cpp's greedy continuation equals Weft's on the same file`, async () => {
      const path = join(dir, `tiny-${type}.gguf`);
      await exportGGUF(tinyLlama(11), tinyTokenizer(), path, type);
      const prompt = [1, 280, 300, 17, 260, 301];
      // f32: both engines compute in f32 (llama.cpp keeps its KV cache in f16), 24 tokens agree. q8_0:
      // the same integer block dots, but llama.cpp's head is q8_0 × Q8 where Llama's head is f32, so
      // after a dozen tokens a near-tie of this random model can go either way.
      const steps = type === 'f32' ? 24 : 12;
      // q8_0 runs on our quantized kernels (Q8 activations, integer block dots), as llama.cpp's CPU path does.
      const model = type === 'f32' ? loadLlamaGGUF(path) : loadQuantizedGGUF(path).model;
      const ours = model.generate(prompt, { maxNewTokens: steps, temperature: 0 });
      const lib = (await loadNodeLlamaCpp())!;
      const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: lib.LlamaLogLevel.error });
      const cppModel = await llama.loadModel({ modelPath: path });
      const context = await cppModel.createContext({ threads: 1, contextSize: 128 });
      const theirs: number[] = [];
      for await (const t of context.getSequence().evaluate(prompt, { temperature: 0 })) {
        theirs.push(t);
        if (theirs.length === steps) break;
      }
      await context.dispose();
      await cppModel.dispose();
      await llama.dispose();
      expect(theirs).toEqual(ours);
    }, 120_000);
  }
});
