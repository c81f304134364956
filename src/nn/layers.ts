/** The basic layers: Linear, Conv1D (GPT-2's in×out linear), Embedding, LayerNorm, RMSNorm, Dropout. */
import { linear, layerNorm, rmsNorm, embedding, dropout, mul, silu } from '../tensor/index.js';
import { defaultGenerator, type Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { normal_, ones_, uniform_, zeros_ } from './init.js';
import { Module } from './module.js';

export interface LayerInit {
  generator?: Generator;
}

/**
 * Existing tensors a layer takes over instead of initialising its own (a wrapper such as a LoRA layer
 * shares its base layer's weights this way). `adoptedBias: null` means no bias.
 */
export interface AdoptedWeights {
  weight?: Tensor;
  adoptedBias?: Tensor | null;
}

function adopt(t: Tensor | null | undefined, shape: readonly number[]): Tensor | undefined {
  if (t === undefined || t === null) return undefined;
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new RangeError(`adopted weight has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  return t;
}

/** y = x Wᵀ + b with W stored [out, in] (PyTorch's layout). Initialised as PyTorch: U(±1/√in). */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LayerInit & { bias?: boolean } & AdoptedWeights = {},
  ) {
    super();
    const g = options.generator ?? defaultGenerator;
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.registerParameter('weight', adopt(options.weight, [outFeatures, inFeatures]) ?? uniform_(Tensor.zeros([outFeatures, inFeatures]), -bound, bound, g));
    const bias = options.bias === false || options.adoptedBias === null ? null : (adopt(options.adoptedBias, [outFeatures]) ?? uniform_(Tensor.zeros([outFeatures]), -bound, bound, g));
    this.bias = bias === null ? null : this.registerParameter('bias', bias);
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined);
  }
}

/**
 * y = x W + b with W stored [in, out]: Hugging Face's GPT-2 `Conv1D`, kept in that layout so a
 * checkpoint's tensors map one to one.
 */
export class Conv1D extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LayerInit & { bias?: boolean; std?: number } & AdoptedWeights = {},
  ) {
    super();
    const g = options.generator ?? defaultGenerator;
    this.weight = this.registerParameter('weight', adopt(options.weight, [inFeatures, outFeatures]) ?? normal_(Tensor.zeros([inFeatures, outFeatures]), 0, options.std ?? 0.02, g));
    const bias = options.bias === false || options.adoptedBias === null ? null : (adopt(options.adoptedBias, [outFeatures]) ?? Tensor.zeros([outFeatures]));
    this.bias = bias === null ? null : this.registerParameter('bias', bias);
  }

  forward(x: Tensor): Tensor {
    // W.mT is a free view; linear reads it back as the untransposed [in, out] matrix and fuses the bias.
    return linear(x, this.weight.mT, this.bias ?? undefined);
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    options: LayerInit & { std?: number } = {},
  ) {
    super();
    const g = options.generator ?? defaultGenerator;
    this.weight = this.registerParameter('weight', normal_(Tensor.zeros([numEmbeddings, embeddingDim]), 0, options.std ?? 1, g));
  }

  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly dim: number,
    options: { eps?: number; bias?: boolean } = {},
  ) {
    super();
    this.eps = options.eps ?? 1e-5;
    this.weight = this.registerParameter('weight', ones_(Tensor.zeros([dim])));
    this.bias = options.bias === false ? null : this.registerParameter('bias', zeros_(Tensor.zeros([dim])));
  }

  readonly eps: number;

  forward(x: Tensor): Tensor {
    return layerNorm(x, [this.dim], this.weight, this.bias ?? undefined, this.eps);
  }
}

export class RMSNorm extends Module {
  readonly weight: Tensor;
  readonly eps: number;

  constructor(
    readonly dim: number,
    options: { eps?: number } = {},
  ) {
    super();
    this.eps = options.eps ?? 1e-6;
    this.weight = this.registerParameter('weight', ones_(Tensor.zeros([dim])));
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, [this.dim], this.weight, this.eps);
  }
}

export class Dropout extends Module {
  constructor(
    readonly p: number,
    readonly generator: Generator = defaultGenerator,
  ) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training, generator: this.generator });
  }
}

/**
 * down(silu(gate(x)) · up(x)) for inference, freeing each intermediate as soon as it is used (no
 * autograd graph keeps them): the SwiGLU feed-forward of LLaMA and PaLM at decode time.
 */
export function swigluInference(m: { gate_proj: Linear; up_proj: Linear; down_proj: Linear }, x: Tensor): Tensor {
  const gate = m.gate_proj.forward(x);
  const act = silu(gate);
  gate.dispose();
  const up = m.up_proj.forward(x);
  const h = mul(act, up);
  act.dispose();
  up.dispose();
  const out = m.down_proj.forward(h);
  h.dispose();
  return out;
}
