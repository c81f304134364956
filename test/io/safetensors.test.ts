import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  SUPPORTED_DTYPES,
  loadSafetensors,
  loadSafetensorsSync,
  parseSafetensors,
  parseSafetensorsHeader,
  serializeSafetensors,
} from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor/tensor.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(HERE, '..', 'fixtures', 'io');
const GPT2_TINY = join(HERE, '..', '..', '..', 'shared', 'data', 'models', 'gpt2-fake-tiny', 'model.safetensors');

/** A file from a raw header object and data bytes (for malformed cases the writer refuses to make). */
function rawFile(header: unknown, data: Uint8Array | number, opts: { headerText?: string; pad?: boolean } = {}): Uint8Array {
  let json = new TextEncoder().encode(opts.headerText ?? JSON.stringify(header));
  if (opts.pad !== false) {
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

function bits(t: Tensor): Uint8Array {
  const d = t.dense();
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice();
}

describe('safetensors round trip', () => {
  it('writes the real format and reads back every dtype bit for bit', () => {
    const f32 = Tensor.fromArray(new Float32Array([1.5, -2, 3.25, Number.NaN, -0, 1e-30]), [2, 3]);
    const transposed = f32.transpose(0, 1); // non-contiguous: written densely in its own row-major order
    const tensors = {
      'b.f32': f32,
      'a.scalar': Tensor.fromArray(new Float32Array([7]), []),
      't.transposed': transposed,
      'z.empty': Tensor.zeros([0, 5]),
      ids: Tensor.fromArray(new Int32Array([1, -2, 2147483647, -2147483648]), [4]),
      half: Tensor.fromArray(new Uint16Array([0x3c00, 0xc000, 0x7c00]), [3], 'f16'),
      brain: Tensor.fromArray(new Uint16Array([0x3f80, 0x4049, 0xff80, 0x0001, 0x1234]), [5], 'bf16'),
    };
    const bytes = serializeSafetensors(tensors, { format: 'pt', note: 'ünïcode' });
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const n = Number(view.getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(headerText.trimEnd().length).toBeLessThanOrEqual(n);
    expect(/^ *$/.test(headerText.slice(headerText.trimEnd().length))).toBe(true);
    const header = JSON.parse(headerText) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    expect(header['__metadata__']).toEqual({ format: 'pt', note: 'ünïcode' });
    expect(header['ids']).toEqual({ dtype: 'I32', shape: [4], data_offsets: expect.any(Array) as unknown });
    expect(header['brain']!.dtype).toBe('BF16');
    // F32 first (by name), then I32, BF16, F16 — every tensor aligned to its element size.
    const order = Object.keys(header).filter((k) => k !== '__metadata__');
    expect(order).toEqual(['a.scalar', 'b.f32', 't.transposed', 'z.empty', 'ids', 'brain', 'half']);
    for (const k of order) {
      const size = { F32: 4, I32: 4, BF16: 2, F16: 2 }[header[k]!.dtype]!;
      expect(header[k]!.data_offsets[0] % size).toBe(0);
    }
    expect(bytes.length).toBe(8 + n + 4 + 24 + 24 + 0 + 16 + 10 + 6);

    const back = parseSafetensors(bytes);
    expect(back.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    expect([...back.tensors.keys()]).toEqual(['a.scalar', 'b.f32', 'brain', 'half', 'ids', 't.transposed', 'z.empty']);
    for (const [name, t] of Object.entries(tensors)) {
      const got = back.tensors.get(name)!;
      expect(got.dtype, name).toBe(t.dtype);
      expect(got.shape, name).toEqual(t.shape);
      expect(bits(got), name).toEqual(bits(t));
    }
    expect(back.tensors.get('t.transposed')!.toArray()).toEqual([1.5, Number.NaN, -2, -0, 3.25, Math.fround(1e-30)]);
  });

  it('uses the file buffer in place when aligned, copies when not', () => {
    const w = Tensor.fromArray(new Float32Array([1, 2, 3]), [3]);
    const bytes = serializeSafetensors({ w });
    const aligned = parseSafetensors(bytes).tensors.get('w')!;
    expect(aligned.storage.data.buffer).toBe(bytes.buffer);

    // The same file at byte offset 2 of its buffer: the f32 data is no longer 4-byte aligned.
    const shifted = new Uint8Array(new ArrayBuffer(bytes.length + 2), 2);
    shifted.set(bytes);
    const copied = parseSafetensors(shifted).tensors.get('w')!;
    expect(copied.storage.data.buffer).not.toBe(shifted.buffer);
    expect(copied.toArray()).toEqual([1, 2, 3]);

    // Misaligned within the file itself: an F16 of one element puts the F32 after it at offset 2.
    const data = new Uint8Array(2 + 8);
    const dv = new DataView(data.buffer);
    dv.setUint16(0, 0x3c00, true);
    dv.setFloat32(2, 0.5, true);
    dv.setFloat32(6, -4, true);
    const file = rawFile({ h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] }, f: { dtype: 'F32', shape: [2], data_offsets: [2, 10] } }, data);
    const parsed = parseSafetensors(file);
    expect(parsed.tensors.get('f')!.toArray()).toEqual([0.5, -4]);
    expect(parsed.tensors.get('h')!.toArray()).toEqual([1]);
  });

  it('converts F64 to f32 and integer types to i32, refusing values that do not fit', () => {
    const data = new Uint8Array(16 + 16 + 3 + 1 + 4);
    const dv = new DataView(data.buffer);
    dv.setFloat64(0, Math.PI, true);
    dv.setFloat64(8, -1e300, true);
    dv.setBigInt64(16, -5n, true);
    dv.setBigInt64(24, 2147483647n, true);
    data.set([0, 1, 255], 32); // U8
    data[35] = 0xff; // I8 = -1
    dv.setInt16(36, -300, true);
    dv.setUint16(38, 65535, true);
    const header = {
      d: { dtype: 'F64', shape: [2], data_offsets: [0, 16] },
      l: { dtype: 'I64', shape: [2], data_offsets: [16, 32] },
      u: { dtype: 'U8', shape: [3], data_offsets: [32, 35] },
      i: { dtype: 'I8', shape: [1], data_offsets: [35, 36] },
      s: { dtype: 'I16', shape: [1], data_offsets: [36, 38] },
      us: { dtype: 'U16', shape: [1], data_offsets: [38, 40] },
    };
    const t = parseSafetensors(rawFile(header, data)).tensors;
    expect(t.get('d')!.dtype).toBe('f32');
    expect(t.get('d')!.toArray()).toEqual([Math.fround(Math.PI), -Infinity]);
    expect(t.get('l')!.dtype).toBe('i32');
    expect(t.get('l')!.toArray()).toEqual([-5, 2147483647]);
    expect(t.get('u')!.toArray()).toEqual([0, 1, 255]);
    expect(t.get('i')!.toArray()).toEqual([-1]);
    expect(t.get('s')!.toArray()).toEqual([-300]);
    expect(t.get('us')!.toArray()).toEqual([65535]);

    dv.setBigInt64(24, 2147483648n, true);
    expect(() => parseSafetensors(rawFile(header, data), 'big.safetensors')).toThrow(
      /big\.safetensors: tensor 'l': I64 value 2147483648 at index 1 does not fit in i32/,
    );
  });

  it('refuses what it cannot write', () => {
    expect(() => serializeSafetensors({ __metadata__: Tensor.zeros([1]) })).toThrow(/invalid tensor name/);
    expect(() => serializeSafetensors({ a: Tensor.zeros([1]) }, { n: 1 as unknown as string })).toThrow(/metadata 'n' must be a string/);
    const gone = Tensor.zeros([2]);
    gone.dispose();
    expect(() => serializeSafetensors({ gone })).toThrow(/'gone' was disposed/);
  });
});

describe('safetensors malformed files', () => {
  const good = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['too short', () => new Uint8Array(5), /bad\.st: file is 5 bytes, too short/],
    [
      'header length beyond the file',
      () => {
        const f = rawFile(good, 12);
        new DataView(f.buffer).setBigUint64(0, 1n << 40n, true);
        return f;
      },
      /header length 1099511627776 is larger than the rest of the file/,
    ],
    ['not JSON', () => rawFile(null, 0, { headerText: '{"a": [1, 2' }), /header is not valid JSON/],
    ['trailing garbage after the JSON', () => rawFile(null, 0, { headerText: '{} []' }), /not valid JSON/],
    ['array header', () => rawFile([1], 0, { headerText: ' [1]' }), /does not start with a JSON object/],
    [
      'invalid UTF-8',
      () => {
        const f = rawFile({ abc: 1 }, 0);
        f[10] = 0xff;
        return f;
      },
      /not valid UTF-8/,
    ],
    ['entry not an object', () => rawFile({ a: 3 }, 0), /tensor 'a': entry must be an object/],
    ['unknown dtype', () => rawFile({ a: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, 1), new RegExp(`tensor 'a': unknown or unsupported dtype "Q4"; supported: ${SUPPORTED_DTYPES.join(', ')}`)],
    ['negative size', () => rawFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, 0), /tensor 'a': shape \[-1\] has an invalid size -1/],
    ['fractional size', () => rawFile({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 6] } }, 6), /invalid size 1.5/],
    ['string size', () => rawFile({ a: { dtype: 'F32', shape: ['2'], data_offsets: [0, 8] } }, 8), /invalid size "2"/],
    ['shape not an array', () => rawFile({ a: { dtype: 'F32', shape: 4, data_offsets: [0, 16] } }, 16), /shape must be an array/],
    ['offsets malformed', () => rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4), /data_offsets must be \[begin, end\]/],
    ['offsets reversed', () => rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4), /0 <= begin <= end/],
    ['offsets past the data', () => rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4), /run past the end of the data \(4 bytes\)/],
    ['size mismatch', () => rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /F32 shape \[3\] needs 12 bytes but data_offsets \[0, 8\] hold 8/],
    [
      'huge shape',
      () => rawFile({ a: { dtype: 'F64', shape: [2 ** 40, 2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, 8),
      /needs more than 2\^53 bytes/,
    ],
    [
      'overlap',
      () => rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12),
      /tensor 'b' \[4, 12\] overlaps tensor 'a' \[0, 8\]/,
    ],
    [
      'hole',
      () => rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, 12),
      /bytes \[4, 8\) before tensor 'b' belong to no tensor/,
    ],
    ['trailing bytes', () => rawFile(good, 16), /cover 12 bytes of data but the file has 16 .*4 trailing bytes/],
    ['metadata not strings', () => rawFile({ __metadata__: { step: 3 } }, 0), /__metadata__\.step must be a string/],
    ['metadata not an object', () => rawFile({ __metadata__: 'x' }, 0), /__metadata__ must be an object of strings/],
  ];
  for (const [name, make, message] of cases) {
    it(`refuses: ${name}`, () => {
      expect(() => parseSafetensors(make(), 'bad.st')).toThrow(message);
    });
  }

  it('accepts the edge cases the format allows', () => {
    expect(parseSafetensors(rawFile({}, 0)).tensors.size).toBe(0);
    // Unpadded header, trailing spaces only, zero-size tensors sharing an offset.
    const f = rawFile(
      { e1: { dtype: 'F32', shape: [0], data_offsets: [0, 0] }, e2: { dtype: 'I32', shape: [3, 0], data_offsets: [0, 0] }, x: { dtype: 'F32', shape: [], data_offsets: [0, 4] } },
      4,
      { pad: false },
    );
    const t = parseSafetensors(f).tensors;
    expect(t.get('e2')!.shape).toEqual([3, 0]);
    expect(t.get('x')!.shape).toEqual([]);
    expect(parseSafetensorsHeader(f).entries.map((e) => e.name)).toEqual(['e1', 'e2', 'x']);
  });

  it('names the file when loading from disk', async () => {
    const p = join(FIXTURES, 'hf.json'); // a JSON file, not safetensors
    await expect(loadSafetensors(p)).rejects.toThrow(new RegExp(`safetensors ${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: header length`));
  });
});

describe('safetensors interop with Hugging Face', () => {
  interface Expected {
    metadata: Record<string, string>;
    tensors: Record<string, { dtype: string; shape: number[]; values: number[] }>;
  }
  it('reads a file written by Python safetensors (every dtype, metadata)', () => {
    const expected = JSON.parse(readFileSync(join(FIXTURES, 'hf.json'), 'utf8')) as Expected;
    const file = loadSafetensorsSync(join(FIXTURES, 'hf.safetensors'));
    expect(file.metadata).toEqual(expected.metadata);
    expect([...file.tensors.keys()].sort()).toEqual(Object.keys(expected.tensors).sort());
    const weftDtype: Record<string, string> = { F32: 'f32', F64: 'f32', F16: 'f16', BF16: 'bf16', I32: 'i32', I64: 'i32' };
    for (const [name, e] of Object.entries(expected.tensors)) {
      const t = file.tensors.get(name)!;
      expect(t.dtype, name).toBe(weftDtype[e.dtype]);
      expect(t.shape, name).toEqual(e.shape);
      const want = e.dtype === 'F64' ? e.values.map(Math.fround) : e.values;
      expect(t.toArray(), name).toEqual(want);
    }
  });

  it('writes the same bytes as Python safetensors', () => {
    const original = readFileSync(join(FIXTURES, 'hf-weft-dtypes.safetensors'));
    const file = parseSafetensors(original);
    expect(Buffer.from(serializeSafetensors(file.tensors, file.metadata)).equals(original)).toBe(true);
  });

  it.skipIf(!existsSync(GPT2_TINY))('reads the bundled HF GPT-2 model and rewrites it byte for byte', () => {
    const bytes = readFileSync(GPT2_TINY);
    const { tensors, metadata } = parseSafetensors(bytes, GPT2_TINY);
    expect(metadata).toEqual({ format: 'pt' });
    const shapes = Object.fromEntries([...tensors].map(([k, t]) => [k, t.shape]));
    expect(shapes['transformer.wte.weight']).toEqual([50257, 2]);
    expect(shapes['transformer.wpe.weight']).toEqual([1024, 2]);
    expect(shapes['transformer.h.0.attn.c_attn.weight']).toEqual([2, 6]); // Conv1D: in x out
    expect(shapes['transformer.h.0.attn.c_attn.bias']).toEqual([6]);
    expect(shapes['transformer.h.0.mlp.c_fc.weight']).toEqual([2, 8]);
    expect(shapes['transformer.h.0.mlp.c_proj.weight']).toEqual([8, 2]);
    expect(shapes['transformer.ln_f.weight']).toEqual([2]);
    expect(tensors.size).toBe(16);
    for (const t of tensors.values()) {
      expect(t.dtype).toBe('f32');
      expect(t.toArray().every(Number.isFinite)).toBe(true);
    }
    expect(Buffer.from(serializeSafetensors(tensors, metadata)).equals(bytes)).toBe(true);
  });
});
