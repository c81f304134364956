import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GPT } from '../../src/models/gpt.js';
import { COMMIT_DIR, loadTrainerState, recoverCheckpoint, saveCheckpoint, STAGING_DIR } from '../../src/train/checkpoint.js';
import { trainGPT } from '../../src/train/train-gpt.js';
import { Capture, smallCorpus, tempDir, TINY_MODEL, tinyConfig } from './helpers.js';

const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'optimizer.safetensors', 'tokenizer.json', 'trainer_state.json'];
const quiet = (): { stdout: Capture; stderr: Capture } => ({ stdout: new Capture(), stderr: new Capture() });

async function trainTo(dir: string, name: string, iters: number, data: string): Promise<string> {
  const out = join(dir, name);
  await trainGPT({ config: tinyConfig(data, { maxIters: iters, evalInterval: 10 }), model: TINY_MODEL, outDir: out, ...quiet() });
  return out;
}

function bytes(dir: string): Map<string, Buffer> {
  return new Map(FILES.map((f) => [f, readFileSync(join(dir, f))]));
}

function expectSameFiles(dir: string, want: Map<string, Buffer>): void {
  for (const [f, b] of want) expect(readFileSync(join(dir, f)).equals(b), f).toBe(true);
}

async function weights(dir: string): Promise<number[]> {
  const m = await GPT.fromPretrained(dir);
  return m.namedParameters().flatMap(([, t]) => t.toArray());
}

describe('checkpoints', () => {
  it('a save that dies while staging (torn file, stray temp) leaves the previous checkpoint loadable and untouched', async () => {
    const dir = tempDir();
    const out = await trainTo(dir, 'run', 10, smallCorpus(dir));
    const before = bytes(out);
    const w = await weights(out);

    // A real save whose writer fails halfway: the first file is written, the second is torn.
    const failing = saveCheckpoint(
      out,
      async (staging) => {
        writeFileSync(join(staging, 'model.safetensors'), before.get('model.safetensors')!.subarray(0, 100));
        writeFileSync(join(staging, '.optimizer.safetensors.tmp-1-0123456789ab'), 'partial');
        throw new Error('simulated crash');
      },
      { ...loadTrainerState(out), iter: 99 },
    );
    await expect(failing).rejects.toThrow('simulated crash');
    expect(existsSync(join(out, STAGING_DIR))).toBe(true); // what a killed process leaves behind
    expectSameFiles(out, before);

    const state = loadTrainerState(out); // recovers: discards the staging dir, verifies hashes
    expect(state.iter).toBe(10);
    expect(existsSync(join(out, STAGING_DIR))).toBe(false);
    expect(await weights(out)).toEqual(w);
    expectSameFiles(out, before);
  });

  it('a save that dies after its commit point is rolled forward on the next load, to the new checkpoint', async () => {
    const dir = tempDir();
    const data = smallCorpus(dir);
    const old = await trainTo(dir, 'old', 10, data);
    const next = await trainTo(dir, 'next', 20, data);
    const want = bytes(next);
    // Reproduce the state a crash mid-install leaves: the commit dir holds the new checkpoint, and
    // two files (model.safetensors, config.json) were already moved over the old ones.
    const commit = join(old, COMMIT_DIR);
    mkdirSync(commit);
    for (const f of FILES) cpSync(join(next, f), join(commit, f));
    renameSync(join(commit, 'model.safetensors'), join(old, 'model.safetensors'));
    renameSync(join(commit, 'config.json'), join(old, 'config.json'));
    // Half installed: the new weights sit next to the old trainer_state.json.
    expect(readFileSync(join(old, 'trainer_state.json')).equals(want.get('trainer_state.json')!)).toBe(false);

    expect(recoverCheckpoint(old)).toBe('rolled-forward');
    expect(existsSync(commit)).toBe(false);
    expect(loadTrainerState(old).iter).toBe(20);
    expectSameFiles(old, want);
    expect(recoverCheckpoint(old)).toBe('clean');
  });

  it('a crash after the last file moved but before the commit dir was removed only needs cleanup', async () => {
    const dir = tempDir();
    const out = await trainTo(dir, 'run', 10, smallCorpus(dir));
    const before = bytes(out);
    mkdirSync(join(out, COMMIT_DIR));
    writeFileSync(join(out, COMMIT_DIR, '.model.safetensors.tmp-1-0123456789ab'), 'x');
    expect(recoverCheckpoint(out)).toBe('rolled-forward');
    expectSameFiles(out, before);
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('refuses a checkpoint whose files do not match trainer_state.json, naming the file', async () => {
    const dir = tempDir();
    const out = await trainTo(dir, 'run', 10, smallCorpus(dir));
    const model = readFileSync(join(out, 'model.safetensors'));
    model[model.length - 1] ^= 1;
    writeFileSync(join(out, 'model.safetensors'), model);
    expect(() => loadTrainerState(out)).toThrow(/model\.safetensors does not match trainer_state\.json .*modified or damaged/);
    expect(() => loadTrainerState(join(dir, 'nope'))).toThrow(/no such run directory/);
    mkdirSync(join(dir, 'empty'));
    expect(() => loadTrainerState(join(dir, 'empty'))).toThrow(/no checkpoint here/);
  });

  it('writes every file of the checkpoint and nothing half-done: no temp files or journal dirs remain', async () => {
    const dir = tempDir();
    const out = await trainTo(dir, 'run', 20, smallCorpus(dir));
    expect(readdirSync(out).sort()).toEqual([...FILES, 'metrics.jsonl'].sort());
    const state = loadTrainerState(out);
    expect(Object.keys(state.files).sort()).toEqual(FILES.filter((f) => f !== 'trainer_state.json').sort());
    expect(Object.keys(state.rng).sort()).toEqual(['data', 'default', 'model']);
  });
});
