/**
 * `weft bench finetune`: the post-training evidence table. SST-2 (GLUE dev set, split 80/20
 * deterministically into train/test) fine-tuned from a Weft-pre-trained BERT and GPT with every
 * method — full, freeze:N, prompt tuning, prefix tuning, LoRA — plus the same architecture trained
 * from scratch on the task alone: accuracy, trainable parameters, wall time and saved size.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { field, loadRecords, splitRecords } from '../train/finetune/data.js';
import { type FinetuneResult, parseMethod, runFinetune } from '../train/finetune/run.js';

interface Row {
  model: string;
  method: string;
  accuracy: number;
  trainable: number;
  total: number;
  seconds: number;
  savedBytes: number;
}

export function registerFinetuneBench(bench: Command): void {
  bench
    .command('finetune')
    .description('SST-2 accuracy, trainable parameters, time and saved size for every fine-tuning method')
    .option('--bert <dir>', 'a pre-trained BERT directory (weft train bert)')
    .option('--gpt <dir>', 'a pre-trained GPT directory (weft train gpt)')
    .option('--data <file>', 'SST-2 TSV (sentence, label)', '../shared/data/bench/sst2/dev.tsv')
    .option('--methods <list>', 'methods to run (dapt: domain-adaptive pre-training on the training sentences, then full)', 'full,freeze:2,prompt:16,prefix:8,lora:8,scratch,dapt')
    .option('--epochs <n>', 'epochs per run', '4')
    .option('--json', 'one JSON object per line')
    .action(async (o: { bert?: string; gpt?: string; data: string; methods: string; epochs: string; json?: boolean }) => {
      const models = [...(o.bert !== undefined ? [['bert', o.bert]] : []), ...(o.gpt !== undefined ? [['gpt', o.gpt]] : [])] as [string, string][];
      if (models.length === 0) throw new Error('bench finetune: give --bert and/or --gpt (pre-trained model directories)');
      const records = loadRecords(o.data);
      records.forEach((r, i) => field(r, 'sentence', i, o.data));
      const { train, test } = splitRecords(records, 0.2, 1);
      const dir = mkdtempSync(join(tmpdir(), 'weft-bench-ft-'));
      const tsv = (rs: typeof records): string => ['sentence\tlabel', ...rs.map((r) => `${String(r.sentence)}\t${String(r.label) === '1' ? 'positive' : 'negative'}`)].join('\n') + '\n';
      writeFileSync(join(dir, 'train.tsv'), tsv(train));
      writeFileSync(join(dir, 'test.tsv'), tsv(test));
      const note = (s: string): void => void (o.json === true ? process.stderr : process.stdout).write(`${s}\n`);
      note(`SST-2: ${train.length} train / ${test.length} test examples (seeded 80/20 split of ${o.data})`);
      const rows: Row[] = [];
      try {
        for (const [name, modelDir] of models) {
          for (const spec of o.methods.split(',')) {
            const scratch = spec === 'scratch';
            const dapt = spec === 'dapt';
            const method = parseMethod(scratch || dapt ? 'full' : spec);
            let base = modelDir;
            let domain = '';
            if (dapt) {
              // Continue pre-training on the task's own (unlabelled) training sentences, then fine-tune.
              const adapted = await runFinetune({ model: modelDir, task: 'lm', train: join(dir, 'train.tsv'), eval: join(dir, 'test.tsv'), method, out: join(dir, `${name}-dapt-lm`), epochs: Number(o.epochs), textField: 'sentence', maxLength: 64, lr: 3e-4 });
              base = join(dir, `${name}-dapt-lm`, 'model');
              domain = `; domain perplexity ${adapted.initialMetrics!.perplexity!.toFixed(1)} → ${adapted.metrics.perplexity!.toFixed(1)}`;
            }
            const r: FinetuneResult = await runFinetune({
              model: base,
              task: 'classify',
              train: join(dir, 'train.tsv'),
              eval: join(dir, 'test.tsv'),
              method,
              out: join(dir, `${name}-${spec.replace(':', '')}`),
              epochs: Number(o.epochs) * (method.kind === 'prompt' || method.kind === 'prefix' ? 2 : 1),
              scratch,
              maxLength: 64,
            });
            const row: Row = { model: name, method: spec + domain, accuracy: r.metrics.accuracy!, trainable: r.trainable, total: r.total, seconds: r.seconds, savedBytes: r.savedBytes };
            rows.push(row);
            if (o.json === true) process.stdout.write(`${JSON.stringify(row)}\n`);
            else note(`${name} ${spec}: accuracy ${row.accuracy.toFixed(3)}, trainable ${row.trainable} (${((100 * row.trainable) / row.total).toFixed(2)}%), ${row.seconds.toFixed(0)} s, saved ${(row.savedBytes / 1024).toFixed(0)} KiB`);
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      if (o.json !== true) {
        note('\n| model | method | accuracy | trainable params | % of model | time (s) | saved |');
        note('|---|---|---|---|---|---|---|');
        for (const r of rows) {
          note(`| ${r.model} | ${r.method} | ${r.accuracy.toFixed(3)} | ${r.trainable.toLocaleString('en-US')} | ${((100 * r.trainable) / r.total).toFixed(2)}% | ${r.seconds.toFixed(0)} | ${(r.savedBytes / 1024).toFixed(0)} KiB |`);
        }
      }
    });
}
