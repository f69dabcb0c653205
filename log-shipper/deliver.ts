import { asNodewardError, NodewardError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { Batch } from './batch.ts';
import type { Sink } from './sink/index.ts';

/**
 * Delivery: sends batches to the sink one at a time, in order, retrying a failed batch with capped
 * exponential backoff. Only an acknowledged batch moves checkpoints; a batch that cannot be
 * delivered within giveUpAfter fails the run with SINK_UNAVAILABLE, and the agent restarts the
 * module, which re-reads from the checkpoints.
 */

export interface RetryPolicy {
  initialBackoff: number;
  maxBackoff: number;
  giveUpAfter: number;
}

export interface DeliveryHooks {
  acked(batch: Batch, seconds: number): void;
  failed(err: NodewardError, attempt: number, retryInMs: number): void;
}

export class Sender {
  private readonly queue: Batch[] = [];
  private readonly sink: Sink;
  private readonly retry: RetryPolicy;
  private readonly hooks: DeliveryHooks;
  private readonly log: Logger;
  private closing = false;
  private deadline = Number.POSITIVE_INFINITY;
  private wakeUp: (() => void) | undefined;
  /** Whether a new batch ends the current pause (waiting for work, not backing off). */
  private idle = false;

  constructor(sink: Sink, retry: RetryPolicy, hooks: DeliveryHooks, log: Logger) {
    this.sink = sink;
    this.retry = retry;
    this.hooks = hooks;
    this.log = log;
  }

  get queued(): number {
    return this.queue.length;
  }

  enqueue(batch: Batch): void {
    this.queue.push(batch);
    if (this.idle) this.wakeUp?.();
  }

  /**
   * No more batches will come: deliver what is queued, but stop retrying at `deadline` (epoch ms);
   * what is undelivered then is simply not acknowledged.
   */
  close(deadline: number): void {
    this.closing = true;
    this.deadline = deadline;
    this.wakeUp?.();
  }

  /** Resolves once closed and drained (or past the deadline); rejects when a batch is given up. */
  async run(): Promise<void> {
    for (;;) {
      const batch = this.queue[0];
      if (batch === undefined) {
        if (this.closing) return;
        await this.pause(Number.POSITIVE_INFINITY, true);
        continue;
      }
      if (!(await this.deliver(batch))) return;
      this.queue.shift();
    }
  }

  /** True once acknowledged; false when closing and past the deadline. */
  private async deliver(batch: Batch): Promise<boolean> {
    let backoff = this.retry.initialBackoff;
    let firstFailure: number | undefined;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        await this.sink.send(batch.records);
        this.hooks.acked(batch, (performance.now() - started) / 1000);
        if (firstFailure !== undefined)
          this.log.info({ attempt, sink: this.sink.name }, 'log sink accepts again');
        return true;
      } catch (e) {
        const err = e instanceof NodewardError ? e : asNodewardError(e);
        const now = Date.now();
        firstFailure ??= now;
        if (this.closing && now >= this.deadline) return false;
        if (now - firstFailure >= this.retry.giveUpAfter) {
          throw new NodewardError(
            'SINK_UNAVAILABLE',
            `${this.sink.name} sink failed for ${now - firstFailure} ms (${attempt} attempts): ${err.message}`,
            { cause: err, details: { ...err.details, attempts: attempt } },
          );
        }
        // Jitter keeps many agents from retrying against a recovering broker in step.
        const wait = Math.round(backoff / 2 + (Math.random() * backoff) / 2);
        this.hooks.failed(err, attempt, wait);
        backoff = Math.min(backoff * 2, this.retry.maxBackoff);
        await this.pause(Math.min(now + wait, this.deadline), false);
        if (this.closing && Date.now() >= this.deadline) return false;
      }
    }
  }

  /** Sleeps until `until` (epoch ms) or close(), or a new batch when `idle`. */
  private pause(until: number, idle: boolean): Promise<void> {
    this.idle = idle;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        this.idle = false;
        resolve();
      };
      const timer = Number.isFinite(until) ? setTimeout(done, Math.max(0, until - Date.now())) : undefined;
      this.wakeUp = done;
    });
  }
}
