import { createHistogram } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

/** How often the loop is sampled: a wake-up each time, so not more often (idle CPU). */
export const LAG_SAMPLE_INTERVAL_MS = 100;

const STATS = [
  ['min', 'The minimum recorded event loop delay.'],
  ['max', 'The maximum recorded event loop delay.'],
  ['mean', 'The mean of the recorded event loop delays.'],
  ['stddev', 'The standard deviation of the recorded event loop delays.'],
  ['p50', 'The 50th percentile of the recorded event loop delays.'],
  ['p90', 'The 90th percentile of the recorded event loop delays.'],
  ['p99', 'The 99th percentile of the recorded event loop delays.'],
] as const;

/**
 * prom-client's event-loop gauges, same names and help, measured as how late a 100 ms timer fires
 * (the delay a callback waits), over the time since the previous scrape.
 *
 * prom-client's own gauges read Node's monitorEventLoopDelay, which records the whole time between
 * its wake-ups: at a 100 ms resolution an idle agent showed a mean and p99 of ≈ 0.1 s, so an alert
 * on lag would fire for ever. Its statistics also walk a 3-digit histogram of the whole int64
 * range, ≈ 0.24 ms per scrape; this one spans 1 ns – 1 h at 2 significant digits (1 %), ≈ 0.04 ms.
 *
 * `nodejs_eventloop_lag_seconds` is as prom-client has it: the wait of a setImmediate queued at a
 * scrape, shown by the next one. Returns a function that stops the sampling timer.
 */
export function registerEventLoopLag(registry: Registry): () => void {
  const delays = createHistogram({ lowest: 1, highest: 3_600e9, figures: 2 });
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const lateNs = (now - last - LAG_SAMPLE_INTERVAL_MS) * 1e6;
    last = now;
    delays.record(Math.max(1, Math.round(lateNs)));
  }, LAG_SAMPLE_INTERVAL_MS);
  // Sampling never keeps the agent alive.
  timer.unref();

  // The gauge whose collect sets all of them comes first: prom-client reads in registration order.
  const lag: Gauge = new Gauge({
    name: 'nodejs_eventloop_lag_seconds',
    help: 'Lag of event loop in seconds.',
    registers: [registry],
    collect() {
      const queued = process.hrtime.bigint();
      setImmediate(() => lag.set(Number(process.hrtime.bigint() - queued) / 1e9));
      // No sample since the last scrape (scrapes closer than the interval): the last values stand.
      if (delays.count === 0) return;
      for (const [stat, gauge] of stats) gauge.set(statOf(stat) / 1e9);
      delays.reset();
    },
  });
  const stats = STATS.map(
    ([stat, help]) =>
      [
        stat,
        new Gauge({ name: `nodejs_eventloop_lag_${stat}_seconds`, help, registers: [registry] }),
      ] as const,
  );
  const statOf = (stat: (typeof STATS)[number][0]): number => {
    switch (stat) {
      case 'min':
      case 'max':
      case 'mean':
      case 'stddev':
        return delays[stat];
      case 'p50':
        return delays.percentile(50);
      case 'p90':
        return delays.percentile(90);
      case 'p99':
        return delays.percentile(99);
    }
  };
  return () => clearInterval(timer);
}
