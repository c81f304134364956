/**
 * Fuzzes the GGUF reader with seeded mutations of valid files: byte flips, truncations, inserted and
 * deleted bytes, and hostile 64-bit counts written over length fields. Every input must either
 * parse into a header consistent with the file (tensors inside it, aligned data) or throw an Error
 * from the reader (message starting "gguf <source>:") — never crash, hang, or surface a RangeError
 * from reading outside the buffer.
 */
import { describe, expect, it } from 'vitest';
import { parseGGUF, serializeGGUF, type GGUFValue } from '../../src/io/gguf.js';
import { Generator } from '../../src/tensor/random.js';

function randomValue(g: Generator, depth: number): GGUFValue {
  const k = g.int(0, depth > 1 ? 12 : 14);
  switch (k) {
    case 0:
      return { type: 'uint8', value: g.int(0, 256) };
    case 1:
      return { type: 'int16', value: g.int(-32768, 32768) };
    case 2:
      return { type: 'uint32', value: g.int(0, 2 ** 32) };
    case 3:
      return { type: 'int32', value: g.int(-(2 ** 31), 2 ** 31) };
    case 4:
      return { type: 'float32', value: Math.fround(g.normal()) };
    case 5:
      return { type: 'float64', value: g.normal() };
    case 6:
      return { type: 'bool', value: g.uniform() < 0.5 };
    case 7:
    case 8:
      return { type: 'string', value: 'ab▁世🦙'.slice(0, g.int(0, 6)) };
    case 9:
      return { type: 'uint64', value: BigInt(g.int(0, 2 ** 32)) << 20n };
    case 10:
      return { type: 'array', elementType: 'string', value: Array.from({ length: g.int(0, 5) }, (_, i) => `s${i}`) };
    case 11:
      return { type: 'array', elementType: 'float32', value: Float32Array.from({ length: g.int(0, 6) }, () => g.normal()) };
    default:
      return { type: 'array', elementType: 'array', value: Array.from({ length: g.int(0, 3) }, () => randomValue(g, depth + 1) as { type: 'array'; elementType: 'string'; value: string[] }).filter((v) => v.type === 'array') };
  }
}

function validFile(g: Generator): Uint8Array {
  const meta: [string, GGUFValue][] = Array.from({ length: g.int(0, 8) }, (_, i) => [`key.${i}`, randomValue(g, 0)]);
  if (g.uniform() < 0.3) meta.push(['general.alignment', { type: 'uint32', value: [8, 16, 32, 64][g.int(0, 4)]! }]);
  const tensors = Array.from({ length: g.int(0, 4) }, (_, i) => {
    const type = [0, 1, 2, 8, 12][g.int(0, 5)]!;
    const block = type <= 1 ? 1 : type === 12 ? 256 : 32;
    const bytesPerBlock = { 0: 4, 1: 2, 2: 18, 8: 34, 12: 144 }[type]!;
    const dims = [block * g.int(1, 3), g.int(1, 3)];
    return { name: `t${i}`, dims, type, data: new Uint8Array(((dims[0]! * dims[1]!) / block) * bytesPerBlock) };
  });
  return serializeGGUF(meta, tensors, g.uniform() < 0.5 ? 3 : 2);
}

function mutate(g: Generator, src: Uint8Array): Uint8Array {
  let b = src.slice();
  const rounds = g.int(1, 4);
  for (let r = 0; r < rounds; r++) {
    const op = g.int(0, 6);
    if (b.length === 0) break;
    const at = g.int(0, b.length);
    if (op === 0) b[at] = g.int(0, 256);
    else if (op === 1) b = b.slice(0, at);
    else if (op === 2) b = Uint8Array.from([...b.subarray(0, at), ...Array.from({ length: g.int(1, 9) }, () => g.int(0, 256)), ...b.subarray(at)]);
    else if (op === 3) b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(Math.min(b.length, at + g.int(1, 9)))]);
    else if (op === 4 && at + 8 <= b.length) {
      // A hostile u64 (huge, or just past the end) over whatever is there, e.g. a count or a length.
      const v = [2n ** 64n - 1n, 2n ** 63n, BigInt(b.length), BigInt(g.int(0, 2 ** 31))][g.int(0, 4)]!;
      new DataView(b.buffer, b.byteOffset).setBigUint64(at, v, true);
    } else if (op === 5 && at + 4 <= b.length) {
      new DataView(b.buffer, b.byteOffset).setUint32(at, [9, 13, 8, 2 ** 32 - 1][g.int(0, 4)]!, true);
    }
  }
  return b;
}

describe('GGUF reader fuzz', () => {
  it('valid random files parse; 4000 mutations parse consistently or throw a reader Error', () => {
    const g = new Generator(20240611);
    let parsed = 0;
    let rejected = 0;
    for (let i = 0; i < 4000; i++) {
      const base = validFile(g);
      if (i % 8 === 0) {
        const f = parseGGUF(base, 'valid');
        expect(f.dataOffset % f.alignment).toBe(0);
      }
      const bytes = mutate(g, base);
      let result: ReturnType<typeof parseGGUF> | null = null;
      try {
        result = parseGGUF(bytes, 'fuzz');
      } catch (e) {
        expect(e).toBeInstanceOf(Error);
        expect((e as Error).message).toMatch(/^gguf fuzz: /);
        rejected++;
        continue;
      }
      parsed++;
      expect([2, 3]).toContain(result.version);
      for (const t of result.tensors) {
        expect(t.offset % result.alignment).toBe(0);
        expect(result.dataOffset + t.offset + t.byteSize).toBeLessThanOrEqual(bytes.length);
      }
    }
    // Both outcomes occur (the mutations are neither all harmless nor all fatal).
    expect(parsed).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(1000);
  });
});
