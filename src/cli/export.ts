/**
 * `weft export gguf <model dir> --out model.gguf [--type f32|f16|q8_0|q4_0] [--json]`: writes a
 * LLaMA-family Hugging Face directory (config.json + safetensors + tokenizer) as a GGUF file that
 * llama.cpp runs (src/io/gguf-export.ts).
 */
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { GGUF_EXPORT_TYPES, type GGUFExportType, exportGGUF } from '../io/gguf-export.js';
import { Llama } from '../models/llama.js';
import { loadPretrained } from '../models/registry.js';
import { loadTokenizer } from '../tokenizers/index.js';
import { UsageError } from '../train/config.js';

export interface ExportGGUFFlags {
  out: string;
  type: string;
  json?: boolean;
}

export interface ExportGGUFResult {
  model: string;
  out: string;
  type: GGUFExportType;
  bytes: number;
  seconds: number;
}

export async function runExportGGUF(modelDir: string, flags: ExportGGUFFlags): Promise<ExportGGUFResult> {
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory()) throw new UsageError(`export gguf: ${modelDir} is not a model directory (config.json + model.safetensors + tokenizer)`);
  if (!(GGUF_EXPORT_TYPES as readonly string[]).includes(flags.type)) {
    throw new UsageError(`export gguf: --type must be one of ${GGUF_EXPORT_TYPES.join(', ')}, got '${flags.type}'`);
  }
  const type = flags.type as GGUFExportType;
  const t0 = performance.now();
  const model = await loadPretrained(modelDir);
  if (!(model instanceof Llama)) throw new UsageError(`export gguf: ${modelDir} holds a ${model.constructor.name}; GGUF export supports the LLaMA family (llama, qwen2)`);
  let tokenizer;
  try {
    tokenizer = loadTokenizer(modelDir);
  } catch (e) {
    throw new UsageError(`export gguf: ${modelDir} has no usable tokenizer (tokenizer.json): ${(e as Error).message}`);
  }
  await exportGGUF(model, tokenizer, flags.out, type);
  return { model: modelDir, out: flags.out, type, bytes: statSync(flags.out).size, seconds: (performance.now() - t0) / 1000 };
}

export function registerExport(program: Command): void {
  const exp = program.command('export').description('write a model in another format');
  exp
    .command('gguf <model>')
    .description('a LLaMA-family model directory as a GGUF file for llama.cpp')
    .requiredOption('--out <file>', 'output .gguf path')
    .option('--type <type>', `weight type: ${GGUF_EXPORT_TYPES.join(', ')}`, 'f16')
    .option('--json', 'print the result as one JSON line')
    .action(async (modelDir: string, flags: ExportGGUFFlags) => {
      const r = await runExportGGUF(modelDir, flags);
      if (flags.json === true) console.log(JSON.stringify(r));
      else console.log(`wrote ${r.out} (${r.type}, ${(r.bytes / 2 ** 20).toFixed(1)} MiB) in ${r.seconds.toFixed(1)} s`);
    });
}
