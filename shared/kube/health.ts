import type { Logger } from '../logger.ts';
import { KubeError } from './http.ts';

/**
 * Whether a source of Kubernetes objects answers, told to whoever subscribed: every failure with
 * its reason, and each complete answer with the number of objects known. Failures are never
 * thrown to readers: they keep reading the cache.
 */

export interface HealthListener {
  /** The source answered (a complete list, or a watch opened again): `size` objects known now. */
  refreshed?(size: number): void;
  failed?(reason: string, err: Error): void;
}

export class Health {
  private readonly listeners = new Set<HealthListener>();
  /** Set while the source fails; cleared once it answers again. */
  lastError: KubeError | undefined;

  subscribe(listener: HealthListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  failed(e: unknown): KubeError {
    const err = e instanceof KubeError ? e : new KubeError('unknown', (e as Error).message, { cause: e });
    this.lastError = err;
    for (const l of this.listeners) l.failed?.(err.reason, err);
    return err;
  }

  ok(size: number): void {
    this.lastError = undefined;
    for (const l of this.listeners) l.refreshed?.(size);
  }
}

/**
 * Logs a source's health: a warning when it starts failing (or fails for a new reason), an info
 * line when it answers again — never one line per attempt while it is down. `what` names the
 * source, `consequence` says what its reader loses meanwhile. Returns the unsubscribe.
 */
export function logHealth(
  source: { subscribe(listener: HealthListener): () => void },
  log: Logger,
  what: string,
  consequence: string,
): () => void {
  let lastReason: string | undefined;
  return source.subscribe({
    failed(reason, err) {
      if (reason !== lastReason)
        log.warn({ err, reason, code: 'POD_METADATA_UNAVAILABLE' }, `${what} failed: ${consequence}`);
      lastReason = reason;
    },
    refreshed(size) {
      if (lastReason !== undefined) log.info({ size }, `${what} answers again`);
      lastReason = undefined;
    },
  });
}
