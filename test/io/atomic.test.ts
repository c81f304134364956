import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { isAtomicTempFile, writeFileAtomic, writeFileAtomicSync } from '../../src/io/atomic.js';
import { loadSafetensorsSync, saveSafetensors } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor/tensor.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dirs: string[] = [];
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'weft-atomic-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Yields `n` chunks, then throws (a writer failing mid-file: disk full, a serializer bug). */
function* failingChunks(n: number): Generator<Uint8Array> {
  for (let i = 0; i < n; i++) yield new Uint8Array(4096).fill(0xab);
  throw new Error('simulated failure mid-write');
}

describe('writeFileAtomic', () => {
  it('creates and replaces files (bytes, text, chunks) and leaves no temp file', async () => {
    const d = scratch();
    const p = join(d, 'a.bin');
    await writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    expect([...readFileSync(p)]).toEqual([1, 2, 3]);
    await writeFileAtomic(p, 'héllo');
    expect(readFileSync(p, 'utf8')).toBe('héllo');
    writeFileAtomicSync(p, [new Uint8Array([9]), new Uint8Array([8, 7])]);
    expect([...readFileSync(p)]).toEqual([9, 8, 7]);
    async function* gen(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([5]);
      yield new Uint8Array([6]);
    }
    await writeFileAtomic(p, gen());
    expect([...readFileSync(p)]).toEqual([5, 6]);
    expect(readdirSync(d)).toEqual(['a.bin']);
  });

  it('a failure mid-write keeps the old file and removes the temp (async and sync)', async () => {
    const d = scratch();
    const p = join(d, 'ckpt.bin');
    writeFileSync(p, 'old contents');
    await expect(writeFileAtomic(p, failingChunks(3))).rejects.toThrow(/ckpt\.bin.*simulated failure mid-write.*unchanged/);
    expect(readFileSync(p, 'utf8')).toBe('old contents');
    expect(readdirSync(d)).toEqual(['ckpt.bin']);
    expect(() => writeFileAtomicSync(p, failingChunks(2))).toThrow(/simulated failure mid-write/);
    expect(readFileSync(p, 'utf8')).toBe('old contents');
    expect(readdirSync(d)).toEqual(['ckpt.bin']);
  });

  it('fails cleanly when the directory does not exist', async () => {
    const p = join(scratch(), 'missing', 'x.bin');
    await expect(writeFileAtomic(p, 'x')).rejects.toThrow(/missing.*ENOENT/);
    expect(() => writeFileAtomicSync(p, 'x')).toThrow(/ENOENT/);
  });

  it('a process SIGKILLed mid-write leaves the previous checkpoint intact and loadable', async () => {
    const d = scratch();
    const target = join(d, 'model.safetensors');
    const w = Tensor.fromArray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    await saveSafetensors(target, { w }, { step: '7' });
    const before = readFileSync(target);

    // The child runs the real atomic.ts (transpiled: it only imports node: modules), streams the
    // first chunks of a new file, reports, then blocks until it is killed.
    const src = readFileSync(join(ROOT, 'src', 'io', 'atomic.ts'), 'utf8');
    const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } });
    writeFileSync(join(d, 'atomic.mjs'), js.outputText);
    writeFileSync(
      join(d, 'child.mjs'),
      `import { writeSync } from 'node:fs';
import { writeFileAtomicSync } from './atomic.mjs';
function* chunks() {
  for (let i = 0; i < 4; i++) yield new Uint8Array(1 << 20).fill(0x5a);
  writeSync(1, 'mid\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // blocks forever
  yield new Uint8Array(1);
}
writeFileAtomicSync(process.argv[2], chunks());
writeSync(1, 'finished\\n');
`,
    );
    const child = spawn(process.execPath, [join(d, 'child.mjs'), target], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('mid')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`child exited early (${code}): ${out} ${err}`)));
    });
    // Mid-write: the temp file holds the partial new data; the target is untouched.
    const temps = readdirSync(d).filter((f) => isAtomicTempFile(f));
    expect(temps).toHaveLength(1);
    expect(readFileSync(join(d, temps[0]!)).length).toBe(4 << 20);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, sig) => resolve(sig)));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(out).not.toContain('finished');

    expect(readFileSync(target).equals(before)).toBe(true);
    const loaded = loadSafetensorsSync(target);
    expect(loaded.metadata).toEqual({ step: '7' });
    expect(loaded.tensors.get('w')!.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
    // The dead writer's temp is recognisable (for cleanup); a new write still succeeds.
    await saveSafetensors(target, { w: Tensor.fromArray(new Float32Array([9]), [1]) });
    expect(loadSafetensorsSync(target).tensors.get('w')!.toArray()).toEqual([9]);
    expect(existsSync(join(d, temps[0]!))).toBe(true);
  });

  it('recognises only its own temp names', () => {
    expect(isAtomicTempFile('.model.safetensors.tmp-123-0123456789ab')).toBe(true);
    expect(isAtomicTempFile('model.safetensors')).toBe(false);
    expect(isAtomicTempFile('.model.safetensors.tmp-x-0123456789ab')).toBe(false);
  });
});
