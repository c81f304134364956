/**
 * The batch plumbing every adapter shares: the step's flat token ids, positions, cache slots and
 * block-table layout; rotary tables grown on demand; the attention core (rotary → cache write →
 * paged attention); and the run over layers that ends in the rows the scheduler asked for.
 */
import { noGrad } from '../../tensor/autograd.js';
import { getBackend } from '../../tensor/backend/index.js';
import { Tensor } from '../../tensor/tensor.js';
import type { Module } from '../../nn/module.js';
import { BLOCK_SIZE, type PagedKVCache } from '../paged-kv.js';
import { pagedAttention, pagedWriteKV, ropeRotateHalf } from '../../nn/paged-attention.js';
import type { KVShape, PagedModel, SequenceChunk } from './types.js';

/** The step's batch, flattened. */
export interface StepLayout {
  tokens: number;
  ids: Int32Array;
  positions: Int32Array;
  slots: Int32Array;
  tables: Int32Array;
  tableOffsets: Int32Array;
  queryOffsets: Int32Array;
  starts: Int32Array;
  /** Flat token rows whose logits are wanted, in batch order. */
  logitRows: number[];
}

export function stepLayout(batch: readonly SequenceChunk[], vocabSize: number, contextLength: number, op: string): StepLayout {
  let tokens = 0;
  let tableLen = 0;
  for (const s of batch) {
    tokens += s.tokens.length;
    tableLen += s.blockTable.length;
  }
  const ids = new Int32Array(tokens);
  const positions = new Int32Array(tokens);
  const slots = new Int32Array(tokens);
  const tables = new Int32Array(tableLen);
  const tableOffsets = new Int32Array(batch.length + 1);
  const queryOffsets = new Int32Array(batch.length + 1);
  const starts = new Int32Array(batch.length);
  const logitRows: number[] = [];
  let row = 0;
  let t0 = 0;
  batch.forEach((s, i) => {
    const n = s.tokens.length;
    if (n === 0) throw new RangeError(`${op}: sequence ${i} has no tokens this step`);
    if (s.start + n > contextLength) throw new RangeError(`${op}: sequence ${i} reaches position ${s.start + n - 1}, beyond the context length ${contextLength}`);
    if (Math.ceil((s.start + n) / BLOCK_SIZE) > s.blockTable.length) {
      throw new RangeError(`${op}: sequence ${i}'s block table (${s.blockTable.length} blocks) does not cover ${s.start + n} positions`);
    }
    tables.set(s.blockTable, t0);
    tableOffsets[i] = t0;
    queryOffsets[i] = row;
    starts[i] = s.start;
    for (let j = 0; j < n; j++) {
      const id = s.tokens[j]!;
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new RangeError(`${op}: token id ${id} is outside the vocabulary [0, ${vocabSize})`);
      const pos = s.start + j;
      ids[row + j] = id;
      positions[row + j] = pos;
      slots[row + j] = s.blockTable[Math.floor(pos / BLOCK_SIZE)]! * BLOCK_SIZE + (pos % BLOCK_SIZE);
    }
    if (s.logits === 'last') logitRows.push(row + n - 1);
    else if (s.logits === 'all') for (let j = 0; j < n; j++) logitRows.push(row + j);
    row += n;
    t0 += s.blockTable.length;
  });
  tableOffsets[batch.length] = t0;
  queryOffsets[batch.length] = row;
  return { tokens, ids, positions, slots, tables, tableOffsets, queryOffsets, starts, logitRows };
}

/** cos/sin tables [rows, half] for positions 0 … rows − 1, recomputed larger when a step needs more. */
export class RopeTables {
  cos: Float32Array = new Float32Array(0);
  sin: Float32Array = new Float32Array(0);
  private rows = 0;

  constructor(
    private readonly make: (rows: number) => { cos: Float32Array; sin: Float32Array },
    private readonly maxRows: number,
  ) {}

  ensure(positions: Int32Array): void {
    let max = -1;
    for (let i = 0; i < positions.length; i++) if (positions[i]! > max) max = positions[i]!;
    if (max < this.rows) return;
    const rows = Math.min(this.maxRows, Math.max(256, 2 * this.rows, max + 1));
    ({ cos: this.cos, sin: this.sin } = this.make(rows));
    this.rows = rows;
  }
}

/** Dense [rows, cols] copy of a strided column range of a 2-D tensor's rows (splits a fused qkv). */
export function columns(x: Tensor, from: number, width: number): Tensor {
  const [rows, cols] = x.shape as [number, number];
  const out = Tensor.empty([rows, width]);
  const src = x.contiguous();
  getBackend().copyStrided({ data: src.f32('columns'), offset: from, strides: [cols, 1] }, [rows, width], out.storage.data as Float32Array);
  if (src !== x) src.dispose();
  return out;
}

/**
 * Rotary (when tables are given) on q [N, H·D] and k [N, KV·D] in place, keys and values into the
 * layer's cache, then paged attention: y [N, H·D]. q, k, v must be dense tensors the caller owns.
 */
export function pagedAttentionCore(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  layer: number,
  heads: number,
  shape: KVShape,
  lay: StepLayout,
  kv: PagedKVCache,
  rope: RopeTables | null,
): Tensor {
  const op = 'pagedAttentionCore';
  const { kvHeads: KV, headDim: D } = shape;
  const qd = q.f32(op);
  const kd = k.f32(op);
  if (rope !== null) {
    ropeRotateHalf(qd, heads, D, rope.cos, rope.sin, lay.positions);
    ropeRotateHalf(kd, KV, D, rope.cos, rope.sin, lay.positions);
  }
  const kc = kv.keys[layer]!;
  const vc = kv.values[layer]!;
  pagedWriteKV(kd, v.f32(op), lay.slots, KV, D, BLOCK_SIZE, kc, vc);
  const y = Tensor.empty([lay.tokens, heads * D]);
  pagedAttention(qd, kc, vc, { ...lay, heads, kvHeads: KV, dim: D, blockSize: BLOCK_SIZE, scale: 1 / Math.sqrt(D) }, y.storage.data as Float32Array);
  return y;
}

/** Rows `rows` of a 2-D tensor as a new dense tensor. */
export function selectRows(x: Tensor, rows: readonly number[]): Tensor {
  const cols = x.shape[1]!;
  const src = x.f32('selectRows');
  const out = Tensor.empty([rows.length, cols]);
  const od = out.storage.data as Float32Array;
  rows.forEach((r, i) => od.set(src.subarray(r * cols, (r + 1) * cols), i * cols));
  return out;
}

/** The family-specific pieces; `PagedDecoder` runs them over a step. */
export abstract class PagedDecoder implements PagedModel {
  abstract readonly family: string;
  abstract readonly vocabSize: number;
  abstract readonly contextLength: number;
  abstract readonly hiddenSize: number;
  abstract readonly kvShape: KVShape;
  abstract readonly module: Module;
  protected abstract readonly nLayer: number;

  /** Token (+ position) embeddings [N, C]. */
  protected abstract embed(lay: StepLayout): Tensor;
  /** One decoder layer: returns the new residual stream (the caller disposes the old one). */
  protected abstract layer(i: number, x: Tensor, lay: StepLayout, kv: PagedKVCache): Tensor;
  protected abstract finalNorm(x: Tensor): Tensor;
  protected abstract head(h: Tensor): Tensor;

  private run(batch: readonly SequenceChunk[], kv: PagedKVCache, op: string): { x: Tensor; lay: StepLayout } {
    const s = this.kvShape;
    if (kv.nLayer !== s.nLayer || kv.kvHeads !== s.kvHeads || kv.headDim !== s.headDim) {
      throw new RangeError(
        `${op}: KV cache (layers ${kv.nLayer}, kv heads ${kv.kvHeads}, head dim ${kv.headDim}) does not fit the model ` +
          `(layers ${s.nLayer}, kv heads ${s.kvHeads}, head dim ${s.headDim})`,
      );
    }
    const lay = stepLayout(batch, this.vocabSize, this.contextLength, op);
    let x = this.embed(lay);
    for (let i = 0; i < this.nLayer; i++) {
      const next = this.layer(i, x, lay, kv);
      x.dispose();
      x = next;
    }
    return { x, lay };
  }

  forward(batch: readonly SequenceChunk[], kv: PagedKVCache): Tensor {
    return noGrad(() => {
      const { x, lay } = this.run(batch, kv, `${this.family}.pagedForward`);
      if (lay.logitRows.length === 0) {
        x.dispose();
        return Tensor.zeros([0, this.vocabSize]);
      }
      const picked = lay.logitRows.length === lay.tokens ? x : selectRows(x, lay.logitRows);
      if (picked !== x) x.dispose();
      const h = this.finalNorm(picked);
      picked.dispose();
      const logits = this.head(h);
      h.dispose();
      return logits;
    });
  }

  hiddenStates(batch: readonly SequenceChunk[], kv: PagedKVCache): Tensor {
    return noGrad(() => {
      const { x } = this.run(batch, kv, `${this.family}.hiddenStates`);
      const h = this.finalNorm(x);
      x.dispose();
      return h;
    });
  }
}
