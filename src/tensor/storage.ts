/**
 * Storage: a typed array owned by JS (so V8 sees the memory), shared by a tensor and its views,
 * with a reference count so `dispose()` can hand the buffer back early. Freed buffers go to a
 * size-bucketed pool that the next allocation of the same size reuses — the "per-step arena" that
 * keeps training and decode loops from churning the GC. Tensors that are never disposed are simply
 * garbage-collected.
 */
import { allocArray, type DType, type StorageArray, bytesPerElement } from './dtype.js';

const POOL_LIMIT_BYTES = 512 * 1024 * 1024;
const POOL_MAX_PER_BUCKET = 16;
/** Below this size, allocation is cheap and pooling isn't worth the bookkeeping. */
const POOL_MIN_ELEMENTS = 1024;

const pool = new Map<string, StorageArray[]>();
let pooledBytes = 0;

function bucketKey(dtype: DType, length: number): string {
  return `${dtype}:${length}`;
}

/** A buffer of `length` elements; contents are undefined unless `zero` (pooled buffers are reused). */
export function allocate(dtype: DType, length: number, zero: boolean): StorageArray {
  if (length >= POOL_MIN_ELEMENTS) {
    const bucket = pool.get(bucketKey(dtype, length));
    const reused = bucket?.pop();
    if (reused !== undefined) {
      pooledBytes -= reused.byteLength;
      if (zero) reused.fill(0);
      return reused;
    }
  }
  return allocArray(dtype, length);
}

function recycle(dtype: DType, data: StorageArray): void {
  if (data.length < POOL_MIN_ELEMENTS || data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) return;
  if (pooledBytes + data.byteLength > POOL_LIMIT_BYTES) return;
  const key = bucketKey(dtype, data.length);
  let bucket = pool.get(key);
  if (bucket === undefined) {
    bucket = [];
    pool.set(key, bucket);
  }
  if (bucket.length >= POOL_MAX_PER_BUCKET) return;
  bucket.push(data);
  pooledBytes += data.length * bytesPerElement(dtype);
}

/** Drops every pooled buffer (for tests and for giving memory back after a big job). */
export function clearPool(): void {
  pool.clear();
  pooledBytes = 0;
}

export function poolStats(): { buffers: number; bytes: number } {
  let buffers = 0;
  for (const b of pool.values()) buffers += b.length;
  return { buffers, bytes: pooledBytes };
}

export class Storage {
  /** Live references: tensors (and views) not yet disposed, plus autograd retains. */
  private refs = 1;

  constructor(
    public data: StorageArray,
    public readonly dtype: DType,
  ) {}

  get refCount(): number {
    return this.refs;
  }

  get released(): boolean {
    return this.refs <= 0;
  }

  retain(): void {
    if (this.refs <= 0) throw new Error('Storage.retain: the tensor was disposed and its memory reused');
    this.refs++;
  }

  release(): void {
    if (this.refs <= 0) return;
    this.refs--;
    if (this.refs === 0) {
      recycle(this.dtype, this.data);
      this.data = allocArray(this.dtype, 0);
    }
  }
}
