/**
 * Optimizer state on disk: a safetensors file with the flat moments as F32 tensors `m` and `v`
 * (bit-exact, so a resume continues exactly) and step, lr and the parameter names in the metadata.
 */
import type { SafetensorsFile } from '../io/safetensors.js';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import { Tensor } from '../tensor/tensor.js';
import type { OptimizerState } from './flat.js';

export function optimizerStateToSafetensors(s: OptimizerState): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const tensors = new Map<string, Tensor>([
    ['m', Tensor.fromArray(s.m, [s.m.length])],
    ['v', Tensor.fromArray(s.v, [s.v.length])],
  ]);
  const metadata = { format: 'weft-optimizer', step: String(s.step), lr: JSON.stringify(s.lr), names: JSON.stringify(s.names) };
  return { tensors, metadata };
}

export function optimizerStateFromSafetensors(file: SafetensorsFile, source = '<buffer>'): OptimizerState {
  const fail = (problem: string): never => {
    throw new Error(`optimizer state ${source}: ${problem}`);
  };
  const { tensors, metadata } = file;
  if (metadata.format !== 'weft-optimizer') fail(`metadata.format is ${JSON.stringify(metadata.format)}, expected "weft-optimizer"`);
  const moment = (key: string): Float32Array => {
    const t = tensors.get(key);
    if (t === undefined || t.dtype !== 'f32' || t.ndim !== 1) return fail(`needs a 1-d F32 tensor '${key}'`);
    return t.f32().slice();
  };
  let names: unknown;
  let lr: unknown;
  try {
    names = JSON.parse(metadata.names ?? '');
    lr = JSON.parse(metadata.lr ?? '');
  } catch {
    return fail('metadata names/lr are not valid JSON');
  }
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) fail('metadata.names must be a JSON array of strings');
  if (typeof lr !== 'number') fail('metadata.lr must be a number');
  const step = Number(metadata.step);
  if (!Number.isSafeInteger(step) || step < 0) fail(`metadata.step must be a non-negative integer, got ${JSON.stringify(metadata.step)}`);
  return { step, m: moment('m'), v: moment('v'), names: names as string[], lr: lr as number };
}

/** Saves atomically (temp file, fsync, rename). */
export async function saveOptimizerState(path: string, s: OptimizerState): Promise<void> {
  const { tensors, metadata } = optimizerStateToSafetensors(s);
  await saveSafetensors(path, tensors, metadata);
}

export async function loadOptimizerState(path: string): Promise<OptimizerState> {
  return optimizerStateFromSafetensors(await loadSafetensors(path), path);
}
