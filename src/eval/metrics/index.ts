/** Evaluation metrics, each matching its reference implementation (see the file of each). */
export { corpusBleu, sentenceBleu, computeBleu, bleuStatistics, type BleuOptions, type BleuResult, type BleuSmoothMethod } from './bleu.js';
export { BLEU_TOKENIZERS, getBleuTokenizer, type BleuTokenizerName } from './sacrebleu-tokenizers.js';
export { chrf, sentenceChrf, chrfFromStatistics, type ChrfOptions, type ChrfResult } from './chrf.js';
export { rouge, rougeTokenize, DEFAULT_ROUGE_TYPES, type RougeOptions, type RougeResult, type RougeScore } from './rouge.js';
export { porterStem } from './porter.js';
export { ciderD, type CiderItem, type CiderOptions, type CiderResult } from './cider.js';
export { passAtK, meanPassAtK } from './pass-at-k.js';
export {
  accuracy,
  precisionRecallF1,
  f1Score,
  matthewsCorrelation,
  pearson,
  spearman,
  averageRanks,
  type Label,
  type Averaging,
  type PrecisionRecallF1,
} from './classification.js';
export { exactMatch, squadF1, normalizeAnswer } from './qa.js';
export {
  perplexity,
  tokenPerplexity,
  wordPerplexity,
  bytePerplexity,
  bitsPerByte,
  countWords,
  countBytes,
  rollingTokenWindows,
  makeDisjointWindow,
  rollingLoglikelihood,
  type WeightedLoglikelihood,
  type TokenWindow,
} from './perplexity.js';
