/**
 * Loading a tokenizer from whatever a model ships: an HF tokenizer.json, GPT-2's encoder.json +
 * vocab.bpe (or vocab.json + merges.txt), BERT's vocab.txt, a GGUF file's embedded vocabulary,
 * or a llama2.c tokenizer.bin.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { bertTokenizerFromVocab } from './formats/bert-vocab.js';
import { tokenizerFromGGUF } from './formats/gguf-vocab.js';
import { llama2cTokenizer } from './formats/llama2c.js';
import { ByteLevelDecoder } from './decoders/byte-level.js';
import { BPE } from './models/bpe.js';
import { ByteLevelPreTokenizer } from './pre-tokenizers/byte-level.js';
import { ByteLevelProcessor } from './processors/byte-level.js';
import { loadTokenizerJsonCached } from './cache.js';
import { Tokenizer } from './tokenizer.js';

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`loadTokenizer: cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/** Parses a GPT-2 merges file (vocab.bpe / merges.txt): an optional "#version" line, then "a b" per line. */
export function parseMergesFile(text: string, path = 'merges'): [string, string][] {
  const merges: [string, string][] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new Error(`${path}:${i + 1}: expected two tokens separated by one space, got ${JSON.stringify(line.slice(0, 80))}`);
    }
    merges.push([parts[0], parts[1]]);
  });
  return merges;
}

/**
 * GPT-2's tokenizer from its encoder (token → id) and merges — the same pipeline as HF's gpt2
 * tokenizer.json: ByteLevel pre-tokenizer without prefix space, BPE, ByteLevel decoder, and
 * "<|endoftext|>" as a special added token when the vocabulary has it.
 */
export function gpt2Tokenizer(encoder: Record<string, number> | Map<string, number>, merges: readonly [string, string][]): Tokenizer {
  const model = new BPE({ vocab: encoder, merges });
  const tok = new Tokenizer(model, {
    preTokenizer: new ByteLevelPreTokenizer({ addPrefixSpace: false, trimOffsets: true, useRegex: true }),
    postProcessor: new ByteLevelProcessor(true, false, true),
    decoder: new ByteLevelDecoder(true, true, true),
  });
  if (model.tokenToId('<|endoftext|>') !== undefined) tok.addSpecialTokens([{ content: '<|endoftext|>', normalized: true }]);
  return tok;
}

/** GPT-2 files: encoder.json (or vocab.json) + vocab.bpe (or merges.txt). */
export function gpt2TokenizerFromFiles(encoderPath: string, mergesPath: string): Tokenizer {
  let encoder: unknown;
  try {
    encoder = JSON.parse(readText(encoderPath, 'vocabulary'));
  } catch (e) {
    throw new Error(`${encoderPath}: invalid JSON: ${(e as Error).message}`);
  }
  if (typeof encoder !== 'object' || encoder === null || Array.isArray(encoder)) throw new Error(`${encoderPath}: expected an object of token → id`);
  const vocab = new Map<string, number>();
  for (const [k, v] of Object.entries(encoder)) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${encoderPath}: the id of ${JSON.stringify(k)} is not a non-negative integer`);
    vocab.set(k, v);
  }
  const merges = parseMergesFile(readText(mergesPath, 'merges'), mergesPath);
  try {
    return gpt2Tokenizer(vocab, merges);
  } catch (e) {
    throw new Error(`${mergesPath}: ${(e as Error).message}`);
  }
}

/** The file kinds loadTokenizer understands, in the order a directory is searched. */
const DIR_LAYOUTS = ['tokenizer.json', 'encoder.json + vocab.bpe', 'vocab.json + merges.txt', 'vocab.txt', 'tokenizer.bin / tok*.bin', '*.gguf'];

/**
 * Loads a tokenizer from a file or a directory. A directory may hold tokenizer.json,
 * encoder.json + vocab.bpe, vocab.json + merges.txt, vocab.txt, a llama2.c tokenizer.bin, or a
 * .gguf file (searched in that order).
 */
export function loadTokenizer(pathOrDir: string): Tokenizer {
  if (!existsSync(pathOrDir)) throw new Error(`loadTokenizer: ${pathOrDir} does not exist`);
  if (statSync(pathOrDir).isDirectory()) {
    const has = (f: string): boolean => existsSync(join(pathOrDir, f));
    if (has('tokenizer.json')) return loadTokenizerJsonCached(join(pathOrDir, 'tokenizer.json'));
    if (has('encoder.json') && has('vocab.bpe')) return gpt2TokenizerFromFiles(join(pathOrDir, 'encoder.json'), join(pathOrDir, 'vocab.bpe'));
    if (has('vocab.json') && has('merges.txt')) return gpt2TokenizerFromFiles(join(pathOrDir, 'vocab.json'), join(pathOrDir, 'merges.txt'));
    if (has('vocab.txt')) return bertTokenizerFromVocab(join(pathOrDir, 'vocab.txt'));
    if (has('tokenizer.bin')) return llama2cTokenizer(join(pathOrDir, 'tokenizer.bin'));
    const entries = readdirSorted(pathOrDir);
    const bin = entries.find((f) => /^tok\d*\.bin$/.test(f));
    if (bin !== undefined) return llama2cTokenizer(join(pathOrDir, bin));
    const gguf = entries.find((f) => f.endsWith('.gguf'));
    if (gguf !== undefined) return tokenizerFromGGUF(join(pathOrDir, gguf));
    throw new Error(`loadTokenizer: ${pathOrDir} holds no tokenizer (looked for ${DIR_LAYOUTS.join(', ')})`);
  }
  const name = basename(pathOrDir);
  if (name.endsWith('.gguf')) return tokenizerFromGGUF(pathOrDir);
  if (name.endsWith('.bin')) return llama2cTokenizer(pathOrDir);
  if (name.endsWith('.txt') && !name.startsWith('merges')) return bertTokenizerFromVocab(pathOrDir);
  if (name === 'encoder.json' || name === 'vocab.json') {
    const dir = join(pathOrDir, '..');
    const merges = ['vocab.bpe', 'merges.txt'].map((f) => join(dir, f)).find((f) => existsSync(f));
    if (merges === undefined) throw new Error(`loadTokenizer: ${pathOrDir} needs vocab.bpe or merges.txt next to it`);
    return gpt2TokenizerFromFiles(pathOrDir, merges);
  }
  return loadTokenizerJsonCached(pathOrDir);
}

/** Directory entries, sorted so the choice among several candidates is deterministic. */
function readdirSorted(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (e) {
    throw new Error(`loadTokenizer: cannot list ${dir}: ${(e as Error).message}`);
  }
}
