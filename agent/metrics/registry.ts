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

/** Where a family's samples come from: a function, or a shared collection and what to take from it. */
type Source =
  | { readonly family: Family; readonly values: Values }
  | { readonly family: Family; readonly scrape: number; readonly pick: (s: Scrape) => Sample[] };

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

/** The `# HELP` and `# TYPE` lines of a family, escaped once rather than at every scrape. */
const headers = new WeakMap<Family, string>();
function renderHeader(f: Family): string {
  let text = headers.get(f);
  if (text === undefined) {
    text = `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    headers.set(f, text);
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

/** Where a registry writes its text format, piece by piece. */
export interface TextSink {
  write(text: string): void;
}

/**
 * A prom-client Registry that writes the text format of our families itself. prom-client's
 * writer copies and re-escapes every label set of every sample; a scrape of 50 containers has
 * ≈ 2,000 samples whose labels never change, so we render each container's label set once and
 * reuse it. Output is the same text format (0.0.4); a prom-client metric registered by anyone
 * else makes it fall back to prom-client's writer.
 *
 * Cost, measured in the agent at 50 containers (bench/metrics): families fed by a collection take
 * their samples from one awaited collection, not through an async call per family (≈ 270 of
 * them, ≈ 0.2 MB of promises per scrape); and the agent's /metrics has the text written into its
 * buffer a family at a time (`writeTo`) rather than as one ≈ 260 KB string — a V8 large object to
 * allocate, flatten and encode again, ≈ 2 ms per scrape here.
 */
export class MetricsRegistry extends Registry {
  readonly #families: Source[] = [];
  /** The shared collections the `scrape` of a Source indexes (one per registerCollectors call). */
  readonly #scrapes: (() => Promise<Scrape>)[] = [];
  /** Whether prom-client holds exactly our families (else its writer), known since the last change. */
  #ours: boolean | undefined;

  expose(f: Family, values: Values): void {
    this.registerMetric(exposed(f, async () => values()));
    this.#families.push({ family: f, values });
  }

  /** A family whose samples `pick` takes from the collection `scrape` returns (shared per scrape). */
  exposeCollected(f: Family, scrape: () => Promise<Scrape>, pick: (s: Scrape) => Sample[]): void {
    this.registerMetric(exposed(f, async () => pick(await scrape())));
    let index = this.#scrapes.indexOf(scrape);
    if (index < 0) index = this.#scrapes.push(scrape) - 1;
    this.#families.push({ family: f, scrape: index, pick });
  }

  override registerMetric<T extends string>(metric: Metric<T>): void {
    super.registerMetric(metric);
    this.#ours = undefined;
  }

  override removeSingleMetric(name: string): void {
    super.removeSingleMetric(name);
    this.#ours = undefined;
  }

  override clear(): void {
    super.clear();
    this.#ours = undefined;
  }

  /** Families of dynamic collectors (known at scrape time), and the names they must not take. */
  #dynamic: (() => Promise<Map<Family, Sample[]>>) | undefined;
  readonly #names = new Set<string>();

  exposeDynamic(samples: () => Promise<Map<Family, Sample[]>>): void {
    this.#dynamic = samples;
  }

  override async metrics(): Promise<string> {
    this.#ours ??= this.getMetricsAsArray().length === this.#families.length;
    if (!this.#ours) return super.metrics();
    let text = '';
    await this.#write({
      write(piece) {
        text += piece;
      },
    });
    return text;
  }

  /** The text format into a sink (the agent's /metrics writes it straight into its buffer). */
  async writeTo(sink: TextSink): Promise<void> {
    this.#ours ??= this.getMetricsAsArray().length === this.#families.length;
    if (this.#ours) await this.#write(sink);
    else sink.write(await super.metrics());
  }

  async #write(sink: TextSink): Promise<void> {
    const families = this.#families.slice();
    const dynamicOf = this.#dynamic;
    const pending: (Promise<unknown> | Sample[])[] = this.#scrapes.map((scrape) => scrape());
    for (const e of families) if ('values' in e) pending.push(e.values());
    if (dynamicOf) pending.push(dynamicOf());
    // Scrapes first, then the values of the families that have a function, in order, then dynamic.
    const done = await Promise.all(pending);
    const collected = done as Scrape[];
    let next = this.#scrapes.length;
    const dynamic = dynamicOf ? (done.at(-1) as Map<Family, Sample[]>) : undefined;
    const write = (f: Family, samples: readonly Sample[]) => {
      // As client_golang: a family without samples (hardware this node lacks) is not written.
      if (samples.length === 0) return;
      // One piece per family: small strings, flattened and copied once by the sink.
      let text = renderHeader(f);
      for (const sample of samples)
        text += `${f.name}${renderLabels(sample.labels)} ${renderValue(sample.value)}\n`;
      sink.write(text);
    };
    for (const e of families)
      write(e.family, 'values' in e ? (done[next++] as Sample[]) : e.pick(collected[e.scrape]!));
    if (dynamic) {
      if (this.#names.size !== this.#families.length)
        for (const { family: f } of this.#families) this.#names.add(f.name);
      // A textfile family named like one of ours would make two families of one name: ours wins.
      for (const [f, samples] of dynamic) if (!this.#names.has(f.name)) write(f, samples);
    }
  }
}

function expose(registry: Registry, f: Family, values: () => Promise<Sample[]> | Sample[]): void {
  if (registry instanceof MetricsRegistry) registry.expose(f, values);
  else registry.registerMetric(exposed(f, async () => values()));
}

function exposeCollected(
  registry: Registry,
  f: Family,
  scrape: () => Promise<Scrape>,
  pick: (s: Scrape) => Sample[],
): void {
  if (registry instanceof MetricsRegistry) registry.exposeCollected(f, scrape, pick);
  else registry.registerMetric(exposed(f, async () => pick(await scrape())));
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
      exposeCollected(registry, f, scrape, (s) => s.samples.get(f) ?? []);
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
    exposeCollected(registry, f, scrape, (s) => selfSamples(s, f));
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
