/**
 * `weft tokenizer train | encode | decode`:
 *   weft tokenizer train --type bpe|wordpiece|unigram --vocab-size N --input <file> [--input <file>…] --out <dir>
 *   weft tokenizer encode --tokenizer <dir or file> (--text "…" | --file <path>) [--json]
 *   weft tokenizer decode --tokenizer <dir or file> --ids 1,2,3 [--json]
 * Training shows a progress bar with rate and ETA on a terminal, a line per phase otherwise, or
 * with --json one JSON object per progress report and a final summary object.
 */
import { type Command, Option } from 'commander';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CharTokenizer } from '../tokenizers/char.js';
import { loadTokenizer } from '../tokenizers/load.js';
import type { Tokenizer } from '../tokenizers/tokenizer.js';
import type { TrainerProgress } from '../tokenizers/trainers/common.js';
import { TRAINABLE_TYPES, trainTokenizerFromFiles, type TrainableType } from '../tokenizers/trainers/index.js';
import { UsageError } from '../train/config.js';
import { formatDuration, type OutputStream } from '../train/progress.js';
import { type CommandIO, parseNonNegativeInt, parsePositiveInt } from './train.js';

const defaultIO = (): CommandIO => ({ stdout: process.stdout, stderr: process.stderr });

export interface TokenizerTrainFlags {
  type?: string;
  vocabSize?: number;
  input?: string[];
  out?: string;
  minFrequency?: number;
  specialTokens?: string;
  limitAlphabet?: number;
  json?: boolean;
}

export interface TokenizerEncodeFlags {
  tokenizer?: string;
  text?: string;
  file?: string;
  json?: boolean;
  addSpecialTokens?: boolean;
}

export interface TokenizerDecodeFlags {
  tokenizer?: string;
  ids?: string;
  json?: boolean;
  skipSpecialTokens?: boolean;
}

const PHASE_UNITS: Record<TrainerProgress['phase'], string> = { 'count words': 'chars', merges: 'merges', seed: 'steps', em: 'EM steps' };
const BAR_WIDTH = 24;

/**
 * Renders trainer progress: a bar redrawn in place on a TTY (at most every 100 ms), one line per
 * finished phase on a pipe, or JSON lines ({"phase","done","total","elapsed_s"}) with --json.
 */
export class TrainProgressView {
  private readonly tty: boolean;
  private readonly t0 = performance.now();
  private phase: TrainerProgress['phase'] | null = null;
  private phaseStart = 0;
  private last: TrainerProgress | null = null;
  private lastDraw = -Infinity;

  constructor(
    private readonly out: OutputStream,
    private readonly json: boolean,
  ) {
    this.tty = !json && out.isTTY === true;
  }

  report(p: TrainerProgress): void {
    const now = performance.now();
    if (p.phase !== this.phase) {
      this.endPhase(now);
      this.phase = p.phase;
      this.phaseStart = now;
      this.lastDraw = -Infinity;
    }
    this.last = { ...p };
    const finished = p.done >= p.total;
    if (now - this.lastDraw < 100 && !finished) return;
    this.lastDraw = now;
    if (this.json) {
      this.out.write(`${JSON.stringify({ phase: p.phase, done: p.done, total: p.total, elapsed_s: round3((now - this.t0) / 1000) })}\n`);
    } else if (this.tty) {
      this.draw(p, now);
    }
  }

  /** Ends the current phase (a newline after the bar, or its summary line). */
  finish(): void {
    this.endPhase(performance.now());
  }

  private endPhase(now: number): void {
    const p = this.last;
    if (this.phase === null || p === null) return;
    if (this.tty) {
      this.draw(p, now);
      this.out.write('\n');
    } else if (!this.json) {
      const s = (now - this.phaseStart) / 1000;
      this.out.write(`${p.phase}: ${p.done} ${PHASE_UNITS[p.phase]} in ${s.toFixed(1)} s\n`);
    }
    this.last = null;
  }

  private draw(p: TrainerProgress, now: number): void {
    const seconds = (now - this.phaseStart) / 1000;
    const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
    const filled = Math.round(frac * BAR_WIDTH);
    const rate = seconds > 0 ? p.done / seconds : 0;
    const eta = rate > 0 ? formatDuration((p.total - p.done) / rate) : '--';
    let line =
      `${p.phase.padEnd(11)} ${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)} ${p.done}/${p.total} ` +
      `${formatRate(rate)} ${PHASE_UNITS[p.phase]}/s  ETA ${eta}`;
    const columns = this.out.columns;
    if (columns !== undefined && columns > 20 && line.length >= columns) line = line.slice(0, columns - 1);
    this.out.write(`\r${line}\x1b[K`);
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k`;
  return perSecond.toFixed(0);
}

export interface TrainTokenizerCommandResult {
  path: string;
  vocabSize: number;
  seconds: number;
}

export function runTokenizerTrain(flags: TokenizerTrainFlags, io: CommandIO = defaultIO()): TrainTokenizerCommandResult {
  if (flags.type === undefined) throw new UsageError(`--type is required: one of ${TRAINABLE_TYPES.join(', ')}`);
  if (!(TRAINABLE_TYPES as readonly string[]).includes(flags.type)) {
    throw new UsageError(`--type ${flags.type}: expected one of ${TRAINABLE_TYPES.join(', ')}`);
  }
  if (flags.vocabSize === undefined) throw new UsageError('--vocab-size is required (e.g. --vocab-size 8000)');
  const inputs = flags.input ?? [];
  if (inputs.length === 0) throw new UsageError('--input <file> is required (repeat it for several files)');
  for (const f of inputs) {
    if (!existsSync(f)) throw new UsageError(`--input ${f}: no such file`);
    if (!statSync(f).isFile()) throw new UsageError(`--input ${f}: not a file`);
  }
  if (flags.out === undefined) throw new UsageError('--out <dir> is required (tokenizer.json is written there)');
  if (existsSync(flags.out) && !statSync(flags.out).isDirectory()) throw new UsageError(`--out ${flags.out}: exists and is not a directory`);
  const specialTokens = flags.specialTokens === undefined ? undefined : flags.specialTokens.split(',').filter((t) => t !== '');

  const view = new TrainProgressView(flags.json ? io.stdout : io.stderr, flags.json === true);
  const t0 = performance.now();
  let tokenizer: Tokenizer;
  try {
    tokenizer = trainTokenizerFromFiles(inputs, {
      type: flags.type as TrainableType,
      vocabSize: flags.vocabSize,
      minFrequency: flags.minFrequency,
      specialTokens,
      limitAlphabet: flags.limitAlphabet,
      onProgress: (p) => view.report(p),
    });
  } catch (e) {
    view.finish();
    // Option problems (vocabulary too small, unigram with --min-frequency…) are the user's to fix.
    throw e instanceof RangeError || (e instanceof Error && e.message.startsWith('trainTokenizer')) ? new UsageError(e.message) : e;
  }
  view.finish();
  const seconds = (performance.now() - t0) / 1000;
  mkdirSync(flags.out, { recursive: true });
  const path = join(flags.out, 'tokenizer.json');
  tokenizer.save(path);
  const result = { path, vocabSize: tokenizer.vocabSize, seconds };
  if (flags.json) {
    io.stdout.write(`${JSON.stringify({ done: true, type: flags.type, vocab_size: result.vocabSize, seconds: round3(seconds), path })}\n`);
  } else {
    io.stdout.write(`trained a ${flags.type} tokenizer with ${result.vocabSize} tokens in ${seconds.toFixed(1)} s; wrote ${path}\n`);
  }
  return result;
}

/** loadTokenizer, plus the older character tokenizer.json ({"type":"char"}) that run directories hold. */
export function loadTokenizerForCli(pathOrDir: string): Tokenizer {
  if (!existsSync(pathOrDir)) throw new UsageError(`--tokenizer ${pathOrDir}: no such file or directory`);
  const file = statSync(pathOrDir).isDirectory() ? join(pathOrDir, 'tokenizer.json') : pathOrDir;
  if (file.endsWith('.json') && existsSync(file)) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      json = undefined; // loadTokenizer reports the JSON error with its context
    }
    if (typeof json === 'object' && json !== null && (json as { type?: unknown }).type === 'char') return CharTokenizer.fromJSON(json).toTokenizer();
  }
  try {
    return loadTokenizer(pathOrDir);
  } catch (e) {
    throw new UsageError(`--tokenizer ${pathOrDir}: ${(e as Error).message}`);
  }
}

export function runTokenizerEncode(flags: TokenizerEncodeFlags, io: CommandIO = defaultIO()): number[] {
  if (flags.tokenizer === undefined) throw new UsageError('--tokenizer <dir or file> is required');
  if ((flags.text === undefined) === (flags.file === undefined)) throw new UsageError('give exactly one of --text "…" or --file <path>');
  let text = flags.text;
  if (flags.file !== undefined) {
    try {
      text = readFileSync(flags.file, 'utf8');
    } catch (e) {
      throw new UsageError(`--file ${flags.file}: ${(e as Error).message}`);
    }
  }
  const tokenizer = loadTokenizerForCli(flags.tokenizer);
  const encoding = tokenizer.encodeFull(text!, null, { addSpecialTokens: flags.addSpecialTokens ?? true });
  if (flags.json) {
    io.stdout.write(`${JSON.stringify({ ids: encoding.ids })}\n`);
  } else {
    io.stdout.write(`${encoding.ids.length} tokens\nids: ${encoding.ids.join(',')}\ntokens: ${JSON.stringify(encoding.tokens)}\n`);
  }
  return encoding.ids;
}

/** "1,2,3" → [1, 2, 3]; spaces around ids are allowed, anything else is an error naming the entry. */
export function parseIds(text: string): number[] {
  if (text.trim() === '') return [];
  return text.split(',').map((part, i) => {
    const s = part.trim();
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) {
      throw new UsageError(`--ids: entry ${i + 1} (${JSON.stringify(part)}) is not a token id; expected comma-separated integers ≥ 0, e.g. --ids 1,2,3`);
    }
    return Number(s);
  });
}

export function runTokenizerDecode(flags: TokenizerDecodeFlags, io: CommandIO = defaultIO()): string {
  if (flags.tokenizer === undefined) throw new UsageError('--tokenizer <dir or file> is required');
  if (flags.ids === undefined) throw new UsageError('--ids is required (comma-separated, e.g. --ids 1,2,3)');
  const ids = parseIds(flags.ids);
  const tokenizer = loadTokenizerForCli(flags.tokenizer);
  let text: string;
  try {
    text = tokenizer.decode(ids, { skipSpecialTokens: flags.skipSpecialTokens ?? true });
  } catch (e) {
    throw new UsageError(`--ids: ${(e as Error).message}`);
  }
  io.stdout.write(flags.json ? `${JSON.stringify({ text })}\n` : `${text}\n`);
  return text;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function registerTokenizer(program: Command, io?: CommandIO): void {
  const tok = program.command('tokenizer').description('train, run and inspect tokenizers (Hugging Face tokenizer.json compatible)');
  tok
    .command('train')
    .description('train a tokenizer on text files and write <out>/tokenizer.json')
    .addOption(new Option('--type <type>', 'model: bpe (byte-level, GPT-2 style), wordpiece (BERT style) or unigram (SentencePiece style)').choices(TRAINABLE_TYPES as string[]))
    .option('--vocab-size <n>', 'vocabulary size, special tokens included', parsePositiveInt)
    .option('--input <file>', 'UTF-8 text file to train on (repeat for several)', collect)
    .option('--out <dir>', 'directory for tokenizer.json (created if missing)')
    .option('--min-frequency <n>', 'bpe, wordpiece: never merge a pair seen fewer times (default 2)', parseNonNegativeInt)
    .option('--special-tokens <list>', 'comma-separated special tokens, first ids (default: <|endoftext|> / [PAD],[UNK],[CLS],[SEP],[MASK] / <unk>,<s>,</s>)')
    .option('--limit-alphabet <n>', 'bpe, wordpiece: keep at most n distinct characters (default: wordpiece 1000, bpe unlimited)', parseNonNegativeInt)
    .option('--json', 'print progress and the result as JSON lines instead of a progress bar')
    .action((flags: TokenizerTrainFlags) => {
      runTokenizerTrain(flags, io);
    });
  tok
    .command('encode')
    .description('print the token ids of a text')
    .option('--tokenizer <path>', 'tokenizer.json, or a directory holding tokenizer.json, encoder.json+vocab.bpe, vocab.json+merges.txt or vocab.txt')
    .option('--text <text>', 'the text to encode')
    .option('--file <path>', 'encode this file’s contents instead')
    .option('--no-add-special-tokens', 'leave out the post-processor’s special tokens ([CLS]/[SEP], BOS/EOS)')
    .option('--json', 'print {"ids":[...]}')
    .action((flags: TokenizerEncodeFlags) => {
      runTokenizerEncode(flags, io);
    });
  tok
    .command('decode')
    .description('print the text of token ids')
    .option('--tokenizer <path>', 'tokenizer.json or a directory (as for encode)')
    .option('--ids <list>', 'comma-separated token ids, e.g. 1,2,3')
    .option('--no-skip-special-tokens', 'keep special tokens in the text')
    .option('--json', 'print {"text":"..."}')
    .action((flags: TokenizerDecodeFlags) => {
      runTokenizerDecode(flags, io);
    });
}
