/**
 * The vocabulary as a byte trie, so that masking walks shared prefixes once: the matcher state is
 * advanced by each trie edge and a subtree is skipped as soon as its prefix is rejected. Built once
 * per vocabulary and cached.
 *
 * A second trie holds only the tokens that are not "plain string text" (bytes ≥ 0x20 other than
 * '"' and '\', forming whole UTF-8 characters). Inside a JSON string at a character boundary every
 * plain token is allowed (if it fits maxLength), so masking there checks the plain tokens with a
 * length comparison and walks only the small second trie.
 */
import type { TokenVocabulary } from './vocabulary.js';

export interface ByteTrie {
  /** Children of node n are edges [childStart[n], childStart[n + 1]). */
  childStart: Int32Array;
  edgeByte: Uint8Array;
  edgeNode: Int32Array;
  /** Tokens ending at node n are tokIds[tokStart[n] … tokStart[n + 1]). */
  tokStart: Int32Array;
  tokIds: Int32Array;
}

export interface VocabIndex {
  vocab: TokenVocabulary;
  /** Every text token. */
  full: ByteTrie;
  /** Text tokens that are not plain string text. */
  special: ByteTrie;
  /** Plain string-text tokens and their lengths in code points. */
  plainIds: Int32Array;
  plainLength: Int32Array;
}

interface BuildNode {
  children: Map<number, BuildNode>;
  tokens: number[];
}

function buildTrie(vocab: TokenVocabulary, ids: readonly number[]): ByteTrie {
  const root: BuildNode = { children: new Map(), tokens: [] };
  for (const id of ids) {
    const bytes = vocab.bytes(id);
    let n = root;
    for (const b of bytes) {
      let c = n.children.get(b);
      if (c === undefined) {
        c = { children: new Map(), tokens: [] };
        n.children.set(b, c);
      }
      n = c;
    }
    n.tokens.push(id);
  }
  // Breadth-first numbering; each node's children are contiguous and sorted by byte.
  const order: BuildNode[] = [root];
  for (let i = 0; i < order.length; i++) {
    const kids = [...order[i]!.children.entries()].sort((a, b) => a[0] - b[0]);
    for (const [, c] of kids) order.push(c);
  }
  const index = new Map<BuildNode, number>(order.map((n, i) => [n, i]));
  const childStart = new Int32Array(order.length + 1);
  const edgeByte = new Uint8Array(order.length - 1);
  const edgeNode = new Int32Array(order.length - 1);
  const tokStart = new Int32Array(order.length + 1);
  const tokIds: number[] = [];
  let e = 0;
  order.forEach((n, i) => {
    childStart[i] = e;
    for (const [b, c] of [...n.children.entries()].sort((x, y) => x[0] - y[0])) {
      edgeByte[e] = b;
      edgeNode[e] = index.get(c)!;
      e++;
    }
    tokStart[i] = tokIds.length;
    tokIds.push(...n.tokens);
  });
  childStart[order.length] = e;
  tokStart[order.length] = tokIds.length;
  return { childStart, edgeByte, edgeNode, tokStart, tokIds: Int32Array.from(tokIds) };
}

/** Code points of `bytes` if it is plain string text (see above), else -1. */
export function plainTextLength(bytes: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b < 0x80) {
      if (b < 0x20 || b === 0x22 || b === 0x5c) return -1;
      need = 0;
    } else if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b === 0xe0) [need, lo] = [2, 0xa0];
    else if (b === 0xed) [need, hi] = [2, 0x9f];
    else if (b >= 0xe1 && b <= 0xef) need = 2;
    else if (b === 0xf0) [need, lo] = [3, 0x90];
    else if (b >= 0xf1 && b <= 0xf3) need = 3;
    else if (b === 0xf4) [need, hi] = [3, 0x8f];
    else return -1;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return -1;
    }
    i += need + 1;
    n++;
  }
  return n;
}

const cache = new WeakMap<TokenVocabulary, VocabIndex>();

export function vocabIndex(vocab: TokenVocabulary): VocabIndex {
  const hit = cache.get(vocab);
  if (hit !== undefined) return hit;
  const text: number[] = [];
  const special: number[] = [];
  const plainIds: number[] = [];
  const plainLength: number[] = [];
  for (let id = 0; id < vocab.size; id++) {
    const bytes = vocab.bytes(id);
    if (bytes.length === 0 || (vocab.isText !== undefined && !vocab.isText(id))) continue;
    text.push(id);
    const n = plainTextLength(bytes);
    if (n < 0) special.push(id);
    else {
      plainIds.push(id);
      plainLength.push(n);
    }
  }
  const index: VocabIndex = {
    vocab,
    full: buildTrie(vocab, text),
    special: buildTrie(vocab, special),
    plainIds: Int32Array.from(plainIds),
    plainLength: Int32Array.from(plainLength),
  };
  cache.set(vocab, index);
  return index;
}
