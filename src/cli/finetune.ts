/**
 * `weft finetune --model <dir> --task classify|tokens|qa|seq2seq|sft|dpo --train <file> --eval <file> --method … --out <dir>`
 * and `weft predict --model <dir> [--adapter <dir>] --input <file>`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { noGrad } from '../tensor/autograd.js';
import { GPT } from '../models/gpt.js';
import { Llama } from '../models/llama.js';
import { generate } from '../infer/generate.js';
import { loadRecords, field } from '../train/finetune/data.js';
import { type FinetuneOptions, type FinetuneTask, loadFinetuned, parseMethod, runFinetune } from '../train/finetune/run.js';
import { DEFAULT_SFT_TEMPLATE } from '../train/finetune/causal.js';
import { ProgressReporter, runOutput } from '../train/progress.js';
import { UsageError } from '../train/config.js';
import { parsePositiveInt, parsePositiveNumber, parseUnitInterval, type CommandIO } from './train.js';

/** The flags are FinetuneOptions' fields under the same names, except those given as text. */
type FinetuneFlags = Omit<FinetuneOptions, 'task' | 'method' | 'labelWords' | 'loraTargets' | 'onEpoch' | 'onStep'> & {
  task: string;
  method: string;
  /** Comma-separated lists. */
  labelWords?: string;
  loraTargets?: string;
  json?: boolean;
};

const TASKS = ['classify', 'tokens', 'qa', 'seq2seq', 'sft', 'dpo', 'lm'] as const;

export function registerFinetune(program: Command, io?: CommandIO): void {
  program
    .command('finetune')
    .description('adapt a pre-trained model to a task: full or partial fine-tuning, prompt/prefix tuning or LoRA')
    .requiredOption('--model <dir>', 'pre-trained model directory (config.json, model.safetensors, tokenizer.json)')
    .requiredOption('--task <task>', `task: ${TASKS.join(', ')}`)
    .requiredOption('--train <file>', 'training data (.jsonl, .csv or .tsv)')
    .requiredOption('--eval <file>', 'validation data (same format)')
    .requiredOption('--method <method>', 'full | freeze:N (embeddings + first N blocks frozen) | prompt:P | prefix:P | lora:R')
    .requiredOption('--out <dir>', 'output directory (model or adapter + finetune.json)')
    .option('--epochs <n>', 'epochs (default: 3)', parsePositiveInt)
    .option('--lr <x>', 'peak learning rate (default: 5e-4 full/freeze, 2e-3 LoRA, 3e-2 prompt/prefix)', parsePositiveNumber)
    .option('--batch-size <n>', 'examples per step (default: 16)', parsePositiveInt)
    .option('--max-length <n>', 'tokens per example (default: 128)', parsePositiveInt)
    .option('--seed <n>', 'seed (default: 1)', parsePositiveInt)
    .option('--patience <n>', 'early stopping: epochs without improvement before stopping', parsePositiveInt)
    .option('--layer-decay <d>', 'layer-wise learning-rate decay factor in (0, 1]', parseUnitInterval)
    .option('--scratch', 'start from random weights (the from-scratch baseline)')
    .option('--text-field <name>', 'classify: text field (default: sentence); tokens: text field of {text, entities} records (default: text); lm: domain text field (default: text)')
    .option('--tokens-field <name>', 'tokens: field holding the words (default: tokens)')
    .option('--tags-field <name>', 'tokens: field holding one BIO tag per word (default: tags)')
    .option('--question-field <name>', 'qa: question field (default: question)')
    .option('--context-field <name>', 'qa: context field (default: context)')
    .option('--answer-field <name>', 'qa: flat answer field, with answer_start (default: answer; SQuAD answers {text, answer_start} are read too)')
    .option('--max-answer-length <n>', 'qa: longest answer span in tokens (default: 30)', parsePositiveInt)
    .option('--doc-stride <n>', 'qa: tokens shared by consecutive context windows (default: 128)', parsePositiveInt)
    .option('--source-field <name>', 'seq2seq: source text field (default: source)')
    .option('--target-field <name>', 'seq2seq: target text field (default: target)')
    .option('--max-target-length <n>', 'seq2seq: target tokens (default: --max-length)', parsePositiveInt)
    .option('--label-field <name>', 'classify: label field (default: label)')
    .option('--prompt-field <name>', 'sft/dpo: prompt field (default: prompt)')
    .option('--response-field <name>', 'sft: response field (default: response)')
    .option('--chosen-field <name>', 'dpo: preferred response field (default: chosen)')
    .option('--rejected-field <name>', 'dpo: dispreferred response field (default: rejected)')
    .option('--head <kind>', 'classify: head (new linear layer) or verbalizer (label words; default for prompt/prefix)')
    .option('--template <text>', `classify: verbalizer template with {text} (default: "Sentence: {text} Sentiment:"); sft/dpo: prompt template with {prompt} (default: ${JSON.stringify(DEFAULT_SFT_TEMPLATE)})`)
    .option('--label-words <list>', 'classify: comma-separated label words in sorted-label order (default: the labels)')
    .option('--lora-alpha <x>', 'LoRA α (default: 2·r)', parsePositiveNumber)
    .option('--lora-dropout <p>', 'LoRA dropout (default: 0.05)', parseUnitInterval)
    .option('--lora-targets <list>', 'comma-separated module names (default: the attention q/v projections)')
    .option('--beta <x>', 'dpo: β (default: 0.1)', parsePositiveNumber)
    .option('--json', 'JSON lines (progress and the result) instead of a progress bar')
    .action(async (flags: FinetuneFlags) => {
      const out = runOutput({ stdout: io?.stdout, stderr: io?.stderr, json: flags.json });
      if (!(TASKS as readonly string[]).includes(flags.task)) throw new UsageError(`--task must be one of ${TASKS.join(', ')}, got ${flags.task}`);
      if (flags.head !== undefined && flags.head !== 'head' && flags.head !== 'verbalizer') throw new UsageError(`--head must be head or verbalizer, got ${flags.head}`);
      const method = parseMethod(flags.method);
      let progress: ProgressReporter | null = null;
      const { json: _json, task, labelWords, loraTargets, ...options } = flags;
      void _json;
      const list = (v: string | undefined): string[] | undefined => v?.split(',').map((w) => w.trim());
      const result = await runFinetune({
        ...options,
        task: task as FinetuneTask,
        method,
        labelWords: list(labelWords),
        loraTargets: list(loraTargets),
        onStep: (step, total, loss) => {
          progress ??= new ProgressReporter({ out: out.stdout, err: out.stderr, json: out.json, maxIters: total, logInterval: 20 });
          progress.iteration({ iter: step, loss, lr: 0, ms: 0, tokens_per_s: 0 });
        },
        onEpoch: (r) => {
          if (out.json) out.stdout.write(`${JSON.stringify({ event: 'epoch', ...r })}\n`);
          else out.note(`\nepoch ${r.epoch}: train loss ${r.trainLoss.toFixed(4)}, ${Object.entries(r.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')} (${r.seconds.toFixed(1)} s)`);
        },
      });
      const { history: _history, ...summary } = result;
      void _history;
      if (out.json) out.stdout.write(`${JSON.stringify({ event: 'done', ...summary })}\n`);
      else {
        out.note(
          `best epoch ${result.bestEpoch}: ${Object.entries(result.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}; ` +
            `trainable ${result.trainable.toLocaleString('en-US')} of ${result.total.toLocaleString('en-US')} parameters (${((100 * result.trainable) / result.total).toFixed(3)}%); ` +
            `saved ${(result.savedBytes / 1024).toFixed(1)} KiB to ${flags.out} in ${result.seconds.toFixed(1)} s`,
        );
      }
    });

  program
    .command('predict')
    .description("a fine-tuned model's predictions for each input")
    .requiredOption('--model <dir>', 'weft finetune output directory, or a base model directory with --adapter')
    .option('--adapter <dir>', 'weft finetune output directory whose adapter goes on --model')
    .requiredOption('--input <file>', 'inputs: .jsonl/.csv/.tsv records (the training text/prompt field) or a .txt file, one input per line')
    .option('--text-field <name>', 'field holding the input (default: the one used in training)')
    .option('--max-new-tokens <n>', 'sft: tokens to generate (default: 64); seq2seq: default --max-target-length', parsePositiveInt)
    .option('--json', 'print one JSON object per input')
    .action(async (flags: { model: string; adapter?: string; input: string; textField?: string; maxNewTokens?: number; json?: boolean }) => {
      const stdout = io?.stdout ?? process.stdout;
      const dir = flags.adapter ?? flags.model;
      if (!existsSync(join(dir, 'finetune.json'))) throw new UsageError(`${dir} has no finetune.json: pass the --out directory of weft finetune (as --model, or as --adapter with the base model)`);
      const ft = await loadFinetuned(dir);
      const json = flags.json === true;
      if (ft.tag !== undefined) {
        // Words from the training fields, a text field split at whitespace, or .txt lines.
        const f = ft.manifest.tokensFields ?? { tokens: 'tokens', tags: 'tags', text: 'text' };
        const sentences = flags.input.endsWith('.txt')
          ? readFileSync(flags.input, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/))
          : loadRecords(flags.input).map((r, i) => {
              if (Array.isArray(r[f.tokens])) return (r[f.tokens] as unknown[]).map(String);
              return field(r, flags.textField ?? f.text, i, flags.input).trim().split(/\s+/);
            });
        const tags = ft.tag(sentences);
        sentences.forEach((words, i) => stdout.write(json ? `${JSON.stringify({ tokens: words, tags: tags[i] })}\n` : `${words.map((w, k) => `${w}/${tags[i]![k]}`).join(' ')}\n`));
        return;
      }
      if (ft.answer !== undefined) {
        const f = ft.manifest.qaFields ?? { question: 'question', context: 'context', answer: 'answer', answerStart: 'answer_start' };
        const examples = loadRecords(flags.input).map((r, i) => ({ question: field(r, f.question, i, flags.input), context: field(r, f.context, i, flags.input) }));
        const answers = ft.answer(examples);
        examples.forEach((e, i) => stdout.write(json ? `${JSON.stringify({ question: e.question, answer: answers[i] })}\n` : `${answers[i]}\n`));
        return;
      }
      const inputs = flags.input.endsWith('.txt')
        ? readFileSync(flags.input, 'utf8').split('\n').filter((l) => l.trim() !== '')
        : loadRecords(flags.input).map((r, i) => field(r, flags.textField ?? (ft.manifest.task === 'classify' ? 'sentence' : ft.manifest.task === 'seq2seq' ? (ft.manifest.seq2seqFields?.source ?? 'source') : 'prompt'), i, flags.input));
      if (ft.generate !== undefined) {
        const outputs = ft.generate(inputs, flags.maxNewTokens);
        inputs.forEach((text, i) => stdout.write(json ? `${JSON.stringify({ input: text, output: outputs[i] })}\n` : `${outputs[i]}\n`));
        return;
      }
      if (ft.classify !== undefined) {
        const labels = ft.classify(inputs);
        inputs.forEach((text, i) => stdout.write(flags.json === true ? `${JSON.stringify({ input: text, label: labels[i] })}\n` : `${labels[i]}\t${text}\n`));
        return;
      }
      const method = ft.manifest.method;
      if (method.startsWith('prompt:') || method.startsWith('prefix:')) {
        throw new UsageError(`predict: generation with a ${method} adapter is not supported yet; use full, freeze:N or lora:R for ${ft.manifest.task}`);
      }
      const template = ft.manifest.template ?? DEFAULT_SFT_TEMPLATE;
      const eos = ft.tokenizer.tokenToId('<|endoftext|>') ?? ft.tokenizer.tokenToId('</s>');
      for (const text of inputs) {
        const ids = ft.tokenizer.encode(template.replace('{prompt}', text), { addSpecialTokens: false });
        const maxNewTokens = flags.maxNewTokens ?? 64;
        const newIds = noGrad(() => {
          if (ft.model instanceof Llama) return ft.model.generate(ids, { maxNewTokens, temperature: 0, stopIds: eos === undefined ? undefined : [eos] });
          if (ft.model instanceof GPT) return generate(ft.model, ids, { maxNewTokens, temperature: 0, stop: eos === undefined ? undefined : [[eos]] }).slice(ids.length);
          throw new Error(`predict: ${ft.manifest.task} generation needs a GPT or LLaMA model`);
        });
        const response = ft.tokenizer.decode(newIds.filter((id) => id !== eos));
        stdout.write(flags.json === true ? `${JSON.stringify({ input: text, response })}\n` : `${response}\n`);
      }
    });
}
