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
  /** Rejects when the collector cannot report (its samples of this scrape are then dropped). */
  collect(emit: Emit): Promise<void>;
}

export type CollectorFactory = (settings: MetricsConfig) => Collector;

export const family = (name: string, type: FamilyType, help: string): Family => ({ name, type, help });
