import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    // Native kernels use their own thread pool; two vitest workers match the 2-core CI machine.
    pool: 'forks',
    maxWorkers: 2,
  },
});
