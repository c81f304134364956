/**
 * Safetensors (Hugging Face's weight format): an 8-byte little-endian u64 header length N, N bytes
 * of UTF-8 JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`
 * (padded with spaces so the data starts 8-byte aligned), then the tensors' bytes, little-endian and
 * tightly packed, offsets relative to the start of the data.
 *
 * The reader validates everything the reference implementation does (header inside the file, JSON
 * object, offsets contiguous from 0 to the end of the file with no holes or overlaps, byte sizes equal
 * to numel · itemsize) so a malformed file fails with a message naming the file, the tensor and the
 * problem instead of yielding garbage. F32/I32/F16/BF16 data is used in place (no copy) when its
 * absolute offset is aligned for the element type; other dtypes convert to Weft's f32/i32.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { DType, StorageArray } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { writeFileAtomic, writeFileAtomicSync } from './atomic.js';

/** Safetensors dtypes Weft reads (and what each becomes). */
export const SUPPORTED_DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I32', 'I64', 'I16', 'I8', 'U8', 'U16', 'U32', 'U64', 'BOOL'] as const;
export type SafetensorsDType = (typeof SUPPORTED_DTYPES)[number];

const ITEM_SIZE: Record<SafetensorsDType, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I32: 4,
  I64: 8,
  I16: 2,
  I8: 1,
  U8: 1,
  U16: 2,
  U32: 4,
  U64: 8,
  BOOL: 1,
};

const WRITE_DTYPE: Record<DType, SafetensorsDType> = { f32: 'F32', i32: 'I32', bf16: 'BF16', f16: 'F16' };

/** Rank of each written dtype in HF's Dtype enum order (F16 < BF16 < I32 < F32). */
const WRITE_RANK: Record<DType, number> = { f16: 0, bf16: 1, i32: 2, f32: 3 };

const METADATA_KEY = '__metadata__';
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** One tensor's entry in the header, validated. Offsets are relative to the start of the data. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Entries in data order (ascending offsets). */
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** Absolute offset of the data section within the bytes (8 + header length). */
  dataStart: number;
}

function isSupported(dtype: string): dtype is SafetensorsDType {
  return (SUPPORTED_DTYPES as readonly string[]).includes(dtype);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Reads and validates the header (no tensor data is touched). `source` names the file in errors. */
export function parseSafetensorsHeader(bytes: Uint8Array, source = '<buffer>'): SafetensorsHeader {
  const fail = (problem: string): never => {
    throw new Error(`safetensors ${source}: ${problem}`);
  };
  if (bytes.byteLength < 8) fail(`file is ${bytes.byteLength} bytes, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(bytes.byteLength - 8)) {
    fail(`header length ${headerLen64} is larger than the rest of the file (${bytes.byteLength - 8} bytes): truncated or not a safetensors file`);
  }
  const headerLen = Number(headerLen64);
  const dataStart = 8 + headerLen;
  const dataLen = bytes.byteLength - dataStart;
  if (headerLen < 2 || bytes[8] !== 0x7b /* '{' */) fail('header does not start with a JSON object');

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isPlainObject(json)) return fail('header JSON is not an object');

  const metaPairs: [string, string][] = [];
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(info)) fail(`${METADATA_KEY} must be an object of strings`);
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`${METADATA_KEY}.${k} must be a string, got ${JSON.stringify(v)}`);
        metaPairs.push([k, v as string]);
      }
      continue;
    }
    const bad = (problem: string): never => fail(`tensor '${name}': ${problem}`);
    if (!isPlainObject(info)) bad('entry must be an object {dtype, shape, data_offsets}');
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== 'string') bad(`dtype must be a string, got ${JSON.stringify(dtype)}`);
    if (!isSupported(dtype as string)) {
      bad(`unknown or unsupported dtype ${JSON.stringify(dtype)}; supported: ${SUPPORTED_DTYPES.join(', ')}`);
    }
    if (!Array.isArray(shape)) return bad(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        bad(`shape ${JSON.stringify(shape)} has an invalid size ${JSON.stringify(d)}: sizes must be non-negative integers`);
      }
    }
    if (!Array.isArray(offsets) || offsets.length !== 2) {
      return bad(`data_offsets must be [begin, end], got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as unknown[];
    if (typeof begin !== 'number' || typeof end !== 'number' || !Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < begin) {
      return bad(`data_offsets ${JSON.stringify(offsets)} must be integers with 0 <= begin <= end`);
    }
    if (end > dataLen) bad(`data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes)`);
    const itemSize = ITEM_SIZE[dtype as SafetensorsDType];
    // Hostile sizes can make this product inexact or Infinity; it then can't equal end - begin anyway.
    const bytesNeeded = (shape as number[]).reduce((n, d) => n * d, itemSize);
    if (bytesNeeded !== end - begin) {
      const need = Number.isSafeInteger(bytesNeeded) ? String(bytesNeeded) : 'more than 2^53';
      bad(`${dtype} shape [${(shape as number[]).join(', ')}] needs ${need} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    entries.push({ name, dtype: dtype as SafetensorsDType, shape: [...(shape as number[])], begin, end });
  }

  // The data must be covered exactly: sorted by offset, each tensor starts where the previous ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: SafetensorsEntry | null = null;
  for (const e of entries) {
    if (e.begin < cursor) fail(`tensor '${e.name}' [${e.begin}, ${e.end}] overlaps tensor '${prev!.name}' [${prev!.begin}, ${prev!.end}]`);
    if (e.begin > cursor) fail(`bytes [${cursor}, ${e.begin}) before tensor '${e.name}' belong to no tensor (a hole in the data)`);
    cursor = e.end;
    prev = e;
  }
  if (cursor !== dataLen) {
    fail(`the tensors cover ${cursor} bytes of data but the file has ${dataLen} after the header (${dataLen - cursor} trailing bytes)`);
  }
  // fromEntries defines own properties, so even a key named __proto__ stays a plain entry.
  return { entries, metadata: Object.fromEntries(metaPairs), dataStart };
}

/** A typed array over `byteLength` bytes at absolute `abs`: a view when aligned (and host is LE), else a copy. */
function viewOrCopy<T extends StorageArray>(
  bytes: Uint8Array,
  abs: number,
  n: number,
  Ctor: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; new (length: number): T; BYTES_PER_ELEMENT: number },
): T {
  const at = bytes.byteOffset + abs;
  if (LITTLE_ENDIAN && at % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(bytes.buffer, at, n);
  const out = new Ctor(n);
  const dst = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  dst.set(bytes.subarray(abs, abs + n * Ctor.BYTES_PER_ELEMENT));
  if (!LITTLE_ENDIAN) swapBytes(dst, Ctor.BYTES_PER_ELEMENT);
  return out;
}

function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i < b.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = b[lo]!;
      b[lo] = b[hi]!;
      b[hi] = t;
    }
  }
}

function readTensor(bytes: Uint8Array, e: SafetensorsEntry, dataStart: number, source: string): Tensor {
  const n = (e.end - e.begin) / ITEM_SIZE[e.dtype];
  const abs = dataStart + e.begin;
  switch (e.dtype) {
    case 'F32':
      return Tensor.fromArray(viewOrCopy(bytes, abs, n, Float32Array), e.shape, 'f32');
    case 'I32':
      return Tensor.fromArray(viewOrCopy(bytes, abs, n, Int32Array), e.shape, 'i32');
    case 'F16':
      return Tensor.fromArray(viewOrCopy(bytes, abs, n, Uint16Array), e.shape, 'f16');
    case 'BF16':
      return Tensor.fromArray(viewOrCopy(bytes, abs, n, Uint16Array), e.shape, 'bf16');
    default:
      break;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + abs, e.end - e.begin);
  if (e.dtype === 'F64') {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
    return Tensor.fromArray(out, e.shape, 'f32');
  }
  const out = new Int32Array(n);
  const tooBig = (i: number, v: bigint | number): never => {
    throw new RangeError(`safetensors ${source}: tensor '${e.name}': ${e.dtype} value ${v} at index ${i} does not fit in i32 (Weft's integer type)`);
  };
  switch (e.dtype) {
    case 'I64':
      for (let i = 0; i < n; i++) {
        const v = view.getBigInt64(i * 8, true);
        if (v < -2147483648n || v > 2147483647n) tooBig(i, v);
        out[i] = Number(v);
      }
      break;
    case 'U64':
      for (let i = 0; i < n; i++) {
        const v = view.getBigUint64(i * 8, true);
        if (v > 2147483647n) tooBig(i, v);
        out[i] = Number(v);
      }
      break;
    case 'U32':
      for (let i = 0; i < n; i++) {
        const v = view.getUint32(i * 4, true);
        if (v > 2147483647) tooBig(i, v);
        out[i] = v;
      }
      break;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true);
      break;
    case 'U16':
      for (let i = 0; i < n; i++) out[i] = view.getUint16(i * 2, true);
      break;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = view.getInt8(i);
      break;
    case 'U8':
      for (let i = 0; i < n; i++) out[i] = view.getUint8(i);
      break;
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = view.getUint8(i) !== 0 ? 1 : 0;
      break;
  }
  return Tensor.fromArray(out, e.shape, 'i32');
}

/**
 * Parses a safetensors file held in memory. F32/I32/F16/BF16 tensors whose data is aligned share
 * `bytes` (don't reuse the buffer while they live); F64 → f32, integer types → i32 (range-checked).
 */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsFile {
  const header = parseSafetensorsHeader(bytes, source);
  const tensors = new Map<string, Tensor>();
  // Header order is not data order; keep the file's tensors sorted by name for a stable iteration order.
  const byName = [...header.entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of byName) tensors.set(e.name, readTensor(bytes, e, header.dataStart, source));
  return { tensors, metadata: header.metadata };
}

function checkMetadata(metadata: Record<string, string>): void {
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new TypeError(`serializeSafetensors: metadata '${k}' must be a string, got ${typeof v}`);
  }
}

/**
 * The file as a list of chunks (header, then each tensor's bytes): lets `saveSafetensors` stream
 * a large model to disk without building one buffer of its whole size.
 */
export function safetensorsChunks(
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata?: Record<string, string>,
): Uint8Array[] {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  for (const [name, t] of entries) {
    if (name === '' || name === METADATA_KEY) throw new Error(`serializeSafetensors: invalid tensor name '${name}'`);
    if (t.isDisposed) throw new Error(`serializeSafetensors: tensor '${name}' was disposed`);
  }
  // HF's order (so Weft writes the same bytes as Python's safetensors): dtype descending in HF's
  // enum order, which puts larger elements first and keeps every tensor aligned to its element size,
  // then name by UTF-8 bytes.
  const keyed = entries.map(([name, t]) => ({ name, t, key: Buffer.from(name, 'utf8') }));
  keyed.sort((a, b) => WRITE_RANK[b.t.dtype] - WRITE_RANK[a.t.dtype] || Buffer.compare(a.key, b.key));

  const header: [string, unknown][] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    checkMetadata(metadata);
    header.push([METADATA_KEY, metadata]);
  }
  const data: Uint8Array[] = [];
  let offset = 0;
  for (const { name, t } of keyed) {
    const arr = t.dense();
    let bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
    if (!LITTLE_ENDIAN) {
      bytes = bytes.slice();
      swapBytes(bytes, arr.BYTES_PER_ELEMENT);
    }
    header.push([name, { dtype: WRITE_DTYPE[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] }]);
    offset += bytes.byteLength;
    data.push(bytes);
  }
  const json = new TextEncoder().encode(JSON.stringify(Object.fromEntries(header)));
  // Spaces up to a multiple of 8, as HF pads, so the data section starts 8-byte aligned.
  const padded = new Uint8Array(Math.ceil(json.byteLength / 8) * 8).fill(0x20);
  padded.set(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded.byteLength), true);
  return [prefix, padded, ...data];
}

/** The whole file in one buffer. Tensors are written in HF's order (element size, then name). */
export function serializeSafetensors(
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const chunks = safetensorsChunks(tensors, metadata);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export async function loadSafetensors(path: string): Promise<SafetensorsFile> {
  return parseSafetensors(await fsp.readFile(path), path);
}

export function loadSafetensorsSync(path: string): SafetensorsFile {
  return parseSafetensors(fs.readFileSync(path), path);
}

/**
 * Writes atomically (temp file, fsync, rename): a crash mid-save leaves the previous file intact.
 * The tensors' memory is streamed to disk without a copy, so don't modify them until the promise
 * settles (or serialize first with `serializeSafetensors`, which copies).
 */
export async function saveSafetensors(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, safetensorsChunks(tensors, metadata));
}

export function saveSafetensorsSync(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata?: Record<string, string>,
): void {
  writeFileAtomicSync(path, safetensorsChunks(tensors, metadata));
}

/**
 * The weights of a Hugging Face model directory: `model.safetensors`, or the shards listed in
 * `model.safetensors.index.json` (as transformers writes large models). `source` names what was
 * read, for error messages.
 */
export async function loadModelWeights(dir: string): Promise<{ tensors: Map<string, Tensor>; source: string }> {
  const single = `${dir}/model.safetensors`;
  const indexPath = `${dir}/model.safetensors.index.json`;
  if (fs.existsSync(single) || !fs.existsSync(indexPath)) {
    return { tensors: (await loadSafetensors(single)).tensors, source: single };
  }
  let index: { weight_map?: Record<string, string> };
  try {
    index = JSON.parse(await fsp.readFile(indexPath, 'utf8')) as { weight_map?: Record<string, string> };
  } catch (e) {
    throw new Error(`${indexPath}: not valid JSON (${(e as Error).message})`);
  }
  if (index.weight_map === undefined || typeof index.weight_map !== 'object') {
    throw new Error(`${indexPath}: no "weight_map" object naming each tensor's shard`);
  }
  const tensors = new Map<string, Tensor>();
  for (const shard of new Set(Object.values(index.weight_map))) {
    for (const [name, t] of (await loadSafetensors(`${dir}/${shard}`)).tensors) tensors.set(name, t);
  }
  return { tensors, source: indexPath };
}
