/**
 * llama2.c's tokenizer files (tokenizer.bin, tok512.bin…): little-endian int32 max_token_length,
 * then one record per token until the end of the file — float32 score, int32 byte length, the
 * piece's bytes. llama2.c's exporter wrote the SentencePiece pieces with "▁" turned into " " and
 * BOS / EOS as "\n<s>\n" / "\n</s>\n"; loading undoes both, so the result is the LLaMA SentencePiece
 * tokenizer (ids 0 <unk>, 1 <s>, 2 </s>, byte pieces <0xXX>) that llama2.c's encode/decode implement:
 * score-ordered merges with byte fallback, a leading "▁", BOS added.
 */
import { readFileSync } from 'node:fs';
import type { Tokenizer } from '../tokenizer.js';
import { sentencePieceTokenizer, TOKEN_TYPE } from './gguf-vocab.js';

export interface Llama2cVocab {
  maxTokenLength: number;
  pieces: string[];
  scores: Float32Array;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses tokenizer.bin bytes; `source` names the file in errors. */
export function parseLlama2cTokenizer(bytes: Uint8Array, source = '<buffer>'): Llama2cVocab {
  const fail = (problem: string, at: number): never => {
    throw new Error(`llama2.c tokenizer ${source}: ${problem} (at byte ${at})`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) fail(`file is ${bytes.length} bytes, too short for the max_token_length header`, 0);
  const maxTokenLength = view.getInt32(0, true);
  if (maxTokenLength <= 0 || maxTokenLength > 1 << 16) fail(`max_token_length ${maxTokenLength} is not a plausible length: not a llama2.c tokenizer file`, 0);
  const pieces: string[] = [];
  const scores: number[] = [];
  let pos = 4;
  while (pos < bytes.length) {
    const id = pieces.length;
    if (pos + 8 > bytes.length) fail(`truncated: token ${id} needs an 8-byte score and length, ${bytes.length - pos} bytes remain`, pos);
    const score = view.getFloat32(pos, true);
    const len = view.getInt32(pos + 4, true);
    if (Number.isNaN(score)) fail(`token ${id} has a NaN score`, pos);
    if (len < 0 || len > maxTokenLength * 4 + 16) fail(`token ${id} has length ${len} (max_token_length is ${maxTokenLength})`, pos + 4);
    if (pos + 8 + len > bytes.length) fail(`truncated: token ${id} needs ${len} bytes, ${bytes.length - pos - 8} remain`, pos + 8);
    let piece: string;
    try {
      piece = utf8.decode(bytes.subarray(pos + 8, pos + 8 + len));
    } catch {
      return fail(`token ${id} is not valid UTF-8`, pos + 8);
    }
    pieces.push(piece);
    scores.push(score);
    pos += 8 + len;
  }
  if (pieces.length < 3) fail(`only ${pieces.length} tokens: a llama2.c vocabulary starts with <unk>, <s>, </s>`, pos);
  return { maxTokenLength, pieces, scores: Float32Array.from(scores) };
}

/** The SentencePiece pieces as the model was trained with them ("▁" for spaces, plain <s>/</s>). */
function restorePiece(piece: string, id: number): string {
  if (id === 1 && piece === '\n<s>\n') return '<s>';
  if (id === 2 && piece === '\n</s>\n') return '</s>';
  return piece.replaceAll(' ', '▁');
}

/** A Tokenizer from a parsed llama2.c vocabulary. */
export function llama2cTokenizerFromVocab(v: Llama2cVocab): Tokenizer {
  const pieces = v.pieces.map(restorePiece);
  const types = pieces.map((p, id) => (id === 0 ? TOKEN_TYPE.unknown : id <= 2 ? TOKEN_TYPE.control : /^<0x[0-9A-F]{2}>$/.test(p) ? TOKEN_TYPE.byte : TOKEN_TYPE.normal));
  return sentencePieceTokenizer({ pieces, scores: v.scores, types, unkId: 0, bosId: 1, eosId: 2, addBos: true, addEos: false, addSpacePrefix: true });
}

/** Loads a llama2.c tokenizer.bin / tok512.bin. */
export function llama2cTokenizer(path: string): Tokenizer {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`llama2.c tokenizer: cannot read ${path}: ${(e as Error).message}`);
  }
  return llama2cTokenizerFromVocab(parseLlama2cTokenizer(bytes, path));
}
