/**
 * `weft lowrank <model> --rank K | --energy E --out <dir>`: SVD factorisation of every decoder Linear
 * into two (in → k → out) where that saves parameters; optional fine-tuning; prints parameters, file
 * size, validation perplexity and decode speed before and after.
 */
import type { Command } from 'commander';
import { factorizeModel, saveLowRankLlama } from '../compress/lowrank.js';
import { UsageError } from '../train/config.js';
import { comparisonFields, copyTokenizer, defaultIO, fineTuneWithProgress, loadLlamaDir, measureModel, modelTokenizer, readText, splitIds, stepProgress, trainingTextOf } from './compress.js';
import { type CommandIO, parseNonNegativeInt, parsePositiveInt, parsePositiveNumber } from './train.js';

export interface LowRankFlags {
  rank?: number;
  energy?: number;
  out: string;
  data?: string;
  finetuneSteps?: number;
  lr?: number;
  json?: boolean;
}

export async function runLowRank(modelDir: string, flags: LowRankFlags, io: CommandIO = defaultIO()): Promise<Record<string, unknown>> {
  const json = flags.json === true;
  const note = (s: string): void => void (json ? io.stderr : io.stdout).write(`${s}\n`);
  if ((flags.rank === undefined) === (flags.energy === undefined)) throw new UsageError('give exactly one of --rank K or --energy E');
  if (flags.energy !== undefined && !(flags.energy > 0 && flags.energy <= 1)) throw new UsageError(`--energy ${flags.energy}: a fraction of spectral energy in (0, 1]`);
  const model = await loadLlamaDir(modelDir);
  const tokenizer = modelTokenizer(modelDir);
  const dataPath = flags.data ?? trainingTextOf(modelDir);
  const ds = dataPath === undefined ? null : splitIds(readText(dataPath, '--data'), tokenizer, '--data');
  const steps = flags.finetuneSteps ?? 0;
  if (steps > 0 && ds === null) throw new UsageError('--finetune-steps needs --data');
  const block = Math.min(model.config.maxPositionEmbeddings, 128);
  const before = measureModel(model, ds?.val ?? null, block);
  const progress = stepProgress(io.stderr, json);
  const reports = factorizeModel(model, { rank: flags.rank, energy: flags.energy, include: /^model\.layers\./, onLayer: (_n, d, t) => progress.update('SVD of layer', d, t) });
  progress.finish();
  if (steps > 0 && ds !== null) {
    fineTuneWithProgress(io, json, { model, dataset: ds, steps, batchSize: 16, blockSize: block, lr: flags.lr ?? 3e-4 });
  }
  model.eval();
  const ranks = Object.fromEntries(reports.filter((r) => r.rank !== null).map((r) => [r.name, r.rank!]));
  await saveLowRankLlama(model, flags.out, ranks);
  copyTokenizer(modelDir, flags.out);
  const after = measureModel(model, ds?.val ?? null, block);
  const summary = {
    factorised: Object.keys(ranks).length,
    layers: reports.map((r) => ({ name: r.name, rank: r.rank, relativeError: r.relativeError })),
    ...comparisonFields(before, after, flags.out),
    out: flags.out,
  };
  if (json) io.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    note(`factorised ${summary.factorised}/${reports.length} layers; parameters ${before.params.toLocaleString('en-US')} → ${after.params.toLocaleString('en-US')}; file ${(summary.fileBytes / 1024).toFixed(1)} KiB`);
    if (before.perplexity !== null) note(`val perplexity ${before.perplexity.toFixed(4)} → ${after.perplexity!.toFixed(4)}`);
    note(`decode ${before.speed.decodeTokensPerS.toFixed(1)} → ${after.speed.decodeTokensPerS.toFixed(1)} tokens/s; wrote ${flags.out}`);
  }
  return summary;
}

export function registerLowRank(program: Command, io?: CommandIO): void {
  program
    .command('lowrank <model>')
    .description('factorise each decoder Linear by truncated SVD into two smaller Linears (fixed rank or energy threshold)')
    .option('--rank <k>', 'rank of every factorisation', parsePositiveInt)
    .option('--energy <e>', 'keep this fraction of each layer’s Σσ² (e.g. 0.9)', parsePositiveNumber)
    .requiredOption('--out <dir>', 'output model directory')
    .option('--data <file>', 'text for perplexity and fine-tuning (default: the text the run trained on)')
    .option('--finetune-steps <n>', 'fine-tune the factorised model for n steps (default 0)', parseNonNegativeInt)
    .option('--lr <x>', 'fine-tuning learning rate (default 3e-4)', parsePositiveNumber)
    .option('--json', 'a JSON summary line')
    .action(async (model: string, flags: LowRankFlags) => {
      await runLowRank(model, flags, io);
    });
}
