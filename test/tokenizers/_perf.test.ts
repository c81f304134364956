import { it } from 'vitest';
import { readFileSync } from 'node:fs';
import { tokenizerFromGGUF } from '../../src/tokenizers/formats/gguf-vocab.js';
it('perf', () => {
  const text = readFileSync('data/tinyshakespeare.txt', 'utf8').slice(0, 300_000);
  const s = tokenizerFromGGUF('../shared/data/tokenizers/llama.cpp/ggml-vocab-llama-spm.gguf');
  const piece = '▁' + text.replaceAll(' ', '▁');
  let t0 = Date.now(); const r = s.model.tokenize(piece); console.log('model only', Date.now() - t0, r.length);
  t0 = Date.now(); const n = s.normalizer!.normalize({ text, align: Array.from({ length: text.length + 1 }, (_, i) => i) }); console.log('normalize', Date.now() - t0, n.text.length);
  const short = text.slice(0, 30000);
  t0 = Date.now(); s.model.tokenize('▁' + short.replaceAll(' ', '▁')); console.log('model 30K', Date.now() - t0);
});
