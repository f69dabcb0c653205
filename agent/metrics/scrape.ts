import { NodewardError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { type Collector, type Emit, type Family, type Labels, NoDataError } from './collector.ts';

export interface NamedCollector {
  readonly name: string;
  readonly collector: Collector;
}

export interface Sample {
  value: number;
  labels?: Labels;
}

export interface CollectorOutcome {
  readonly name: string;
  readonly seconds: number;
  readonly ok: boolean;
  /** It ran and found nothing to report on this machine (node_exporter's ErrNoData). */
  readonly noData: boolean;
}

/** One collection: every sample by family, and how each collector did. */
export interface Scrape {
  readonly samples: Map<Family, Sample[]>;
  readonly outcomes: CollectorOutcome[];
}

/** A broken collector fails every scrape (every 15 s or so); one warning per window is plenty. */
export const FAILURE_LOG_INTERVAL_MS = 5 * 60_000;

/**
 * Runs the collectors side by side and gathers their samples. Calls made while a collection is in
 * flight share it: the registry asks each family separately, within one tick, and all of them must
 * see the same read of /proc. A failing collector contributes no samples and never fails the rest.
 */
export function createScraper(collectors: readonly NamedCollector[], log: Logger, clock = () => Date.now()) {
  const failing = new Map<string, { loggedAt: number; suppressed: number }>();

  const failed = (name: string, err: unknown) => {
    const now = clock();
    const state = failing.get(name);
    if (state && now - state.loggedAt < FAILURE_LOG_INTERVAL_MS) {
      state.suppressed++;
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    const error = new NodewardError('METRICS_COLLECTOR_FAILED', `collector ${name}: ${message}`, {
      cause: err,
      details: { collector: name },
    });
    log.warn(
      { err: error, code: error.code, collector: name, suppressed: state?.suppressed ?? 0 },
      'metrics collector failed; its series are left out until it recovers',
    );
    failing.set(name, { loggedAt: now, suppressed: 0 });
  };

  const succeeded = (name: string) => {
    if (!failing.delete(name)) return;
    log.info({ collector: name }, 'metrics collector recovered');
  };

  const runOne = async ({ name, collector }: NamedCollector) => {
    const declared = new Set(collector.families);
    const samples = new Map<Family, Sample[]>();
    const emit: Emit = (family, value, labels) => {
      let list = samples.get(family);
      if (!list) {
        // Checked at a family's first sample of the scrape, not at each of its samples.
        if (!collector.dynamic && !declared.has(family))
          throw new Error(`emitted ${family.name}, which it did not declare`);
        list = [];
        samples.set(family, list);
      }
      list.push(labels ? { value, labels } : { value });
    };
    const start = performance.now();
    let ok = true;
    let noData = false;
    try {
      await collector.collect(emit);
      succeeded(name);
    } catch (err) {
      if (err instanceof NoDataError) {
        noData = true;
        succeeded(name);
      } else {
        ok = false;
        failed(name, err);
      }
    }
    const outcome: CollectorOutcome = { name, seconds: (performance.now() - start) / 1000, ok, noData };
    return { outcome, samples: ok ? samples : undefined };
  };

  let inflight: Promise<Scrape> | undefined;
  const collectAll = async (): Promise<Scrape> => {
    try {
      const results = await Promise.all(collectors.map(runOne));
      const samples = new Map<Family, Sample[]>();
      for (const r of results) for (const [family, list] of r.samples ?? []) samples.set(family, list);
      return { samples, outcomes: results.map((r) => r.outcome) };
    } finally {
      inflight = undefined;
    }
  };

  return (): Promise<Scrape> => {
    inflight ??= collectAll();
    return inflight;
  };
}
