import type { Counter } from 'prom-client';
import type { LogsMetrics } from './metrics.ts';

interface PerNamespace {
  linesRead: ReturnType<Counter<'namespace'>['labels']>;
  bytesRead: ReturnType<Counter<'namespace'>['labels']>;
  parseErrors: ReturnType<Counter<'namespace'>['labels']>;
  linesSplit: ReturnType<Counter<'namespace'>['labels']>;
  rateLimited: ReturnType<Counter<'namespace' | 'reason'>['labels']>;
  excluded: ReturnType<Counter<'namespace' | 'reason'>['labels']>;
  unlabelled: ReturnType<Counter<'namespace'>['labels']>;
}

/**
 * What one file's lines did since its last read. Added to the namespace's counters once per read,
 * not per line: a labelled counter costs a map lookup.
 */
export class LineCounts {
  lines = 0;
  parseErrors = 0;
  splits = 0;
  rateLimited = 0;
  excluded = 0;
  unlabelled = 0;
  private readonly counters: PerNamespace;

  constructor(metrics: LogsMetrics, namespace: string) {
    this.counters = {
      linesRead: metrics.linesRead.labels(namespace),
      bytesRead: metrics.bytesRead.labels(namespace),
      parseErrors: metrics.parseErrors.labels(namespace),
      linesSplit: metrics.linesSplit.labels(namespace),
      rateLimited: metrics.linesDropped.labels(namespace, 'rate_limit'),
      excluded: metrics.linesDropped.labels(namespace, 'excluded'),
      unlabelled: metrics.linesUnlabelled.labels(namespace),
    };
  }

  bytesRead(bytes: number): void {
    if (bytes > 0) this.counters.bytesRead.inc(bytes);
  }

  flush(): void {
    if (this.lines > 0) this.counters.linesRead.inc(this.lines);
    if (this.parseErrors > 0) this.counters.parseErrors.inc(this.parseErrors);
    if (this.splits > 0) this.counters.linesSplit.inc(this.splits);
    if (this.rateLimited > 0) this.counters.rateLimited.inc(this.rateLimited);
    if (this.excluded > 0) this.counters.excluded.inc(this.excluded);
    if (this.unlabelled > 0) this.counters.unlabelled.inc(this.unlabelled);
    this.rateLimited = 0;
    this.excluded = 0;
    this.unlabelled = 0;
    this.lines = 0;
    this.parseErrors = 0;
    this.splits = 0;
  }
}
