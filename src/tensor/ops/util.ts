/** Helpers shared by the op files; internal, not exported from the package. */
import type { Strided } from '../backend/backend.js';
import { type Shape, broadcastStrides } from '../shape.js';
import { Tensor } from '../tensor.js';

/** A tensor, or a number standing for a 0-d f32 constant that broadcasts. */
export type TensorLike = Tensor | number;

/** Throws a TypeError naming `op` unless `t` is f32 (without densifying it, unlike `t.f32()`). */
export function checkF32(t: Tensor, op: string): void {
  if (t.dtype !== 'f32') {
    throw new TypeError(`${op}: expected an f32 tensor, got ${t.dtype}; convert with .to('f32')`);
  }
}

/** A number as a 0-d f32 tensor; a tensor checked to be f32. */
export function asTensor(x: TensorLike, op: string): Tensor {
  if (typeof x === 'number') return Tensor.full([], x);
  if (!(x instanceof Tensor)) throw new TypeError(`${op}: expected a Tensor or a number, got ${typeof x}`);
  checkF32(x, op);
  return x;
}

/** The f32 buffer of a freshly allocated (dense, offset 0) tensor. */
export function outData(t: Tensor): Float32Array {
  return t.storage.data as Float32Array;
}

/** `t` as a kernel operand broadcast to `shape` (stride 0 on broadcast dims). */
export function broadcastView(t: Tensor, shape: Shape): Strided<Float32Array> {
  const s = t.strided() as Strided<Float32Array>;
  return { data: s.data, offset: s.offset, strides: broadcastStrides(t.shape, t.strides, shape) };
}

/**
 * Runs a backward body with a tracker for its temporaries; afterwards disposes every tracked tensor
 * that is not itself one of the returned gradients (views keep their own reference to storage).
 */
export function scoped(body: (tmp: (t: Tensor) => Tensor) => (Tensor | null)[]): (Tensor | null)[] {
  const temps: Tensor[] = [];
  const result = body((t) => {
    temps.push(t);
    return t;
  });
  for (const t of temps) if (!result.includes(t)) t.dispose();
  return result;
}

