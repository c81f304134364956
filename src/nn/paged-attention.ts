/**
 * Paged attention and its two helpers (rotary embedding at per-token positions, scattering new
 * keys/values into cache slots): the native kernels of native/paged_attention.cc when the addon has
 * them, else the plain TypeScript reference below, which the tests compare the kernels against.
 *
 * Layouts: queries and outputs [tokens, heads, dim] (a projection's output as is); the cache of one
 * layer [blocks, kvHeads, blockSize, dim]. Sequence s owns query rows [queryOffsets[s],
 * queryOffsets[s+1]) at positions starts[s] + i and its block ids are tables[tableOffsets[s] …].
 */
import { nativeAddonExports } from '../tensor/backend/native.js';
import { getBackend } from '../tensor/backend/index.js';

export interface PagedBatchLayout {
  /** Concatenated block tables. */
  tables: Int32Array;
  /** [seqs + 1] offsets into tables. */
  tableOffsets: Int32Array;
  /** [seqs + 1] query-row offsets. */
  queryOffsets: Int32Array;
  /** [seqs] position of each sequence's first query row. */
  starts: Int32Array;
}

export interface PagedAttentionParams extends PagedBatchLayout {
  heads: number;
  kvHeads: number;
  dim: number;
  blockSize: number;
  scale: number;
}

interface PagedAddon {
  pagedAttention(
    q: Float32Array,
    kCache: Float32Array,
    vCache: Float32Array,
    tables: Int32Array,
    tableOffsets: Int32Array,
    queryOffsets: Int32Array,
    starts: Int32Array,
    heads: number,
    kvHeads: number,
    dim: number,
    blockSize: number,
    scale: number,
    out: Float32Array,
  ): void;
  pagedWriteKV(k: Float32Array, v: Float32Array, slots: Int32Array, kvHeads: number, dim: number, blockSize: number, kCache: Float32Array, vCache: Float32Array): void;
  ropeRotateHalf(x: Float32Array, heads: number, dim: number, cos: Float32Array, sin: Float32Array, positions: Int32Array): void;
}

let addonCache: PagedAddon | null | undefined;

/** The addon's paged kernels, or null (no addon, an addon built before them, or the js backend chosen). */
export function pagedAddon(): PagedAddon | null {
  if (addonCache === undefined) {
    const a = nativeAddonExports();
    addonCache = a !== null && typeof a.pagedAttention === 'function' && typeof a.pagedWriteKV === 'function' && typeof a.ropeRotateHalf === 'function' ? (a as unknown as PagedAddon) : null;
  }
  return getBackend().name === 'native' ? addonCache : null;
}

/** Attention of every query row over its sequence's cached keys (causal), into out [tokens, heads, dim]. */
export function pagedAttention(q: Float32Array, kCache: Float32Array, vCache: Float32Array, p: PagedAttentionParams, out: Float32Array): void {
  const addon = pagedAddon();
  if (addon !== null) {
    addon.pagedAttention(q, kCache, vCache, p.tables, p.tableOffsets, p.queryOffsets, p.starts, p.heads, p.kvHeads, p.dim, p.blockSize, p.scale, out);
  } else {
    pagedAttentionReference(q, kCache, vCache, p, out);
  }
}

/** The reference: a two-pass softmax per query row in f64, reading keys through the block table. */
export function pagedAttentionReference(q: Float32Array, kCache: Float32Array, vCache: Float32Array, p: PagedAttentionParams, out: Float32Array): void {
  const { heads: H, kvHeads: KV, dim: D, blockSize: B, scale } = p;
  if (H % KV !== 0) throw new RangeError(`pagedAttention: heads ${H} is not a multiple of kvHeads ${KV}`);
  const group = H / KV;
  const numBlocks = kCache.length / (KV * B * D);
  const seqs = p.starts.length;
  for (let s = 0; s < seqs; s++) {
    const row0 = p.queryOffsets[s]!;
    const rows = p.queryOffsets[s + 1]! - row0;
    const t0 = p.tableOffsets[s]!;
    const needBlocks = Math.ceil((p.starts[s]! + rows) / B);
    if (needBlocks > p.tableOffsets[s + 1]! - t0) throw new RangeError(`pagedAttention: block table of sequence ${s} is too short`);
    for (let i = 0; i < rows; i++) {
      const nkeys = p.starts[s]! + i + 1;
      const scores = new Float64Array(nkeys);
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / group);
        const qo = ((row0 + i) * H + h) * D;
        let max = -Infinity;
        for (let j = 0; j < nkeys; j++) {
          const blk = p.tables[t0 + Math.floor(j / B)]!;
          if (blk < 0 || blk >= numBlocks) throw new RangeError(`pagedAttention: block id ${blk} is outside [0, ${numBlocks})`);
          const ko = ((blk * KV + g) * B + (j % B)) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d]! * kCache[ko + d]!;
          scores[j] = dot * scale;
          if (scores[j]! > max) max = scores[j]!;
        }
        let sum = 0;
        for (let j = 0; j < nkeys; j++) {
          scores[j] = Math.exp(scores[j]! - max);
          sum += scores[j]!;
        }
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < nkeys; j++) {
            const blk = p.tables[t0 + Math.floor(j / B)]!;
            acc += scores[j]! * vCache[((blk * KV + g) * B + (j % B)) * D + d]!;
          }
          out[qo + d] = acc / sum;
        }
      }
    }
  }
}

/** Copies k, v [tokens, kvHeads, dim] into the cache at slots (block·blockSize + offset). */
export function pagedWriteKV(k: Float32Array, v: Float32Array, slots: Int32Array, kvHeads: number, dim: number, blockSize: number, kCache: Float32Array, vCache: Float32Array): void {
  const addon = pagedAddon();
  if (addon !== null) {
    addon.pagedWriteKV(k, v, slots, kvHeads, dim, blockSize, kCache, vCache);
    return;
  }
  const capacity = kCache.length / (kvHeads * dim);
  for (let t = 0; t < slots.length; t++) {
    const slot = slots[t]!;
    if (slot < 0 || slot >= capacity) throw new RangeError(`pagedWriteKV: slot ${slot} is outside [0, ${capacity})`);
    const blk = Math.floor(slot / blockSize);
    const off = slot % blockSize;
    for (let g = 0; g < kvHeads; g++) {
      const src = (t * kvHeads + g) * dim;
      const dst = ((blk * kvHeads + g) * blockSize + off) * dim;
      kCache.set(k.subarray(src, src + dim), dst);
      vCache.set(v.subarray(src, src + dim), dst);
    }
  }
}

/** Rotate-half rotary embedding in place on x [positions.length, heads, dim]; tables [rows, dim/2]. */
export function ropeRotateHalf(x: Float32Array, heads: number, dim: number, cos: Float32Array, sin: Float32Array, positions: Int32Array): void {
  const addon = pagedAddon();
  if (addon !== null) {
    addon.ropeRotateHalf(x, heads, dim, cos, sin, positions);
    return;
  }
  const half = dim / 2;
  const rows = cos.length / half;
  for (let t = 0; t < positions.length; t++) {
    const p = positions[t]!;
    if (p < 0 || p >= rows) throw new RangeError(`ropeRotateHalf: position ${p} is outside the tables [0, ${rows})`);
    for (let h = 0; h < heads; h++) {
      const at = (t * heads + h) * dim;
      for (let j = 0; j < half; j++) {
        const x1 = x[at + j]!;
        const x2 = x[at + j + half]!;
        const c = cos[p * half + j]!;
        const s = sin[p * half + j]!;
        x[at + j] = x1 * c - x2 * s;
        x[at + j + half] = x2 * c + x1 * s;
      }
    }
  }
}
