/**
 * Tokenizers from the vocabulary a GGUF file embeds (llama.cpp's tokenizer.ggml.* keys):
 *   "llama" (SPM): SentencePiece BPE by piece score with byte fallback, "▁" for spaces and a
 *     leading "▁" (add_space_prefix), BOS added (add_bos_token) — llama.cpp's llm_tokenizer_spm;
 *   "gpt2" (BPE): byte-level BPE from the tokens and tokenizer.ggml.merges, with the
 *     pre-tokenizer regex named by tokenizer.ggml.pre ("gpt-2", or the LLaMA-3 one);
 *   "bert" (WPM): WordPiece, after undoing llama.cpp's conversion of the vocabulary (word-initial
 *     pieces get a "▁" prefix there, continuation pieces lose their "##"), with BERT's
 *     normalizer and pre-tokenizer, and [CLS] … [SEP] around sequences.
 * Control tokens (token type 3) and the unknown token (2) become special added tokens,
 * user-defined ones (4) plain added tokens, as in the matching Hugging Face tokenizer.json.
 */
import { ggufBool, ggufInt, ggufNumberArray, ggufString, ggufStringArray, readGGUFFile, type GGUFFile } from '../../io/gguf.js';
import '../components.js';
import '../decoders/byte-fallback.js';
import '../decoders/fuse.js';
import '../decoders/replace.js';
import '../decoders/sequence.js';
import '../decoders/strip.js';
import '../decoders/wordpiece.js';
import '../models/wordpiece.js';
import '../normalizers/bert.js';
import '../pre-tokenizers/bert.js';
import { SentencePieceBPE } from '../models/spm.js';
import { decoders, normalizers, postProcessors } from '../registry.js';
import { Tokenizer } from '../tokenizer.js';
import type { JsonObject } from '../types.js';

/** llama.cpp's token types (llama_token_type). */
export const TOKEN_TYPE = { undefined: 0, normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** The GPT-2 byte-level pre-tokenizer's regex (what ByteLevel use_regex applies). */
const GPT2_PRE = new Set(['gpt-2', 'gpt2', 'default']);
/** Pre-tokenizer names llama.cpp maps to the LLaMA-3 (cl100k-style) regex. */
const LLAMA3_PRE = new Set(['llama-bpe', 'llama3', 'llama-v3', 'dbrx', 'smaug-bpe']);
const LLAMA3_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export interface SentencePieceVocab {
  pieces: readonly string[];
  scores: ArrayLike<number>;
  /** llama.cpp token types per piece (missing: control for <s>/</s>, normal otherwise). */
  types?: ArrayLike<number>;
  unkId?: number | null;
  bosId?: number | null;
  eosId?: number | null;
  addBos?: boolean;
  addEos?: boolean;
  /** Prepend "▁" to the text (SentencePiece's add_dummy_prefix); default true. */
  addSpacePrefix?: boolean;
}

function addedToken(id: number, content: string, special: boolean): JsonObject {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special };
}

/** Added tokens for the control / unknown / user-defined entries of a typed vocabulary. */
function addedTokensFor(pieces: readonly string[], types: ArrayLike<number> | undefined): JsonObject[] {
  const out: JsonObject[] = [];
  if (types === undefined) return out;
  for (let id = 0; id < pieces.length; id++) {
    const t = types[id];
    if (t === TOKEN_TYPE.control || t === TOKEN_TYPE.unknown) out.push(addedToken(id, pieces[id]!, true));
    else if (t === TOKEN_TYPE.userDefined) out.push({ ...addedToken(id, pieces[id]!, false), normalized: false });
  }
  return out;
}

/** TemplateProcessing that adds BOS / EOS as llama.cpp does (null when it adds neither). */
function bosEosProcessor(pieces: readonly string[], bos: number | null, eos: number | null): JsonObject | null {
  const specials: JsonObject = {};
  const around = (typeId: number, seq: 'A' | 'B'): JsonObject[] => {
    const parts: JsonObject[] = [];
    if (bos !== null) parts.push({ SpecialToken: { id: pieces[bos]!, type_id: typeId } });
    parts.push({ Sequence: { id: seq, type_id: typeId } });
    if (eos !== null) parts.push({ SpecialToken: { id: pieces[eos]!, type_id: typeId } });
    return parts;
  };
  if (bos === null && eos === null) return null;
  for (const id of [bos, eos]) if (id !== null) specials[pieces[id]!] = { id: pieces[id]!, ids: [id], tokens: [pieces[id]!] };
  return { type: 'TemplateProcessing', single: around(0, 'A'), pair: [...around(0, 'A'), ...around(1, 'B')], special_tokens: specials };
}

function checkId(id: number | null | undefined, n: number, what: string): number | null {
  if (id === null || id === undefined) return null;
  if (!Number.isInteger(id) || id < 0 || id >= n) throw new Error(`${what} ${id} is outside the vocabulary (size ${n})`);
  return id;
}

/**
 * A LLaMA-style SentencePiece tokenizer (llama.cpp's SPM path): "▁" for spaces and a leading "▁",
 * score-ordered merges with byte fallback, BOS/EOS by the flags, and the matching decoder.
 */
export function sentencePieceTokenizer(v: SentencePieceVocab): Tokenizer {
  const n = v.pieces.length;
  const unkId = checkId(v.unkId, n, 'unknown token id');
  const bosId = checkId(v.bosId, n, 'BOS token id');
  const eosId = checkId(v.eosId, n, 'EOS token id');
  const prefix = v.addSpacePrefix ?? true;
  const model = new SentencePieceBPE(v.pieces, v.scores, { unkId, byteFallback: true });
  // HF's legacy LLaMA tokenizer.json: Prepend("▁") always (even before a leading space), then spaces → "▁".
  const replaceSpaces = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
  const normalizer = normalizers.fromJSON(
    prefix ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, replaceSpaces] } : { type: 'Sequence', normalizers: [replaceSpaces] },
  );
  const decoderSteps: JsonObject[] = [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }];
  if (prefix) decoderSteps.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
  const post = bosEosProcessor(v.pieces, v.addBos === false ? null : bosId, v.addEos === true ? eosId : null);
  const tok = new Tokenizer(model, {
    normalizer,
    decoder: decoders.fromJSON({ type: 'Sequence', decoders: decoderSteps }),
    postProcessor: post === null ? null : postProcessors.fromJSON(post),
  });
  const types = v.types ?? v.pieces.map((_, id) => (id === bosId || id === eosId ? TOKEN_TYPE.control : id === unkId ? TOKEN_TYPE.unknown : TOKEN_TYPE.normal));
  for (const a of addedTokensFor(v.pieces, types)) {
    tok.addTokens([{ content: a.content as string, special: a.special as boolean, normalized: a.normalized as boolean }]);
  }
  return tok;
}

function llamaSpm(f: GGUFFile, tokens: string[], types: ArrayLike<number> | undefined): Tokenizer {
  const scores = ggufNumberArray(f, 'tokenizer.ggml.scores');
  if (scores === undefined) throw new Error("the llama (SPM) vocabulary has no 'tokenizer.ggml.scores'");
  if (scores.length !== tokens.length) throw new Error(`tokenizer.ggml.scores has ${scores.length} entries for ${tokens.length} tokens`);
  return sentencePieceTokenizer({
    pieces: tokens,
    scores,
    types,
    unkId: ggufInt(f, 'tokenizer.ggml.unknown_token_id') ?? 0,
    bosId: ggufInt(f, 'tokenizer.ggml.bos_token_id') ?? 1,
    eosId: ggufInt(f, 'tokenizer.ggml.eos_token_id') ?? 2,
    addBos: ggufBool(f, 'tokenizer.ggml.add_bos_token') ?? true,
    addEos: ggufBool(f, 'tokenizer.ggml.add_eos_token') ?? false,
    addSpacePrefix: ggufBool(f, 'tokenizer.ggml.add_space_prefix') ?? true,
  });
}

function vocabObject(tokens: readonly string[]): JsonObject {
  const vocab: JsonObject = {};
  tokens.forEach((t, id) => {
    // The first id of a duplicated token wins, as a JSON object would keep only one.
    if (!Object.prototype.hasOwnProperty.call(vocab, t)) vocab[t] = id;
  });
  return vocab;
}

function gpt2Bpe(f: GGUFFile, tokens: string[], types: ArrayLike<number> | undefined): Tokenizer {
  const merges = ggufStringArray(f, 'tokenizer.ggml.merges');
  if (merges === undefined) throw new Error("the gpt2 (BPE) vocabulary has no 'tokenizer.ggml.merges'");
  const pre = ggufString(f, 'tokenizer.ggml.pre') ?? 'gpt-2';
  let preTokenizer: JsonObject;
  if (GPT2_PRE.has(pre)) {
    preTokenizer = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  } else if (LLAMA3_PRE.has(pre)) {
    preTokenizer = {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    };
  } else {
    throw new Error(`unsupported tokenizer.ggml.pre '${pre}' for a gpt2 (BPE) vocabulary (supported: ${[...GPT2_PRE, ...LLAMA3_PRE].join(', ')})`);
  }
  const n = tokens.length;
  const bos = checkId(ggufInt(f, 'tokenizer.ggml.bos_token_id'), n, 'BOS token id');
  const eos = checkId(ggufInt(f, 'tokenizer.ggml.eos_token_id'), n, 'EOS token id');
  // llama.cpp adds no BOS to BPE vocabularies unless the file asks for it.
  const post = bosEosProcessor(tokens, ggufBool(f, 'tokenizer.ggml.add_bos_token') === true ? bos : null, ggufBool(f, 'tokenizer.ggml.add_eos_token') === true ? eos : null);
  const byteLevelPost: JsonObject = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true };
  const json: JsonObject = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokensFor(tokens, types),
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: post === null ? byteLevelPost : { type: 'Sequence', processors: [byteLevelPost, post] },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: LLAMA3_PRE.has(pre),
      vocab: vocabObject(tokens),
      merges,
    },
  };
  return Tokenizer.fromJSON(json);
}

/** Undoes convert_hf_to_gguf's BERT "phantom space" renaming: "▁word" → "word", "iece" → "##iece", "[X]" stays. */
export function bertTokenFromGGUF(token: string): string {
  if (token.startsWith('[') && token.endsWith(']')) return token;
  if (token.startsWith('▁')) return token.slice(1);
  return `##${token}`;
}

function bertWpm(f: GGUFFile, tokens: string[], types: ArrayLike<number> | undefined): Tokenizer {
  const n = tokens.length;
  const vocabTokens = tokens.map((t, id) => (types !== undefined && types[id] === TOKEN_TYPE.control ? t : bertTokenFromGGUF(t)));
  const unk = checkId(ggufInt(f, 'tokenizer.ggml.unknown_token_id'), n, 'unknown token id') ?? vocabTokens.indexOf('[UNK]');
  const cls = checkId(ggufInt(f, 'tokenizer.ggml.cls_token_id') ?? ggufInt(f, 'tokenizer.ggml.bos_token_id'), n, 'CLS token id');
  const sep = checkId(ggufInt(f, 'tokenizer.ggml.seperator_token_id') ?? ggufInt(f, 'tokenizer.ggml.eos_token_id'), n, 'SEP token id');
  if (unk < 0) throw new Error('the bert (WPM) vocabulary has no unknown token');
  const json: JsonObject = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokensFor(vocabTokens, types),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: cls !== null && sep !== null ? { type: 'BertProcessing', sep: [vocabTokens[sep]!, sep], cls: [vocabTokens[cls]!, cls] } : null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: vocabTokens[unk]!, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: vocabObject(vocabTokens) },
  };
  return Tokenizer.fromJSON(json);
}

/** The tokenizer of a parsed GGUF header. */
export function tokenizerFromGGUFFile(f: GGUFFile): Tokenizer {
  const kind = ggufString(f, 'tokenizer.ggml.model');
  if (kind === undefined) throw new Error("no 'tokenizer.ggml.model' key: the file embeds no tokenizer");
  const tokens = ggufStringArray(f, 'tokenizer.ggml.tokens');
  if (tokens === undefined) throw new Error("no 'tokenizer.ggml.tokens' key");
  const types = ggufNumberArray(f, 'tokenizer.ggml.token_type');
  if (types !== undefined && types.length !== tokens.length) throw new Error(`tokenizer.ggml.token_type has ${types.length} entries for ${tokens.length} tokens`);
  switch (kind) {
    case 'llama':
      return llamaSpm(f, tokens, types);
    case 'gpt2':
      return gpt2Bpe(f, tokens, types);
    case 'bert':
      return bertWpm(f, tokens, types);
    default:
      throw new Error(`unsupported tokenizer.ggml.model '${kind}' (supported: llama, gpt2, bert)`);
  }
}

/** Loads the tokenizer embedded in a GGUF file (only the header is read). */
export function tokenizerFromGGUF(path: string): Tokenizer {
  const f = readGGUFFile(path);
  try {
    return tokenizerFromGGUFFile(f);
  } catch (e) {
    throw new Error(`gguf ${path}: ${(e as Error).message}`);
  }
}
