/**
 * BERT's vocab.txt (one WordPiece token per line; the line number is the id) as the full BERT
 * tokenizer — what Hugging Face's BertTokenizerFast builds from it: BertNormalizer (lowercase and
 * accent stripping for uncased vocabularies, CJK ideographs split, control characters removed),
 * BertPreTokenizer, WordPiece ("##" continuations, [UNK] for words over 100 characters or with no
 * segmentation), [CLS] A [SEP] (B [SEP]) with type ids, and the WordPiece decoder.
 */
import { readFileSync } from 'node:fs';
import '../components.js';
import '../decoders/wordpiece.js';
import '../models/wordpiece.js';
import '../normalizers/bert.js';
import '../pre-tokenizers/bert.js';
import { Tokenizer } from '../tokenizer.js';
import type { JsonObject } from '../types.js';

export interface BertVocabOptions {
  /** Lowercase (uncased models). Default true. */
  lowercase?: boolean;
  /** null (default): strip accents iff lowercasing. */
  stripAccents?: boolean | null;
  /** Put spaces around CJK ideographs. Default true. */
  handleChineseChars?: boolean;
  unkToken?: string;
  sepToken?: string;
  clsToken?: string;
  padToken?: string;
  maskToken?: string;
  maxInputCharsPerWord?: number;
}

/** token → id from vocab.txt text (HF's load_vocab: each line minus its "\n"; a later duplicate wins). */
export function parseBertVocab(text: string, source = 'vocab.txt'): Map<string, number> {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) throw new Error(`${source}: the vocabulary is empty`);
  const vocab = new Map<string, number>();
  lines.forEach((line, id) => {
    // Windows line endings would otherwise leave "\r" on every token.
    vocab.set(line.endsWith('\r') ? line.slice(0, -1) : line, id);
  });
  return vocab;
}

/** A BERT tokenizer from a token → id map. */
export function bertTokenizer(vocab: Map<string, number>, opts: BertVocabOptions = {}, source = 'vocab'): Tokenizer {
  const unk = opts.unkToken ?? '[UNK]';
  const sep = opts.sepToken ?? '[SEP]';
  const cls = opts.clsToken ?? '[CLS]';
  const pad = opts.padToken ?? '[PAD]';
  const mask = opts.maskToken ?? '[MASK]';
  if (!vocab.has(unk)) throw new Error(`${source}: the unknown token ${JSON.stringify(unk)} is not in the vocabulary`);
  const vocabJson: JsonObject = {};
  for (const [t, id] of vocab) vocabJson[t] = id;
  const added: JsonObject[] = [];
  for (const t of [pad, unk, cls, sep, mask]) {
    const id = vocab.get(t);
    if (id !== undefined) added.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  }
  added.sort((a, b) => (a.id as number) - (b.id as number));
  const sepId = vocab.get(sep);
  const clsId = vocab.get(cls);
  const lowercase = opts.lowercase ?? true;
  return Tokenizer.fromJSON({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: opts.handleChineseChars ?? true, strip_accents: opts.stripAccents ?? null, lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: sepId !== undefined && clsId !== undefined ? { type: 'BertProcessing', sep: [sep, sepId], cls: [cls, clsId] } : null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: unk, continuing_subword_prefix: '##', max_input_chars_per_word: opts.maxInputCharsPerWord ?? 100, vocab: vocabJson },
  });
}

/** Loads BERT's vocab.txt as a tokenizer. */
export function bertTokenizerFromVocab(vocabTxtPath: string, opts: BertVocabOptions = {}): Tokenizer {
  let text: string;
  try {
    text = readFileSync(vocabTxtPath, 'utf8');
  } catch (e) {
    throw new Error(`BERT vocab: cannot read ${vocabTxtPath}: ${(e as Error).message}`);
  }
  return bertTokenizer(parseBertVocab(text, vocabTxtPath), opts, vocabTxtPath);
}
