import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LAG_SAMPLE_INTERVAL_MS, registerEventLoopLag } from './event-loop-lag.ts';

const gauges = async (registry: Registry) => {
  const out = new Map<string, number>();
  for (const m of (await registry.metrics()).matchAll(/^(nodejs_eventloop_lag_\w+) (\S+)$/gm))
    out.set(m[1]!, Number(m[2]));
  return out;
};

const blockFor = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Busy: the loop cannot run timers.
  }
};

describe('event-loop lag gauges', () => {
  it('say how late the loop was since the last scrape, not the sampling interval', async () => {
    const registry = new Registry();
    const stop = registerEventLoopLag(registry);
    try {
      await sleep(LAG_SAMPLE_INTERVAL_MS * 5);
      await registry.metrics(); // starts a fresh window
      await sleep(LAG_SAMPLE_INTERVAL_MS * 10);
      const idle = await gauges(registry);
      expect([...idle.keys()].sort()).toEqual(
        ['', '_max', '_mean', '_min', '_p50', '_p90', '_p99', '_stddev']
          .map((s) => `nodejs_eventloop_lag${s}_seconds`)
          .sort(),
      );
      // Node's own monitor records whole intervals: its idle median was the interval itself.
      expect(idle.get('nodejs_eventloop_lag_p50_seconds')).toBeLessThan(LAG_SAMPLE_INTERVAL_MS / 1000 - 0.01);

      await sleep(LAG_SAMPLE_INTERVAL_MS);
      blockFor(400);
      await sleep(LAG_SAMPLE_INTERVAL_MS * 2);
      const blocked = await gauges(registry);
      expect(blocked.get('nodejs_eventloop_lag_max_seconds')).toBeGreaterThan(0.25);
      expect(blocked.get('nodejs_eventloop_lag_p99_seconds')).toBeGreaterThan(0.25);
      expect(blocked.get('nodejs_eventloop_lag_min_seconds')).toBeLessThan(
        blocked.get('nodejs_eventloop_lag_max_seconds')!,
      );
      // The setImmediate measurement of the previous scrape: a wait, small and positive.
      expect(blocked.get('nodejs_eventloop_lag_seconds')).toBeGreaterThan(0);

      // The next window no longer holds the stall.
      await sleep(LAG_SAMPLE_INTERVAL_MS * 5);
      const after = await gauges(registry);
      expect(after.get('nodejs_eventloop_lag_max_seconds')).toBeLessThan(0.25);
    } finally {
      stop();
    }
  });
});
