/**
 * Incremental detokenization for streaming: turns token ids, as they are generated, into text that
 * is safe to emit — never half a UTF-8 character, never any part of a stop string.
 *
 * Text: the prefix-window scheme of vLLM / TGI. Decoding each token alone is wrong twice over: a
 * byte-level BPE or SentencePiece byte-fallback token may hold only some bytes of a character (it
 * decodes to U+FFFD), and SentencePiece decoders strip the "▁" space of a sequence's first token.
 * So we decode a short window: text = decode(ids[prefix..]) − decode(ids[prefix..read]), where
 * `read` is where emitted text ends and `prefix` a few tokens earlier (the same leading-space
 * treatment applies to both decodes, so it cancels). When the new text ends in U+FFFD the window
 * just grows until the character completes.
 *
 * Stop strings: the longest suffix of the new text that is a prefix of some stop string is held
 * back, so a stop string spread over several tokens is seen whole before any of it is emitted; on a
 * match, text before it is emitted and the rest (the stop string and anything after) never is.
 */

export interface Detokenizable {
  decode(ids: readonly number[]): string;
}

export interface IncrementalDetokenizerOptions {
  /**
   * Prompt ids the output continues: the last few seed the decode window, so the first output
   * token's leading space (SentencePiece "▁") is kept as it is in decode(prompt + output). Without
   * them the output is decoded as a sequence of its own (decode(output) semantics).
   */
  promptIds?: readonly number[];
}

/** Prompt tokens kept as decode context (vLLM uses 5 after the read offset's token). */
const PROMPT_CONTEXT = 6;
const REPLACEMENT = '\uFFFD';

export class IncrementalDetokenizer {
  private readonly tokenizer: Detokenizable;
  private readonly stops: readonly string[];
  private readonly maxStopLength: number;
  private readonly ids: number[];
  private prefixOffset: number;
  private readOffset: number;
  /** decode(ids[prefixOffset..readOffset]), cached while the offsets stay put. */
  private prefixText: string | null = null;
  /** Decoded text not yet emitted because it could be the start of a stop string. */
  private held = '';
  private done = false;

  constructor(tokenizer: Detokenizable, stop: readonly string[] = [], options: IncrementalDetokenizerOptions = {}) {
    stop.forEach((s, i) => {
      if (typeof s !== 'string' || s.length === 0) throw new RangeError(`IncrementalDetokenizer: stop[${i}] must be a non-empty string`);
    });
    this.tokenizer = tokenizer;
    this.stops = [...stop];
    this.maxStopLength = this.stops.reduce((m, s) => Math.max(m, s.length), 0);
    const prompt = options.promptIds ?? [];
    this.ids = prompt.slice(Math.max(0, prompt.length - PROMPT_CONTEXT));
    this.prefixOffset = 0;
    this.readOffset = this.ids.length;
  }

  /** True once a stop string completed (later pushes emit nothing). */
  get stopped(): boolean {
    return this.done;
  }

  /** Adds generated ids; returns the text that became safe to emit. */
  push(tokenIds: readonly number[]): { text: string; stopped: boolean } {
    if (this.done) return { text: '', stopped: true };
    for (const id of tokenIds) this.ids.push(id);
    return this.release(this.decodeNew(false));
  }

  /** End of generation: the held-back tail and any incomplete character (as U+FFFD). */
  flush(): string {
    if (this.done) return '';
    const { text } = this.release(this.decodeNew(true));
    const rest = this.held;
    this.held = '';
    this.done = true;
    return text + rest;
  }

  private decodeNew(final: boolean): string {
    if (this.readOffset === this.ids.length) return '';
    this.prefixText ??= this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const prefixText = this.prefixText;
    const newText = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (newText.length > prefixText.length && (final || !newText.endsWith(REPLACEMENT))) {
      const delta = newText.slice(prefixText.length);
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      this.prefixText = null;
      // Drop ids before the window: they are never decoded again.
      if (this.prefixOffset > 0) {
        this.ids.splice(0, this.prefixOffset);
        this.readOffset -= this.prefixOffset;
        this.prefixOffset = 0;
      }
      return delta;
    }
    return '';
  }

  /** Appends decoded text and emits what cannot be part of a stop string. */
  private release(delta: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text: delta, stopped: false };
    const text = this.held + delta;
    let cut = -1;
    for (const s of this.stops) {
      const at = text.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.done = true;
      this.held = '';
      return { text: text.slice(0, cut), stopped: true };
    }
    const keep = this.partialStopSuffix(text);
    this.held = text.slice(text.length - keep);
    return { text: text.slice(0, text.length - keep), stopped: false };
  }

  /** Length of the longest suffix of `text` that is a proper prefix of a stop string. */
  private partialStopSuffix(text: string): number {
    for (let k = Math.min(text.length, this.maxStopLength - 1); k > 0; k--) {
      const tail = text.slice(text.length - k);
      if (this.stops.some((s) => s.startsWith(tail))) return k;
    }
    return 0;
  }
}
