/**
 * Where Weft keeps caches it derives from files (compiled tokenizers; langid keeps eld's table the
 * same way): node_modules/.cache/weft of the nearest install above this module — the usual home of
 * derived build caches, private to the install, unlike a shared temp directory where another user
 * could plant a file.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let found: string | null | undefined;

/** The cache directory (not created here), or null when no node_modules is above this module. */
export function derivedCacheDir(): string | null {
  if (found !== undefined) return found;
  found = null;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules'))) {
      found = join(dir, 'node_modules', '.cache', 'weft');
      break;
    }
    if (dirname(dir) === dir) break;
  }
  return found;
}
