/**
 * Training progress for people and for programs. People get a progress bar redrawn in place
 * (`\r`) on a terminal, or a plain line every `logInterval` iterations when the output is a pipe
 * or a file; programs get `--json`: one JSON object per line, per iteration and per evaluation.
 */

/** The part of a stream the reporter uses (process.stdout fits). */
export interface OutputStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** One training iteration, as printed with --json and appended to metrics.jsonl. */
export interface IterationRecord {
  iter: number;
  loss: number;
  lr: number;
  ms: number;
  tokens_per_s: number;
}

/** One evaluation (mean losses over eval_iters batches), as printed with --json and logged. */
export interface EvaluationRecord {
  iter: number;
  train_loss: number;
  val_loss: number;
}

export interface ProgressOptions {
  out: OutputStream;
  /** Where human notes go when `out` carries JSON (default: a sink that drops them). */
  err?: OutputStream;
  json: boolean;
  /** Iteration count at which training ends, for the bar and the ETA. */
  maxIters: number;
  /** Plain-text mode: one line every this many iterations (default 10, as nanoGPT's log_interval). */
  logInterval?: number;
}

const BAR_WIDTH = 24;

export class ProgressReporter {
  private readonly tty: boolean;
  private barShown = false;
  /** Smoothed ms per iteration for the ETA (the first iterations are slower while buffers warm up). */
  private msPerIter: number | null = null;

  constructor(private readonly options: ProgressOptions) {
    this.tty = !options.json && options.out.isTTY === true;
  }

  iteration(r: IterationRecord): void {
    this.msPerIter = this.msPerIter === null ? r.ms : 0.9 * this.msPerIter + 0.1 * r.ms;
    if (this.options.json) {
      this.options.out.write(`${JSON.stringify(r)}\n`);
      return;
    }
    const done = r.iter + 1;
    const eta = formatDuration(((this.options.maxIters - done) * this.msPerIter) / 1000);
    if (this.tty) {
      const frac = Math.min(1, done / this.options.maxIters);
      const filled = Math.round(frac * BAR_WIDTH);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}`;
      let line =
        `iter ${String(done).padStart(String(this.options.maxIters).length)}/${this.options.maxIters} ${bar} ` +
        `loss ${r.loss.toFixed(4)}  lr ${r.lr.toExponential(2)}  ${formatRate(r.tokens_per_s)} tok/s  ETA ${eta}`;
      const columns = this.options.out.columns;
      if (columns !== undefined && columns > 20 && line.length >= columns) line = line.slice(0, columns - 1);
      this.options.out.write(`\r${line}\x1b[K`);
      this.barShown = true;
      return;
    }
    const every = this.options.logInterval ?? 10;
    if (r.iter % every === 0 || done === this.options.maxIters) {
      this.options.out.write(
        `iter ${r.iter}: loss ${r.loss.toFixed(4)}, lr ${r.lr.toExponential(2)}, ${r.ms.toFixed(1)} ms, ${formatRate(r.tokens_per_s)} tok/s, ETA ${eta}\n`,
      );
    }
  }

  evaluation(r: EvaluationRecord): void {
    if (this.options.json) {
      this.options.out.write(`${JSON.stringify(r)}\n`);
      return;
    }
    this.line(`step ${r.iter}: train loss ${r.train_loss.toFixed(4)}, val loss ${r.val_loss.toFixed(4)}`);
  }

  /** A human note (checkpoint saved, resumed from …): on `out` normally, on `err` in JSON mode. */
  note(text: string): void {
    if (this.options.json) {
      this.options.err?.write(`${text}\n`);
      return;
    }
    this.line(text);
  }

  /** Ends the in-place bar so later output starts on a fresh line. */
  finish(): void {
    if (this.barShown) this.options.out.write('\n');
    this.barShown = false;
  }

  private line(text: string): void {
    if (this.barShown) this.options.out.write('\r\x1b[K');
    this.options.out.write(`${text}\n`);
    // The bar is redrawn by the next iteration.
    this.barShown = false;
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k`;
  return perSecond.toFixed(0);
}

/** Where a training command writes: its streams, JSON mode, and `note` for human lines (stderr in JSON mode, so stdout stays parseable). */
export function runOutput(o: { stdout?: OutputStream; stderr?: OutputStream; json?: boolean }): {
  stdout: OutputStream;
  stderr: OutputStream;
  json: boolean;
  note: (line: string) => void;
} {
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  const json = o.json === true;
  return { stdout, stderr, json, note: (line) => void (json ? stderr : stdout).write(`${line}\n`) };
}
