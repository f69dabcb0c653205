import { asNodewardError, NodewardError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { Batch } from './batch.ts';
import type { Sink } from './sink/index.ts';

/**
 * Delivery: sends batches to the sink, up to logs.batch.inFlight at once, acknowledging them in
 * order, retrying a failed batch with capped exponential backoff. Only an acknowledged batch moves checkpoints; a batch that cannot be
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
  private readonly maxInFlight: number;
  /** Handed to the sink, oldest first; acknowledged strictly in this order. */
  private readonly window: { batch: Batch; seconds: number | undefined; done: boolean }[] = [];
  private closing = false;
  private deadline = Number.POSITIVE_INFINITY;
  /** Wakes run(): a new batch, a finished send, close(). */
  private poke: (() => void) | undefined;
  /** Backoff waits of sends being retried: close() cuts them short. */
  private readonly sleepers = new Set<() => void>();

  constructor(sink: Sink, retry: RetryPolicy, hooks: DeliveryHooks, log: Logger, maxInFlight = 1) {
    this.sink = sink;
    this.retry = retry;
    this.hooks = hooks;
    this.log = log;
    this.maxInFlight = Math.max(1, maxInFlight);
  }

  /** Batches not acknowledged yet (queued or in flight). */
  get queued(): number {
    return this.queue.length + this.window.length;
  }

  enqueue(batch: Batch): void {
    this.queue.push(batch);
    this.poke?.();
  }

  /**
   * No more batches will come: deliver what is queued, but stop retrying at `deadline` (epoch ms);
   * what is undelivered then is simply not acknowledged.
   */
  close(deadline: number): void {
    this.closing = true;
    this.deadline = deadline;
    this.poke?.();
    for (const wake of this.sleepers) wake();
  }

  /**
   * Up to maxInFlight batches are sent at once; acknowledgements are applied in the order the
   * batches were made, so a checkpoint never passes a batch still unacknowledged. Resolves once
   * closed and drained (or past the deadline); rejects when a batch is given up.
   */
  async run(): Promise<void> {
    let failure: unknown;
    for (;;) {
      while (this.window.length < this.maxInFlight && this.queue.length > 0 && failure === undefined) {
        const slot = { batch: this.queue.shift()!, seconds: undefined as number | undefined, done: false };
        this.window.push(slot);
        this.deliver(slot.batch).then(
          (seconds) => {
            slot.seconds = seconds;
            slot.done = true;
            this.poke?.();
          },
          (err: unknown) => {
            failure ??= err;
            this.poke?.();
          },
        );
      }
      if (failure !== undefined) throw failure;
      let freed = false;
      while (this.window[0]?.done) {
        const slot = this.window.shift()!;
        // Abandoned at the close deadline: later batches must not be acknowledged past it.
        if (slot.seconds === undefined) return;
        this.hooks.acked(slot.batch, slot.seconds);
        freed = true;
      }
      if (freed) continue;
      if (this.closing && this.queue.length === 0 && this.window.length === 0) return;
      if (this.closing && Date.now() >= this.deadline && this.window.length === 0) return;
      await new Promise<void>((resolve) => {
        this.poke = () => {
          this.poke = undefined;
          resolve();
        };
      });
    }
  }

  /** Seconds to the acknowledgement; undefined when closing and past the deadline. */
  private async deliver(batch: Batch): Promise<number | undefined> {
    let backoff = this.retry.initialBackoff;
    let firstFailure: number | undefined;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        await this.sink.send(batch.records);
        if (firstFailure !== undefined)
          this.log.info({ attempt, sink: this.sink.name }, 'log sink accepts again');
        return (performance.now() - started) / 1000;
      } catch (e) {
        const err = e instanceof NodewardError ? e : asNodewardError(e);
        const now = Date.now();
        firstFailure ??= now;
        if (this.closing && now >= this.deadline) return undefined;
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
        await this.sleep(Math.min(now + wait, this.deadline));
        if (this.closing && Date.now() >= this.deadline) return undefined;
      }
    }
  }

  /** Until `until` (epoch ms) or close(). */
  private sleep(until: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, until - Date.now()));
      this.sleepers.add(done);
    });
  }
}
