/**
 * A throwaway PostgreSQL server for the store tests: WEFT_PG_URL when set, else Debian's
 * PostgreSQL (initdb + pg_ctl as the postgres user, on a Unix socket in a temp directory) when
 * this machine has it; null (with the reason) otherwise.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export interface TestPostgres {
  url: string;
  stop(): void;
}

function pgBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort();
  return versions.length === 0 ? null : join(root, versions[versions.length - 1]!, 'bin');
}

export function startTestPostgres(): { pg: TestPostgres | null; reason: string } {
  if (process.env.WEFT_PG_URL !== undefined) return { pg: { url: process.env.WEFT_PG_URL, stop: () => undefined }, reason: '' };
  const bin = pgBin();
  if (bin === null) return { pg: null, reason: 'no PostgreSQL server binaries under /usr/lib/postgresql (set WEFT_PG_URL to test against a server)' };
  let uid: number;
  let gid: number;
  try {
    const id = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim();
    uid = Number(id);
    gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  } catch {
    return { pg: null, reason: 'no postgres user to run the server as (set WEFT_PG_URL)' };
  }
  if (userInfo().uid !== 0) return { pg: null, reason: 'starting a PostgreSQL server needs root (to run it as postgres); set WEFT_PG_URL instead' };
  const dir = mkdtempSync(join(tmpdir(), 'weft-pg-'));
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  const port = String(20000 + (process.pid % 20000));
  const as = (cmd: string, args: string[]): void => void execFileSync('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { stdio: 'ignore', timeout: 60_000 });
  try {
    as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    as('pg_ctl', ['-D', data, '-o', `-p ${port} -k ${dir} -c listen_addresses='' -c fsync=off`, '-w', 'start', '-l', join(dir, 'log')]);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return { pg: null, reason: `could not start PostgreSQL from ${bin}: ${(e as Error).message.split('\n')[0]}` };
  }
  return {
    pg: {
      url: `postgresql://postgres@localhost/postgres?host=${encodeURIComponent(dir)}&port=${port}`,
      stop: () => {
        try {
          as('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    },
    reason: '',
  };
}
