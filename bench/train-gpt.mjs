#!/usr/bin/env node
// bench/train-gpt: Weft's GPT training step against the PyTorch reference (bench/reference/gpt_torch.py),
// same model, data, batch and optimizer, run one after the other in this process's run, on 1 and 2 threads.
// Prints one JSON line per measurement and a ratio line per thread count (torch ms / weft ms: > 1 = we are faster).
//
//   node bench/train-gpt.mjs [--iters 60] [--threads 1,2] [--quality] [--json]
//
// --quality also trains both for 2000 iterations (the quickstart config) and reports val loss at the end.
// Needs `npm run build` (uses dist/cli) and /usr/bin/python3 (or python3) with torch for the anchor.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const iters = Number(flag('--iters', '60'));
const threadCounts = flag('--threads', '1,2').split(',').map(Number);
const quality = args.includes('--quality');
const json = args.includes('--json');
const data = join(root, 'data', 'tinyshakespeare.txt');
const cli = join(root, 'dist', 'cli', 'index.js');
if (!existsSync(cli)) throw new Error('bench/train-gpt: run `npm run build` first (dist/cli/index.js is missing)');
if (!existsSync(data)) throw new Error(`bench/train-gpt: ${data} is missing`);

const model = ['--n-layer', '4', '--n-head', '4', '--n-embd', '128', '--block-size', '64', '--batch-size', '12'];

function findTorchPython() {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

function jsonLines(text) {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

function emit(record) {
  if (json) console.log(JSON.stringify(record));
  else console.log(Object.entries(record).map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(3) : v}`).join('  '));
}

function runWeft(threads, maxIters, extra = []) {
  const out = mkdtempSync(join(tmpdir(), 'weft-bench-'));
  try {
    const r = spawnSync(
      process.execPath,
      [cli, 'train', 'gpt', '--data', data, '--tokenizer', 'char', ...model, '--max-iters', String(maxIters), '--out', join(out, 'run'), '--json', ...extra],
      { encoding: 'utf8', env: { ...process.env, WEFT_NUM_THREADS: String(threads) }, maxBuffer: 1 << 28 },
    );
    if (r.status !== 0) throw new Error(`weft train failed: ${r.stderr}`);
    return jsonLines(r.stdout);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const py = findTorchPython();
for (const threads of threadCounts) {
  // Timed iterations: skip the first 10 (allocation, JIT warm-up), as the torch script skips its warm-up.
  const warm = 10;
  const weftRecords = runWeft(threads, warm + iters, ['--eval-interval', String(10 * (warm + iters)), '--eval-iters', '1']);
  const steps = weftRecords.filter((r) => typeof r.ms === 'number' && r.iter >= warm);
  const ms = steps.map((r) => r.ms).sort((a, b) => a - b);
  const weftMs = ms.reduce((s, v) => s + v, 0) / ms.length;
  emit({ bench: 'train-gpt', impl: 'weft', threads, ms_per_iter: weftMs, median_ms: ms[ms.length >> 1], iters: ms.length });
  if (py === null) {
    emit({ bench: 'train-gpt', impl: 'torch', threads, skipped: 'no python3 with torch' });
    continue;
  }
  const r = spawnSync(py, [join(root, 'bench', 'reference', 'gpt_torch.py'), '--data', data, '--iters', String(iters), '--warmup', String(warm), '--threads', String(threads)], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: String(threads) },
  });
  if (r.status !== 0) throw new Error(`torch reference failed: ${r.stderr}`);
  const t = jsonLines(r.stdout)[0];
  emit({ bench: 'train-gpt', impl: 'torch', version: t.version, threads, ms_per_iter: t.ms_per_iter, iters: t.iters });
  emit({ bench: 'train-gpt', threads, weft_ms: weftMs, torch_ms: t.ms_per_iter, speedup_vs_torch: t.ms_per_iter / weftMs });
}

if (quality) {
  const weft = runWeft(2, 2000, ['--eval-interval', '250', '--eval-iters', '20']);
  const lastEval = weft.filter((r) => typeof r.val_loss === 'number').pop();
  emit({ bench: 'train-gpt-quality', impl: 'weft', iter: lastEval.iter, train_loss: lastEval.train_loss, val_loss: lastEval.val_loss });
  if (py !== null) {
    const r = spawnSync(py, [join(root, 'bench', 'reference', 'gpt_torch.py'), '--data', data, '--eval', '--threads', '2'], { encoding: 'utf8' });
    const evals = jsonLines(r.stdout).filter((x) => typeof x.val_loss === 'number');
    const last = evals.pop();
    emit({ bench: 'train-gpt-quality', impl: 'torch', iter: last.iter, train_loss: last.train_loss, val_loss: last.val_loss });
  }
}
