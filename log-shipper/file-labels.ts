import type { Logger } from '../shared/logger.ts';
import type { CheckpointEntry } from './checkpoint.ts';
import type { Enricher, Enrichment } from './enrich.ts';
import type { FileRules, PodRules } from './pod-rules.ts';
import { createEncoder, type Encoder } from './record.ts';
import type { Route, Router } from './route.ts';

export interface FileLabelsDeps {
  enricher: Enricher;
  router: Router;
  podRules: PodRules;
  log: Logger;
}

/**
 * What a file's labels decide: its records' encoder, its route and its pod's rules. Taken once per
 * file, since labels do not change while it is open — except for a file opened while its pod was
 * not known yet, labelled again as soon as the pod metadata knows it.
 */
export class FileLabels {
  encode!: Encoder;
  route!: Route;
  rules!: FileRules;
  /** Pod metadata is configured but did not know the pod: the labels come from the file name. */
  podUnknown = false;
  /** The enricher's generation the labels were taken at. */
  private labelledAt = 0;
  private readonly deps: FileLabelsDeps;
  private readonly entry: CheckpointEntry;

  constructor(deps: FileLabelsDeps, entry: CheckpointEntry, enrichment: Enrichment) {
    this.deps = deps;
    this.entry = entry;
    this.apply(enrichment);
  }

  /**
   * Per line: while the pod is unknown, looks it up again whenever the pod metadata changed (a
   * cache lookup, once per refresh). True when the labels were taken again.
   */
  refresh(): boolean {
    if (!this.podUnknown || this.labelledAt === this.deps.enricher.generation()) return false;
    const e = this.deps.enricher.labels(this.entry);
    if (e.missing) {
      this.labelledAt = this.deps.enricher.generation();
      return false;
    }
    this.apply(e);
    return true;
  }

  private apply(e: Enrichment): void {
    this.podUnknown = e.missing;
    this.labelledAt = this.deps.enricher.generation();
    this.encode = createEncoder(e.labels, this.entry.realPath);
    this.route = this.deps.router(e.labels, this.entry.realPath);
    this.rules = this.deps.podRules.forFile(e.labels, e.pod?.annotations);
    if (this.rules.badPattern !== undefined)
      this.deps.log.warn(
        {
          file: this.entry.realPath,
          pod: e.labels.pod,
          namespace: e.labels.namespace,
          err: this.rules.badPattern,
        },
        'multi-line start pattern of the pod does not compile; lines are shipped one by one',
      );
  }
}
