import type { MetricsConfig } from '../../shared/config/index.ts';

/** `untyped` only where node_exporter says so (vmstat), so queries and recording rules carry over. */
export type FamilyType = 'counter' | 'gauge' | 'untyped';

/** One metric family as exposed: name, HELP text and TYPE. */
export interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: FamilyType;
}

export type Labels = Readonly<Record<string, string>>;

/** Writes one sample of a family the collector declared. */
export type Emit = (family: Family, value: number, labels?: Labels) => void;

/**
 * One host collector: reads its kernel files at scrape time and emits samples. Its families are
 * fixed when it is created, because the registry exposes a family only if it was registered.
 */
export interface Collector {
  readonly families: readonly Family[];
  /**
   * Its families are only known at scrape time (textfile's *.prom files, hwmon's sensor files): it
   * may emit families it did not declare, and they are exposed after the declared ones. It should
   * emit the same Family object for a name at every scrape.
   */
  readonly dynamic?: boolean;
  /** Rejects when the collector cannot report (its samples of this scrape are then dropped). */
  collect(emit: Emit): Promise<void>;
}

/**
 * Thrown by a collector that found nothing to report on this machine (no bond, no hwmon chip): not
 * a failure, so nothing is logged and nodeward_scrape_collector_success stays 1, but
 * node_scrape_collector_success is 0, as node_exporter reports its ErrNoData.
 */
export class NoDataError extends Error {
  constructor(what: string) {
    // Without a stack: a dozen are thrown at every scrape (hardware this node lacks) and none is
    // ever logged, while capturing the stack is most of an Error's cost.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(`no data: ${what}`);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.name = 'NoDataError';
  }
}

export type CollectorFactory = (settings: MetricsConfig) => Collector;

export const family = (name: string, type: FamilyType, help: string): Family => ({ name, type, help });
