/**
 * The `weft/eval` package subpath: evaluation metrics and (below) the task harness.
 * Metric names are part of the public contract (issue 6); keep them stable.
 */

// ---- Metrics (src/eval/metrics) -------------------------------------------------------------
export * from './metrics/index.js';

// ---- Task harness (src/eval/harness.ts, tasks/, backends/, report.ts) -----------------------
export { loadTasks } from './tasks/loader.js';
export { evaluateTask, groupMetrics } from './harness.js';
export { LocalBackend } from './backends/local.js';
export { OpenAIBackend } from './backends/openai.js';
export { runPython } from './sandbox.js';
export { htmlReport, markdownSummary, readResultsDir } from './report.js';
export { PERTURBATIONS } from './robustness.js';
