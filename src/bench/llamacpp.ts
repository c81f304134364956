/**
 * llama.cpp as an anchor: node-llama-cpp, installed apart from the main dependencies under
 * bench/anchors (`npm run bench:anchors`), its prebuilt CPU binary never rebuilt. The part of its API
 * the benchmarks and tests use, typed here once.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from './common.js';

export interface NodeLlamaCpp {
  getLlama(o: { gpu: false; build: 'never'; logLevel?: string }): Promise<{
    loadModel(o: { modelPath: string }): Promise<{
      createContext(o: { threads: number; contextSize: number }): Promise<{
        getSequence(): { evaluate(tokens: number[], o: { temperature: number }): AsyncGenerator<number, void, void> };
        dispose(): Promise<void>;
      }>;
      dispose(): Promise<void>;
    }>;
    dispose(): Promise<void>;
  }>;
  LlamaLogLevel: Record<string, string>;
}

/** Where node-llama-cpp's entry is when the anchors are installed. */
export function nodeLlamaCppPath(): string {
  return join(packageRoot(), 'bench', 'anchors', 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
}

/** node-llama-cpp, or null when the anchors are not installed. */
export async function loadNodeLlamaCpp(): Promise<NodeLlamaCpp | null> {
  const path = nodeLlamaCppPath();
  return existsSync(path) ? ((await import(pathToFileURL(path).href)) as NodeLlamaCpp) : null;
}
