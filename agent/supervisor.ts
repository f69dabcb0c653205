import { setTimeout as sleep } from 'node:timers/promises';
import { asNodewardError, NodewardError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { AgentModule } from '../shared/module.ts';
import type { SelfMetrics } from './self-metrics.ts';

export interface BackoffPolicy {
  backoffInitial: number;
  backoffMax: number;
  /** A run this long resets the backoff: a module that fails once a day should not wait an hour. */
  resetAfter: number;
}

export interface Readiness {
  ready: boolean;
  reason?: string;
}

/** Delay before restart number `attempt` (0-based): doubling from initial, capped. */
export function backoffDelay(attempt: number, policy: BackoffPolicy): number {
  return Math.min(policy.backoffInitial * 2 ** Math.min(attempt, 30), policy.backoffMax);
}

/**
 * Keeps one module running: starts it, restarts it with capped exponential backoff when it fails,
 * and stops it on request. A failure is always logged with its registry code and counted — a
 * module never takes the process down, and never fails silently.
 */
export class Supervisor {
  readonly module: AgentModule;
  private readonly policy: BackoffPolicy;
  private readonly log: Logger;
  private readonly metrics: SelfMetrics;
  private state: Readiness = { ready: false, reason: 'not started' };
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(module: AgentModule, policy: BackoffPolicy, log: Logger, metrics: SelfMetrics) {
    this.module = module;
    this.policy = policy;
    this.log = log.child({ module: module.name });
    this.metrics = metrics;
    // Series exist from the start, so `increase(restarts[5m])` sees the first restart.
    metrics.restarts.inc({ module: module.name }, 0);
    metrics.moduleUp.set({ module: module.name }, 0);
    metrics.moduleReady.set({ module: module.name }, 0);
  }

  readiness(): Readiness {
    return this.state;
  }

  start(): void {
    this.loop ??= this.runLoop();
  }

  /** Asks the module to stop and waits for it; the caller bounds the wait with its deadline. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
  }

  private setState(ready: boolean, reason?: string): void {
    this.state = reason === undefined ? { ready } : { ready, reason };
    this.metrics.moduleReady.set({ module: this.module.name }, ready ? 1 : 0);
  }

  private async runLoop(): Promise<void> {
    const name = this.module.name;
    let attempt = 0;
    while (!this.stopping.signal.aborted) {
      const run = new AbortController();
      const onStop = () => run.abort();
      this.stopping.signal.addEventListener('abort', onStop, { once: true });
      const startedAt = Date.now();
      this.setState(false, 'starting');
      this.metrics.moduleUp.set({ module: name }, 1);
      let failure: NodewardError | undefined;
      try {
        await this.module.run({
          signal: run.signal,
          setReady: (ready, reason) => {
            if (!run.signal.aborted) this.setState(ready, reason);
          },
        });
        if (!this.stopping.signal.aborted) {
          failure = new NodewardError('MODULE_FAILED', `${name}: run() returned without being asked to stop`);
        }
      } catch (err) {
        if (!this.stopping.signal.aborted) failure = asNodewardError(err);
        else this.log.warn({ err, code: asNodewardError(err).code }, 'module failed while stopping');
      } finally {
        this.stopping.signal.removeEventListener('abort', onStop);
        run.abort();
        this.metrics.moduleUp.set({ module: name }, 0);
      }
      if (!failure) break;

      if (Date.now() - startedAt >= this.policy.resetAfter) attempt = 0;
      const delay = backoffDelay(attempt++, this.policy);
      this.metrics.errors.inc({ module: name, code: failure.code });
      this.metrics.restarts.inc({ module: name });
      this.log.error(
        { err: failure, code: failure.code, restartInMs: delay, attempt },
        'module failed; restarting',
      );
      this.setState(false, `failed with ${failure.code}: ${failure.message}; restarting in ${delay} ms`);
      try {
        await sleep(delay, undefined, { signal: this.stopping.signal });
      } catch {
        break; // stop requested during the backoff
      }
    }
    this.setState(false, 'stopped');
  }
}
