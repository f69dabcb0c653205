import { setTimeout as sleep } from 'node:timers/promises';
import type { PushRetryConfig } from '../../../shared/config/index.ts';
import type { Logger } from '../../../shared/logger.ts';
import { type Family, family } from '../collector.ts';
import type { Sample } from '../scrape.ts';
import { send } from './send.ts';

/** Every family of one collection, as pushes and alert rules read it. */
export interface Snapshot {
  readonly timestampMs: number;
  readonly families: ReadonlyMap<Family, readonly Sample[]>;
}

export type Target = 'remote_write' | 'json';

export interface PushStats {
  readonly requests: Map<string, number>;
  lastSuccess: Map<Target, number>;
}

export const PUSH_REQUESTS = family(
  'nodeward_push_requests_total',
  'counter',
  'nodeward: Metric pushes by target and outcome (success, failed after retries, rejected with 4xx).',
);
export const PUSH_LAST_SUCCESS = family(
  'nodeward_push_last_success_timestamp_seconds',
  'gauge',
  'nodeward: When a push to the target last succeeded.',
);

export function createPushStats(): PushStats {
  return { requests: new Map(), lastSuccess: new Map() };
}

export function pushStatsSamples(stats: PushStats, f: Family): Sample[] {
  if (f === PUSH_REQUESTS) {
    return [...stats.requests].map(([key, value]) => {
      const [target = '', outcome = ''] = key.split('/');
      return { value, labels: { target, outcome } };
    });
  }
  return [...stats.lastSuccess].map(([target, ms]) => ({ value: ms / 1000, labels: { target } }));
}

export interface Pusher {
  /** One collection and push now; resolves when it succeeded, was dropped or was rejected. */
  pushOnce(signal?: AbortSignal): Promise<boolean>;
  /** Pushes every interval until the signal aborts. */
  run(signal: AbortSignal): Promise<void>;
}

export interface PusherOptions {
  readonly target: Target;
  readonly url: string;
  readonly interval: number;
  readonly timeout: number;
  readonly retry: PushRetryConfig;
  readonly snapshot: () => Promise<Snapshot>;
  readonly encode: (snapshot: Snapshot) => { body: Uint8Array | string; headers: Record<string, string> };
  readonly stats: PushStats;
  readonly log: Logger;
}

/**
 * A push on an interval. Each push sends the values of a fresh collection; a batch that fails
 * after its retries is dropped, not queued: the next interval carries newer values of the same
 * counters, and a node that cannot reach its receiver should not grow its memory.
 */
export function createPusher(opts: PusherOptions): Pusher {
  const count = (outcome: string) => {
    const key = `${opts.target}/${outcome}`;
    opts.stats.requests.set(key, (opts.stats.requests.get(key) ?? 0) + 1);
  };
  const pushOnce = async (signal?: AbortSignal) => {
    const snapshot = await opts.snapshot();
    const { body, headers } = opts.encode(snapshot);
    const result = await send({ url: opts.url, body, headers, timeout: opts.timeout }, opts.retry, signal);
    if (result.ok) {
      count('success');
      opts.stats.lastSuccess.set(opts.target, Date.now());
      return true;
    }
    if (signal?.aborted) return false;
    count(result.error.code === 'METRICS_PUSH_REJECTED' ? 'rejected' : 'failed');
    opts.log.warn(
      { err: result.error, code: result.error.code, target: opts.target, attempts: result.attempts },
      'metrics push dropped',
    );
    return false;
  };
  return {
    pushOnce,
    async run(signal) {
      while (!signal.aborted) {
        const started = Date.now();
        await pushOnce(signal).catch((err: unknown) => {
          opts.log.warn({ err, target: opts.target }, 'metrics push failed to collect');
        });
        const wait = Math.max(0, opts.interval - (Date.now() - started));
        await sleep(wait, undefined, { signal }).catch(() => {});
      }
    },
  };
}
