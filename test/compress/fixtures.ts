/** Readers for the committed test/fixtures/compress/*.json (written by scripts/fixtures/compress_*.py). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const FIXTURES = join(__dirname, '..', 'fixtures', 'compress');

export function readFixture<T>(name: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as T;
}

/** base64 little-endian float32 → Float32Array. */
export function f32FromBase64(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** base64 int8 → Int8Array. */
export function i8FromBase64(b64: string): Int8Array {
  const buf = Buffer.from(b64, 'base64');
  return new Int8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}
