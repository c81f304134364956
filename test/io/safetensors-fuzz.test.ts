/**
 * Fuzzes the safetensors parser with a seeded generator: byte flips, truncations, random header
 * lengths and random (often hostile) JSON headers. Every input must either parse into tensors
 * consistent with their header and the file, or throw an Error — never crash, hang, or throw
 * something that isn't an Error (and never read outside the file).
 */
import { describe, expect, it } from 'vitest';
import { SUPPORTED_DTYPES, parseSafetensors, serializeSafetensors } from '../../src/io/safetensors.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';

const ITEM: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8, I16: 2, I8: 1, U8: 1, U16: 2, U32: 4, U64: 8, BOOL: 1 };

function validFile(g: Generator): Uint8Array {
  const tensors: Record<string, Tensor> = {};
  const n = g.int(0, 5);
  for (let i = 0; i < n; i++) {
    const shape = Array.from({ length: g.int(0, 3) }, () => g.int(0, 4));
    const numel = shape.reduce((a, b) => a * b, 1);
    const kind = g.int(0, 4);
    tensors[`t${i}.${'w'.repeat(g.int(0, 3))}`] =
      kind === 0
        ? Tensor.fromArray(Float32Array.from({ length: numel }, () => g.normal()), shape)
        : kind === 1
          ? Tensor.fromArray(Int32Array.from({ length: numel }, () => g.int(-1000, 1000)), shape)
          : Tensor.fromArray(Uint16Array.from({ length: numel }, () => g.int(0, 65536)), shape, kind === 2 ? 'bf16' : 'f16');
  }
  return serializeSafetensors(tensors, g.uniform() < 0.5 ? { format: 'pt' } : undefined);
}

function randomJsonValue(g: Generator, depth: number): unknown {
  const r = g.int(0, 9);
  if (depth > 2 || r < 2) return [0, -1, 1.5, 1e308, 2 ** 53, 'x', null, true][g.int(0, 8)];
  if (r < 4) return Array.from({ length: g.int(0, 4) }, () => randomJsonValue(g, depth + 1));
  if (r < 5) return Object.fromEntries(Array.from({ length: g.int(0, 3) }, (_, i) => [`k${i}`, randomJsonValue(g, depth + 1)]));
  return g.int(0, 100);
}

/** A header that is mostly well-formed with random defects, plus random data of plausible size. */
function randomHeaderFile(g: Generator): Uint8Array {
  const header: Record<string, unknown> = {};
  const dtypes = [...SUPPORTED_DTYPES, 'F8_E4M3', 'Q4', '', 'f32'];
  let offset = 0;
  const n = g.int(0, 5);
  for (let i = 0; i < n; i++) {
    const dtype = dtypes[g.int(0, dtypes.length)]!;
    const shape: unknown[] = Array.from({ length: g.int(0, 4) }, () => g.int(0, 5));
    if (g.uniform() < 0.15 && shape.length > 0) shape[g.int(0, shape.length)] = randomJsonValue(g, 3);
    const numel = shape.reduce((a: number, b) => a * (typeof b === 'number' && Number.isInteger(b) && b >= 0 && b <= 8 ? b : 1), 1);
    let size = numel * (ITEM[dtype] ?? 4);
    if (g.uniform() < 0.1) size += g.int(-3, 4);
    let begin = offset;
    if (g.uniform() < 0.1) begin += g.int(-4, 5);
    const entry: Record<string, unknown> = { dtype, shape, data_offsets: [begin, begin + size] };
    if (g.uniform() < 0.1) entry[['dtype', 'shape', 'data_offsets'][g.int(0, 3)]!] = randomJsonValue(g, 1);
    header[g.uniform() < 0.1 ? '__metadata__' : `n${i}`] = g.uniform() < 0.05 ? randomJsonValue(g, 0) : entry;
    offset = begin + size;
  }
  if (g.uniform() < 0.3) header['__metadata__'] = g.uniform() < 0.7 ? { a: 'b' } : randomJsonValue(g, 0);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const dataLen = Math.max(0, offset + (g.uniform() < 0.2 ? g.int(-8, 9) : 0));
  const out = new Uint8Array(8 + json.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  for (let i = 8 + json.length; i < out.length; i++) out[i] = g.int(0, 256);
  return out;
}

function mutate(g: Generator, file: Uint8Array): Uint8Array {
  const out = file.slice();
  switch (g.int(0, 5)) {
    case 0: {
      // Flip a few bytes, mostly in the length prefix and header where the parser's decisions are.
      const flips = g.int(1, 5);
      const headerEnd = Math.min(out.length, 8 + Number(new DataView(out.buffer).getBigUint64(0, true) & 0xffffn));
      for (let i = 0; i < flips && out.length > 0; i++) {
        const at = g.uniform() < 0.8 ? g.int(0, Math.max(1, headerEnd)) : g.int(0, out.length);
        out[Math.min(at, out.length - 1)] ^= 1 << g.int(0, 8);
      }
      return out;
    }
    case 1:
      return out.subarray(0, g.int(0, out.length + 1));
    case 2: {
      // Structural characters spliced into the header text.
      const chars = '{}[]",:0123456789-.e ';
      const headerEnd = Math.min(out.length, 8 + Number(new DataView(out.buffer).getBigUint64(0, true) & 0xffffn));
      if (headerEnd > 8) out[g.int(8, headerEnd)] = chars.charCodeAt(g.int(0, chars.length));
      return out;
    }
    case 3: {
      // A random header length (small, huge, or off by a little).
      if (out.length >= 8) {
        const dv = new DataView(out.buffer, out.byteOffset);
        const cur = dv.getBigUint64(0, true);
        const choice = g.int(0, 3);
        dv.setBigUint64(0, choice === 0 ? BigInt(g.int(0, 64)) : choice === 1 ? 0xffffffffffffffffn - BigInt(g.int(0, 10)) : cur + BigInt(g.int(-3, 4)) & 0xffffffffffffffffn, true);
      }
      return out;
    }
    default:
      return out; // unmodified (must parse)
  }
}

function checkConsistent(file: Uint8Array, parsed: ReturnType<typeof parseSafetensors>): void {
  let bytes = 0;
  for (const [name, t] of parsed.tensors) {
    expect(typeof name).toBe('string');
    expect(['f32', 'i32', 'bf16', 'f16']).toContain(t.dtype);
    for (const d of t.shape) expect(Number.isInteger(d) && d >= 0).toBe(true);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    expect(t.dense().length).toBe(numel);
    bytes += numel;
  }
  expect(bytes).toBeLessThanOrEqual(file.length);
  for (const v of Object.values(parsed.metadata)) expect(typeof v).toBe('string');
}

describe('safetensors parser fuzz', () => {
  it('every mutated or random file parses consistently or throws an Error', () => {
    const g = new Generator(20240601);
    let parsed = 0;
    let refused = 0;
    const messages = new Set<string>();
    for (let iter = 0; iter < 4000; iter++) {
      const file = iter % 2 === 0 ? mutate(g, validFile(g)) : g.uniform() < 0.8 ? randomHeaderFile(g) : mutate(g, randomHeaderFile(g));
      let result: ReturnType<typeof parseSafetensors> | undefined;
      try {
        result = parseSafetensors(file, 'fuzz');
      } catch (e) {
        if (!(e instanceof Error)) throw new Error(`iteration ${iter}: threw a non-Error ${String(e)}`);
        expect(e.message, `iteration ${iter}`).toMatch(/^safetensors fuzz: /);
        messages.add(e.message.replace(/[0-9]+/g, 'N').slice(0, 60));
        refused++;
        continue;
      }
      checkConsistent(file, result);
      parsed++;
    }
    // Both outcomes happen a lot, and the refusals are for many different reasons.
    expect(parsed).toBeGreaterThan(600);
    expect(refused).toBeGreaterThan(800);
    expect(messages.size).toBeGreaterThan(15);
  });
});
