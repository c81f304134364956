/**
 * The `weft/eval` package subpath: evaluation metrics and (below) the task harness.
 * Metric names are part of the public contract (issue 6); keep them stable.
 */

// ---- Metrics (src/eval/metrics) -------------------------------------------------------------
export * from './metrics/index.js';

// ---- Task harness (src/eval/harness.ts, tasks/, backends/, report.ts) -----------------------
// Re-exported here once the harness's public API lands.
