/**
 * GPT-MoE: routed FFNs inside GPT blocks. A one-expert, top-1, renormalised MoE must compute exactly
 * the dense GPT with the same weights; the training loss is CE + α·aux + β·z over the routed blocks
 * while evaluation reports CE alone; savePretrained/loadPretrained round-trips the model; and
 * `weft train gpt --moe-experts …` trains, logging per-expert load/importance/dropped counts to
 * metrics.jsonl and resuming from its checkpoint.
 */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerTrain } from '../../src/cli/train.js';
import { adapterFor } from '../../src/infer/adapters/index.js';
import { BLOCK_SIZE, PagedKVCache } from '../../src/infer/paged-kv.js';
import { GPT } from '../../src/models/gpt.js';
import { loadPretrained } from '../../src/models/registry.js';
import { KVCache } from '../../src/nn/kv-cache.js';
import { SparseMoE } from '../../src/nn/moe.js';
import { mismatch } from '../tensor/fixtures.js';
import { activeParameters } from '../../src/train/train-gpt.js';
import { MetricsLog } from '../../src/train/metrics.js';
import { crossEntropy, Generator, noGrad, randn, Tensor } from '../../src/tensor/index.js';
import { Capture, smallCorpus, tempDir } from '../train/helpers.js';

const base = { vocabSize: 23, blockSize: 12, nLayer: 2, nHead: 2, nEmbd: 16, bias: true, dropout: 0 } as const;

function ids(B: number, T: number, seed: number): Tensor {
  const g = new Generator(seed);
  return Tensor.fromArray(Int32Array.from({ length: B * T }, () => g.int(0, base.vocabSize)), [B, T], 'i32');
}

describe('GPT-MoE', () => {
  it('routed blocks sit at every `every`-th block with HF-style names', () => {
    const m = new GPT({ ...base, nLayer: 4, moe: { nExperts: 4, topK: 2, every: 2 } });
    expect(m.transformer.h.items.map((b) => b.mlp instanceof SparseMoE)).toEqual([false, true, false, true]);
    const names = m.namedParameters().map(([n]) => n);
    expect(names).toContain('transformer.h.1.mlp.gate.weight');
    expect(names).toContain('transformer.h.3.mlp.experts.3.c_proj.bias');
    expect(names).toContain('transformer.h.0.mlp.c_fc.weight');
    // Each token uses 2 of 4 experts: the other two experts' parameters are inactive in both routed blocks.
    const expert = (m.transformer.h.items[1]!.mlp as SparseMoE).experts.items[0]!.numParameters();
    expect(activeParameters(m)).toBe(m.numParameters() - 2 * 2 * expert);
  });

  it('one expert, top-1, renormalised: exactly the dense GPT with the same weights', () => {
    const dense = new GPT(base, { generator: new Generator(1) });
    const moe = new GPT({ ...base, moe: { nExperts: 1, topK: 1, every: 1, capacityFactor: null, auxLossCoef: 0, zLossCoef: 0 } });
    const sd = new Map<string, Tensor>();
    for (const [name] of moe.stateDict()) {
      sd.set(name, dense.stateDict().get(name.replace('.mlp.experts.0.', '.mlp.')) ?? randn([1, base.nEmbd]));
    }
    moe.loadStateDict(sd);
    const x = ids(2, 9, 3);
    const a = dense.forward(x).logits.toArray();
    const b = moe.forward(x).logits.toArray();
    expect(b).toEqual(a);
  });

  it('training loss = CE + α·Σ aux + β·Σ z over routed blocks; evaluation loss is CE alone', () => {
    const m = new GPT({ ...base, moe: { nExperts: 4, topK: 2, every: 1, capacityFactor: null, auxLossCoef: 0.3, zLossCoef: 0.05 } }, { generator: new Generator(2) });
    const x = ids(2, 10, 4);
    const y = ids(2, 10, 5);
    const train = m.forward(x, y);
    const blocks = m.transformer.h.items;
    const want = noGrad(() => {
      let extra = 0;
      for (const b of blocks) extra += 0.3 * b.moeLosses!.auxLoss.item() + 0.05 * b.moeLosses!.zLoss.item();
      return crossEntropy(train.logits, y, { ignoreIndex: -1 }).item() + extra;
    });
    expect(train.loss!.item()).toBeCloseTo(want, 5);
    // Gradients reach every router through the auxiliary losses and the combine weights.
    train.loss!.backward();
    for (const b of blocks) expect((b.mlp as SparseMoE).gate.weight.grad!.toArray().some((v) => v !== 0)).toBe(true);
    m.eval();
    const ev = m.forward(x, y);
    expect(ev.loss!.item()).toBeCloseTo(crossEntropy(ev.logits, y, { ignoreIndex: -1 }).item(), 6);
    // Dropless in both modes here, so the logits agree.
    expect(ev.logits.toArray()).toEqual(train.logits.toArray());
    // Statistics accumulate in training forwards only.
    const stats = m.takeMoEStats();
    expect(stats.map((s) => s.layer)).toEqual([0, 1]);
    expect(stats[0]!.load.reduce((p, q) => p + q, 0)).toBe(20 * 2);
    expect(m.takeMoEStats()).toEqual([]);
  });

  it('savePretrained → loadPretrained gives the same model (weft_moe in config.json)', async () => {
    const dir = tempDir();
    const m = new GPT({ ...base, bias: false, moe: { nExperts: 3, topK: 2, every: 2, expertHidden: 24, capacityFactor: 1.5 } }, { generator: new Generator(6) });
    await m.savePretrained(dir);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg.weft_moe).toMatchObject({ nExperts: 3, topK: 2, every: 2, expertHidden: 24, capacityFactor: 1.5 });
    const back = (await loadPretrained(dir)) as GPT;
    expect(back.moe).toEqual(m.moe);
    expect([...back.stateDict().keys()]).toEqual([...m.stateDict().keys()]);
    back.eval();
    m.eval();
    const x = ids(1, 12, 7);
    expect(back.forward(x).logits.toArray()).toEqual(m.forward(x).logits.toArray());
  });

  it('weft train gpt --moe-experts 4 --moe-top-k 2 trains, logs routing statistics, and resumes', async () => {
    const dir = tempDir();
    const out = join(dir, 'run');
    const stdout = new Capture();
    const stderr = new Capture();
    const program = new Command().name('weft').exitOverride();
    registerTrain(program, { stdout, stderr });
    const run = async (...args: string[]): Promise<void> => void (await program.parseAsync(args, { from: 'user' }));
    const tiny = ['--n-layer', '2', '--n-head', '2', '--n-embd', '16', '--block-size', '16', '--batch-size', '4', '--eval-iters', '2', '--lr', '1e-2', '--warmup-iters', '0'];
    await run('train', 'gpt', '--data', smallCorpus(dir), ...tiny, '--max-iters', '30', '--eval-interval', '15', '--out', out, '--json',
      '--moe-experts', '4', '--moe-top-k', '2', '--moe-capacity-factor', '1.0', '--moe-aux-coef', '0.01', '--moe-z-coef', '0.001');
    expect(stderr.text).toMatch(/MoE: 4 experts, top-2, in 1 of 2 blocks \(every 2\); capacity factor 1, aux 0\.01, z 0\.001/);
    const records = MetricsLog.read(join(out, 'metrics.jsonl')) as unknown as Record<string, unknown>[];
    const iters = records.filter((r) => 'loss' in r) as unknown as { loss: number; moe: { layers: { layer: number; load: number[]; importance: number[]; dropped: number[]; load_cv: number; capacity: number }[]; aux_loss: number } }[];
    expect(iters.length).toBe(30);
    for (const r of iters) {
      const [l] = r.moe.layers;
      expect(l!.layer).toBe(1);
      expect(l!.load.reduce((a, b) => a + b, 0)).toBe(4 * 16 * 2);
      expect(l!.capacity).toBe(Math.ceil((1.0 * 4 * 16 * 2) / 4));
      expect(l!.dropped.every((d, e) => d === Math.max(0, l!.load[e]! - l!.capacity))).toBe(true);
      expect(l!.importance.length).toBe(4);
      expect(r.moe.aux_loss).toBeGreaterThan(0);
    }
    const evals = records.filter((r) => 'val_loss' in r) as unknown as { val_loss: number }[];
    expect(evals.at(-1)!.val_loss).toBeLessThan(evals[0]!.val_loss);
    // The checkpoint is a GPT-MoE, and a resumed run continues it (differing MoE flags are refused).
    await run('train', 'gpt', '--out', out, '--resume', '--max-iters', '33', '--json');
    expect(MetricsLog.read(join(out, 'metrics.jsonl')).filter((r) => 'loss' in r).length).toBe(33);
    await expect(run('train', 'gpt', '--out', out, '--resume', '--moe-top-k', '1')).rejects.toThrow(/MoE topK 1 differs from the checkpoint's 2/);
    await expect(run('train', 'gpt', '--data', smallCorpus(dir), '--out', join(dir, 'x'), '--moe-top-k', '2')).rejects.toThrow(/need --moe-experts/);
  });

  it('serves through the inference engine\'s GPT adapter (paged KV cache): same logits as forward()', () => {
    const vocab = base.vocabSize;
    const m = new GPT({ ...base, blockSize: 64, moe: { nExperts: 4, topK: 2, every: 1 } }, { generator: new Generator(8) }).eval();
    const adapter = adapterFor(m);
    const tokens = Array.from({ length: 30 }, (_, i) => (i * 7 + 3) % vocab);
    const other = Array.from({ length: 30 }, (_, i) => (i * 5 + 1) % vocab);
    const kv = new PagedKVCache({ ...adapter.kvShape, numBlocks: 16 });
    const tableA: number[] = [];
    const tableB: number[] = [];
    const rows: Float32Array[] = [];
    let pos = 0;
    for (const n of [13, 1, 1, 14, 1]) {
      for (const table of [tableA, tableB]) while (table.length * BLOCK_SIZE < pos + n) table.push(kv.allocate()!);
      const logits = adapter.forward(
        [
          { tokens: other.slice(pos, pos + n), start: pos, blockTable: tableB, logits: 'last' },
          { tokens: tokens.slice(pos, pos + n), start: pos, blockTable: tableA, logits: 'all' },
        ],
        kv,
      );
      const data = logits.f32('test');
      for (let r = 1; r <= n; r++) rows.push(data.slice(r * vocab, (r + 1) * vocab));
      logits.dispose();
      pos += n;
    }
    const dense = m.forward(Tensor.fromArray(Int32Array.from(tokens), [1, 30], 'i32')).logits.toArray();
    let maxErr = 0;
    rows.forEach((row, t) => row.forEach((v, j) => (maxErr = Math.max(maxErr, Math.abs(v - dense[t * vocab + j]!)))));
    expect(maxErr).toBeLessThan(2e-4);
  });

  it('KV-cached decoding (weft sample / generate) gives forward()\'s logits', () => {
    const m = new GPT({ ...base, moe: { nExperts: 3, topK: 2, every: 1 } }, { generator: new Generator(9) }).eval();
    const x = ids(1, 10, 10);
    const full = m.forward(x).logits.toArray();
    const cache = new KVCache({ nLayer: base.nLayer, batch: 1, nHead: base.nHead, headDim: base.nEmbd / base.nHead, maxLength: 12 });
    const first = m.forwardCached(x.narrow(1, 0, 6).contiguous(), cache).toArray();
    const rest = [6, 7, 8, 9].flatMap((t) => m.forwardCached(x.narrow(1, t, 1).contiguous(), cache).toArray());
    expect(mismatch([...first, ...rest], full)).toBeNull();
  });

  it('rejects a bad MoE config naming the field', () => {
    expect(() => new GPT({ ...base, moe: { nExperts: 2, topK: 3 } })).toThrow(/topK 3 exceeds nExperts 2/);
    expect(() => new GPT({ ...base, moe: { nExperts: 2, capacityFactor: -1 } })).toThrow(/capacityFactor/);
  });
});

