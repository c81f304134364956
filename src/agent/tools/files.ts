/**
 * File read/write confined to a workspace directory. Every path is relative to the workspace;
 * absolute paths are refused, `..` that leaves the workspace is refused, and the real path (every
 * symlink resolved) of the file, or of its nearest existing ancestor for a new file, must lie
 * inside the workspace's real path — so a symlink planted inside the workspace cannot lead out.
 * Writes open with O_NOFOLLOW, so the final component cannot be swapped for a symlink between the
 * check and the write. Sizes are limited both ways.
 */
import { constants, existsSync, lstatSync, realpathSync } from 'node:fs';
import { mkdir, open, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { defineTool, type Tool } from './tool.js';

export class WorkspaceError extends Error {
  override name = 'WorkspaceError';
}

export interface WorkspaceOptions {
  /** Largest file read (bytes, default 256 KiB). */
  maxReadBytes?: number;
  /** Largest file written (bytes, default 1 MiB). */
  maxWriteBytes?: number;
}

export class Workspace {
  readonly root: string;
  readonly maxReadBytes: number;
  readonly maxWriteBytes: number;

  constructor(dir: string, options: WorkspaceOptions = {}) {
    if (!existsSync(dir)) throw new WorkspaceError(`workspace ${dir} does not exist; create it first`);
    this.root = realpathSync(dir);
    this.maxReadBytes = options.maxReadBytes ?? 256 * 1024;
    this.maxWriteBytes = options.maxWriteBytes ?? 1024 * 1024;
  }

  private inside(real: string): boolean {
    return real === this.root || real.startsWith(this.root + sep);
  }

  /** The absolute path a workspace-relative path names, after every check. */
  resolve(path: string): string {
    if (path.includes('\0')) throw new WorkspaceError('path contains a NUL byte');
    if (isAbsolute(path) || /^[a-zA-Z]:[\\/]/.test(path)) throw new WorkspaceError(`absolute paths are not allowed (${path}); give a path relative to the workspace`);
    const target = resolve(this.root, path);
    const rel = relative(this.root, target);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new WorkspaceError(`path ${path} leaves the workspace`);
    // The nearest existing ancestor (or the target itself) must really be inside.
    let probe = target;
    while (!existsSync(probe) && !isSymlink(probe)) probe = dirname(probe);
    let real: string;
    try {
      real = realpathSync(probe);
    } catch {
      throw new WorkspaceError(`path ${path} goes through a broken symlink`);
    }
    if (!this.inside(real)) throw new WorkspaceError(`path ${path} resolves outside the workspace (through a symlink)`);
    return target;
  }

  async read(path: string): Promise<string> {
    const abs = this.resolve(path);
    const st = await stat(abs).catch(() => null);
    if (st === null) throw new WorkspaceError(`${path} does not exist`);
    if (st.isDirectory()) throw new WorkspaceError(`${path} is a directory; use list_files`);
    if (st.size > this.maxReadBytes) throw new WorkspaceError(`${path} is ${st.size} bytes, more than the ${this.maxReadBytes}-byte read limit`);
    return readFile(abs, 'utf8');
  }

  async write(path: string, content: string): Promise<number> {
    const bytes = Buffer.byteLength(content, 'utf8');
    if (bytes > this.maxWriteBytes) throw new WorkspaceError(`content is ${bytes} bytes, more than the ${this.maxWriteBytes}-byte write limit`);
    const abs = this.resolve(path);
    await mkdir(dirname(abs), { recursive: true });
    // Re-check after mkdir (a directory created meanwhile could be a symlink), then refuse to follow one.
    this.resolve(path);
    const fh = await open(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
    try {
      await fh.writeFile(content, 'utf8');
    } finally {
      await fh.close();
    }
    return bytes;
  }

  async list(path = '.'): Promise<string[]> {
    const abs = this.resolve(path);
    const entries = await readdir(abs, { withFileTypes: true });
    return entries.map((e) => (e.isDirectory() ? `${e.name}/` : e.name)).sort();
  }

  relative(abs: string): string {
    return relative(this.root, abs) || '.';
  }
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

const PathArg = z.string().min(1).describe('path relative to the workspace');

export function fileTools(workspace: Workspace): Tool[] {
  return [
    defineTool({
      name: 'read_file',
      description: 'Reads a UTF-8 text file from the workspace.',
      schema: z.object({ path: PathArg }),
      run: ({ path }) => workspace.read(path),
    }),
    defineTool({
      name: 'write_file',
      description: 'Writes (creates or replaces) a UTF-8 text file in the workspace.',
      schema: z.object({ path: PathArg, content: z.string() }),
      dangerous: true,
      run: async ({ path, content }) => `wrote ${await workspace.write(path, content)} bytes to ${join(path)}`,
    }),
    defineTool({
      name: 'list_files',
      description: 'Lists a workspace directory (directories end with /).',
      schema: z.object({ path: z.string().default('.').describe('directory relative to the workspace (default: the workspace)') }),
      run: async ({ path }) => (await workspace.list(path)).join('\n') || '(empty)',
    }),
  ];
}
