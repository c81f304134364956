/**
 * ByteLevel post-processor: with trim_offsets, token offsets exclude leading/trailing spaces
 * ("Ġ" or whitespace) — except the one space add_prefix_space put in front of the first token.
 * Adds no tokens; a pair is concatenated.
 */
import { mergeEncodings } from '../encoding.js';
import { postProcessors } from '../registry.js';
import type { Encoding, JsonObject, PostProcessor } from '../types.js';
import { BYTE_TABLES, optBool } from '../util.js';

const SPACE_CHAR = BYTE_TABLES.byteToChar[32];
const WS = /\p{White_Space}/u;

function isSpace(c: string): boolean {
  return c === SPACE_CHAR || WS.test(c);
}

/** HF process_offsets: trims the offsets of byte-level tokens in place. */
export function trimByteLevelOffsets(e: Encoding, addPrefixSpace: boolean): void {
  e.tokens.forEach((tok, i) => {
    const chars = [...tok];
    let lead = 0;
    while (lead < chars.length && isSpace(chars[lead])) lead++;
    let trail = 0;
    while (trail < chars.length && isSpace(chars[chars.length - 1 - trail])) trail++;
    if (lead === 0 && trail === 0) return;
    const off = e.offsets[i];
    if (lead > 0) {
      const isFirst = i === 0 || off[0] === 0;
      if (isFirst && addPrefixSpace && lead === 1) lead = 0;
      off[0] = Math.min(off[0] + lead, off[1]);
    }
    if (trail > 0 && off[1] >= trail) off[1] = Math.max(off[1] - trail, off[0]);
  });
}

export class ByteLevelProcessor implements PostProcessor {
  constructor(
    readonly addPrefixSpace = true,
    readonly trimOffsets = true,
    readonly useRegex = true,
  ) {}

  static fromJSON(json: JsonObject): ByteLevelProcessor {
    const where = 'post_processor (ByteLevel)';
    return new ByteLevelProcessor(optBool(json, 'add_prefix_space', where, true), optBool(json, 'trim_offsets', where, true), optBool(json, 'use_regex', where, true));
  }

  toJSON(): JsonObject {
    return { type: 'ByteLevel', add_prefix_space: this.addPrefixSpace, trim_offsets: this.trimOffsets, use_regex: this.useRegex };
  }

  addedTokens(): number {
    return 0;
  }

  process(encoding: Encoding, pair: Encoding | null): Encoding {
    const copy = (e: Encoding): Encoding => ({ ...e, offsets: e.offsets.map((o): [number, number] => [o[0], o[1]]) });
    const a = copy(encoding);
    const b = pair === null ? null : copy(pair);
    if (this.trimOffsets) {
      trimByteLevelOffsets(a, this.addPrefixSpace);
      if (b !== null) trimByteLevelOffsets(b, this.addPrefixSpace);
    }
    return b === null ? a : mergeEncodings([a, b]);
  }
}

postProcessors.register('ByteLevel', (json) => ByteLevelProcessor.fromJSON(json));
