/**
 * Seeded random numbers. Generation happens here, in TypeScript, for every backend, so the same
 * seed gives the same numbers on `native` and `js`. The generator is PCG32 (O'Neill 2014):
 * small state, good statistics, and its state can be saved in a checkpoint and restored exactly.
 */

const MASK64 = (1n << 64n) - 1n;

export interface GeneratorState {
  state: string;
  inc: string;
  /** A cached second normal from Box–Muller, or null. */
  spare: number | null;
}

export class Generator {
  private state = 0n;
  private inc = 1n;
  private spare: number | null = null;
  // The 64-bit LCG step in BigInt is slow; keep the state in two 32-bit halves for the hot path.
  private hi = 0;
  private lo = 0;

  constructor(seed: number | bigint = 0) {
    this.manualSeed(seed);
  }

  manualSeed(seed: number | bigint): this {
    const s = BigInt.asUintN(64, BigInt(seed));
    return this.seedPcg(s + 0x853c49e6748fea9bn, s);
  }

  /** The reference PCG32 seeding, pcg32_srandom_r(initstate, initseq). */
  seedPcg(initState: bigint, initSeq: bigint): this {
    this.inc = ((BigInt.asUintN(64, initSeq) << 1n) | 1n) & MASK64; // stream selector must be odd
    this.state = 0n;
    this.unpack();
    this.nextU32();
    this.pack();
    this.state = (this.state + BigInt.asUintN(64, initState)) & MASK64;
    this.unpack();
    this.nextU32();
    this.spare = null;
    return this;
  }

  getState(): GeneratorState {
    this.pack();
    return { state: this.state.toString(), inc: this.inc.toString(), spare: this.spare };
  }

  setState(s: GeneratorState): this {
    this.state = BigInt(s.state) & MASK64;
    this.inc = BigInt(s.inc) & MASK64;
    this.spare = s.spare;
    this.unpack();
    return this;
  }

  private incHi = 0;
  private incLo = 1;

  private unpack(): void {
    this.hi = Number(this.state >> 32n);
    this.lo = Number(this.state & 0xffffffffn);
    this.incHi = Number(this.inc >> 32n);
    this.incLo = Number(this.inc & 0xffffffffn);
  }

  private pack(): void {
    this.state = (BigInt(this.hi >>> 0) << 32n) | BigInt(this.lo >>> 0);
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const oldHi = this.hi >>> 0;
    const oldLo = this.lo >>> 0;
    // state = state * MULT + inc  (mod 2^64), in 16-bit limbs to stay exact in doubles.
    const mHi = 0x5851f42d;
    const mLo = 0x4c957f2d;
    const lo = mul32(oldLo, mLo);
    let newHi = (lo.hi + Math.imul(oldHi, mLo) + Math.imul(oldLo, mHi)) >>> 0;
    let newLo = lo.lo;
    const sumLo = newLo + this.incLo;
    newLo = sumLo >>> 0;
    newHi = (newHi + this.incHi + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
    this.hi = newHi;
    this.lo = newLo;
    // Output: xorshifted = ((old >> 18) ^ old) >> 27, rot = old >> 59.
    const xHi = (oldHi ^ (oldHi >>> 18)) >>> 0;
    const xLo = (oldLo ^ ((oldLo >>> 18) | (oldHi << 14))) >>> 0;
    const xorshifted = ((xLo >>> 27) | (xHi << 5)) >>> 0;
    const rot = oldHi >>> 27;
    return ((xorshifted >>> rot) | (xorshifted << ((32 - rot) & 31))) >>> 0;
  }

  /** Uniform in [0, 1) with 24 random bits (exactly representable in f32). */
  uniform(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }

  /** Standard normal (Box–Muller; pairs cached). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [low, high), unbiased (rejection sampling). */
  int(low: number, high: number): number {
    const range = high - low;
    if (!(range >= 1) || range > 2 ** 32) throw new RangeError(`randint: need low < high, got [${low}, ${high})`);
    const limit = 2 ** 32 - (2 ** 32 % range);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return low + (x % range);
  }
}

function mul32(a: number, b: number): { hi: number; lo: number } {
  const aHi = a >>> 16;
  const aLo = a & 0xffff;
  const bHi = b >>> 16;
  const bLo = b & 0xffff;
  const ll = aLo * bLo;
  const lh = aLo * bHi;
  const hl = aHi * bLo;
  const hh = aHi * bHi;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  const lo = ((mid & 0xffff) << 16) | (ll & 0xffff);
  const hi = hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16);
  return { hi: hi >>> 0, lo: lo >>> 0 };
}

/** The process-wide default generator (PyTorch's `torch.manual_seed` analogue). */
export const defaultGenerator = new Generator(0);

export function manualSeed(seed: number | bigint): void {
  defaultGenerator.manualSeed(seed);
}
