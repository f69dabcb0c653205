import type { Metric, Registry } from 'prom-client';
import type { Logger } from '../../shared/logger.ts';
import { type Family, family } from './collector.ts';
import { createScraper, type NamedCollector, type Sample, type Scrape } from './scrape.ts';

const DURATION = family(
  'nodeward_scrape_collector_duration_seconds',
  'gauge',
  'nodeward: Duration of a host collector scrape.',
);
const SUCCESS = family(
  'nodeward_scrape_collector_success',
  'gauge',
  'nodeward: Whether a host collector succeeded.',
);

/**
 * A family as prom-client's registry sees a metric: it only calls `get()` (and `reset()`), so an
 * object that builds its values at scrape time is a metric. Unlike a Gauge with collect(), it keeps
 * no label-keyed state to reset each scrape (series of a vanished device or mount just stop), and
 * it can say `untyped`, as node_exporter does for vmstat.
 */
function exposed(f: Family, values: () => Promise<Sample[]>): Metric {
  const metric = {
    // prom-client renames counters in place for OpenMetrics, so `get()` reads the name back.
    name: f.name,
    help: f.help,
    type: f.type,
    aggregator: 'sum',
    async get() {
      return { name: metric.name, help: f.help, type: f.type, aggregator: 'sum', values: await values() };
    },
    reset() {},
  };
  return metric as unknown as Metric;
}

function selfSamples(scrape: Scrape, which: typeof DURATION | typeof SUCCESS): Sample[] {
  return scrape.outcomes.map((o) => ({
    value: which === DURATION ? o.seconds : o.ok ? 1 : 0,
    labels: { collector: o.name },
  }));
}

/**
 * Registers every family of the collectors, and the per-collector duration and success, once. Each
 * scrape of the registry then runs the collectors once, whichever family asks first.
 */
export function registerCollectors(
  registry: Registry,
  collectors: readonly NamedCollector[],
  log: Logger,
): void {
  const scrape = createScraper(collectors, log);
  for (const { collector } of collectors) {
    for (const f of collector.families) {
      registry.registerMetric(exposed(f, async () => (await scrape()).samples.get(f) ?? []));
    }
  }
  for (const f of [DURATION, SUCCESS]) {
    registry.registerMetric(exposed(f, async () => selfSamples(await scrape(), f)));
  }
}
