/**
 * Fused attention forward and backward (weft's flash-style kernels) against PyTorch's explicit path
 * (q·kᵀ, masked softmax, ·v, and its autograd backward over batched GEMMs), run side by side on the
 * same shapes and thread count. The default shapes are the GPT quickstart's layer (B·H = 48, T = 64,
 * D = 32, causal) and a long causal sequence.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AttentionParams, Backend } from '../tensor/backend/backend.js';
import { bestTime, fillRandom, packageRoot, round } from './common.js';

export interface AttentionShape {
  batch: number;
  heads: number;
  seq: number;
  dim: number;
  causal: boolean;
}

export const ATTENTION_SHAPES: AttentionShape[] = [
  { batch: 4, heads: 12, seq: 64, dim: 32, causal: true },
  { batch: 4, heads: 12, seq: 256, dim: 64, causal: true },
  { batch: 4, heads: 12, seq: 1024, dim: 64, causal: true },
];

export interface AttentionRecord {
  shape: string;
  fwd_ms: number;
  bwd_ms: number;
  /** Fused multiply-adds counted for a dense (non-causal) score matrix, fwd + bwd, per second. */
  gflops: number;
  torch_fwd_ms: number | null;
  torch_bwd_ms: number | null;
  /** torch (fwd + bwd) time over ours: above 1 means weft is faster. */
  ratio: number | null;
  threads: number;
  backend: string;
  anchor: string;
}

/** "B,H,T,D" with an optional ":c" for causal. */
export function parseAttentionShape(text: string): AttentionShape {
  const [dims, flag] = text.split(':');
  const parts = dims.split(',').map(Number);
  if (parts.length !== 4 || parts.some((x) => !Number.isInteger(x) || x < 1) || (flag !== undefined && flag !== 'c'))
    throw new Error(`bench attention: shape must be B,H,T,D or B,H,T,D:c (causal), got '${text}'`);
  const [batch, heads, seq, dim] = parts;
  return { batch, heads, seq, dim, causal: flag === 'c' };
}

function shapeText(s: AttentionShape): string {
  return `${s.batch},${s.heads},${s.seq},${s.dim}${s.causal ? ':c' : ''}`;
}

interface TorchRecord {
  shape: string;
  fwd_seconds: number;
  bwd_seconds: number;
}

/** Runs bench/attention_torch.py (python3 on PATH, then /usr/bin/python3, whichever imports torch). */
function runTorch(shapes: AttentionShape[], threads: number): { records: TorchRecord[] } | { error: string } {
  const script = join(packageRoot(), 'bench', 'attention_torch.py');
  if (!existsSync(script)) return { error: `${script} is missing` };
  const python = ['python3', '/usr/bin/python3'].find(
    (exe) => spawnSync(exe, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0,
  );
  if (python === undefined) return { error: 'no python3 with torch found' };
  const args = [script, '--threads', String(threads), ...shapes.flatMap((s) => ['--shape', shapeText(s)])];
  const r = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) return { error: `torch anchor failed: ${(r.stderr || r.error?.message || '').trim()}` };
  const records = r.stdout
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as TorchRecord);
  return { records };
}

export function benchAttention(
  shapes: AttentionShape[],
  opts: { backend: Backend; threads: number; torch: boolean; minSeconds?: number },
): AttentionRecord[] {
  const { backend, threads } = opts;
  const minSeconds = opts.minSeconds ?? 0.3;
  const torch = opts.torch ? runTorch(shapes, threads) : { error: 'disabled (--no-torch)' };
  const anchor = 'error' in torch ? `none (${torch.error})` : `torch ${threads} thread(s), explicit q·kᵀ/softmax/·v`;
  return shapes.map((s) => {
    const n = s.batch * s.heads * s.seq * s.dim;
    const q = fillRandom(new Float32Array(n), 1);
    const k = fillRandom(new Float32Array(n), 2);
    const v = fillRandom(new Float32Array(n), 3);
    const gOut = fillRandom(new Float32Array(n), 4);
    const out = new Float32Array(n);
    const lse = new Float32Array(s.batch * s.heads * s.seq);
    const [gq, gk, gv] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
    const p: AttentionParams = {
      batch: s.batch,
      heads: s.heads,
      tq: s.seq,
      tk: s.seq,
      dim: s.dim,
      scale: 1 / Math.sqrt(s.dim),
      causal: s.causal,
    };
    const fwd = bestTime(() => backend.attention(q, k, v, p, out, lse), minSeconds);
    const bwd = bestTime(() => backend.attentionBackward(q, k, v, out, lse, gOut, p, gq, gk, gv), minSeconds);
    // fwd: 2 GEMMs, bwd: 5 (scores recomputed, dP, dV, dK, dQ); 2 flops per multiply-add.
    const flops = 2 * 7 * s.batch * s.heads * s.seq * s.seq * s.dim;
    const t = 'error' in torch ? undefined : torch.records.find((r) => r.shape === shapeText(s));
    return {
      shape: shapeText(s),
      fwd_ms: round(fwd * 1e3, 3),
      bwd_ms: round(bwd * 1e3, 3),
      gflops: round(flops / (fwd + bwd) / 1e9, 1),
      torch_fwd_ms: t ? round(t.fwd_seconds * 1e3, 3) : null,
      torch_bwd_ms: t ? round(t.bwd_seconds * 1e3, 3) : null,
      ratio: t ? round((t.fwd_seconds + t.bwd_seconds) / (fwd + bwd), 3) : null,
      threads,
      backend: backend.name,
      anchor,
    };
  });
}
