import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { crossEntropy, Generator, linear, noGrad, randint, randn, relu, type Tensor } from '../../src/tensor/index.js';

// A handle on the collector, so the measurement sees live memory rather than GC timing.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function liveBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

describe('memory', () => {
  it('1,000 forward/backward steps of a small MLP leave memory flat', () => {
    const g = new Generator(7);
    const params = {
      w1: randn([64, 32], { generator: g }).mul(0.1),
      b1: randn([64], { generator: g }).mul(0.01),
      w2: randn([10, 64], { generator: g }).mul(0.1),
    };
    for (const p of Object.values(params)) p.requiresGrad_();
    const x = randn([32, 32], { generator: g });
    const y = randint(0, 10, [32], { generator: g });

    const samples: number[] = [];
    let firstLoss = 0;
    let lastLoss = 0;
    for (let step = 0; step < 1000; step++) {
      const h = relu(linear(x, params.w1, params.b1));
      const loss = crossEntropy(linear(h, params.w2), y);
      loss.backward();
      const value = loss.item();
      if (step === 0) firstLoss = value;
      lastLoss = value;
      noGrad(() => {
        for (const key of Object.keys(params) as (keyof typeof params)[]) {
          const p: Tensor = params[key];
          const next = p.sub(p.grad!.mul(0.05));
          p.dispose();
          params[key] = next.requiresGrad_();
        }
      });
      if (step === 99 || step % 300 === 299) samples.push(liveBytes());
    }
    expect(lastLoss).toBeLessThan(firstLoss * 0.5); // it really trained
    const base = samples[0]!;
    console.log(`live bytes after 100/400/700/1000 steps: ${samples.map((s) => (s / 1e6).toFixed(2)).join(" / ")} MB`);
    const end = samples[samples.length - 1]!;
    // Growth after the first 100 steps must stay under 10% (and under 4 MB in absolute terms).
    expect(end - base).toBeLessThan(0.1 * base);
    expect(end - base).toBeLessThan(4 * 1024 * 1024);
  });
});
