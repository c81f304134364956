/**
 * llama2.c checkpoints: stories260K (Karpathy's tinyllamas, verified against run.c) must generate
 * greedily exactly the ids run.c prints (shared/data/README.md); the loader's rotary permutation,
 * header checks and unshared-classifier / version-1 layouts are checked on small synthetic files.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadLlama2c, parseLlama2c, parseLlama2cHeader } from '../../src/io/llama2c.js';
import { Llama } from '../../src/models/llama.js';
import { llama2cTokenizer } from '../../src/tokenizers/index.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const STORIES = join(ROOT, '..', 'shared', 'data', 'models', 'stories260K');
const haveStories = existsSync(join(STORIES, 'stories260K.bin')) && existsSync(join(STORIES, 'tok512.bin'));

// shared/data/README.md §3a: run.c's first 32 greedy ids after BOS.
const EXPECTED = '403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385'
  .split(' ')
  .map(Number);

describe.skipIf(!haveStories)('stories260K (llama2.c v0, shared classifier, GQA ×2)', () => {
  it('generates run.c\'s greedy ids exactly, and they decode to the documented text', () => {
    const model = loadLlama2c(join(STORIES, 'stories260K.bin'));
    expect(model.config).toMatchObject({ hiddenSize: 64, intermediateSize: 172, nLayer: 5, nHead: 8, nKVHead: 4, vocabSize: 512, tieWordEmbeddings: true });
    const ids = model.generate([1], { maxNewTokens: 32, temperature: 0 });
    expect(ids).toEqual(EXPECTED);
    const tok = llama2cTokenizer(join(STORIES, 'tok512.bin'));
    expect(tok.decode(ids)).toBe('Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One');
    // The tokenizer's own encoding of the prompt starts with BOS, as run.c's does.
    expect(tok.encode('Once upon a time')[0]).toBe(1);
  });

  it('cached decoding equals full recomputation on the real weights', () => {
    const model = loadLlama2c(join(STORIES, 'stories260K.bin'));
    const seq = [1, ...EXPECTED.slice(0, 15)];
    const full = model.logits(Tensor.fromArray(Int32Array.from(seq), [1, seq.length], 'i32')).toArray();
    const cache = model.newCache();
    const first = model.forwardCached(Tensor.fromArray(Int32Array.from(seq.slice(0, 6)), [1, 6], 'i32'), cache).toArray();
    const rest: number[] = [];
    for (const id of seq.slice(6)) rest.push(...model.forwardCached(Tensor.fromArray(Int32Array.of(id), [1, 1], 'i32'), cache).toArray());
    const cached = [...first, ...rest];
    expect(cached.length).toBe(full.length);
    let worst = 0;
    for (let i = 0; i < full.length; i++) worst = Math.max(worst, Math.abs(cached[i]! - full[i]!));
    expect(worst).toBeLessThan(1e-4);
  });
});

/** Writes a llama2.c file from a model whose q/k rows are stored HF-style (the inverse permutation). */
function exportLlama2c(model: Llama, version: 0 | 1, shared: boolean): Uint8Array {
  const c = model.config;
  const D = c.headDim;
  const sd = model.stateDict();
  const get = (n: string): Float32Array => sd.get(n)!.toArray() as unknown as Float32Array;
  // rotate-half → interleaved: old row 2j ← new row j, old row 2j+1 ← new row j + D/2.
  const toInterleaved = (w: Float32Array, heads: number): Float32Array => {
    const cols = c.hiddenSize;
    const out = new Float32Array(w.length);
    for (let h = 0; h < heads; h++) {
      for (let j = 0; j < D / 2; j++) {
        out.set(w.subarray((h * D + j) * cols, (h * D + j + 1) * cols), (h * D + 2 * j) * cols);
        out.set(w.subarray((h * D + j + D / 2) * cols, (h * D + j + D / 2 + 1) * cols), (h * D + 2 * j + 1) * cols);
      }
    }
    return out;
  };
  const L = c.nLayer;
  const layers = (k: string, perm = 0): Float32Array[] =>
    Array.from({ length: L }, (_, l) => (perm > 0 ? toInterleaved(Float32Array.from(get(`model.layers.${l}.${k}`)), perm) : Float32Array.from(get(`model.layers.${l}.${k}`))));
  const f = (n: string): Float32Array => Float32Array.from(get(n));
  const parts: Float32Array[] = [];
  const attn = [...layers('self_attn.q_proj.weight', c.nHead), ...layers('self_attn.k_proj.weight', c.nKVHead), ...layers('self_attn.v_proj.weight'), ...layers('self_attn.o_proj.weight')];
  const ffn = [...layers('mlp.gate_proj.weight'), ...layers('mlp.down_proj.weight'), ...layers('mlp.up_proj.weight')];
  if (version === 0) {
    parts.push(f('model.embed_tokens.weight'), ...layers('input_layernorm.weight'), ...attn, ...layers('post_attention_layernorm.weight'), ...ffn, f('model.norm.weight'));
    parts.push(new Float32Array(c.maxPositionEmbeddings * D)); // freq_cis real + imag
  } else {
    parts.push(...layers('input_layernorm.weight'), ...layers('post_attention_layernorm.weight'), f('model.norm.weight'), f('model.embed_tokens.weight'), ...attn, ...ffn);
  }
  if (!shared) parts.push(f('lm_head.weight'));
  const headerBytes = version === 0 ? 28 : 256;
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(headerBytes + 4 * total);
  const view = new DataView(out.buffer);
  let at = 0;
  if (version === 1) {
    view.setUint32(0, 0x616b3432, true);
    view.setInt32(4, 1, true);
    at = 8;
  }
  const vocab = version === 0 && !shared ? -c.vocabSize : c.vocabSize;
  [c.hiddenSize, c.intermediateSize, c.nLayer, c.nHead, c.nKVHead, vocab, c.maxPositionEmbeddings].forEach((v, i) => view.setInt32(at + 4 * i, v, true));
  if (version === 1) out[36] = shared ? 1 : 0;
  let pos = headerBytes;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), pos);
    pos += p.byteLength;
  }
  return out;
}

describe('llama2.c loader', () => {
  const cases: [0 | 1, boolean][] = [
    [0, true],
    [0, false],
    [1, true],
    [1, false],
  ];
  it.each(cases)('version %i, shared classifier %s: round trip gives the same logits', (version, shared) => {
    const model = new Llama(
      { vocabSize: 23, hiddenSize: 16, intermediateSize: 24, nLayer: 2, nHead: 4, nKVHead: 2, maxPositionEmbeddings: 12, rmsNormEps: 1e-5, tieWordEmbeddings: shared },
      { generator: new Generator(7) },
    );
    const bytes = exportLlama2c(model, version, shared);
    const { header, config, tensors } = parseLlama2c(bytes, 'synthetic.bin');
    expect(header.version).toBe(version);
    expect(header.sharedClassifier).toBe(shared);
    const loaded = new Llama(config);
    loaded.loadHFTensors(tensors, 'synthetic.bin');
    const ids = Tensor.fromArray(Int32Array.from([3, 1, 4, 1, 5, 9, 2, 6]), [1, 8], 'i32');
    expect(loaded.logits(ids).toArray()).toEqual(model.logits(ids).toArray());
  });

  it('rejects truncated files, trailing data and bad headers with the file name', () => {
    const model = new Llama({ vocabSize: 11, hiddenSize: 8, intermediateSize: 12, nLayer: 1, nHead: 2, maxPositionEmbeddings: 4 }, { generator: new Generator(1) });
    const bytes = exportLlama2c(model, 0, true);
    expect(() => parseLlama2c(bytes.subarray(0, bytes.length - 8), 'cut.bin')).toThrow(/cut\.bin: truncated: freq_cis_imag/);
    const longer = new Uint8Array(bytes.length + 4);
    longer.set(bytes);
    expect(() => parseLlama2c(longer, 'long.bin')).toThrow(/long\.bin: 1 floats left over/);
    expect(() => parseLlama2cHeader(new Uint8Array(10), 'tiny.bin')).toThrow(/tiny\.bin: file is 10 bytes/);
    const bad = bytes.slice();
    new DataView(bad.buffer).setInt32(12, 3, true); // n_heads 3 does not divide dim 8
    expect(() => parseLlama2cHeader(bad, 'bad.bin')).toThrow(/dim 8 is not divisible by n_heads 3/);
  });
});
