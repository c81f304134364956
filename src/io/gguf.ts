/**
 * GGUF (ggml's model format, versions 2 and 3) — metadata reader and writer.
 *
 * Layout (little-endian): magic "GGUF", u32 version, u64 tensor count, u64 metadata KV count, the KV
 * pairs (string key, u32 value type, value), the tensor infos (string name, u32 n_dims, u64 dims[n_dims],
 * u32 ggml type, u64 offset relative to the data section), padding to `general.alignment` (default 32),
 * then the tensor data. Strings are a u64 byte length and UTF-8 bytes; arrays are a u32 element type,
 * a u64 count and the elements (arrays of arrays and of strings included).
 *
 * Every count and length comes from the file, so each is checked against the bytes that remain
 * before anything is allocated: a truncated or hostile file fails with an Error naming the file, the
 * byte offset and what was being read, never with a huge allocation, a hang or a RangeError from a
 * DataView. The reader only needs the header, so `readGGUFFile` reads a prefix of the file and grows
 * it only as far as the metadata actually reaches (model files can be many GB).
 */
import * as fs from 'node:fs';
import { writeFileAtomicSync } from './atomic.js';

export const GGUF_MAGIC = 'GGUF';
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** Deeper nesting than this is rejected (nothing real nests at all; it bounds recursion). */
const MAX_ARRAY_DEPTH = 16;
/** ggml's GGML_MAX_DIMS. */
const MAX_TENSOR_DIMS = 4;

/** GGUF value types, by their on-disk code. */
export const GGUF_VALUE_TYPES = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64'] as const;
export type GGUFValueType = (typeof GGUF_VALUE_TYPES)[number];

export type GGUFNumberType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
export type GGUFBigIntType = 'uint64' | 'int64';

export type GGUFArrayData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | boolean[]
  | string[]
  | GGUFArrayValue[];

export interface GGUFArrayValue {
  type: 'array';
  elementType: GGUFValueType;
  value: GGUFArrayData;
}

/** One metadata value, tagged with its on-disk type so a file can be written back unchanged. */
export type GGUFValue =
  | { type: GGUFNumberType; value: number }
  | { type: GGUFBigIntType; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | GGUFArrayValue;

/** ggml tensor types: code → [name, elements per block, bytes per block]. */
const GGML_TYPES: ReadonlyMap<number, readonly [string, number, number]> = new Map([
  [0, ['F32', 1, 4]],
  [1, ['F16', 1, 2]],
  [2, ['Q4_0', 32, 18]],
  [3, ['Q4_1', 32, 20]],
  [6, ['Q5_0', 32, 22]],
  [7, ['Q5_1', 32, 24]],
  [8, ['Q8_0', 32, 34]],
  [9, ['Q8_1', 32, 36]],
  [10, ['Q2_K', 256, 84]],
  [11, ['Q3_K', 256, 110]],
  [12, ['Q4_K', 256, 144]],
  [13, ['Q5_K', 256, 176]],
  [14, ['Q6_K', 256, 210]],
  [15, ['Q8_K', 256, 292]],
  [16, ['IQ2_XXS', 256, 66]],
  [17, ['IQ2_XS', 256, 74]],
  [18, ['IQ3_XXS', 256, 98]],
  [19, ['IQ1_S', 256, 50]],
  [20, ['IQ4_NL', 32, 18]],
  [21, ['IQ3_S', 256, 110]],
  [22, ['IQ2_S', 256, 82]],
  [23, ['IQ4_XS', 256, 136]],
  [24, ['I8', 1, 1]],
  [25, ['I16', 1, 2]],
  [26, ['I32', 1, 4]],
  [27, ['I64', 1, 8]],
  [28, ['F64', 1, 8]],
  [29, ['IQ1_M', 256, 56]],
  [30, ['BF16', 1, 2]],
  [34, ['TQ1_0', 256, 54]],
  [35, ['TQ2_0', 256, 66]],
  [39, ['MXFP4', 32, 17]],
]);

/** The ggml type name for a type code (e.g. 0 → 'F32'), or undefined if unknown. */
export function ggmlTypeName(code: number): string | undefined {
  return GGML_TYPES.get(code)?.[0];
}

export interface GGUFTensorInfo {
  name: string;
  /** ggml order: dims[0] is the fastest-varying (row length). */
  dims: number[];
  /** ggml type code and its name. */
  type: number;
  typeName: string;
  /** Offset of the tensor's bytes relative to the data section. */
  offset: number;
  /** Bytes the tensor occupies. */
  byteSize: number;
}

export interface GGUFFile {
  version: number;
  metadata: Map<string, GGUFValue>;
  tensors: GGUFTensorInfo[];
  alignment: number;
  /** Absolute offset of the tensor data section. */
  dataOffset: number;
}

/** Thrown when the bytes end before the header does; `readGGUFFile` uses it to read further. */
export class GGUFTruncatedError extends Error {
  constructor(
    message: string,
    /** The absolute offset the parser needed to read up to. */
    readonly needed: number,
  ) {
    super(message);
    this.name = 'GGUFTruncatedError';
  }
}

const utf8 = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

class Reader {
  pos = 0;
  private readonly view: DataView;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly source: string,
    /** The real size of the file (bytes may be a prefix of it). */
    private readonly fileSize: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(problem: string, at = this.pos): never {
    throw new Error(`gguf ${this.source}: ${problem} (at byte ${at})`);
  }

  remaining(): number {
    return this.fileSize - this.pos;
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.bytes.byteLength) {
      const msg =
        this.pos + n > this.fileSize
          ? `gguf ${this.source}: truncated file: ${what} needs ${n} bytes at byte ${this.pos} but the file ends at byte ${this.fileSize}`
          : `gguf ${this.source}: ${what} at byte ${this.pos} lies beyond the ${this.bytes.byteLength} bytes read`;
      throw new GGUFTruncatedError(msg, this.pos + n);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A u64 count of items each at least `minItemBytes` long: checked against the bytes that remain. */
  count(what: string, minItemBytes: number): number {
    const at = this.pos;
    const n = this.u64(`${what} count`);
    const fits = BigInt(Math.floor(Math.max(0, this.remaining()) / minItemBytes));
    if (n > fits) {
      throw new GGUFTruncatedError(
        `gguf ${this.source}: ${what} count ${n} at byte ${at} cannot fit in the ${this.remaining()} bytes left in the file (truncated or corrupt)`,
        this.fileSize + 1,
      );
    }
    return Number(n);
  }

  string(what: string): string {
    const at = this.pos;
    const len = this.u64(`${what} length`);
    if (len > BigInt(Math.max(0, this.remaining()))) {
      throw new GGUFTruncatedError(
        `gguf ${this.source}: ${what} at byte ${at} claims ${len} bytes but only ${this.remaining()} remain in the file (truncated or corrupt)`,
        this.fileSize + 1,
      );
    }
    const n = Number(len);
    this.need(n, what);
    const s = decodeUtf8(this.bytes, this.pos, n);
    this.pos += n;
    return s;
  }

  /** `n` fixed-size elements copied into a fresh typed array (the source may be unaligned). */
  typed<T>(n: number, size: number, what: string, make: (n: number) => T, get: (view: DataView, at: number, i: number, out: T) => void): T {
    this.need(n * size, what);
    const out = make(n);
    for (let i = 0, at = this.pos; i < n; i++, at += size) get(this.view, at, i, out);
    this.pos += n * size;
    return out;
  }
}

/** ASCII fast path (vocabularies are mostly ASCII); the decoder handles the rest, invalid bytes → U+FFFD. */
function decodeUtf8(bytes: Uint8Array, start: number, n: number): string {
  if (n <= 64) {
    let ascii = true;
    for (let i = start; i < start + n; i++) {
      if (bytes[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode(...bytes.subarray(start, start + n));
  }
  return utf8.decode(bytes.subarray(start, start + n));
}

function typeFromCode(r: Reader, code: number, at: number, what: string): GGUFValueType {
  const t = GGUF_VALUE_TYPES[code];
  if (t === undefined) r.fail(`${what} has unknown value type ${code} (valid: 0..${GGUF_VALUE_TYPES.length - 1})`, at);
  return t;
}

/** Smallest encoding of one value of a type (bounds array counts before allocating). */
function minBytes(t: GGUFValueType): number {
  switch (t) {
    case 'uint8':
    case 'int8':
    case 'bool':
      return 1;
    case 'uint16':
    case 'int16':
      return 2;
    case 'uint32':
    case 'int32':
    case 'float32':
      return 4;
    case 'uint64':
    case 'int64':
    case 'float64':
    case 'string':
      return 8;
    case 'array':
      return 12;
  }
}

function readScalar(r: Reader, t: Exclude<GGUFValueType, 'array'>, what: string): GGUFValue {
  switch (t) {
    case 'uint8':
      return { type: t, value: r.u8(what) };
    case 'int8':
      return { type: t, value: (r.u8(what) << 24) >> 24 };
    case 'uint16':
    case 'int16': {
      r.need(2, what);
      const lo = r.u8(what);
      const v = lo | (r.u8(what) << 8);
      return { type: t, value: t === 'int16' ? (v << 16) >> 16 : v };
    }
    case 'uint32':
      return { type: t, value: r.u32(what) };
    case 'int32':
      return { type: t, value: r.u32(what) | 0 };
    case 'float32': {
      const bits = r.u32(what);
      const f = new Float32Array(new Uint32Array([bits]).buffer)[0]!;
      return { type: t, value: f };
    }
    case 'float64': {
      const bits = r.u64(what);
      return { type: t, value: new Float64Array(new BigUint64Array([bits]).buffer)[0]! };
    }
    case 'uint64':
      return { type: t, value: r.u64(what) };
    case 'int64':
      return { type: t, value: BigInt.asIntN(64, r.u64(what)) };
    case 'bool': {
      const at = r.pos;
      const b = r.u8(what);
      if (b > 1) r.fail(`${what} is a bool with byte value ${b} (must be 0 or 1)`, at);
      return { type: t, value: b === 1 };
    }
    case 'string':
      return { type: t, value: r.string(what) };
  }
}

function readArray(r: Reader, what: string, depth: number): GGUFArrayValue {
  if (depth > MAX_ARRAY_DEPTH) r.fail(`${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH} levels`);
  const typeAt = r.pos;
  const elementType = typeFromCode(r, r.u32(`${what} element type`), typeAt, `${what} element`);
  const n = r.count(`${what} element`, minBytes(elementType));
  const el = `${what} elements`;
  switch (elementType) {
    case 'uint8':
      return { type: 'array', elementType, value: r.typed(n, 1, el, (k) => new Uint8Array(k), (v, at, i, o) => void (o[i] = v.getUint8(at))) };
    case 'int8':
      return { type: 'array', elementType, value: r.typed(n, 1, el, (k) => new Int8Array(k), (v, at, i, o) => void (o[i] = v.getInt8(at))) };
    case 'uint16':
      return { type: 'array', elementType, value: r.typed(n, 2, el, (k) => new Uint16Array(k), (v, at, i, o) => void (o[i] = v.getUint16(at, true))) };
    case 'int16':
      return { type: 'array', elementType, value: r.typed(n, 2, el, (k) => new Int16Array(k), (v, at, i, o) => void (o[i] = v.getInt16(at, true))) };
    case 'uint32':
      return { type: 'array', elementType, value: r.typed(n, 4, el, (k) => new Uint32Array(k), (v, at, i, o) => void (o[i] = v.getUint32(at, true))) };
    case 'int32':
      return { type: 'array', elementType, value: r.typed(n, 4, el, (k) => new Int32Array(k), (v, at, i, o) => void (o[i] = v.getInt32(at, true))) };
    case 'float32':
      return { type: 'array', elementType, value: r.typed(n, 4, el, (k) => new Float32Array(k), (v, at, i, o) => void (o[i] = v.getFloat32(at, true))) };
    case 'float64':
      return { type: 'array', elementType, value: r.typed(n, 8, el, (k) => new Float64Array(k), (v, at, i, o) => void (o[i] = v.getFloat64(at, true))) };
    case 'uint64':
      return { type: 'array', elementType, value: r.typed(n, 8, el, (k) => new BigUint64Array(k), (v, at, i, o) => void (o[i] = v.getBigUint64(at, true))) };
    case 'int64':
      return { type: 'array', elementType, value: r.typed(n, 8, el, (k) => new BigInt64Array(k), (v, at, i, o) => void (o[i] = v.getBigInt64(at, true))) };
    case 'bool': {
      const out: boolean[] = new Array<boolean>(n);
      for (let i = 0; i < n; i++) out[i] = readScalar(r, 'bool', `${what}[${i}]`).value as boolean;
      return { type: 'array', elementType, value: out };
    }
    case 'string': {
      const out: string[] = new Array<string>(n);
      for (let i = 0; i < n; i++) out[i] = r.string(`${what}[${i}]`);
      return { type: 'array', elementType, value: out };
    }
    case 'array': {
      const out: GGUFArrayValue[] = new Array<GGUFArrayValue>(n);
      for (let i = 0; i < n; i++) out[i] = readArray(r, `${what}[${i}]`, depth + 1);
      return { type: 'array', elementType, value: out };
    }
  }
}

function readValue(r: Reader, key: string): GGUFValue {
  const at = r.pos;
  const type = typeFromCode(r, r.u32(`type of '${key}'`), at, `metadata '${key}'`);
  return type === 'array' ? readArray(r, `metadata '${key}'`, 0) : readScalar(r, type, `metadata '${key}'`);
}

/** Tensor bytes: dims[0] must be a whole number of blocks (ggml's rule). */
function tensorByteSize(dims: readonly number[], type: number): number | string {
  const info = GGML_TYPES.get(type)!;
  const [name, block, blockBytes] = info;
  if (dims.length > 0 && dims[0]! % block !== 0) return `${name} needs dims[0] (${dims[0]}) to be a multiple of its block size ${block}`;
  let n = 1n;
  for (const d of dims) n *= BigInt(d);
  const bytes = (n / BigInt(block)) * BigInt(blockBytes);
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) return `${bytes} bytes is more than 2^53`;
  return Number(bytes);
}

/**
 * Parses the header of GGUF `bytes` (all of a file, or a prefix of it when `fileSize` gives the real
 * size; a prefix too short throws GGUFTruncatedError). `source` names the file in errors.
 */
export function parseGGUF(bytes: Uint8Array, source = '<buffer>', fileSize = bytes.byteLength): GGUFFile {
  const r = new Reader(bytes, source, fileSize);
  r.need(4, 'magic');
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== GGUF_MAGIC) {
    r.fail(`not a GGUF file: magic is ${JSON.stringify(magic)} (bytes ${[...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}), expected "GGUF"`, 0);
  }
  r.pos = 4;
  const version = r.u32('version');
  if (version === 1) r.fail('GGUF version 1 (32-bit counts) is not supported; re-convert the file with a current llama.cpp', 4);
  if (version !== 2 && version !== 3) {
    r.fail(`unsupported GGUF version ${version} (supported: 2, 3)${version > 0xffff ? '; the file may be big-endian, which is not supported' : ''}`, 4);
  }
  // Each tensor info is at least 24 bytes (empty name, 0 dims, type, offset); each KV at least 8 + 4 + 1.
  const tensorCount = r.count('tensor', 24);
  const kvCount = r.count('metadata key-value', 13);

  const metadata = new Map<string, GGUFValue>();
  for (let i = 0; i < kvCount; i++) {
    const at = r.pos;
    const key = r.string(`key of metadata pair ${i}`);
    if (metadata.has(key)) r.fail(`duplicate metadata key '${key}'`, at);
    metadata.set(key, readValue(r, key));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignValue = metadata.get('general.alignment');
  if (alignValue !== undefined) {
    if (alignValue.type !== 'uint32') r.fail(`general.alignment must be a uint32, got ${alignValue.type}`);
    alignment = alignValue.value as number;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0) r.fail(`general.alignment ${alignment} is not a power of two`);
  }

  const tensors: GGUFTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const at = r.pos;
    const name = r.string(`name of tensor ${i}`);
    if (names.has(name)) r.fail(`duplicate tensor name '${name}'`, at);
    names.add(name);
    const dimsAt = r.pos;
    const nDims = r.u32(`n_dims of tensor '${name}'`);
    if (nDims > MAX_TENSOR_DIMS) r.fail(`tensor '${name}' has ${nDims} dims (at most ${MAX_TENSOR_DIMS})`, dimsAt);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const dAt = r.pos;
      const size = r.u64(`dim ${d} of tensor '${name}'`);
      if (size > BigInt(Number.MAX_SAFE_INTEGER)) r.fail(`tensor '${name}' dim ${d} is ${size}, too large`, dAt);
      dims.push(Number(size));
    }
    const typeAt = r.pos;
    const type = r.u32(`type of tensor '${name}'`);
    const typeName = ggmlTypeName(type);
    if (typeName === undefined) return r.fail(`tensor '${name}' has unknown ggml type ${type}`, typeAt);
    const offAt = r.pos;
    const offset64 = r.u64(`offset of tensor '${name}'`);
    if (offset64 > BigInt(Number.MAX_SAFE_INTEGER)) r.fail(`tensor '${name}' offset ${offset64} is too large`, offAt);
    const offset = Number(offset64);
    if (offset % alignment !== 0) r.fail(`tensor '${name}' offset ${offset} is not a multiple of the alignment ${alignment}`, offAt);
    const byteSize = tensorByteSize(dims, type);
    if (typeof byteSize === 'string') return r.fail(`tensor '${name}' [${dims.join(', ')}] ${typeName}: ${byteSize}`, dimsAt);
    tensors.push({ name, dims, type, typeName, offset, byteSize });
  }

  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  // With tensors, the data section must hold every one of them (a vocab-only file may end right here).
  for (const t of tensors) {
    const end = dataOffset + t.offset + t.byteSize;
    if (end > fileSize) {
      throw new Error(`gguf ${source}: tensor '${t.name}' [${t.dims.join(', ')}] ${t.typeName} needs bytes [${dataOffset + t.offset}, ${end}) but the file ends at byte ${fileSize} (truncated)`);
    }
  }
  return { version, metadata, tensors, alignment, dataOffset };
}

/** Reads a GGUF file's header from disk: only as much of the file as the metadata occupies. */
export function readGGUFFile(path: string): GGUFFile {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    let want = Math.min(size, 1 << 20);
    for (;;) {
      const buf = new Uint8Array(want);
      let got = 0;
      while (got < want) {
        const n = fs.readSync(fd, buf, got, want - got, got);
        if (n === 0) break;
        got += n;
      }
      try {
        return parseGGUF(buf.subarray(0, got), path, size);
      } catch (e) {
        // Only a header longer than what was read is worth another try; anything else is final.
        if (!(e instanceof GGUFTruncatedError) || e.needed > size || got < want) throw e;
        want = Math.min(size, Math.max(want * 2, e.needed));
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// Typed accessors (clear errors when a key is missing or has the wrong type)

function describe(v: GGUFValue): string {
  return v.type === 'array' ? `array of ${v.elementType}` : v.type;
}

export function ggufGet(file: GGUFFile, key: string): GGUFValue | undefined {
  return file.metadata.get(key);
}

/** A string value; undefined when absent (unless `required`). */
export function ggufString(file: GGUFFile, key: string, required: true): string;
export function ggufString(file: GGUFFile, key: string, required?: boolean): string | undefined;
export function ggufString(file: GGUFFile, key: string, required = false): string | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) {
    if (required) throw new Error(`gguf: required key '${key}' is missing`);
    return undefined;
  }
  if (v.type !== 'string') throw new Error(`gguf: key '${key}' should be a string, found ${describe(v)}`);
  return v.value;
}

/** An integer value of any integer type, as a number (must be a safe integer). */
export function ggufInt(file: GGUFFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type === 'uint64' || v.type === 'int64') {
    if (v.value > BigInt(Number.MAX_SAFE_INTEGER) || v.value < -BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`gguf: key '${key}' = ${v.value} is too large`);
    return Number(v.value);
  }
  if (v.type === 'uint8' || v.type === 'int8' || v.type === 'uint16' || v.type === 'int16' || v.type === 'uint32' || v.type === 'int32') return v.value;
  throw new Error(`gguf: key '${key}' should be an integer, found ${describe(v)}`);
}

export function ggufBool(file: GGUFFile, key: string): boolean | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== 'bool') throw new Error(`gguf: key '${key}' should be a bool, found ${describe(v)}`);
  return v.value;
}

export function ggufStringArray(file: GGUFFile, key: string, required: true): string[];
export function ggufStringArray(file: GGUFFile, key: string, required?: boolean): string[] | undefined;
export function ggufStringArray(file: GGUFFile, key: string, required = false): string[] | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) {
    if (required) throw new Error(`gguf: required key '${key}' is missing`);
    return undefined;
  }
  if (v.type !== 'array' || v.elementType !== 'string') throw new Error(`gguf: key '${key}' should be an array of strings, found ${describe(v)}`);
  return v.value as string[];
}

/** A numeric array (any numeric element type except 64-bit integers) as numbers. */
export function ggufNumberArray(file: GGUFFile, key: string): ArrayLike<number> | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== 'array' || v.elementType === 'string' || v.elementType === 'bool' || v.elementType === 'array') {
    throw new Error(`gguf: key '${key}' should be a numeric array, found ${describe(v)}`);
  }
  const data = v.value;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Array.from(data, (x) => Number(x));
  return data as ArrayLike<number>;
}

// ---------------------------------------------------------------------------------------------
// Writer

export interface GGUFTensorInput {
  name: string;
  dims: number[];
  /** ggml type code. */
  type: number;
  data: Uint8Array;
}

class Writer {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.len++, v);
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.len, v, true);
    this.len += 4;
  }
  u64(v: bigint | number): void {
    this.reserve(8);
    this.view.setBigUint64(this.len, BigInt.asUintN(64, BigInt(v)), true);
    this.len += 8;
  }
  num(t: GGUFNumberType, v: number): void {
    this.reserve(8);
    const at = this.len;
    const size = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, float64: 8 }[t];
    if (t === 'uint8') this.view.setUint8(at, v);
    else if (t === 'int8') this.view.setInt8(at, v);
    else if (t === 'uint16') this.view.setUint16(at, v, true);
    else if (t === 'int16') this.view.setInt16(at, v, true);
    else if (t === 'uint32') this.view.setUint32(at, v, true);
    else if (t === 'int32') this.view.setInt32(at, v, true);
    else if (t === 'float32') this.view.setFloat32(at, v, true);
    else this.view.setFloat64(at, v, true);
    this.len += size;
  }
  string(s: string): void {
    const b = utf8Encoder.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  pad(alignment: number): void {
    while (this.len % alignment !== 0) this.u8(0);
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function writeArray(w: Writer, a: GGUFArrayValue): void {
  w.u32(GGUF_VALUE_TYPES.indexOf(a.elementType));
  w.u64(a.value.length);
  const t = a.elementType;
  const values = a.value as ArrayLike<number | bigint | boolean | string | GGUFArrayValue>;
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    if (t === 'array') writeArray(w, x as GGUFArrayValue);
    else writeScalar(w, { type: t, value: x } as GGUFValue);
  }
}

function writeScalar(w: Writer, v: GGUFValue): void {
  switch (v.type) {
    case 'string':
      return w.string(v.value);
    case 'bool':
      return w.u8(v.value ? 1 : 0);
    case 'uint64':
    case 'int64':
      return w.u64(v.value);
    case 'array':
      return writeArray(w, v);
    default:
      return w.num(v.type, v.value);
  }
}

/** Serialises a GGUF file (version 3 unless given). Tensor data is laid out in order, each aligned. */
export function serializeGGUF(
  metadata: Map<string, GGUFValue> | [string, GGUFValue][],
  tensors: GGUFTensorInput[] = [],
  version = 3,
): Uint8Array {
  const entries = metadata instanceof Map ? [...metadata] : metadata;
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  for (const [k, v] of entries) if (k === 'general.alignment' && v.type === 'uint32') alignment = v.value;
  const w = new Writer();
  w.bytes(utf8Encoder.encode(GGUF_MAGIC));
  w.u32(version);
  w.u64(tensors.length);
  w.u64(entries.length);
  for (const [k, v] of entries) {
    w.string(k);
    w.u32(GGUF_VALUE_TYPES.indexOf(v.type));
    writeScalar(w, v);
  }
  let offset = 0;
  for (const t of tensors) {
    const size = tensorByteSize(t.dims, t.type);
    if (typeof size === 'string') throw new Error(`serializeGGUF: tensor '${t.name}': ${size}`);
    if (size !== t.data.length) throw new Error(`serializeGGUF: tensor '${t.name}' needs ${size} bytes, data has ${t.data.length}`);
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(offset);
    offset += Math.ceil(size / alignment) * alignment;
  }
  w.pad(alignment);
  for (const t of tensors) {
    w.bytes(t.data);
    w.pad(alignment);
  }
  return w.result();
}

export function saveGGUFSync(path: string, metadata: Map<string, GGUFValue> | [string, GGUFValue][], tensors: GGUFTensorInput[] = []): void {
  writeFileAtomicSync(path, serializeGGUF(metadata, tensors));
}
