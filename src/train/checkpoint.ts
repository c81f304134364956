/**
 * Training checkpoints in a run directory (runs/<name>/):
 *
 *   config.json, model.safetensors   the model, Hugging Face-shaped (model.savePretrained)
 *   tokenizer.json                   the tokenizer
 *   optimizer.safetensors            AdamW's flat m and v buffers; step, lr and names in the metadata
 *   trainer_state.json               iteration, every generator's state, best val loss, the train
 *                                    config, and the size and SHA-256 of each file above
 *   metrics.jsonl                    the log (not part of the checkpoint; see metrics.ts)
 *
 * Crash safety. Renaming one file over another is atomic, but a checkpoint is five files and no
 * call renames five at once, so saving is a small journal with a single commit point:
 *
 *   1. stage: write every file into `.checkpoint-staging/` (each fsynced), trainer_state.json
 *      last with the hashes of the others; fsync the directory. The live files are untouched.
 *   2. commit: rename `.checkpoint-staging/` to `.checkpoint-commit/` — one atomic rename.
 *   3. install: rename each file from `.checkpoint-commit/` over its live name, trainer_state.json
 *      last, then remove the empty commit directory.
 *
 * Every reader first recovers: a leftover staging directory is an unfinished save and is deleted
 * (the live checkpoint is still the previous one, untouched); a leftover commit directory holds a
 * complete, verified checkpoint whose install was cut short, so the install is finished (rolled
 * forward). A crash at any instant therefore leaves a checkpoint that loads: the previous one
 * before the commit rename, the new one after it. Loading also checks every file against the
 * sizes and hashes in trainer_state.json, so a file changed behind the trainer's back is reported
 * instead of silently mixing two checkpoints.
 */
import { createHash } from 'node:crypto';
import { existsSync, fsyncSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../io/atomic.js';
import { TrainConfig } from './config.js';

export const STAGING_DIR = '.checkpoint-staging';
export const COMMIT_DIR = '.checkpoint-commit';
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TOKENIZER_FILE = 'tokenizer.json';

const GeneratorStateSchema = z.object({ state: z.string(), inc: z.string(), spare: z.number().nullable() });

const FileRecord = z.object({ bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });

export const TrainerState = z.object({
  format: z.literal('weft-trainer-state'),
  version: z.literal(1),
  /** Iterations completed: the run continues with iteration `iter`. */
  iter: z.number().int().nonnegative(),
  trainConfig: TrainConfig,
  bestValLoss: z.number().nullable(),
  /** Training tokens consumed so far. */
  tokensSeen: z.number().nonnegative(),
  /**
   * State of every generator the run draws from, by role: `data` (batch offsets — with random
   * windows this IS the data position), `model` (dropout masks), `default` (anything that used the
   * process-wide generator). Restoring them all is what makes a resumed run bit-identical.
   */
  rng: z.record(z.string(), GeneratorStateSchema),
  /** Length of metrics.jsonl when the checkpoint was taken. */
  metricsBytes: z.number().int().nonnegative(),
  files: z.record(z.string(), FileRecord),
});
export type TrainerState = z.infer<typeof TrainerState>;
export type TrainerStateDraft = Omit<TrainerState, 'files' | 'format' | 'version'>;

/**
 * Saves a checkpoint into `dir` crash-safely (see the file comment). `writeFiles` writes the
 * checkpoint's files (model, tokenizer, optimizer) into the staging directory it is given;
 * trainer_state.json is added here with their hashes.
 */
export async function saveCheckpoint(dir: string, writeFiles: (stagingDir: string) => Promise<void>, state: TrainerStateDraft): Promise<void> {
  mkdirSync(dir, { recursive: true });
  recoverCheckpoint(dir);
  const staging = join(dir, STAGING_DIR);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging);
  await writeFiles(staging);
  const files: Record<string, z.infer<typeof FileRecord>> = {};
  for (const name of readdirSync(staging).sort()) {
    if (name === TRAINER_STATE_FILE) throw new Error(`saveCheckpoint: ${TRAINER_STATE_FILE} is written by the checkpoint itself`);
    files[name] = describeFile(join(staging, name));
  }
  const full: TrainerState = { format: 'weft-trainer-state', version: 1, ...state, files };
  await writeFileAtomic(join(staging, TRAINER_STATE_FILE), `${JSON.stringify(full, null, 2)}\n`);
  fsyncDir(staging);
  renameSync(staging, join(dir, COMMIT_DIR)); // the commit point
  fsyncDir(dir);
  installCommitted(dir);
}

/**
 * Finishes or discards a save that a crash interrupted. Returns what it did. Called by every
 * reader and writer before it touches the run directory.
 */
export function recoverCheckpoint(dir: string): 'clean' | 'rolled-forward' | 'discarded-staging' {
  let action: 'clean' | 'rolled-forward' | 'discarded-staging' = 'clean';
  if (existsSync(join(dir, COMMIT_DIR))) {
    installCommitted(dir);
    action = 'rolled-forward';
  }
  if (existsSync(join(dir, STAGING_DIR))) {
    rmSync(join(dir, STAGING_DIR), { recursive: true, force: true });
    fsyncDir(dir);
    if (action === 'clean') action = 'discarded-staging';
  }
  return action;
}

export function hasCheckpoint(dir: string): boolean {
  recoverIfPresent(dir);
  return existsSync(join(dir, TRAINER_STATE_FILE));
}

/**
 * Reads and verifies a run directory's trainer_state.json (after recovering an interrupted save):
 * every file it lists must have the recorded size and SHA-256.
 */
export function loadTrainerState(dir: string): TrainerState {
  if (!existsSync(dir)) throw new Error(`${dir}: no such run directory`);
  recoverCheckpoint(dir);
  const path = join(dir, TRAINER_STATE_FILE);
  if (!existsSync(path)) throw new Error(`${dir}: no checkpoint here (${TRAINER_STATE_FILE} is missing); train one first, or point at another run directory`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const parsed = TrainerState.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${path}: not a Weft trainer state (${issue.path.join('.') || 'root'}: ${issue.message})`);
  }
  for (const [name, want] of Object.entries(parsed.data.files)) {
    const file = join(dir, name);
    if (!existsSync(file)) throw new Error(`${dir}: checkpoint file ${name} is missing`);
    const got = describeFile(file);
    if (got.bytes !== want.bytes || got.sha256 !== want.sha256) {
      throw new Error(
        `${file} does not match ${TRAINER_STATE_FILE} (${got.bytes} bytes, sha256 ${got.sha256.slice(0, 12)}…; expected ${want.bytes} bytes, ${want.sha256.slice(0, 12)}…): the checkpoint was modified or damaged`,
      );
    }
  }
  return parsed.data;
}

function recoverIfPresent(dir: string): void {
  if (existsSync(dir)) recoverCheckpoint(dir);
}

/** Step 3: moves committed files over the live ones, trainer_state.json last, then drops the commit dir. */
function installCommitted(dir: string): void {
  const commit = join(dir, COMMIT_DIR);
  const statePath = join(commit, TRAINER_STATE_FILE);
  // No trainer_state.json left in the commit dir means it was installed last of all: only cleanup remains.
  if (existsSync(statePath)) {
    let listed: string[];
    try {
      listed = Object.keys(TrainerState.parse(JSON.parse(readFileSync(statePath, 'utf8'))).files);
    } catch (err) {
      throw new Error(`${statePath}: an interrupted checkpoint could not be finished (${err instanceof Error ? err.message : String(err)})`);
    }
    // Files already moved by an earlier, interrupted install are gone from the commit dir.
    for (const name of listed) if (existsSync(join(commit, name))) renameSync(join(commit, name), join(dir, name));
    renameSync(statePath, join(dir, TRAINER_STATE_FILE));
    fsyncDir(dir);
  }
  rmSync(commit, { recursive: true, force: true });
  fsyncDir(dir);
}

function describeFile(path: string): { bytes: number; sha256: string } {
  const bytes = readFileSync(path);
  return { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Makes renames and creations in a directory durable (POSIX; a no-op where directories can't be opened). */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Windows cannot fsync a directory; its renames are durable once the call returns.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
