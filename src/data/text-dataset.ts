/**
 * A text corpus tokenized once, split into train and validation ids, sampled as random windows —
 * nanoGPT's get_batch: offsets uniform in [0, len − blockSize), x = data[i : i+T], y = data[i+1 : i+1+T].
 */
import type { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import type { Tokenizer } from './tokenizer.js';

export type Split = 'train' | 'val';

export interface Batch {
  /** Input ids, i32 [B, T]. */
  x: Tensor;
  /** Next-token targets, i32 [B, T]. */
  y: Tensor;
}

export interface TextDatasetOptions {
  /** Fraction of the ids that go to training; the rest (the end of the text) is validation. Default 0.9. */
  trainFraction?: number;
}

export class TextDataset {
  readonly train: Int32Array;
  readonly val: Int32Array;

  constructor(ids: Int32Array, options: TextDatasetOptions = {}) {
    const fraction = options.trainFraction ?? 0.9;
    if (!(fraction > 0 && fraction < 1)) throw new RangeError(`TextDataset: trainFraction must be in (0, 1), got ${fraction}`);
    // nanoGPT: n = len(data); train = data[:int(n*0.9)], val = data[int(n*0.9):].
    const n = Math.floor(ids.length * fraction);
    this.train = ids.subarray(0, n);
    this.val = ids.subarray(n);
  }

  static fromText(text: string, tokenizer: Tokenizer, options: TextDatasetOptions = {}): TextDataset {
    return new TextDataset(Int32Array.from(tokenizer.encode(text)), options);
  }

  get numTokens(): number {
    return this.train.length + this.val.length;
  }

  /** The number of distinct windows of `blockSize` (+1 target) a split offers; 0 if it is too short. */
  windows(split: Split, blockSize: number): number {
    return Math.max(0, this.ids(split).length - blockSize);
  }

  /**
   * `batchSize` random windows of `blockSize` tokens from `split`, offsets drawn from `generator`
   * (one draw per row, in row order, so a saved generator state reproduces the batch).
   */
  batch(split: Split, batchSize: number, blockSize: number, generator: Generator): Batch {
    const data = this.ids(split);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`TextDataset.batch: batchSize must be a positive integer, got ${batchSize}`);
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`TextDataset.batch: blockSize must be a positive integer, got ${blockSize}`);
    const windows = data.length - blockSize;
    if (windows < 1) {
      throw new RangeError(
        `TextDataset.batch: the ${split} split has ${data.length} tokens, too few for a window of block size ${blockSize} plus one target; use more text or a smaller block size`,
      );
    }
    const x = new Int32Array(batchSize * blockSize);
    const y = new Int32Array(batchSize * blockSize);
    for (let b = 0; b < batchSize; b++) {
      const i = generator.int(0, windows);
      x.set(data.subarray(i, i + blockSize), b * blockSize);
      y.set(data.subarray(i + 1, i + 1 + blockSize), b * blockSize);
    }
    return { x: Tensor.fromArray(x, [batchSize, blockSize], 'i32'), y: Tensor.fromArray(y, [batchSize, blockSize], 'i32') };
  }

  private ids(split: Split): Int32Array {
    if (split === 'train') return this.train;
    if (split === 'val') return this.val;
    throw new RangeError(`TextDataset: split must be 'train' or 'val', got ${JSON.stringify(split)}`);
  }
}
