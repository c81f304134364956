/**
 * Crash-safe file replacement: write a temp file in the same directory, fsync it, rename it over the
 * target, then fsync the directory so the rename itself is durable. A crash at any point leaves
 * either the old file or the complete new one — never a torn file — which is what keeps the last
 * checkpoint loadable when a run dies mid-save.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** What can be written: bytes, text (UTF-8), or a stream of chunks (big checkpoints without one huge buffer). */
export type AtomicData = Uint8Array | string | Iterable<Uint8Array>;
export type AtomicDataAsync = AtomicData | AsyncIterable<Uint8Array>;

/** The temp name: hidden, next to the target (rename is only atomic within one filesystem), unique per call. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** True for temp files left by a writer that died mid-write (safe to delete once no writer runs). */
export function isAtomicTempFile(name: string): boolean {
  return /^\..+\.tmp-\d+-[0-9a-f]{12}$/.test(basename(name));
}

function chunksOf(data: AtomicData): Iterable<Uint8Array> {
  if (typeof data === 'string') return [Buffer.from(data, 'utf8')];
  if (data instanceof Uint8Array) return [data];
  return data;
}

function writeAllSync(fd: number, chunk: Uint8Array): void {
  let done = 0;
  while (done < chunk.byteLength) done += fs.writeSync(fd, chunk, done, chunk.byteLength - done);
}

/** fsync of a directory makes a rename durable on Linux; some platforms can't open directories (ignored there). */
function syncDirSync(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    if (!isDirSyncUnsupported(e)) throw e;
  } finally {
    fs.closeSync(fd);
  }
}

async function syncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(dir, 'r');
  } catch {
    return;
  }
  try {
    await handle.sync();
  } catch (e) {
    if (!isDirSyncUnsupported(e)) throw e;
  } finally {
    await handle.close();
  }
}

function isDirSyncUnsupported(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EISDIR' || code === 'EINVAL' || code === 'EPERM' || code === 'EBADF';
}

function wrapError(path: string, e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  return new Error(`writeFileAtomic(${path}): ${msg}; the previous file (if any) is unchanged`, { cause: e });
}

/** Atomically replaces `path` with `data` (see the module comment). Synchronous. */
export function writeFileAtomicSync(path: string, data: AtomicData): void {
  const tmp = tempPathFor(path);
  let fd: number | null = null;
  try {
    // 'wx': never follow or clobber something already at the temp name.
    fd = fs.openSync(tmp, 'wx', 0o666);
    for (const chunk of chunksOf(data)) writeAllSync(fd, chunk);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    fs.rmSync(tmp, { force: true });
    throw wrapError(path, e);
  }
  syncDirSync(dirname(path));
}

/** Atomically replaces `path` with `data` (see the module comment). */
export async function writeFileAtomic(path: string, data: AtomicDataAsync): Promise<void> {
  const tmp = tempPathFor(path);
  let handle: fsp.FileHandle | null = null;
  try {
    handle = await fsp.open(tmp, 'wx', 0o666);
    const source: Iterable<Uint8Array> | AsyncIterable<Uint8Array> =
      typeof data === 'string' || data instanceof Uint8Array ? chunksOf(data) : data;
    for await (const chunk of source) {
      let done = 0;
      while (done < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done);
        done += bytesWritten;
      }
    }
    await handle.sync();
    await handle.close();
    handle = null;
    await fsp.rename(tmp, path);
  } catch (e) {
    if (handle !== null) await handle.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw wrapError(path, e);
  }
  await syncDir(dirname(path));
}
