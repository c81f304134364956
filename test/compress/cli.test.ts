/**
 * The compression commands end to end on a tiny LLaMA run directory (config, weights, tokenizer.json):
 * each writes a model directory that loads back and computes what the in-memory result computed.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCompressReportCommand, runQatCommand } from '../../src/cli/compress.js';
import { runDistill } from '../../src/cli/distill.js';
import { runLowRank } from '../../src/cli/lowrank.js';
import { runPrune } from '../../src/cli/prune.js';
import { runQuantize } from '../../src/cli/quantize.js';
import { loadLlamaLike } from '../../src/compress/index.js';
import { W8A8Linear } from '../../src/compress/smoothquant.js';
import { QuantizedLinear } from '../../src/compress/quant/linear.js';
import { CharTokenizer } from '../../src/tokenizers/char.js';
import { Llama } from '../../src/models/llama.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';

const root = mkdtempSync(join(tmpdir(), 'weft-compress-cli-'));
const modelDir = join(root, 'model');
const textPath = join(root, 'text.txt');
const sink = { write: (): boolean => true };
const io = { stdout: sink, stderr: sink };
let vocab = 0;

beforeAll(async () => {
  const text = 'the quick brown fox jumps over the lazy dog. '.repeat(60);
  writeFileSync(textPath, text);
  const tok = CharTokenizer.fromText(text);
  vocab = tok.vocabSize;
  const model = new Llama({ vocabSize: vocab, hiddenSize: 64, intermediateSize: 128, nLayer: 2, nHead: 4, nKVHead: 4, maxPositionEmbeddings: 32, tieWordEmbeddings: true }, { generator: new Generator(1) });
  await model.savePretrained(modelDir);
  writeFileSync(join(modelDir, 'tokenizer.json'), JSON.stringify(tok.toJSON()));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const ids = (): Tensor => Tensor.fromArray(Int32Array.from({ length: 16 }, (_, i) => (i * 3) % vocab), [1, 16], 'i32');

describe('weft quantize', () => {
  for (const [method, bits, extra] of [
    ['rtn', '4', {}],
    ['gptq', '4', { actOrder: true }],
    ['awq', '4', {}],
    ['rtn', '8', {}],
    ['smoothquant', '8', {}],
    ['smoothquant', '8', { activation: 'kl' }],
  ] as const) {
    it(`${method} ${bits}-bit ${JSON.stringify(extra)}`, async () => {
      const out = join(root, `q-${method}-${bits}-${Object.keys(extra).join('')}`);
      const summary = await runQuantize(modelDir, { method, bits, calib: textPath, calibWindows: 4, eval: textPath, out, ...extra }, io);
      expect(summary.layers).toBe(14);
      const before = summary.perplexityBefore as number;
      const after = summary.perplexityAfter as number;
      expect(Math.abs(after / before - 1)).toBeLessThan(bits === '8' ? 0.02 : 0.2);
      const loaded = await loadLlamaLike(out);
      const q = loaded.getModule('model.layers.0.mlp.up_proj');
      if (extra !== null && 'activation' in extra) expect(q).toBeInstanceOf(W8A8Linear);
      else expect(q).toBeInstanceOf(QuantizedLinear);
      expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).quantization_config.format).toBe(bits === '4' ? 'q4_0' : 'int8');
      const logits = loaded.forward(ids()).logits;
      expect(logits.shape).toEqual([1, 16, vocab]);
    });
  }
  it('leaves layers the format cannot hold in f32 (group 128 on 64-wide inputs)', async () => {
    for (const method of ['gptq', 'awq', 'rtn'] as const) {
      const out = join(root, `q-${method}-g128`);
      const summary = await runQuantize(modelDir, { method, bits: '4', groupSize: 128, calib: textPath, calibWindows: 2, out }, io);
      expect(summary.format).toBe('q4_g128');
      expect(summary.layers).toBe(2); // down_proj only: 128 inputs
      const loaded = await loadLlamaLike(out);
      expect(loaded.getModule('model.layers.1.mlp.down_proj')).toBeInstanceOf(QuantizedLinear);
    }
  });

  it('asks for calibration text where the method needs it', async () => {
    await expect(runQuantize(modelDir, { method: 'gptq', bits: '4', out: join(root, 'x') }, io)).rejects.toThrow(/--calib/);
    await expect(runQuantize(modelDir, { method: 'rtn', bits: '3', out: join(root, 'x') }, io)).rejects.toThrow(/--bits/);
  });
});

describe('weft prune / lowrank / distill / compress', () => {
  it('prunes neurons, heads and layers into loadable smaller models, and magnitude with gradual fine-tuning', async () => {
    const n = await runPrune(modelDir, { method: 'neurons', sparsity: 0.5, data: textPath, importanceBatches: 2, out: join(root, 'p-n') }, io);
    expect((n.config as { intermediateSize: number }).intermediateSize).toBe(64);
    const h = await runPrune(modelDir, { method: 'heads', sparsity: 0.5, data: textPath, importanceBatches: 2, out: join(root, 'p-h') }, io);
    expect((h.config as { nHead: number }).nHead).toBe(2);
    const l = await runPrune(modelDir, { method: 'layers', sparsity: 0.5, data: textPath, importanceBatches: 2, out: join(root, 'p-l') }, io);
    expect((l.config as { nLayer: number }).nLayer).toBe(1);
    for (const d of ['p-n', 'p-h', 'p-l']) expect((await Llama.fromPretrained(join(root, d))).numParameters()).toBeLessThan(n.paramsBefore as number);
    const m = await runPrune(modelDir, { method: 'magnitude', sparsity: 0.6, data: textPath, finetuneSteps: 4, pruneSteps: 2, batchSize: 2, out: join(root, 'p-m') }, io);
    expect(m.weightSparsity as number).toBeGreaterThanOrEqual(0.6 - 1e-3);
    const back = await Llama.fromPretrained(join(root, 'p-m'));
    const w = back.model.layers.items[1]!.mlp.down_proj.weight.f32();
    expect(w.filter((v) => v === 0).length / w.length).toBeGreaterThanOrEqual(0.59);
  });

  it('factorises by energy and loads the factorised model', async () => {
    const s = await runLowRank(modelDir, { energy: 0.5, data: textPath, out: join(root, 'lr') }, io);
    expect(s.paramsAfter as number).toBeLessThan(s.paramsBefore as number);
    const loaded = await loadLlamaLike(join(root, 'lr'));
    expect(loaded.numParameters()).toBe(s.paramsAfter);
    await expect(runLowRank(modelDir, { out: join(root, 'lr2') }, io)).rejects.toThrow(/--rank/);
  });

  it('distils into a student config and trains the scratch baseline', async () => {
    const cfg = join(root, 'student.json');
    writeFileSync(cfg, JSON.stringify({ hiddenSize: 32, intermediateSize: 64, nLayer: 1, nHead: 2 }));
    const s = await runDistill({ teacher: modelDir, studentConfig: cfg, data: textPath, out: join(root, 'student'), steps: 3, batchSize: 2, blockSize: 16, compareScratch: true }, io);
    expect(s.scratchPerplexity).not.toBeNull();
    const student = await Llama.fromPretrained(join(root, 'student'));
    expect(student.config.hiddenSize).toBe(32);
    expect(readFileSync(join(root, 'student', 'tokenizer.json'), 'utf8').length).toBeGreaterThan(0);
  });

  it('compress report writes one table and chart for all methods; qat compares with PTQ', async () => {
    const out = join(root, 'report.html');
    const rows = await runCompressReportCommand(modelDir, { out, data: textPath, methods: 'f32,rtn-q4_0,gptq-q4_0,w8a8-kl,lowrank-e0.9,prune-neurons-0.25', calibWindows: 4, evalWindows: 4, decodeTokens: 4 }, io);
    expect(rows.map((r) => r.method)).toEqual(['f32', 'rtn-q4_0', 'gptq-q4_0', 'w8a8-kl', 'lowrank-e0.9', 'prune-neurons-0.25']);
    const f32 = rows[0]!;
    expect(rows[1]!.fileBytes).toBeLessThan(f32.fileBytes);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('<table>');
    expect(html).toContain('<svg');
    expect(html).toContain('gptq-q4_0');
    const q = await runQatCommand(modelDir, { data: textPath, steps: 3, batchSize: 2, evalWindows: 4 }, io);
    expect(q.ptqPerplexity).toBeGreaterThan(0);
    expect(q.qatPerplexity).toBeGreaterThan(0);
  });
});
