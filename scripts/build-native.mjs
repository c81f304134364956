// Builds the native addon with node-gyp against the headers of the Node that runs this script
// (no download: machines here have no internet). A failed build is not fatal: Weft falls back to
// the js backend and says so loudly at start-up.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

function nodeDir() {
  // process.execPath is <prefix>/bin/node; headers live in <prefix>/include/node.
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return prefix;
  return null;
}

function nodeGypBin() {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    // npm sets this for lifecycle scripts; it points at npm's own bundled node-gyp.
    return process.env.npm_config_node_gyp ?? null;
  }
}

const gyp = nodeGypBin();
const dir = nodeDir();
if (gyp === null) {
  console.warn('weft: node-gyp not found; the native backend is not built (js backend will be used).');
  process.exit(0);
}
const args = [gyp, 'rebuild', '--release', `--jobs=${process.env.WEFT_BUILD_JOBS ?? 'max'}`];
if (dir !== null) args.push(`--nodedir=${dir}`);
else console.warn('weft: Node headers not found next to the node binary; node-gyp may try to download them.');
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (result.status !== 0) {
  console.warn('\n*** weft: building the native addon FAILED; Weft will run on the slow js backend. ***\n');
  if (process.env.WEFT_REQUIRE_NATIVE === '1') process.exit(1);
}
