/** In-place initialisers (PyTorch's nn.init), drawing from a seeded Generator. */
import { defaultGenerator, type Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';

function values(t: Tensor): Float32Array {
  if (t.dtype !== 'f32' || !t.isContiguous()) throw new TypeError('init: expects a dense f32 tensor');
  return t.storage.data.subarray(t.offset, t.offset + t.numel) as Float32Array;
}

export function normal_(t: Tensor, mean = 0, std = 1, generator: Generator = defaultGenerator): Tensor {
  const a = values(t);
  for (let i = 0; i < a.length; i++) a[i] = mean + std * generator.normal();
  return t;
}

export function uniform_(t: Tensor, low = 0, high = 1, generator: Generator = defaultGenerator): Tensor {
  const a = values(t);
  for (let i = 0; i < a.length; i++) a[i] = low + (high - low) * generator.uniform();
  return t;
}

export function constant_(t: Tensor, value: number): Tensor {
  values(t).fill(value);
  return t;
}

export const zeros_ = (t: Tensor): Tensor => constant_(t, 0);
export const ones_ = (t: Tensor): Tensor => constant_(t, 1);
