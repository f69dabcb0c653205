import { type Metric, Registry } from 'prom-client';
import { HOST_COLLECTORS } from '../../shared/config/index.ts';
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
 * node_exporter's names for the same two, over the host collectors only (dashboards and alerts
 * query these). Success follows node_exporter: 0 also when a collector found nothing to report on
 * this machine (no bond, no hwmon), where ours says 1 — nothing is broken.
 */
const NODE_DURATION = family(
  'node_scrape_collector_duration_seconds',
  'gauge',
  'node_exporter: Duration of a collector scrape.',
);
const NODE_SUCCESS = family(
  'node_scrape_collector_success',
  'gauge',
  'node_exporter: Whether a collector succeeded.',
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

  /** Families of dynamic collectors (known at scrape time), and the names they must not take. */
  #dynamic: (() => Promise<Map<Family, Sample[]>>) | undefined;
  readonly #names = new Set<string>();

  exposeDynamic(samples: () => Promise<Map<Family, Sample[]>>): void {
    this.#dynamic = samples;
  }

  override async metrics(): Promise<string> {
    if (this.getMetricsAsArray().length !== this.#families.length) return super.metrics();
    const [all, dynamic] = await Promise.all([
      Promise.all(this.#families.map((e) => e.values())),
      this.#dynamic?.(),
    ]);
    const out: string[] = [];
    const write = (f: Family, samples: readonly Sample[]) => {
      // As client_golang: a family without samples (hardware this node lacks) is not written.
      if (samples.length === 0) return;
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`);
      for (const sample of samples)
        out.push(`${f.name}${renderLabels(sample.labels)} ${renderValue(sample.value)}\n`);
    };
    this.#families.forEach(({ family: f }, i) => {
      write(f, all[i]!);
    });
    if (dynamic) {
      if (this.#names.size !== this.#families.length)
        for (const { family: f } of this.#families) this.#names.add(f.name);
      // A textfile family named like one of ours would make two families of one name: ours wins.
      for (const [f, samples] of dynamic) if (!this.#names.has(f.name)) write(f, samples);
    }
    return out.join('');
  }
}

function expose(registry: Registry, f: Family, values: () => Promise<Sample[]> | Sample[]): void {
  if (registry instanceof MetricsRegistry) registry.expose(f, values);
  else registry.registerMetric(exposed(f, async () => values()));
}

const labelsOf = new Map<string, Labels>();
const collectorLabels = (name: string): Labels => {
  let labels = labelsOf.get(name);
  if (!labels) {
    labels = { collector: name };
    labelsOf.set(name, labels);
  }
  return labels;
};

function selfSamples(scrape: Scrape, which: Family): Sample[] {
  const out: Sample[] = [];
  for (const o of scrape.outcomes) {
    const host = Object.hasOwn(HOST_COLLECTORS, o.name);
    let value: number;
    if (which === DURATION || which === NODE_DURATION) value = o.seconds;
    else if (which === SUCCESS) value = o.ok ? 1 : 0;
    else value = o.ok && !o.noData ? 1 : 0;
    if (host || which === DURATION || which === SUCCESS) out.push({ value, labels: collectorLabels(o.name) });
  }
  return out;
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
  const declared = new Set<Family>();
  for (const { collector } of collectors) {
    for (const f of collector.families) {
      declared.add(f);
      expose(registry, f, async () => (await scrape()).samples.get(f) ?? []);
    }
  }
  if (registry instanceof MetricsRegistry && collectors.some((c) => c.collector.dynamic)) {
    registry.exposeDynamic(async () => {
      const undeclared = new Map<Family, Sample[]>();
      for (const [f, samples] of (await scrape()).samples) if (!declared.has(f)) undeclared.set(f, samples);
      return undeclared;
    });
  }
  for (const f of [DURATION, SUCCESS, NODE_DURATION, NODE_SUCCESS]) {
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
