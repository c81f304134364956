/**
 * `weft fill-mask --model <dir> --text "the [MASK] …"`: a BERT's top predictions for each [MASK]
 * (Hugging Face's fill-mask pipeline: softmax over the vocabulary at the masked position).
 */
import type { Command } from 'commander';
import { BertForPreTraining } from '../models/bert.js';
import { noGrad } from '../tensor/autograd.js';
import { softmax, topk } from '../tensor/index.js';
import { Tensor } from '../tensor/tensor.js';
import { loadTokenizer } from '../tokenizers/load.js';
import { parsePositiveInt, type CommandIO } from './train.js';

export interface FillMaskPrediction {
  token: string;
  id: number;
  score: number;
  /** The text with this token in place of the mask (HF's `sequence`). */
  sequence: string;
}

export interface FillMaskResult {
  /** Token position of the mask ([CLS] is 0). */
  position: number;
  predictions: FillMaskPrediction[];
}

export async function fillMask(modelDir: string, text: string, options: { topK?: number; tokenizer?: string } = {}): Promise<FillMaskResult[]> {
  const tokenizer = loadTokenizer(options.tokenizer ?? modelDir);
  const model = await BertForPreTraining.fromPretrained(modelDir);
  const maskId = tokenizer.tokenToId('[MASK]');
  if (maskId === undefined) throw new Error(`fill-mask: the tokenizer in ${options.tokenizer ?? modelDir} has no [MASK] token`);
  const ids = tokenizer.encode(text);
  const positions = ids.flatMap((id, i) => (id === maskId ? [i] : []));
  if (positions.length === 0) throw new Error('fill-mask: --text has no [MASK] token; write e.g. --text "the [MASK] of the city"');
  if (ids.length > model.config.maxPositionEmbeddings) {
    throw new Error(`fill-mask: --text is ${ids.length} tokens, more than the model's ${model.config.maxPositionEmbeddings} positions`);
  }
  const k = Math.min(options.topK ?? 5, model.config.vocabSize);
  return noGrad(() => {
    const { mlmLogits } = model.forward(Tensor.fromArray(Int32Array.from(ids), [1, ids.length], 'i32'));
    return positions.map((position) => {
      const probs = softmax(mlmLogits.select(0, 0).select(0, position), -1);
      const { values, indices } = topk(probs, k);
      const scores = values.toArray();
      const top = indices.i32('fill-mask');
      return {
        position,
        predictions: Array.from(top, (id, j) => {
          const filled = ids.map((t, i) => (i === position ? id : t));
          return { token: tokenizer.idToToken(id) ?? String(id), id, score: scores[j]!, sequence: tokenizer.decode(filled) };
        }),
      };
    });
  });
}

interface FillMaskFlags {
  model: string;
  text: string;
  topK?: number;
  tokenizer?: string;
  json?: boolean;
}

export function registerFillMask(program: Command, io?: CommandIO): void {
  program
    .command('fill-mask')
    .description("a BERT's top predictions for each [MASK] in a text")
    .requiredOption('--model <dir>', 'BERT directory (config.json + model.safetensors, with tokenizer.json or vocab.txt)')
    .requiredOption('--text <text>', 'text with one or more [MASK] tokens')
    .option('--top-k <n>', 'predictions per mask (default: 5)', parsePositiveInt)
    .option('--tokenizer <path>', 'tokenizer file or directory (default: the model directory)')
    .option('--json', 'print the predictions as JSON')
    .action(async (flags: FillMaskFlags) => {
      const out = io?.stdout ?? process.stdout;
      const results = await fillMask(flags.model, flags.text, { topK: flags.topK, tokenizer: flags.tokenizer });
      if (flags.json === true) {
        out.write(`${JSON.stringify(results)}\n`);
        return;
      }
      for (const r of results) {
        out.write(`[MASK] at token ${r.position}:\n`);
        for (const p of r.predictions) out.write(`  ${p.token.padEnd(16)} ${p.score.toFixed(4)}  ${p.sequence}\n`);
      }
    });
}
