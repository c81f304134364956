/**
 * runs/<name>/metrics.jsonl: every iteration and evaluation record, one JSON object per line,
 * always written (with or without --json). Appends are synchronous and small; a checkpoint
 * records the file's length so a resumed run can cut off lines written after it and the log
 * continues exactly where the weights do.
 */
import { appendFileSync, existsSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';

export class MetricsLog {
  constructor(readonly path: string) {}

  /** Starts an empty log (a fresh run). */
  reset(): void {
    writeFileSync(this.path, '');
  }

  append(record: object): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }

  /** Current length in bytes (0 when the file does not exist yet). */
  size(): number {
    return existsSync(this.path) ? statSync(this.path).size : 0;
  }

  /** Drops everything after `bytes` (lines logged after the checkpoint being resumed). */
  truncate(bytes: number): void {
    if (!existsSync(this.path)) {
      writeFileSync(this.path, '');
      return;
    }
    if (statSync(this.path).size > bytes) truncateSync(this.path, bytes);
  }

  /** The parsed records (for tests and reports). */
  static read(path: string): Record<string, number>[] {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    return text
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as Record<string, number>);
  }
}
