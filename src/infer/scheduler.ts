/**
 * Continuous batching (vLLM's scheduler, simplified): every step is planned afresh from the running
 * and waiting sequences.
 *
 *   1. Running sequences, oldest first: a decode takes one token; a sequence still in prefill takes
 *      the next chunk of its prompt within the step's prefill budget (chunked prefill, so a long
 *      prompt never stalls the decodes). When the KV cache has no block for a sequence's next
 *      position, the youngest running sequence is preempted: its blocks are freed and it goes back
 *      to the front of the queue, to be recomputed later (its full blocks usually survive in the
 *      prefix cache, so the recompute is cheap).
 *   2. Waiting sequences, first come first served, while the batch has room, the prefill budget
 *      lasts and their first chunk's blocks are free. On admission the prefix cache is consulted:
 *      leading full blocks computed before (same token history) are shared, not recomputed.
 */
import { BLOCK_SIZE, ROOT_KEY, type PagedKVCache } from './paged-kv.js';

export interface SchedulerOptions {
  /** Most sequences running at once. */
  maxBatch: number;
  /** Most prompt tokens computed per step (decodes are not counted). */
  maxPrefillTokens: number;
}

/** A sequence's KV bookkeeping (the engine keeps the request side). */
export class ScheduledSequence {
  /** Prompt followed by the tokens generated so far. */
  readonly tokens: number[];
  /** Tokens whose keys/values are in the cache. */
  computed = 0;
  /** Block table. */
  blocks: number[] = [];
  /** Prefix-cache chain key of each leading full block registered so far. */
  chainKeys: number[] = [];
  /** Prompt tokens the prefix cache supplied at first admission (null until admitted). */
  cachedPromptTokens: number | null = null;
  /** Times this sequence was preempted. */
  preemptions = 0;

  constructor(
    readonly id: string,
    promptIds: readonly number[],
  ) {
    this.tokens = [...promptIds];
  }

  /** Tokens still to compute. */
  get pending(): number {
    return this.tokens.length - this.computed;
  }
}

/** One sequence's share of a planned step. */
export interface PlannedChunk {
  seq: ScheduledSequence;
  start: number;
  count: number;
  /** The chunk ends at the sequence's last token: its logits are sampled. */
  sample: boolean;
}

export interface StepPlan {
  chunks: PlannedChunk[];
  preempted: ScheduledSequence[];
  /** Waiting sequences that can never run: they need more blocks than the whole cache holds. */
  unfit: ScheduledSequence[];
}

export class Scheduler {
  readonly waiting: ScheduledSequence[] = [];
  readonly running: ScheduledSequence[] = [];
  preemptionsTotal = 0;

  constructor(
    private readonly kv: PagedKVCache,
    private readonly options: SchedulerOptions,
  ) {
    const { maxBatch, maxPrefillTokens } = options;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`Scheduler: maxBatch must be a positive integer, got ${maxBatch}`);
    if (!Number.isInteger(maxPrefillTokens) || maxPrefillTokens < 1) {
      throw new RangeError(`Scheduler: maxPrefillTokens must be a positive integer, got ${maxPrefillTokens}`);
    }
  }

  add(seq: ScheduledSequence): void {
    this.waiting.push(seq);
  }

  get hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  /** Removes a sequence wherever it is and frees its blocks. */
  remove(seq: ScheduledSequence): void {
    const r = this.running.indexOf(seq);
    if (r >= 0) this.running.splice(r, 1);
    const w = this.waiting.indexOf(seq);
    if (w >= 0) this.waiting.splice(w, 1);
    this.freeBlocks(seq);
  }

  private freeBlocks(seq: ScheduledSequence): void {
    this.kv.release(seq.blocks);
    seq.blocks = [];
    seq.chainKeys = [];
    seq.computed = 0;
  }

  /** Grows the block table to cover `positions`; false (nothing taken) when the cache is out of blocks. */
  private ensureBlocks(seq: ScheduledSequence, positions: number): boolean {
    const need = Math.ceil(positions / BLOCK_SIZE) - seq.blocks.length;
    if (need <= 0) return true;
    if (need > this.kv.availableBlocks) return false;
    for (let i = 0; i < need; i++) seq.blocks.push(this.kv.allocate()!);
    return true;
  }

  private preempt(seq: ScheduledSequence, plan: StepPlan): void {
    const i = this.running.indexOf(seq);
    if (i >= 0) this.running.splice(i, 1);
    this.freeBlocks(seq);
    seq.preemptions++;
    this.preemptionsTotal++;
    this.waiting.unshift(seq);
    plan.preempted.push(seq);
  }

  /** Plans the next step (blocks for the planned tokens are allocated). */
  schedule(): StepPlan {
    const plan: StepPlan = { chunks: [], preempted: [], unfit: [] };
    let budget = this.options.maxPrefillTokens;
    for (const seq of [...this.running]) {
      if (!this.running.includes(seq)) continue; // preempted earlier in this loop
      const pending = seq.pending;
      const count = pending === 1 ? 1 : Math.min(pending, budget);
      if (count <= 0) continue;
      let placed = this.ensureBlocks(seq, seq.computed + count);
      while (!placed) {
        const victim = this.running[this.running.length - 1]!;
        this.preempt(victim, plan);
        if (victim === seq) break;
        placed = this.ensureBlocks(seq, seq.computed + count);
      }
      if (!placed) continue;
      if (pending > 1) budget -= count;
      plan.chunks.push({ seq, start: seq.computed, count, sample: seq.computed + count === seq.tokens.length });
    }
    // Admission stops for this step once anything was preempted (the cache is under pressure).
    while (this.waiting.length > 0 && this.running.length < this.options.maxBatch && budget > 0 && plan.preempted.length === 0) {
      const seq = this.waiting[0]!;
      // Every position must fit the cache at once, or the sequence could never finish.
      if (Math.ceil(seq.tokens.length / BLOCK_SIZE) > this.kv.numBlocks) {
        this.waiting.shift();
        plan.unfit.push(seq);
        continue;
      }
      // Leading full blocks from the prefix cache; at least one token is always computed (its logits are needed).
      const hit = this.kv.lookupPrefix(seq.tokens, Math.floor((seq.tokens.length - 1) / BLOCK_SIZE));
      const count = Math.min(seq.tokens.length - hit.blocks.length * BLOCK_SIZE, budget);
      const need = Math.ceil((hit.blocks.length * BLOCK_SIZE + count) / BLOCK_SIZE) - hit.blocks.length;
      // vLLM's watermark: keep ~1% of the blocks for running sequences to grow into, so a new
      // admission does not immediately force a preemption (never when nothing else runs).
      const reserve = this.running.length > 0 ? Math.floor(this.kv.numBlocks / 100) : 0;
      if (need > this.kv.availableBlocks - reserve) {
        this.kv.release(hit.blocks);
        break;
      }
      this.kv.countPrefixQuery(seq.tokens.length, hit.blocks.length * BLOCK_SIZE);
      seq.blocks = hit.blocks;
      seq.chainKeys = hit.keys;
      seq.computed = hit.blocks.length * BLOCK_SIZE;
      seq.cachedPromptTokens ??= seq.computed;
      for (let i = 0; i < need; i++) seq.blocks.push(this.kv.allocate()!);
      this.waiting.shift();
      this.running.push(seq);
      budget -= count;
      plan.chunks.push({ seq, start: seq.computed, count, sample: seq.computed + count === seq.tokens.length });
    }
    return plan;
  }

  /** After the step ran: advances each chunk's sequence and registers its newly full blocks in the prefix cache. */
  commit(plan: StepPlan): void {
    for (const { seq, count } of plan.chunks) {
      seq.computed += count;
      for (let b = seq.chainKeys.length; (b + 1) * BLOCK_SIZE <= seq.computed; b++) {
        const parent = b === 0 ? ROOT_KEY : seq.chainKeys[b - 1]!;
        seq.chainKeys.push(this.kv.register(seq.blocks[b]!, parent, seq.tokens, b * BLOCK_SIZE));
      }
    }
  }
}
