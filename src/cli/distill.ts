/**
 * `weft distill --teacher <dir> --student-config <json> --data <file> --out <dir>`: trains a student
 * LLaMA on the teacher's softened distribution plus the data (α·T²·KL + (1 − α)·CE, optional
 * hidden-state matching); with --compare-scratch also trains the same architecture from the same
 * initialisation on CE alone for the same steps and data, and prints both validation perplexities.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { perplexity } from '../compress/calibrate.js';
import { Llama, type LlamaConfigInput, llamaConfigFromHF, parseLlamaConfig } from '../models/llama.js';
import { Generator } from '../tensor/random.js';
import { UsageError } from '../train/config.js';
import { copyTokenizer, defaultIO, fineTuneWithProgress, loadLlamaDir, modelTokenizer, readText, splitIds } from './compress.js';
import { type CommandIO, parseNonNegativeInt, parseNonNegativeNumber, parsePositiveInt, parsePositiveNumber } from './train.js';

export interface DistillFlags {
  teacher: string;
  studentConfig: string;
  data: string;
  out: string;
  steps?: number;
  alpha?: number;
  temperature?: number;
  hiddenWeight?: number;
  lr?: number;
  batchSize?: number;
  blockSize?: number;
  seed?: number;
  compareScratch?: boolean;
  json?: boolean;
}

/** The student's config: camelCase (Weft) or HF snake_case JSON; vocabulary and context default to the teacher's. */
export function studentConfigFrom(path: string, teacher: Llama): ReturnType<typeof parseLlamaConfig> {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new UsageError(`--student-config ${path}: cannot read JSON (${(e as Error).message})`);
  }
  const t = teacher.config;
  try {
    if ('hidden_size' in raw) return llamaConfigFromHF({ vocab_size: t.vocabSize, max_position_embeddings: t.maxPositionEmbeddings, rms_norm_eps: t.rmsNormEps, tie_word_embeddings: t.tieWordEmbeddings, ...raw });
    return parseLlamaConfig({ vocabSize: t.vocabSize, maxPositionEmbeddings: t.maxPositionEmbeddings, rmsNormEps: t.rmsNormEps, tieWordEmbeddings: t.tieWordEmbeddings, ...raw } as LlamaConfigInput);
  } catch (e) {
    throw new UsageError(`--student-config ${path}: ${(e as Error).message}`);
  }
}

export async function runDistill(flags: DistillFlags, io: CommandIO = defaultIO()): Promise<Record<string, unknown>> {
  const json = flags.json === true;
  const note = (s: string): void => void (json ? io.stderr : io.stdout).write(`${s}\n`);
  const teacher = await loadLlamaDir(flags.teacher);
  teacher.eval();
  const tokenizer = modelTokenizer(flags.teacher);
  const ds = splitIds(readText(flags.data, '--data'), tokenizer, '--data');
  const config = studentConfigFrom(flags.studentConfig, teacher);
  if (config.vocabSize !== teacher.config.vocabSize) throw new UsageError(`--student-config: vocabSize ${config.vocabSize} differs from the teacher's ${teacher.config.vocabSize}; distillation compares distributions over the same vocabulary`);
  const block = Math.min(flags.blockSize ?? 64, config.maxPositionEmbeddings, teacher.config.maxPositionEmbeddings);
  const steps = flags.steps ?? 300;
  const seed = flags.seed ?? 1337;
  const batchSize = flags.batchSize ?? 16;
  const lr = flags.lr ?? 1e-3;
  const train = (model: Llama, withTeacher: boolean, label: string): number => {
    note(`${label}: ${steps} steps`);
    fineTuneWithProgress(io, json, {
      model,
      dataset: ds,
      steps,
      batchSize,
      blockSize: block,
      lr,
      seed,
      teacher: withTeacher ? teacher : undefined,
      alpha: flags.alpha ?? 0.5,
      temperature: flags.temperature ?? 1,
      hidden: withTeacher && (flags.hiddenWeight ?? 0) > 0 ? { weight: flags.hiddenWeight! } : undefined,
    });
    return perplexity(model, ds.val, block, { maxWindows: 64 });
  };
  const student = new Llama(config, { generator: new Generator(seed) });
  const teacherPpl = perplexity(teacher, ds.val, block, { maxWindows: 64 });
  const studentPpl = train(student, true, `distilling into a ${(student.numParameters() / 1e6).toFixed(2)}M-parameter student from a ${(teacher.numParameters() / 1e6).toFixed(2)}M teacher`);
  await student.savePretrained(flags.out);
  copyTokenizer(flags.teacher, flags.out);
  let scratchPpl: number | null = null;
  if (flags.compareScratch === true) scratchPpl = train(new Llama(config, { generator: new Generator(seed) }), false, 'the same architecture and initialisation from scratch (CE only)');
  const summary = { teacherPerplexity: teacherPpl, studentPerplexity: studentPpl, scratchPerplexity: scratchPpl, steps, alpha: flags.alpha ?? 0.5, temperature: flags.temperature ?? 1, studentParams: student.numParameters(), teacherParams: teacher.numParameters(), out: flags.out };
  if (json) io.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    note(`val perplexity: teacher ${teacherPpl.toFixed(4)}, distilled student ${studentPpl.toFixed(4)}${scratchPpl === null ? '' : `, from scratch ${scratchPpl.toFixed(4)}`}`);
    note(`wrote ${flags.out}`);
  }
  return summary;
}

export function registerDistill(program: Command, io?: CommandIO): void {
  program
    .command('distill')
    .description('train a smaller LLaMA student from a teacher: α·T²·KL(teacher ‖ student) + (1 − α)·CE')
    .requiredOption('--teacher <dir>', 'teacher model directory')
    .requiredOption('--student-config <json>', 'student LLaMA config (Weft camelCase or HF config.json fields; vocab/context default to the teacher’s)')
    .requiredOption('--data <file>', 'training text (val split: the last 10%)')
    .requiredOption('--out <dir>', 'student model directory to write')
    .option('--steps <n>', 'training steps (default 300)', parsePositiveInt)
    .option('--alpha <x>', 'weight of the distillation term (default 0.5)', parseNonNegativeNumber)
    .option('--temperature <t>', 'softmax temperature (default 1: on the char-level TinyShakespeare run T = 2 lost to training from scratch, T = 1 beat it)', parsePositiveNumber)
    .option('--hidden-weight <x>', 'weight of the hidden-state MSE through a learned projection (default 0: off)', parseNonNegativeNumber)
    .option('--lr <x>', 'peak learning rate (default 1e-3)', parsePositiveNumber)
    .option('--batch-size <n>', 'sequences per step (default 16)', parsePositiveInt)
    .option('--block-size <n>', 'tokens per sequence (default 64)', parsePositiveInt)
    .option('--seed <n>', 'initialisation and batch seed (default 1337)', parseNonNegativeInt)
    .option('--compare-scratch', 'also train the same student from scratch (CE only) and compare')
    .option('--json', 'a JSON summary line')
    .action(async (flags: DistillFlags) => {
      await runDistill(flags, io);
    });
}
