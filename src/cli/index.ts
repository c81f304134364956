#!/usr/bin/env node
/** The `weft` command. Subcommands live one per file; this file only wires them. */
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { registerBench } from './bench.js';
import { registerData } from './data.js';
import { registerDoctor } from './doctor.js';
import { registerEval } from './eval.js';
import { registerFillMask } from './fill-mask.js';
import { registerFinetune } from './finetune.js';
import { registerQuickstart } from './quickstart.js';
import { registerSample } from './sample.js';
import { registerTokenizer } from './tokenizer.js';
import { registerTrain } from './train.js';
import { registerGenerate } from './generate.js';
import { registerRag } from './rag.js';
import { registerExport } from './export.js';
import { registerServe } from './serve.js';
import { registerQuantize } from './quantize.js';
import { registerPrune } from './prune.js';
import { registerLowRank } from './lowrank.js';
import { registerDistill } from './distill.js';
import { registerCompress } from './compress.js';
import { registerAgent } from './agent.js';

const require = createRequire(import.meta.url);
const pkg = require('../../package.json') as { version: string };

const program = new Command();
program.name('weft').description('Weft: the LLM stack in TypeScript on a native kernel core').version(pkg.version);
registerDoctor(program);
registerBench(program);
registerTrain(program);
registerSample(program);
registerQuickstart(program);
registerEval(program);
registerTokenizer(program);
registerData(program);
registerFillMask(program);
registerFinetune(program);
registerGenerate(program);
registerRag(program);
registerExport(program);
registerServe(program);
registerQuantize(program);
registerPrune(program);
registerLowRank(program);
registerDistill(program);
registerCompress(program);
registerAgent(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`weft: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
