export type { Tokenizer } from './tokenizer.js';
export { CharTokenizer } from './char-tokenizer.js';
export { TextDataset, type Batch, type Split, type TextDatasetOptions } from './text-dataset.js';
