/**
 * GGUF reader/writer: the real llama.cpp vocabulary files and a tiny model parse to the values
 * their headers hold; a synthetic file with every value type (nested arrays, 64-bit extremes,
 * Unicode strings) and tensors of several ggml types round-trips exactly through serializeGGUF;
 * malformed files fail with errors naming the problem and the byte offset.
 */
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ggufBool,
  ggufInt,
  ggufNumberArray,
  ggufString,
  ggufStringArray,
  parseGGUF,
  readGGUFFile,
  serializeGGUF,
  type GGUFValue,
} from '../../src/io/gguf.js';

const LLAMA_CPP = join(__dirname, '../../../shared/data/tokenizers/llama.cpp');
const TINY = join(__dirname, '../../../shared/data/models/llama-2-tiny-random/llama-2-tiny-random.gguf');
const haveVocabs = existsSync(join(LLAMA_CPP, 'ggml-vocab-llama-spm.gguf'));

/** A file exercising every value type, with two tensors. */
function sampleMetadata(): [string, GGUFValue][] {
  return [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.alignment', { type: 'uint32', value: 64 }],
    ['u8', { type: 'uint8', value: 255 }],
    ['i8', { type: 'int8', value: -128 }],
    ['u16', { type: 'uint16', value: 65535 }],
    ['i16', { type: 'int16', value: -32768 }],
    ['u32', { type: 'uint32', value: 4294967295 }],
    ['i32', { type: 'int32', value: -2147483648 }],
    ['f32', { type: 'float32', value: 1.5 }],
    ['f64', { type: 'float64', value: -1e300 }],
    ['u64', { type: 'uint64', value: 18446744073709551615n }],
    ['i64', { type: 'int64', value: -9223372036854775808n }],
    ['yes', { type: 'bool', value: true }],
    ['no', { type: 'bool', value: false }],
    ['unicode', { type: 'string', value: 'héllo ▁ 世界 🦙' }],
    ['empty', { type: 'string', value: '' }],
    ['strings', { type: 'array', elementType: 'string', value: ['a', '', '▁b', '<0x0A>'] }],
    ['floats', { type: 'array', elementType: 'float32', value: Float32Array.from([0, -1e9, 0.25]) }],
    ['ints', { type: 'array', elementType: 'int32', value: Int32Array.from([1, -2, 3]) }],
    ['bytes', { type: 'array', elementType: 'uint8', value: Uint8Array.from([0, 7, 255]) }],
    ['i16s', { type: 'array', elementType: 'int16', value: Int16Array.from([-5, 5]) }],
    ['u64s', { type: 'array', elementType: 'uint64', value: BigUint64Array.from([0n, 2n ** 64n - 1n]) }],
    ['f64s', { type: 'array', elementType: 'float64', value: Float64Array.from([Math.PI]) }],
    ['bools', { type: 'array', elementType: 'bool', value: [true, false, true] }],
    ['noarr', { type: 'array', elementType: 'uint32', value: new Uint32Array(0) }],
    [
      'nested',
      {
        type: 'array',
        elementType: 'array',
        value: [
          { type: 'array', elementType: 'string', value: ['x', 'yz'] },
          { type: 'array', elementType: 'array', value: [{ type: 'array', elementType: 'int8', value: Int8Array.from([-1]) }] },
        ],
      },
    ],
  ];
}

function sampleTensors() {
  return [
    { name: 'w', dims: [4, 3], type: 0, data: new Uint8Array(48).map((_, i) => i) },
    { name: 'q', dims: [32, 2], type: 2, data: new Uint8Array(36).fill(9) }, // Q4_0: 2 blocks of 18 bytes
    { name: 'h', dims: [5], type: 1, data: new Uint8Array(10).fill(1) },
  ];
}

describe('GGUF reader on real files', () => {
  it.skipIf(!haveVocabs)('reads the llama SPM vocabulary', () => {
    const f = readGGUFFile(join(LLAMA_CPP, 'ggml-vocab-llama-spm.gguf'));
    expect(f.version).toBe(3);
    expect(f.tensors).toHaveLength(0);
    expect(f.alignment).toBe(32);
    expect(ggufString(f, 'tokenizer.ggml.model')).toBe('llama');
    const tokens = ggufStringArray(f, 'tokenizer.ggml.tokens', true);
    expect(tokens).toHaveLength(32000);
    expect(tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(tokens[29871]).toBe('▁');
    expect(tokens[13]).toBe('<0x0A>');
    const scores = ggufNumberArray(f, 'tokenizer.ggml.scores')!;
    expect(scores.length).toBe(32000);
    expect(scores[259]).toBe(-1e9);
    expect(scores[261]).toBe(-2);
    expect(Array.from(ggufNumberArray(f, 'tokenizer.ggml.token_type')!).slice(0, 4)).toEqual([2, 3, 3, 6]);
    expect(ggufInt(f, 'tokenizer.ggml.bos_token_id')).toBe(1);
    expect(ggufBool(f, 'tokenizer.ggml.add_bos_token')).toBe(true);
    expect(ggufInt(f, 'llama.context_length')).toBe(4096);
  });

  it.skipIf(!haveVocabs)('reads the GPT-2 vocabulary with merges and the BERT one', () => {
    const g = readGGUFFile(join(LLAMA_CPP, 'ggml-vocab-gpt-2.gguf'));
    expect(ggufStringArray(g, 'tokenizer.ggml.tokens')).toHaveLength(50257);
    const merges = ggufStringArray(g, 'tokenizer.ggml.merges', true);
    expect(merges).toHaveLength(50000);
    expect(merges[0]).toBe('Ġ t');
    const b = readGGUFFile(join(LLAMA_CPP, 'ggml-vocab-bert-bge.gguf'));
    expect(ggufString(b, 'tokenizer.ggml.pre')).toBe('bert-bge');
    const bertTokens = ggufStringArray(b, 'tokenizer.ggml.tokens', true);
    expect(bertTokens[1996]).toBe('▁the');
    expect(bertTokens[2015]).toBe('s'); // '##s' loses its prefix in llama.cpp's conversion
    expect(ggufBool(b, 'bert.attention.causal')).toBe(false);
    expect(() => ggufString(b, 'bert.block_count')).toThrow(/should be a string, found uint32/);
  });

  it.skipIf(!existsSync(TINY))('reads tensor infos of a model file', () => {
    const f = readGGUFFile(TINY);
    expect(f.tensors).toHaveLength(12);
    const emb = f.tensors[0]!;
    expect(emb).toMatchObject({ name: 'token_embd.weight', dims: [8, 32000], typeName: 'F16', offset: 0, byteSize: 8 * 32000 * 2 });
    expect(f.dataOffset % f.alignment).toBe(0);
    // Tensors are laid out in order, each starting at an aligned offset after the previous one.
    for (let i = 1; i < f.tensors.length; i++) {
      const prev = f.tensors[i - 1]!;
      expect(f.tensors[i]!.offset).toBe(Math.ceil((prev.offset + prev.byteSize) / f.alignment) * f.alignment);
    }
    const last = f.tensors[f.tensors.length - 1]!;
    expect(f.dataOffset + last.offset + last.byteSize).toBeLessThanOrEqual(1750560);
  });
});

describe('GGUF writer round trip', () => {
  it('writes and reads back every value type and tensor infos (v3 and v2)', () => {
    for (const version of [3, 2]) {
      const meta = sampleMetadata();
      const bytes = serializeGGUF(meta, sampleTensors(), version);
      const f = parseGGUF(bytes, 'sample');
      expect(f.version).toBe(version);
      expect([...f.metadata.keys()]).toEqual(meta.map(([k]) => k));
      for (const [k, v] of meta) expect(f.metadata.get(k), k).toEqual(v);
      expect(f.alignment).toBe(64);
      expect(f.dataOffset % 64).toBe(0);
      expect(f.tensors.map((t) => [t.name, t.typeName, t.offset, t.byteSize])).toEqual([
        ['w', 'F32', 0, 48],
        ['q', 'Q4_0', 64, 36],
        ['h', 'F16', 128, 10],
      ]);
      // The tensor bytes sit where the infos say.
      const w = f.tensors[0]!;
      expect(Array.from(bytes.subarray(f.dataOffset + w.offset, f.dataOffset + w.offset + 4))).toEqual([0, 1, 2, 3]);
      expect(bytes.length).toBeGreaterThanOrEqual(f.dataOffset + 128 + 10);
    }
  });

  it('readGGUFFile reads past its first chunk when the metadata is large', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-gguf-'));
    try {
      // ~3 MB of strings: more than the 1 MiB first read.
      const big = Array.from({ length: 150_000 }, (_, i) => `token-${i}-${'x'.repeat(i % 13)}`);
      const bytes = serializeGGUF([['tokens', { type: 'array', elementType: 'string', value: big }], ['after', { type: 'uint32', value: 7 }]], [
        { name: 't', dims: [2], type: 0, data: new Uint8Array(8) },
      ]);
      expect(bytes.length).toBeGreaterThan(2 << 20);
      const path = join(dir, 'big.gguf');
      writeFileSync(path, bytes);
      const f = readGGUFFile(path);
      expect(ggufStringArray(f, 'tokens')).toEqual(big);
      expect(ggufInt(f, 'after')).toBe(7);
      expect(f.tensors[0]!.name).toBe('t');
      writeFileSync(path, bytes.subarray(0, bytes.length - 30));
      expect(() => readGGUFFile(path)).toThrow(/tensor 't'.*truncated/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Bytes of a small valid file, and helpers to patch it. */
function le32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}
function le64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}
function str(s: string): Uint8Array {
  const t = new TextEncoder().encode(s);
  return concat(le64(BigInt(t.length)), t);
}
function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
const MAGIC = new TextEncoder().encode('GGUF');
function header(nTensors: number, nKv: number, version = 3): Uint8Array {
  return concat(MAGIC, le32(version), le64(BigInt(nTensors)), le64(BigInt(nKv)));
}

describe('GGUF malformed files', () => {
  it('rejects a wrong magic or version', () => {
    expect(() => parseGGUF(new TextEncoder().encode('GGML....'), 'f.gguf')).toThrow(/gguf f\.gguf: not a GGUF file: magic is "GGML"/);
    expect(() => parseGGUF(header(0, 0, 1), 'f')).toThrow(/version 1 .*not supported/);
    expect(() => parseGGUF(header(0, 0, 4), 'f')).toThrow(/unsupported GGUF version 4.*at byte 4/);
    expect(() => parseGGUF(header(0, 0, 0x03000000), 'f')).toThrow(/big-endian/);
    expect(() => parseGGUF(new Uint8Array(2), 'f')).toThrow(/truncated file: magic needs 4 bytes at byte 0/);
  });

  it('fails on every truncation of a valid file, naming the offset', () => {
    const bytes = serializeGGUF(sampleMetadata(), sampleTensors());
    const f = parseGGUF(bytes);
    // Every prefix that cuts the header is an error that names a byte offset (a cut in the data too).
    const lastNeeded = f.dataOffset + 128 + 10;
    for (let n = 0; n < lastNeeded; n++) {
      expect(() => parseGGUF(bytes.subarray(0, n), 'cut'), `prefix ${n}`).toThrow(/^gguf cut: .*(at byte \d+|ends at byte \d+|file ends)/);
    }
  });

  it('names the problem for hostile values', () => {
    const key = str('k');
    const cases: [Uint8Array, RegExp][] = [
      [concat(header(0, 1), key, le32(13)), /metadata 'k' has unknown value type 13 .*at byte 33/],
      [concat(header(0, 1), key, le32(7), Uint8Array.of(2)), /bool with byte value 2/],
      [concat(header(0, 1), key, le32(8), le64(1n << 60n)), /claims 1152921504606846976 bytes but only 0 remain/],
      [concat(header(0, 1), key, le32(9), le32(4), le64(1n << 40n)), /element count 1099511627776 .*cannot fit/],
      [concat(header(0, 1), key, le32(9), le32(9), le64(1n), le32(99), le64(0n)), /unknown value type 99/],
      [concat(header(1n << 50n as unknown as number, 0)), /tensor count .* cannot fit/],
      [concat(header(0, 2), key, le32(4), le32(1), key, le32(4), le32(2)), /duplicate metadata key 'k' \(at byte 41\)/],
      [concat(header(0, 1), str('general.alignment'), le32(4), le32(48)), /general.alignment 48 is not a power of two/],
      [concat(header(0, 1), str('general.alignment'), le32(5), le32(64)), /general.alignment must be a uint32, got int32/],
      [concat(header(1, 0), str('t'), le32(5), le64(1n), le64(1n), le64(1n), le64(1n), le64(1n), le32(0), le64(0n)), /tensor 't' has 5 dims/],
      [concat(header(1, 0), str('t'), le32(1), le64(4n), le32(77), le64(0n)), /tensor 't' has unknown ggml type 77/],
      [concat(header(1, 0), str('t'), le32(1), le64(4n), le32(0), le64(3n)), /offset 3 is not a multiple of the alignment 32/],
      [concat(header(1, 0), str('t'), le32(1), le64(31n), le32(2), le64(0n)), /Q4_0 needs dims\[0\] \(31\) to be a multiple of its block size 32/],
      [concat(header(1, 0), str('t'), le32(1), le64(4n), le32(0), le64(0n)), /tensor 't' \[4\] F32 needs bytes \[64, 80\) but the file ends at byte 57/],
      [concat(header(2, 0), str('t'), le32(0), le32(0), le64(0n), str('t'), le32(0), le32(0), le64(0n)), /duplicate tensor name 't'/],
    ];
    for (const [bytes, re] of cases) expect(() => parseGGUF(bytes, 'bad'), String(re)).toThrow(re);
  });

  it('bounds array nesting', () => {
    // 40 levels of arrays of one array each.
    const parts: Uint8Array[] = [header(0, 1), str('deep'), le32(9)];
    for (let i = 0; i < 40; i++) parts.push(le32(9), le64(1n));
    parts.push(le32(0), le64(0n));
    expect(() => parseGGUF(concat(...parts), 'deep')).toThrow(/nested deeper than 16 levels/);
  });
});
