/**
 * WordPiece trainer, as Hugging Face `tokenizers` does it (models/wordpiece/trainer.rs): a BPE
 * trainer with `continuing_subword_prefix` "##" learns the vocabulary — every character but a word's
 * first carries "##", merged tokens keep the left side's form — and the WordPiece model takes the
 * resulting vocabulary (its merges are not needed: WordPiece matches longest-first at encode time).
 */
import { BpeTrainer, type BpeTrainerOptions } from './bpe.js';
import type { WordCounts } from './common.js';

export interface WordPieceTrainerOptions extends Omit<BpeTrainerOptions, 'continuingSubwordPrefix'> {
  /** Marks word-continuing pieces (default "##", BERT's). */
  continuingSubwordPrefix?: string;
}

export interface WordPieceTrainResult {
  /** Token → id, special tokens first. */
  vocab: Map<string, number>;
  continuingSubwordPrefix: string;
  specialTokens: string[];
}

export class WordPieceTrainer {
  private readonly bpe: BpeTrainer;
  readonly continuingSubwordPrefix: string;

  constructor(options: WordPieceTrainerOptions = {}) {
    this.continuingSubwordPrefix = options.continuingSubwordPrefix ?? '##';
    if (this.continuingSubwordPrefix.length === 0) throw new RangeError('WordPieceTrainer: continuingSubwordPrefix must not be empty');
    this.bpe = new BpeTrainer({ ...options, continuingSubwordPrefix: this.continuingSubwordPrefix }, 'WordPieceTrainer');
  }

  get vocabSize(): number {
    return this.bpe.vocabSize;
  }

  train(wordCounts: WordCounts): WordPieceTrainResult {
    const { vocab, specialTokens } = this.bpe.train(wordCounts);
    return { vocab, continuingSubwordPrefix: this.continuingSubwordPrefix, specialTokens };
  }
}
