import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two-module tests spawn real processes and bind ports: keep files in parallel, but bounded (2 cores).
    maxWorkers: 2,
  },
});
