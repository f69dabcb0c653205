import { defineConfig } from 'vitest/config';

/**
 * `npm run test:soak`: long runs against the real agent that are not yet steady enough for every
 * CI run (see each file's header for what is known about it). Not part of `npm test`.
 */
export default defineConfig({
  test: {
    include: ['test/**/*.soak.ts'],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    maxWorkers: 1,
  },
});
