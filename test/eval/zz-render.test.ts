import { it } from 'vitest';
import { runEvalReport } from '../../src/cli/eval.js';
import { Capture } from '../train/helpers.js';
it('render', () => {
  runEvalReport('/tmp/weft-render', '/tmp/weft-render/report.html', undefined, { stdout: new Capture(), stderr: new Capture() });
});
