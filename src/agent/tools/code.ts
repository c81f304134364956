/**
 * Python execution in the evaluation harness's sandbox (src/eval/sandbox.ts): a separate process in
 * a fresh temporary directory, with time and memory limits, no network, no forks, and no writes
 * outside that directory. The model sees the exit status and what the program printed.
 */
import { z } from 'zod';
import { runPython, type SandboxOptions } from '../../eval/sandbox.js';
import { defineTool } from './tool.js';

export type CodeToolOptions = SandboxOptions;

export function codeTool(options: CodeToolOptions = {}) {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return defineTool({
    name: 'run_python',
    description: `Runs a Python 3 program in a sandbox (no network, no files outside a scratch directory, ${timeoutMs / 1000} s, ${options.memoryMb ?? 512} MiB) and returns its exit status, stdout and stderr. Print what you need to see.`,
    schema: z.object({ code: z.string().min(1).describe('the complete Python program') }),
    dangerous: true,
    // The sandbox enforces its own limit; the executor's is a backstop above it.
    timeoutMs: timeoutMs + 5000,
    run: async ({ code }) => {
      const r = await runPython(code, { memoryMb: 512, maxOutputBytes: 16 * 1024, ...options, timeoutMs });
      const status = r.status === 'timeout' ? `timeout after ${timeoutMs} ms` : r.status === 'passed' ? 'exit 0' : `failed (exit ${r.exitCode ?? r.signal})`;
      return `${status}\nstdout:\n${r.stdout}${r.stderr !== '' ? `\nstderr:\n${r.stderr.slice(-4000)}` : ''}`;
    },
  });
}
