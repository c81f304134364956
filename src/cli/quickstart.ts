/**
 * `weft quickstart` (what `npm start` runs): pre-train the GPT — nanoGPT's CPU
 * shakespeare_char configuration — on the bundled TinyShakespeare, show a sample, and point at
 * the next commands.
 */
import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import type { TrainConfigInput } from '../train/config.js';
import { type GPTShape, trainGPT, type TrainGPTResult } from '../train/train-gpt.js';
import { runSample, type SampleResult } from './sample.js';
import { type CommandIO, parsePositiveInt, summary } from './train.js';

/** The corpus ships in the package's data/ (two levels up from src/cli and from dist/cli). */
export const BUNDLED_DATA = fileURLToPath(new URL('../../data/tinyshakespeare.txt', import.meta.url));
export const QUICKSTART_OUT = 'runs/quickstart';

export interface QuickstartOptions {
  out?: string;
  /** Overrides for shorter runs (tests); the quickstart itself uses the defaults. */
  config?: Partial<TrainConfigInput>;
  model?: Partial<GPTShape>;
  sampleTokens?: number;
}

export async function runQuickstart(
  options: QuickstartOptions = {},
  io: CommandIO = { stdout: process.stdout, stderr: process.stderr },
): Promise<{ train: TrainGPTResult; sample: SampleResult }> {
  const out = options.out ?? QUICKSTART_OUT;
  const say = (s = ''): void => void io.stdout.write(`${s}\n`);
  say('Weft quickstart: pre-training a character-level GPT on TinyShakespeare');
  say(`(nanoGPT's shakespeare_char CPU configuration; nanoGPT reaches val loss ≈ 1.88 at iteration 2000)`);
  say();
  const train = await trainGPT({ config: { data: BUNDLED_DATA, ...options.config }, model: options.model, outDir: out, stdout: io.stdout, stderr: io.stderr });
  say(summary(train));
  say();
  say(`A sample (weft sample ${out} --prompt "ROMEO:"):`);
  say('-'.repeat(60));
  const sample = await runSample(out, { prompt: 'ROMEO:', maxNewTokens: options.sampleTokens ?? 300 }, io);
  say('-'.repeat(60));
  say();
  say('Next, try:');
  say(`  npx weft sample ${out} --prompt "JULIET:" --max-new-tokens 500 --temperature 0.8 --seed 2`);
  say(`  npx weft sample ${out} --prompt "ROMEO:" --json`);
  say(`  npx weft train gpt --data ${relativeData()} --tokenizer char --n-layer 6 --n-head 6 --n-embd 192 --max-iters 3000 --lr-decay-iters 3000 --out runs/bigger`);
  say(`  npx weft train gpt --out runs/bigger --resume --max-iters 4000   (continue a run exactly where it stopped)`);
  say(`  cat ${out}/metrics.jsonl   (every iteration and evaluation, one JSON object per line)`);
  return { train, sample };
}

function relativeData(): string {
  const rel = BUNDLED_DATA.startsWith(process.cwd()) ? BUNDLED_DATA.slice(process.cwd().length + 1) : BUNDLED_DATA;
  return rel.includes(' ') ? JSON.stringify(rel) : rel;
}

export function registerQuickstart(program: Command, io?: CommandIO): void {
  program
    .command('quickstart')
    .description('pre-train a small GPT on the bundled TinyShakespeare, evaluate it and print a sample (a few minutes)')
    .option('--out <dir>', `run directory (default: ${QUICKSTART_OUT})`)
    .option('--max-iters <n>', 'fewer iterations for a quicker look (default: 2000)', parsePositiveInt)
    .action(async (flags: { out?: string; maxIters?: number }) => {
      const config: Partial<TrainConfigInput> = flags.maxIters === undefined ? {} : { maxIters: flags.maxIters, lrDecayIters: flags.maxIters };
      await runQuickstart({ out: flags.out, config }, io);
    });
}
