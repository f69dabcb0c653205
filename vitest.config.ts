import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'build/**'],
    // Lab tests start real etcd, Kafka, dockerd and Prometheus: allow them time, and keep the
    // two cores of CI from being oversubscribed by too many such files at once.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
