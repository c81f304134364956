/**
 * The routed MoE layer against independent references (fixtures by scripts/fixtures/moe_hf.py):
 *  - Hugging Face's MixtralSparseMoeBlock + load_balancing_loss_func (renormalised top-k, SwiGLU experts);
 *  - a PyTorch Switch Transformer reference written from the paper (capacity, token dropping, z-loss,
 *    GELU experts, no renormalisation), including top-2 with GShard's first-choices-first priority.
 * Output, router logits, auxiliary losses and the gradient of the input and of every parameter must
 * match on each backend. Then properties that need no fixture: token-dropping with ample capacity is
 * dropless; experts see exactly the kept N·k rows (work scales with k, not E); eval is dropless.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  coefficientOfVariation,
  dispatchPlan,
  type Expert,
  expertCapacity,
  GeluExpert,
  groupedLinear,
  loadBalancingLoss,
  SparseMoE,
  SwiGLUExpert,
} from '../../src/nn/moe.js';
import { add, type BackendName, concat, Generator, matmul, mul, nativeAvailable, randn, setBackend, sum, type Tensor } from '../../src/tensor/index.js';
import { Module } from '../../src/nn/module.js';
import { type ArraySpec, arrayTensor, decodeArray, mismatch } from '../tensor/fixtures.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'moe');

interface LayerFixture {
  name: string;
  n_experts: number;
  top_k: number;
  hidden: number;
  ffn: number;
  input: ArraySpec;
  r: ArraySpec;
  params: Record<string, ArraySpec>;
  choices: ArraySpec;
  output: ArraySpec;
  router_logits: ArraySpec;
  aux: number;
  loss: number;
  grads: Record<string, ArraySpec>;
  // Mixtral block
  aux_coef?: number;
  // Switch reference
  capacity_factor?: number | null;
  alpha?: number;
  beta?: number;
  z?: number;
  dropped?: number;
  kept?: ArraySpec;
}

const load = (name: string): LayerFixture => JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8')) as LayerFixture;
const backends: BackendName[] = nativeAvailable() ? ['native', 'js'] : ['js'];

afterAll(() => setBackend(nativeAvailable() ? 'native' : 'js'));

function buildLayer(fx: LayerFixture, kind: 'swiglu' | 'gelu', capacityFactor: number | null): SparseMoE {
  const layer = new SparseMoE({
    dim: fx.hidden,
    nExperts: fx.n_experts,
    topK: fx.top_k,
    normalize: kind === 'swiglu',
    capacityFactor,
    evalCapacityFactor: capacityFactor,
    makeExpert: (): Expert => (kind === 'swiglu' ? new SwiGLUExpert(fx.hidden, fx.ffn) : new GeluExpert(fx.hidden, fx.ffn, { activation: 'gelu' })),
  });
  layer.loadStateDict(new Map(Object.entries(fx.params).map(([n, s]) => [n, arrayTensor(s)])));
  return layer;
}

function checkGrads(layer: SparseMoE, x: Tensor, fx: LayerFixture): void {
  const params = new Map(layer.namedParameters());
  expect([...params.keys(), 'input'].sort()).toEqual(Object.keys(fx.grads).sort());
  for (const [name, spec] of Object.entries(fx.grads)) {
    const t = name === 'input' ? x : params.get(name)!;
    // An expert that received no token has no gradient; the reference's is zero.
    const got = t.grad === null ? new Float32Array(t.numel) : t.grad.toArray();
    expect(mismatch(got, decodeArray(spec)), `gradient of ${name}`).toBeNull();
  }
}

describe.each(backends)('SparseMoE vs references (%s backend)', (backend) => {
  it.each(['mixtral_block_e4k2', 'mixtral_block_e8k2', 'mixtral_block_e6k3'])('%s: HF MixtralSparseMoeBlock + load_balancing_loss_func', (name) => {
    setBackend(backend);
    const fx = load(name);
    const layer = buildLayer(fx, 'swiglu', null);
    const x = arrayTensor(fx.input).requiresGrad_();
    const r = layer.route(x);
    expect(r.output.shape).toEqual(fx.input.shape);
    expect(mismatch(r.output.toArray(), decodeArray(fx.output)), 'output').toBeNull();
    expect(mismatch(r.routerLogits.toArray(), decodeArray(fx.router_logits)), 'router logits').toBeNull();
    expect(mismatch([r.auxLoss.item()], [fx.aux]), 'aux loss').toBeNull();
    expect(mismatch([loadBalancingLoss([r.routerLogits], fx.n_experts, fx.top_k).item()], [fx.aux]), 'loadBalancingLoss').toBeNull();
    const loss = add(sum(mul(r.output, arrayTensor(fx.r))), mul(r.auxLoss, fx.aux_coef!));
    expect(mismatch([loss.item()], [fx.loss]), 'loss').toBeNull();
    loss.backward();
    checkGrads(layer, x, fx);
    // HF routes without capacity: nothing dropped, every token has k assignments.
    expect(r.stats.dropped.every((d) => d === 0)).toBe(true);
    expect(r.stats.load.reduce((a, b) => a + b, 0)).toBe(r.stats.tokens * fx.top_k);
  });

  it.each(['switch_k1_drop', 'switch_k2_drop', 'switch_k1_roomy'])('%s: Switch Transformer reference (capacity, dropping, z-loss)', (name) => {
    setBackend(backend);
    const fx = load(name);
    const layer = buildLayer(fx, 'gelu', fx.capacity_factor ?? null);
    const x = arrayTensor(fx.input).requiresGrad_();
    const r = layer.route(x);
    expect(mismatch(r.output.toArray(), decodeArray(fx.output)), 'output').toBeNull();
    expect(mismatch(r.routerLogits.toArray(), decodeArray(fx.router_logits)), 'router logits').toBeNull();
    expect(mismatch([r.auxLoss.item()], [fx.aux]), 'aux loss').toBeNull();
    expect(mismatch([r.zLoss.item()], [fx.z!]), 'z-loss').toBeNull();
    expect(r.stats.dropped.reduce((a, b) => a + b, 0)).toBe(fx.dropped);
    if (name !== 'switch_k1_roomy') expect(fx.dropped).toBeGreaterThan(0);
    const loss = add(add(sum(mul(r.output, arrayTensor(fx.r))), mul(r.auxLoss, fx.alpha!)), mul(r.zLoss, fx.beta!));
    expect(mismatch([loss.item()], [fx.loss]), 'loss').toBeNull();
    loss.backward();
    checkGrads(layer, x, fx);
  });
});

describe('SparseMoE properties', () => {
  it('dispatch plan: first choices before second choices, token order, capacity', () => {
    // 4 tokens, k = 2, 2 experts, capacity 3: slot 0 fills first (t0→0, t1→0, t2→1, t3→0), then slot 1.
    const choices = Int32Array.from([0, 1, 0, 1, 1, 0, 0, 1]);
    const plan = dispatchPlan(choices, 4, 2, 2, 3);
    expect(Array.from(plan.load)).toEqual([4, 4]);
    // Expert 0: slot-0 choices of t0, t1, t3 fill it; t2's second choice is dropped.
    expect(Array.from(plan.dropped)).toEqual([1, 1]);
    expect(Array.from(plan.offsets)).toEqual([0, 3, 6]);
    expect(Array.from(plan.tokens)).toEqual([0, 1, 3, 0, 1, 2]);
    // Expert 1 keeps t2's first choice and the second choices of t0 and t1; t3's second choice is dropped.
    expect(Array.from(plan.slots)).toEqual([0, 2, 6, 1, 3, 4]);
    expect(expertCapacity(10, 2, 4, 1.25)).toBe(7);
    expect(expertCapacity(10, 2, 4, null)).toBe(Infinity);
  });

  it('with capacity large enough, token dropping equals dropless (outputs and gradients)', () => {
    const run = (factor: number | null): { out: number[]; grads: number[][] } => {
      const g = new Generator(5);
      const layer = new SparseMoE({ dim: 6, nExperts: 5, topK: 2, normalize: false, capacityFactor: factor, routerStd: 0.5, generator: g, makeExpert: () => new GeluExpert(6, 10, { generator: g, std: 0.3 }) });
      const x = randn([3, 7, 6], { generator: new Generator(9) }).requiresGrad_();
      const r = layer.route(x);
      add(sum(mul(r.output, r.output)), add(r.auxLoss, r.zLoss)).backward();
      expect(r.stats.dropped.every((d) => d === 0)).toBe(true);
      return { out: r.output.toArray(), grads: [x.grad!.toArray(), ...layer.parameters().map((p) => (p.grad === null ? [] : p.grad.toArray()))] };
    };
    const dropless = run(null);
    const roomy = run(5 / 2); // capacity = N·k·(E/k)/E = N: no expert can overflow
    expect(roomy.out).toEqual(dropless.out);
    expect(roomy.grads).toEqual(dropless.grads);
  });

  it('groupedLinear equals a matmul per group (both layouts, biases, empty groups), gradients included', () => {
    for (const layout of ['outIn', 'inOut'] as const) {
      const g = new Generator(11);
      const offsets = Int32Array.from([0, 3, 3, 8, 9]); // group 1 is empty
      const x = randn([9, 5], { generator: g }).requiresGrad_();
      const ws = [0, 1, 2, 3].map(() => randn(layout === 'outIn' ? [4, 5] : [5, 4], { generator: g }).requiresGrad_());
      const bs = [0, 1, 2, 3].map((i) => (i === 2 ? null : randn([4], { generator: g }).requiresGrad_()));
      const r = randn([9, 4], { generator: g });
      sum(mul(groupedLinear(x, offsets, ws, bs, layout), r)).backward();
      const got = [x, ...ws, ...bs.filter((b) => b !== null)].map((t) => (t!.grad === null ? null : t!.grad.toArray()));
      const x2 = x.detach().requiresGrad_();
      const ws2 = ws.map((w) => w.detach().requiresGrad_());
      const bs2 = bs.map((b) => (b === null ? null : b.detach().requiresGrad_()));
      const parts: Tensor[] = [];
      for (let e = 0; e < 4; e++) {
        const n = offsets[e + 1]! - offsets[e]!;
        if (n === 0) continue;
        const y = matmul(x2.narrow(0, offsets[e]!, n), ws2[e]!, { transB: layout === 'outIn' });
        parts.push(bs2[e] === null ? y : add(y, bs2[e]!));
      }
      const ref = concat(parts, 0);
      expect(mismatch(groupedLinear(x, offsets, ws, bs, layout).toArray(), ref.toArray()), layout).toBeNull();
      sum(mul(ref, r)).backward();
      const want = [x2, ...ws2, ...bs2.filter((b) => b !== null)].map((t) => (t!.grad === null ? null : t!.grad.toArray()));
      got.forEach((gr, i) => {
        if (want[i] === null) expect(gr, `gradient ${i}`).toBeNull();
        else expect(mismatch(gr!, want[i]!), `${layout} gradient ${i}`).toBeNull();
      });
    }
  });

  it('any Expert module works (one by one on its rows) and matches the grouped-GEMM path; experts see exactly the kept N·k rows', () => {
    class CountingExpert extends Module implements Expert {
      readonly inner: SwiGLUExpert;
      constructor(
        g: Generator,
        private readonly seen: { rows: number },
      ) {
        super();
        this.inner = this.registerModule('inner', new SwiGLUExpert(8, 16, { generator: g }));
      }
      forward(x: Tensor): Tensor {
        this.seen.rows += x.shape[0]!;
        return this.inner.forward(x);
      }
    }
    for (const nExperts of [4, 8, 16]) {
      const seen = { rows: 0 };
      const opts = { dim: 8, nExperts, topK: 2, normalize: true, capacityFactor: null };
      const generic = new SparseMoE({ ...opts, generator: new Generator(1), makeExpert: () => new CountingExpert(new Generator(2), seen) });
      const fast = new SparseMoE({ ...opts, generator: new Generator(1), makeExpert: () => new SwiGLUExpert(8, 16) });
      fast.loadStateDict(new Map([...generic.stateDict()].map(([n, t]) => [n.replace('.inner.', '.'), t])));
      const x = randn([64, 8], { generator: new Generator(2) });
      const a = generic.route(x);
      const b = fast.route(x);
      expect(seen.rows).toBe(64 * 2);
      expect(mismatch(a.output.toArray(), b.output.toArray())).toBeNull();
      sum(mul(a.output, a.output)).backward();
      sum(mul(b.output, b.output)).backward();
      const fastGrads = new Map(fast.namedParameters());
      for (const [name, p] of generic.namedParameters()) {
        const q = fastGrads.get(name.replace('.inner.', '.'))!;
        if (p.grad === null) expect(q.grad).toBeNull();
        else expect(mismatch(q.grad!.toArray(), p.grad.toArray()), name).toBeNull();
      }
    }
  });

  it('capacity drops in training only; eval is dropless unless evalCapacityFactor is set', () => {
    const g = new Generator(3);
    const layer = new SparseMoE({ dim: 4, nExperts: 4, topK: 1, normalize: false, capacityFactor: 0.25, routerStd: 1, generator: g, makeExpert: () => new GeluExpert(4, 8, { generator: g }) });
    const x = randn([32, 4], { generator: new Generator(4) });
    const train = layer.route(x);
    expect(train.stats.capacity).toBe(2);
    expect(train.stats.dropped.reduce((a, b) => a + b, 0)).toBe(32 - train.stats.load.reduce((a, l) => a + Math.min(l, 2), 0));
    layer.eval();
    const ev = layer.route(x);
    expect(ev.stats.capacity).toBeNull();
    expect(ev.stats.dropped.every((d) => d === 0)).toBe(true);
    // A dropped token contributes exactly zero: rows of the training output for dropped tokens are 0.
    const out = train.output.toArray();
    const full = ev.output.toArray();
    let zeroRows = 0;
    for (let t = 0; t < 32; t++) {
      const row = out.slice(t * 4, t * 4 + 4);
      if (row.every((v) => v === 0)) zeroRows++;
      else expect(row).toEqual(full.slice(t * 4, t * 4 + 4));
    }
    expect(zeroRows).toBe(train.stats.dropped.reduce((a, b) => a + b, 0));
  });

  it('jitter and router noise change routing in training, never in eval', () => {
    const make = (jitter: number, noiseStd: number): SparseMoE => {
      const g = new Generator(7);
      return new SparseMoE({ dim: 8, nExperts: 8, topK: 2, normalize: true, capacityFactor: null, jitter, noiseStd, routerStd: 0.02, generator: g, makeExpert: () => new SwiGLUExpert(8, 8, { generator: g }) });
    };
    const x = randn([64, 8], { generator: new Generator(8) });
    const plain = make(0, 0).route(x).stats.load;
    expect(make(0.5, 0).route(x).stats.load).not.toEqual(plain);
    expect(make(0, 1).route(x).stats.load).not.toEqual(plain);
    expect(make(0.5, 1).eval().route(x).stats.load).toEqual(plain);
  });

  it('coefficient of variation', () => {
    expect(coefficientOfVariation([5, 5, 5, 5])).toBe(0);
    expect(coefficientOfVariation([0, 0, 0, 8])).toBeCloseTo(Math.sqrt(3), 12);
  });
});
