import { it } from 'vitest';
import { runEval, runEvalReport } from '../../src/cli/eval.js';
import { Capture } from '../train/helpers.js';
import { tinyRunDir } from './helpers.js';
it('render', async () => {
  const { dir } = await tinyRunDir(64);
  const io = { stdout: new Capture(), stderr: new Capture() };
  await runEval({ model: dir, tasks: 'sst2,mmlu,gsm8k,humaneval,wikitext,tinyshakespeare', limit: 4, out: '/tmp/weft-render/run-a', robustness: true, bootstrapIters: 200 }, io);
  await runEval({ model: dir, tasks: 'sst2,mmlu,wikitext', limit: 8, out: '/tmp/weft-render/run-b', bootstrapIters: 200 }, io);
  runEvalReport('/tmp/weft-render', '/tmp/weft-render/report.html', undefined, io);
  console.log(io.stdout.text);
}, 300_000);
