/**
 * `weft eval metric bleu|chrf|rouge|cider`: score a hypothesis file against reference files, one
 * segment per line (`--ref` repeated = several references per segment, line i of each file being
 * a reference of hypothesis line i). Human-readable by default, one JSON object with `--json`.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import {
  BLEU_TOKENIZERS,
  ciderD,
  chrf,
  corpusBleu,
  DEFAULT_ROUGE_TYPES,
  rouge,
  type BleuSmoothMethod,
  type BleuTokenizerName,
  type RougeScore,
} from '../eval/metrics/index.js';
import type { CommandIO } from './train.js';

const defaultIO = (): CommandIO => ({ stdout: process.stdout, stderr: process.stderr });

/**
 * The lines of a text file: one segment per line, CRLF accepted, and the newline that ends the
 * last line does not start an extra (empty) segment.
 */
export function readSegments(path: string, flag: string, where: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : err instanceof Error ? err.message : String(err);
    throw new Error(`${where}: cannot read ${flag} '${path}': ${why}`);
  }
  if (text.startsWith('\ufeff')) text = text.slice(1);
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Hypotheses and per-segment reference lists from --hyp and the --ref files, with line counts checked. */
export function readHypsAndRefs(hypPath: string, refPaths: readonly string[], where: string): { hyps: string[]; refs: string[][] } {
  if (refPaths.length === 0) throw new Error(`${where}: at least one --ref <file> is required`);
  const hyps = readSegments(hypPath, '--hyp', where);
  const refFiles = refPaths.map((p) => readSegments(p, '--ref', where));
  refFiles.forEach((lines, j) => {
    if (lines.length !== hyps.length) {
      throw new Error(
        `${where}: line counts differ: --hyp '${hypPath}' has ${hyps.length} line(s) but --ref '${refPaths[j]}' has ${lines.length}; ` +
          'each reference file needs one line per hypothesis line',
      );
    }
  });
  if (hyps.length === 0) throw new Error(`${where}: --hyp '${hypPath}' is empty (no segments to score)`);
  const refs = hyps.map((_, i) => refFiles.map((lines) => lines[i]));
  return { hyps, refs };
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

const parseNonNegativeInt = (value: string): number => {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected an integer >= 0, e.g. 2.');
  return n;
};

const parsePositiveNumber = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number, e.g. 2.');
  return n;
};

const parseNonNegativeNumber = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number >= 0, e.g. 0.1.');
  return n;
};

function withFiles(cmd: Command): Command {
  return cmd
    .requiredOption('--hyp <file>', 'hypotheses, one segment per line')
    .requiredOption('--ref <file>', 'references, one line per hypothesis line (repeat for several references per segment)', collect, [])
    .option('--json', 'print one JSON object');
}

const f2 = (x: number): string => x.toFixed(2);
const f4 = (x: number): string => x.toFixed(4);

interface BleuFlags {
  hyp: string;
  ref: string[];
  json?: boolean;
  tokenize: BleuTokenizerName;
  lowercase?: boolean;
  smoothMethod: BleuSmoothMethod;
  smoothValue?: number;
}
interface ChrfFlags {
  hyp: string;
  ref: string[];
  json?: boolean;
  charOrder: number;
  wordOrder: number;
  beta: number;
  lowercase?: boolean;
  whitespace?: boolean;
  epsSmoothing?: boolean;
}
interface RougeFlags {
  hyp: string;
  ref: string[];
  json?: boolean;
  stem?: boolean;
  types: string;
}
interface CiderFlags {
  hyp: string;
  ref: string[];
  json?: boolean;
  n: number;
  sigma: number;
}

export function registerEvalMetric(evalCommand: Command, io: CommandIO = defaultIO()): void {
  const metric = evalCommand.command('metric').description('score hypotheses against references (sacrebleu / rouge-score / pycocoevalcap parity)');
  const out = (line: string): void => void io.stdout.write(`${line}\n`);

  withFiles(metric.command('bleu').description('corpus BLEU, as sacrebleu 2.x'))
    .addOption(new Option('--tokenize <name>', 'tokenizer').choices([...BLEU_TOKENIZERS]).default('13a'))
    .option('--lowercase', 'lower-case hypotheses and references')
    .addOption(new Option('--smooth-method <method>', 'smoothing').choices(['exp', 'floor', 'add-k', 'none']).default('exp'))
    .option('--smooth-value <x>', 'floor value (default 0.1) or k for add-k (default 1)', parseNonNegativeNumber)
    .action((flags: BleuFlags) => {
      const { hyps, refs } = readHypsAndRefs(flags.hyp, flags.ref, 'eval metric bleu');
      const r = corpusBleu(hyps, refs, {
        tokenize: flags.tokenize,
        lowercase: flags.lowercase ?? false,
        smoothMethod: flags.smoothMethod,
        smoothValue: flags.smoothValue,
      });
      const ratio = r.refLen > 0 ? r.sysLen / r.refLen : 0;
      if (flags.json) {
        out(JSON.stringify({ metric: 'bleu', ...r, ratio, segments: hyps.length, references: flags.ref.length, tokenize: flags.tokenize, lowercase: flags.lowercase ?? false, smoothMethod: flags.smoothMethod }));
        return;
      }
      out(
        `BLEU = ${f2(r.score)} ${r.precisions.map((p) => p.toFixed(1)).join('/')} ` +
          `(BP = ${r.bp.toFixed(3)} ratio = ${ratio.toFixed(3)} hyp_len = ${r.sysLen} ref_len = ${r.refLen}) ` +
          `[${hyps.length} segments, ${flags.ref.length} reference(s) each, tokenize ${flags.tokenize}]`,
      );
    });

  withFiles(metric.command('chrf').description('corpus chrF (chrF++ with --word-order 2), as sacrebleu 2.x'))
    .option('--char-order <n>', 'character n-gram order', parseNonNegativeInt, 6)
    .option('--word-order <n>', 'word n-gram order (2 = chrF++)', parseNonNegativeInt, 0)
    .option('--beta <x>', 'recall weight', parsePositiveNumber, 2)
    .option('--lowercase', 'lower-case hypotheses and references')
    .option('--whitespace', 'keep whitespace in character n-grams')
    .option('--eps-smoothing', 'average per-order F scores with eps smoothing')
    .action((flags: ChrfFlags) => {
      const { hyps, refs } = readHypsAndRefs(flags.hyp, flags.ref, 'eval metric chrf');
      const r = chrf(hyps, refs, {
        charOrder: flags.charOrder,
        wordOrder: flags.wordOrder,
        beta: flags.beta,
        lowercase: flags.lowercase ?? false,
        removeWhitespace: !(flags.whitespace ?? false),
        epsSmoothing: flags.epsSmoothing ?? false,
      });
      // sacrebleu's name: chrF<beta> followed by one '+' per word order.
      const name = `chrF${flags.beta}${'+'.repeat(flags.wordOrder)}`;
      if (flags.json) {
        out(JSON.stringify({ metric: flags.wordOrder > 0 ? 'chrf++' : 'chrf', name, score: r.score, stats: r.stats, segments: hyps.length, references: flags.ref.length, charOrder: flags.charOrder, wordOrder: flags.wordOrder, beta: flags.beta }));
        return;
      }
      out(`${name} = ${f2(r.score)} [${hyps.length} segments, ${flags.ref.length} reference(s) each]`);
    });

  withFiles(metric.command('rouge').description("ROUGE-1/2/L/Lsum, as rouge-score 0.1.2 (mean over segments; best reference per type)"))
    .option('--stem', 'Porter-stem tokens longer than 3 characters')
    .option('--types <list>', 'comma-separated rouge types', DEFAULT_ROUGE_TYPES.join(','))
    .action((flags: RougeFlags) => {
      const { hyps, refs } = readHypsAndRefs(flags.hyp, flags.ref, 'eval metric rouge');
      const types = flags.types.split(',').map((t) => t.trim()).filter((t) => t !== '');
      // rougeLsum splits sentences on newlines, which one-segment-per-line files cannot hold.
      const mean: Record<string, RougeScore> = {};
      for (const t of types) mean[t] = { precision: 0, recall: 0, fmeasure: 0 };
      for (let i = 0; i < hyps.length; i++) {
        const s = rouge(hyps[i], refs[i].length === 1 ? refs[i][0] : refs[i], { types, useStemmer: flags.stem ?? false });
        for (const t of types) {
          mean[t].precision += s[t].precision / hyps.length;
          mean[t].recall += s[t].recall / hyps.length;
          mean[t].fmeasure += s[t].fmeasure / hyps.length;
        }
      }
      if (flags.json) {
        out(JSON.stringify({ metric: 'rouge', ...mean, segments: hyps.length, references: flags.ref.length, useStemmer: flags.stem ?? false }));
        return;
      }
      out(`ROUGE (mean over ${hyps.length} segments, ${flags.ref.length} reference(s) each${flags.stem ? ', stemmed' : ''})`);
      out('type        precision  recall  fmeasure');
      for (const t of types) out(`${t.padEnd(10)}  ${f4(mean[t].precision).padStart(9)}  ${f4(mean[t].recall).padStart(6)}  ${f4(mean[t].fmeasure).padStart(8)}`);
    });

  withFiles(metric.command('cider').description('CIDEr-D, as pycocoevalcap, on pre-tokenized captions (one image per line)'))
    .option('--n <n>', 'maximum n-gram order', parseNonNegativeInt, 4)
    .option('--sigma <x>', 'length-penalty standard deviation', parsePositiveNumber, 6)
    .action((flags: CiderFlags) => {
      const { hyps, refs } = readHypsAndRefs(flags.hyp, flags.ref, 'eval metric cider');
      const r = ciderD(
        hyps.map((hyp, i) => ({ id: String(i + 1), hyp, refs: refs[i] })),
        { n: flags.n, sigma: flags.sigma },
      );
      if (flags.json) {
        out(JSON.stringify({ metric: 'cider-d', score: r.score, perImage: r.perImage, images: hyps.length, references: flags.ref.length }));
        return;
      }
      out(`CIDEr-D = ${f4(r.score)} [${hyps.length} images, ${flags.ref.length} reference(s) each]`);
    });
}
