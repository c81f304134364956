/** In-place initialisers (PyTorch's nn.init), drawing from a seeded Generator. */
import { defaultGenerator, type Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';

let skipDepth = 0;

/**
 * Builds modules without drawing their initial weights (Hugging Face's no_init_weights): for loaders
 * whose checkpoint overwrites every parameter anyway, where random initialisation was most of the
 * load time. Tensors are left zero; the generator is not advanced.
 */
export function withoutInit<T>(build: () => T): T {
  skipDepth++;
  try {
    return build();
  } finally {
    skipDepth--;
  }
}

function values(t: Tensor): Float32Array {
  if (t.dtype !== 'f32' || !t.isContiguous()) throw new TypeError('init: expects a dense f32 tensor');
  return t.storage.data.subarray(t.offset, t.offset + t.numel) as Float32Array;
}

export function normal_(t: Tensor, mean = 0, std = 1, generator: Generator = defaultGenerator): Tensor {
  const a = values(t);
  if (skipDepth > 0) return t;
  for (let i = 0; i < a.length; i++) a[i] = mean + std * generator.normal();
  return t;
}

export function uniform_(t: Tensor, low = 0, high = 1, generator: Generator = defaultGenerator): Tensor {
  const a = values(t);
  if (skipDepth > 0) return t;
  for (let i = 0; i < a.length; i++) a[i] = low + (high - low) * generator.uniform();
  return t;
}

export function constant_(t: Tensor, value: number): Tensor {
  values(t).fill(value);
  return t;
}

export const zeros_ = (t: Tensor): Tensor => constant_(t, 0);
export const ones_ = (t: Tensor): Tensor => constant_(t, 1);
