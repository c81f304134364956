/** Joining and splitting: concat, stack, split, chunk. Splits are views; joins copy once. */
import { record } from '../autograd.js';
import { formatShape, normAxis } from '../shape.js';
import { copyInto, Tensor } from '../tensor.js';

/** Joins tensors along an existing dim (torch.cat). */
export function concat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new RangeError('concat: needs at least one tensor');
  const first = tensors[0]!;
  const d = normAxis(dim, first.ndim, 'concat');
  let total = 0;
  for (const [i, t] of tensors.entries()) {
    if (t.dtype !== first.dtype) {
      throw new TypeError(`concat: tensor ${i} has dtype ${t.dtype}, tensor 0 has ${first.dtype}`);
    }
    if (t.ndim !== first.ndim || t.shape.some((s, j) => j !== d && s !== first.shape[j])) {
      throw new RangeError(
        `concat: tensor ${i} has shape ${formatShape(t.shape)}, incompatible with ${formatShape(first.shape)} along dim ${dim}`,
      );
    }
    total += t.shape[d]!;
  }
  const shape = [...first.shape];
  shape[d] = total;
  const out = Tensor.empty(shape, first.dtype);
  const sizes = tensors.map((t) => t.shape[d]!);
  let offset = 0;
  for (const t of tensors) {
    const len = t.shape[d]!;
    if (len > 0) {
      const slot = out.slice(d, offset, offset + len);
      copyInto(t, slot);
      slot.dispose();
    }
    offset += len;
  }
  return record(out, 'concat', tensors, (g) => {
    let start = 0;
    return sizes.map((len) => {
      const part = g.slice(d, start, start + len);
      start += len;
      return part;
    });
  });
}

export const cat = concat;

/** Joins tensors along a new dim (torch.stack). */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new RangeError('stack: needs at least one tensor');
  const first = tensors[0]!;
  for (const [i, t] of tensors.entries()) {
    if (t.ndim !== first.ndim || t.shape.some((s, j) => s !== first.shape[j])) {
      throw new RangeError(`stack: tensor ${i} has shape ${formatShape(t.shape)}, tensor 0 has ${formatShape(first.shape)}`);
    }
  }
  const d = normAxis(dim, first.ndim + 1, 'stack');
  return concat(
    tensors.map((t) => t.unsqueeze(d)),
    d,
  );
}

/** Splits into pieces of `size` (last may be smaller) or of the given sizes; pieces are views. */
export function split(x: Tensor, sizeOrSizes: number | readonly number[], dim = 0): Tensor[] {
  const d = normAxis(dim, x.ndim, 'split');
  const n = x.shape[d]!;
  let sizes: number[];
  if (typeof sizeOrSizes === 'number') {
    if (!Number.isInteger(sizeOrSizes) || sizeOrSizes < 1) {
      throw new RangeError(`split: size must be a positive integer, got ${sizeOrSizes}`);
    }
    sizes = [];
    for (let s = 0; s < n; s += sizeOrSizes) sizes.push(Math.min(sizeOrSizes, n - s));
    if (n === 0) sizes.push(0);
  } else {
    sizes = [...sizeOrSizes];
    const sum = sizes.reduce((a, b) => a + b, 0);
    if (sum !== n || sizes.some((s) => !Number.isInteger(s) || s < 0)) {
      throw new RangeError(`split: sizes [${sizes.join(', ')}] do not add up to dim ${dim} of size ${n}`);
    }
  }
  let start = 0;
  return sizes.map((len) => {
    const part = x.slice(d, start, start + len);
    start += len;
    return part;
  });
}

/** Splits into `chunks` nearly equal views (torch.chunk: ceil-sized pieces, possibly fewer). */
export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  if (!Number.isInteger(chunks) || chunks < 1) throw new RangeError(`chunk: chunks must be a positive integer, got ${chunks}`);
  const d = normAxis(dim, x.ndim, 'chunk');
  const size = Math.max(1, Math.ceil(x.shape[d]! / chunks));
  return split(x, size, d);
}
