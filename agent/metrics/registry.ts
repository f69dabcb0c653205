import { type Metric, Registry } from 'prom-client';
import type { Logger } from '../../shared/logger.ts';
import { type Family, family, type Labels } from './collector.ts';
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

type Values = () => Promise<Sample[]> | Sample[];

const escapeHelp = (text: string) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeValue = (text: string) =>
  /["\\\n]/.test(text) ? text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : text;

/** `{a="x",b="y"}` for a label set; the same object (a container's labels) is rendered once. */
const rendered = new WeakMap<Labels, string>();
function renderLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  let text = rendered.get(labels);
  if (text === undefined) {
    const parts: string[] = [];
    for (const name in labels) parts.push(`${name}="${escapeValue(labels[name]!)}"`);
    text = parts.length === 0 ? '' : `{${parts.join(',')}}`;
    rendered.set(labels, text);
  }
  return text;
}

const renderValue = (v: number) =>
  Number.isNaN(v)
    ? 'NaN'
    : v === Number.POSITIVE_INFINITY
      ? '+Inf'
      : v === Number.NEGATIVE_INFINITY
        ? '-Inf'
        : String(v);

/**
 * A prom-client Registry that writes the text format of our families itself. prom-client's
 * writer copies and re-escapes every label set of every sample; a scrape of 50 containers has
 * ≈ 2,000 samples whose labels never change, so we render each container's label set once and
 * reuse it. Output is the same text format (0.0.4); a prom-client metric registered by anyone
 * else makes it fall back to prom-client's writer.
 */
export class MetricsRegistry extends Registry {
  readonly #families: { family: Family; values: Values }[] = [];

  expose(f: Family, values: Values): void {
    this.registerMetric(exposed(f, async () => values()));
    this.#families.push({ family: f, values });
  }

  override async metrics(): Promise<string> {
    if (this.getMetricsAsArray().length !== this.#families.length) return super.metrics();
    const all = await Promise.all(this.#families.map((e) => e.values()));
    const out: string[] = [];
    this.#families.forEach(({ family: f }, i) => {
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`);
      for (const sample of all[i]!)
        out.push(`${f.name}${renderLabels(sample.labels)} ${renderValue(sample.value)}\n`);
    });
    return out.join('');
  }
}

function expose(registry: Registry, f: Family, values: () => Promise<Sample[]> | Sample[]): void {
  if (registry instanceof MetricsRegistry) registry.expose(f, values);
  else registry.registerMetric(exposed(f, async () => values()));
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
): () => Promise<Scrape> {
  const scrape = createScraper(collectors, log);
  for (const { collector } of collectors) {
    for (const f of collector.families) {
      expose(registry, f, async () => (await scrape()).samples.get(f) ?? []);
    }
  }
  for (const f of [DURATION, SUCCESS]) {
    expose(registry, f, async () => selfSamples(await scrape(), f));
  }
  return scrape;
}

/** Registers families whose samples some other part of the module computes (alert state). */
export function registerFamilies(
  registry: Registry,
  families: readonly Family[],
  samples: (f: Family) => Sample[],
): void {
  for (const f of families) expose(registry, f, () => samples(f));
}
