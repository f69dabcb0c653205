import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createSelfMetrics } from './self-metrics.ts';

const openFds = async (registry: ReturnType<typeof createSelfMetrics>['registry']) => {
  const line = /^process_open_fds (\d+)$/m.exec(await registry.metrics());
  expect(line, 'process_open_fds is exposed').not.toBeNull();
  return Number(line![1]);
};

describe('self metrics', () => {
  it('counts the open descriptors of the process (one series, follows opens and closes)', async () => {
    const { registry } = createSelfMetrics('test');
    const before = await openFds(registry);
    const held = Array.from({ length: 40 }, () => openSync('/proc/self/stat', 'r'));
    try {
      expect(await openFds(registry)).toBe(before + 40);
    } finally {
      for (const fd of held) closeSync(fd);
    }
    expect(await openFds(registry)).toBe(before);
    expect((await registry.metrics()).match(/^# TYPE process_open_fds /gm)).toHaveLength(1);
  });
});
