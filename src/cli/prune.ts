/**
 * `weft prune <model> --method magnitude|heads|neurons|layers --sparsity S --out <dir>`:
 * magnitude pruning (one-shot, or gradual with fine-tuning when --finetune-steps is given) or
 * structured pruning by Taylor importance into a smaller LLaMA; prints sparsity, parameters, file
 * size, validation perplexity and decode speed before and after.
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import { applyMasks, cubicSparsity, magnitudeMasks, pruneHeads, pruneLayers, pruneNeurons, sparsityOf, taylorImportance } from '../compress/prune.js';
import type { Llama } from '../models/llama.js';
import { Generator } from '../tensor/random.js';
import { UsageError } from '../train/config.js';
import { comparisonFields, copyTokenizer, defaultIO, fineTuneWithProgress, loadLlamaDir, measureModel, modelTokenizer, readText, splitIds, trainingTextOf } from './compress.js';
import { type CommandIO, parseNonNegativeInt, parsePositiveInt, parsePositiveNumber, parseUnitInterval } from './train.js';

export interface PruneFlags {
  method: string;
  sparsity: number;
  out: string;
  data?: string;
  scope?: string;
  finetuneSteps?: number;
  pruneSteps?: number;
  importanceBatches?: number;
  lr?: number;
  batchSize?: number;
  json?: boolean;
}

export async function runPrune(modelDir: string, flags: PruneFlags, io: CommandIO = defaultIO()): Promise<Record<string, unknown>> {
  const json = flags.json === true;
  const note = (s: string): void => void (json ? io.stderr : io.stdout).write(`${s}\n`);
  const method = flags.method;
  if (!['magnitude', 'heads', 'neurons', 'layers'].includes(method)) throw new UsageError(`--method ${method}: choose magnitude, heads, neurons or layers`);
  const S = flags.sparsity;
  if (!(S >= 0 && S < 1)) throw new UsageError(`--sparsity ${S}: the fraction to remove, in [0, 1)`);
  const scope = flags.scope ?? 'layer';
  if (scope !== 'layer' && scope !== 'global') throw new UsageError(`--scope ${scope}: layer or global`);
  const model = await loadLlamaDir(modelDir);
  const tokenizer = modelTokenizer(modelDir);
  const dataPath = flags.data ?? trainingTextOf(modelDir);
  const steps = flags.finetuneSteps ?? 0;
  if (dataPath === undefined && (method !== 'magnitude' || steps > 0)) {
    throw new UsageError(`--data: ${method === 'magnitude' ? 'fine-tuning' : 'Taylor importance'} needs text; pass --data <text file>`);
  }
  const ds = dataPath === undefined ? null : splitIds(readText(dataPath, '--data'), tokenizer, '--data');
  const block = Math.min(model.config.maxPositionEmbeddings, 128);
  const before = measureModel(model, ds?.val ?? null, block);
  const batchSize = flags.batchSize ?? 16;
  const lr = flags.lr ?? 3e-4;
  const train = (m: Llama, n: number, afterStep?: (s: number) => void): void => {
    if (n <= 0 || ds === null) return;
    fineTuneWithProgress(io, json, { model: m, dataset: ds, steps: n, batchSize, blockSize: block, lr, afterStep });
  };
  let result: Llama = model;
  if (method === 'magnitude') {
    const events = steps > 0 ? (flags.pruneSteps ?? 4) : 1;
    for (let k = 1; k <= events; k++) {
      const s = cubicSparsity(k, events, S);
      const masks = magnitudeMasks(model, s, { scope, include: /^model\.layers\./ });
      applyMasks(model, masks);
      note(`pruning event ${k}/${events}: sparsity ${(s * 100).toFixed(1)}%`);
      train(model, Math.floor(steps / events), () => applyMasks(model, masks));
    }
  } else {
    const g = new Generator().seedPcg(7n, 0x7a11n);
    const batches = Array.from({ length: flags.importanceBatches ?? 8 }, () => ds!.batch('train', 8, block, g));
    const imp = taylorImportance(model, batches);
    const c = model.config;
    if (method === 'neurons') result = pruneNeurons(model, imp, Math.max(1, Math.round(c.intermediateSize * (1 - S))));
    else if (method === 'heads') result = pruneHeads(model, imp, Math.max(1, Math.round(c.nKVHead * (1 - S))));
    else result = pruneLayers(model, imp, Math.max(1, Math.round(c.nLayer * (1 - S))));
    train(result, steps);
  }
  result.eval();
  await result.savePretrained(flags.out);
  copyTokenizer(modelDir, flags.out);
  const after = measureModel(result, ds?.val ?? null, block);
  const summary = {
    method,
    requestedSparsity: S,
    weightSparsity: sparsityOf(result, { include: /^model\.layers\./ }),
    ...comparisonFields(before, after, flags.out),
    config: { nLayer: result.config.nLayer, nHead: result.config.nHead, nKVHead: result.config.nKVHead, intermediateSize: result.config.intermediateSize },
    out: flags.out,
  };
  if (json) io.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    note(`${method}: parameters ${before.params.toLocaleString('en-US')} → ${after.params.toLocaleString('en-US')}, decoder weight sparsity ${(summary.weightSparsity * 100).toFixed(1)}%, file ${(summary.fileBytes / 1024).toFixed(1)} KiB`);
    if (before.perplexity !== null) note(`val perplexity ${before.perplexity.toFixed(4)} → ${after.perplexity!.toFixed(4)}`);
    note(`decode ${before.speed.decodeTokensPerS.toFixed(1)} → ${after.speed.decodeTokensPerS.toFixed(1)} tokens/s; prefill ${before.speed.prefillTokensPerS.toFixed(1)} → ${after.speed.prefillTokensPerS.toFixed(1)} tokens/s`);
    note(`wrote ${join(flags.out, 'model.safetensors')}`);
  }
  return summary;
}

export function registerPrune(program: Command, io?: CommandIO): void {
  program
    .command('prune <model>')
    .description('prune a LLaMA-family model: magnitude (unstructured) or heads / neurons / layers (a smaller model by Taylor importance)')
    .requiredOption('--method <m>', 'magnitude | heads | neurons | layers')
    .requiredOption('--sparsity <s>', 'fraction to remove: weights (magnitude), key/value heads, FFN neurons or layers', parseUnitInterval)
    .requiredOption('--out <dir>', 'output model directory')
    .option('--data <file>', 'text for importance, fine-tuning and perplexity (default: the text the run trained on)')
    .option('--scope <s>', 'magnitude: layer (default) or global threshold')
    .option('--finetune-steps <n>', 'fine-tuning steps (magnitude: spread over the gradual schedule, masks kept)', parseNonNegativeInt)
    .option('--prune-steps <n>', 'magnitude: pruning events of the cubic schedule (default 4 with fine-tuning)', parsePositiveInt)
    .option('--importance-batches <n>', 'batches of 8 windows for Taylor importance (default 8)', parsePositiveInt)
    .option('--lr <x>', 'fine-tuning learning rate (default 3e-4)', parsePositiveNumber)
    .option('--batch-size <n>', 'fine-tuning batch size (default 16)', parsePositiveInt)
    .option('--json', 'a JSON summary line')
    .action(async (model: string, flags: PruneFlags) => {
      await runPrune(model, flags, io);
    });
}
