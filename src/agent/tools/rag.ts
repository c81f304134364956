/**
 * Retrieval over a `weft rag` store, as a tool. The adapter to src/rag lives here alone: it uses
 * the store interface (VectorStore) and `retrieve` (dense, BM25 or hybrid with RRF). A store
 * without an embedder is searched by keywords (BM25).
 */
import { z } from 'zod';
import { retrieve, type RetrievalMode } from '../../rag/retrieve.js';
import type { VectorStore } from '../../rag/store.js';
import { formatLocation } from '../../rag/types.js';
import { defineTool } from './tool.js';

export interface RagToolOptions {
  /** Passages returned (default 4). */
  k?: number;
  /** Default: hybrid with an embedder, bm25 without. */
  mode?: RetrievalMode;
  /** Characters of each passage kept (default 800). */
  maxPassageChars?: number;
}

export function ragTool(store: VectorStore, options: RagToolOptions = {}) {
  const mode = options.mode ?? (store.embedder === null ? 'bm25' : 'hybrid');
  const maxChars = options.maxPassageChars ?? 800;
  return defineTool({
    name: 'search_documents',
    description: 'Searches the indexed documents and returns the most relevant passages with their sources.',
    schema: z.object({ query: z.string().min(1).describe('what to look for'), k: z.number().int().min(1).max(20).optional().describe('passages to return') }),
    run: async ({ query, k }) => {
      const hits = await retrieve(store, query, { k: k ?? options.k ?? 4, mode });
      if (hits.length === 0) return 'no passages matched';
      return hits
        .map((h, i) => {
          const where = formatLocation(h.chunk.location);
          const text = h.chunk.text.length > maxChars ? `${h.chunk.text.slice(0, maxChars)}...` : h.chunk.text;
          return `[${i + 1}] ${h.chunk.source}${where === '' ? '' : ` (${where})`}\n${text}`;
        })
        .join('\n\n');
    },
  });
}
