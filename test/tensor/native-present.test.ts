import { describe, expect, it } from 'vitest';
import { nativeAvailable } from '../../src/tensor/backend/index.js';
import { nativeAddonInfo } from '../../src/tensor/backend/native.js';

// The native tests skip themselves when the addon is missing; this one makes sure that can't happen
// silently: `npm ci` builds the addon on any machine with g++ (every supported one has it).
describe('native addon', () => {
  it.skipIf(process.env.WEFT_BACKEND === 'js')('is built and loads', () => {
    expect(nativeAvailable(), "build/Release/weft.node did not load: run 'npm rebuild' and read the node-gyp output").toBe(true);
    const info = nativeAddonInfo()!;
    expect(['portable', 'avx2', 'avx512']).toContain(info.kernelPath);
    expect(info.threads).toBeGreaterThanOrEqual(1);
  });
});
