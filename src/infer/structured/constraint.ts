/**
 * TokenConstraint for structured output: json_object, json_schema and tool_calls (api.ts).
 *
 * mask() walks the vocabulary trie once, advancing the byte matcher along each edge and pruning a
 * subtree at its first rejected byte; every token whose bytes the matcher takes is allowed. EOS is
 * allowed only where the output is complete. `done` turns true when the output is complete and
 * nothing may follow (a closed object, array, string or literal at the root, the last tool call).
 */
import type { ConstraintSpec, TokenConstraint } from '../api.js';
import { closed, dedupe, feedAll, finishable, plainStringState, rootStack, toolCallsProgram, valueProgram, type SeqProgram, type Stack } from './matcher.js';
import { ANY_OBJECT, compileSchema, SchemaError, type SchemaNode, type ToolCallNode } from './schema.js';
import { vocabIndex, type ByteTrie, type VocabIndex } from './trie.js';
import type { TokenVocabulary } from './vocabulary.js';

/** Tool-call syntaxes the constraint can produce (see src/infer/chat for parsing them back). */
export const TOOL_CALL_FORMATS = ['hermes', 'llama3-json'] as const;

/** Tool calls at most in one reply under `tool_choice: "required"` (hermes allows several). */
export const MAX_PARALLEL_CALLS = 8;

function toolNode(spec: Extract<ConstraintSpec, { type: 'tool_calls' }>, argsKey: string): ToolCallNode {
  if (spec.tools.length === 0) throw new SchemaError('', 'tool_calls needs at least one tool');
  const tools = new Map<string, SchemaNode>();
  for (const t of spec.tools) {
    if (spec.name !== undefined && t.name !== spec.name) continue;
    let node: SchemaNode;
    try {
      node = compileSchema(t.parameters ?? {});
    } catch (e) {
      throw new SchemaError('', `tool ${JSON.stringify(t.name)} parameters: ${(e as Error).message}`);
    }
    // Arguments are an object even when the schema does not say so.
    tools.set(JSON.stringify(t.name), node.kind === 'any' ? ANY_OBJECT : node);
  }
  if (tools.size === 0) throw new SchemaError('', `tool_choice names ${JSON.stringify(spec.name)}, which is not among the tools (${spec.tools.map((t) => t.name).join(', ')})`);
  return { kind: 'toolcall', tools, argsKey };
}

/** The matcher program a constraint spec describes (throws SchemaError on what is unsupported). */
export function constraintProgram(spec: ConstraintSpec): SeqProgram {
  switch (spec.type) {
    case 'json_object':
      return valueProgram(ANY_OBJECT);
    case 'json_schema':
      return valueProgram(compileSchema(spec.schema));
    case 'tool_calls': {
      const maxCalls = spec.name === undefined ? MAX_PARALLEL_CALLS : 1;
      if (spec.format === 'hermes') return toolCallsProgram(toolNode(spec, 'arguments'), '<tool_call>\n', '\n</tool_call>', '\n', maxCalls);
      if (spec.format === 'llama3-json') return toolCallsProgram(toolNode(spec, 'parameters'), '', '', null, 1);
      throw new SchemaError('', `unknown tool-call format ${JSON.stringify(spec.format)} (supported: ${TOOL_CALL_FORMATS.join(', ')})`);
    }
  }
}

export class StructuredConstraint implements TokenConstraint {
  private states: Stack[];
  /** Ended by EOS (or, without EOS ids, complete with nothing that can follow). */
  private finishedByEos = false;
  private readonly index: VocabIndex;
  private allowedBuf: Uint8Array | null = null;
  private readonly eos: ReadonlySet<number>;

  constructor(
    program: SeqProgram,
    readonly vocab: TokenVocabulary,
  ) {
    this.index = vocabIndex(vocab);
    this.states = [rootStack(program)];
    this.eos = new Set(vocab.eosIds);
  }

  /** An independent copy at the same position (states are immutable, so this is cheap). */
  fork(): StructuredConstraint {
    const c = Object.create(StructuredConstraint.prototype) as StructuredConstraint;
    Object.assign(c, this, { allowedBuf: null });
    return c;
  }

  /** Whether `tokenId` may come next (what mask() decides, for one token, without changing the state). */
  accepts(tokenId: number): boolean {
    if (this.eos.has(tokenId)) return this.done || this.complete;
    if (this.done) return false;
    const bytes = this.vocab.bytes(tokenId);
    if (bytes.length === 0 || (this.vocab.isText !== undefined && !this.vocab.isText(tokenId))) return false;
    let states: readonly Stack[] = this.states;
    for (const b of bytes) {
      states = feedAll(states, b);
      if (states.length === 0) return false;
    }
    return true;
  }

  private get allowed(): Uint8Array {
    this.allowedBuf ??= new Uint8Array(this.vocab.size);
    return this.allowedBuf;
  }

  get done(): boolean {
    return this.finishedByEos || this.states.some(closed);
  }

  /** The output may end here (EOS is allowed). */
  get complete(): boolean {
    return this.states.some(finishable);
  }

  /** Marks allowed tokens in `this.allowed` (1 = allowed). */
  private computeAllowed(): void {
    const allowed = this.allowed;
    allowed.fill(0);
    if (this.done) {
      for (const id of this.eos) allowed[id] = 1;
      return;
    }
    const states = this.states;
    const plain = states.length === 1 ? plainStringState(states[0]!.frame) : null;
    if (plain !== null) {
      const { plainIds, plainLength } = this.index;
      const remaining = plain.remaining;
      for (let i = 0; i < plainIds.length; i++) if (plainLength[i]! <= remaining) allowed[plainIds[i]!] = 1;
      walk(this.index.special, 0, states, allowed);
    } else {
      walk(this.index.full, 0, states, allowed);
    }
    if (this.complete) for (const id of this.eos) allowed[id] = 1;
  }

  mask(logits: Float32Array): void {
    this.computeAllowed();
    const allowed = this.allowed;
    const n = Math.min(logits.length, allowed.length);
    let any = false;
    for (let i = 0; i < n; i++) {
      if (allowed[i] === 0) logits[i] = -Infinity;
      else any = true;
    }
    for (let i = n; i < logits.length; i++) logits[i] = -Infinity;
    if (!any) throw new Error('structured output: no token of the vocabulary can continue the output (the vocabulary lacks the bytes the schema needs)');
  }

  /** Ids allowed now (tests and debugging). */
  allowedIds(): number[] {
    this.computeAllowed();
    const out: number[] = [];
    this.allowed.forEach((v, i) => {
      if (v === 1) out.push(i);
    });
    return out;
  }

  accept(tokenId: number): void {
    if (this.eos.has(tokenId)) {
      if (!this.done && !this.complete) throw new Error(`structured output: EOS (token ${tokenId}) before the output is complete`);
      this.finishedByEos = true;
      return;
    }
    if (this.done) throw new Error(`structured output: token ${tokenId} after the output was complete`);
    const bytes = this.vocab.bytes(tokenId);
    if (bytes.length === 0 || (this.vocab.isText !== undefined && !this.vocab.isText(tokenId))) {
      throw new Error(`structured output: token ${tokenId} is not text and cannot appear in the output`);
    }
    let states = this.states;
    for (const b of bytes) {
      states = feedAll(states, b);
      if (states.length === 0) {
        throw new Error(`structured output: token ${tokenId} (${JSON.stringify(new TextDecoder().decode(bytes))}) cannot continue the output`);
      }
    }
    this.states = dedupe(states);
    // Without EOS ids a complete output that nothing can extend (a number at its digit limit) must end here.
    if (this.eos.size === 0 && this.complete && !this.done) {
      this.computeAllowed();
      if (!this.allowed.includes(1)) this.finishedByEos = true;
    }
  }
}

/** Marks every token under trie node `node` whose bytes `states` can take. */
function walk(trie: ByteTrie, node: number, states: readonly Stack[], allowed: Uint8Array): void {
  const { childStart, edgeByte, edgeNode, tokStart, tokIds } = trie;
  if (node !== 0) for (let t = tokStart[node]!; t < tokStart[node + 1]!; t++) allowed[tokIds[t]!] = 1;
  for (let e = childStart[node]!; e < childStart[node + 1]!; e++) {
    const next = feedAll(states, edgeByte[e]!);
    if (next.length > 0) walk(trie, edgeNode[e]!, next, allowed);
  }
}

/** A TokenConstraint for `spec` over `vocab` (throws SchemaError naming anything unsupported). */
export function createConstraint(spec: ConstraintSpec, vocab: TokenVocabulary): StructuredConstraint {
  return new StructuredConstraint(constraintProgram(spec), vocab);
}

/** Prepares the vocabulary index ahead of the first request (building the trie takes a moment). */
export function warmVocabulary(vocab: TokenVocabulary): void {
  vocabIndex(vocab);
}

export type { VocabIndex };
