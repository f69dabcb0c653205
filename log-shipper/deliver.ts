import { asNodewardError, NodewardError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { Batch } from './batch.ts';
import { type Refusal, reasonOf, refusalOf, type Sink, type SinkRecord } from './sink/index.ts';

/**
 * Delivery: sends batches to the sink, up to logs.batch.inFlight at once, acknowledging them in
 * order, retrying a failed batch with capped exponential backoff and jitter. Only an acknowledged
 * batch moves checkpoints. A batch that cannot be delivered within giveUpAfter does not restart
 * the module (that would close the files being read, some already deleted or compressed away by
 * the kubelet): the sink is reopened, the module reported not ready, and retries go on.
 *
 * Errors are classified (sink.ts refusalOf): a refusal of one topic (not authorised, invalid,
 * unknown for longer than unknownTopicAfter) or of one record (too large) is isolated — the batch
 * is split by topic, then halved — so that the rest is delivered; what is refused goes to the
 * dead-letter topic, or is dropped, counted and logged. Anything else is retried whole.
 */

export interface RetryPolicy {
  initialBackoff: number;
  maxBackoff: number;
  giveUpAfter: number;
}

export interface DeliveryHooks {
  acked(batch: Batch, seconds: number): void;
  failed(err: NodewardError, attempt: number, retryInMs: number): void;
  /** A batch failed for giveUpAfter: the sink is reopened and retries go on. */
  stalled?(err: NodewardError, ms: number): void;
  /** The sink accepts again after stalled(). */
  resumed?(): void;
  /** Records refused for good: sent to the dead-letter topic, or dropped. */
  refused?(records: readonly SinkRecord[], reason: string, action: 'dead_letter' | 'dropped'): void;
}

/** Records still to send after an attempt, and the retriable failure that left them. */
interface Left {
  records: readonly SinkRecord[];
  err: NodewardError | undefined;
}

/** An unknown topic is normal for a moment (created on first produce); past this it is a refusal. */
const UNKNOWN_TOPIC_AFTER = 30_000;
/** Of a refused record, what the dead-letter envelope keeps. */
const DEAD_LETTER_HEAD = 1024;

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
  private readonly deadLetterTopic: string;
  /** A send of some batch is past giveUpAfter. */
  private stalled = false;
  private reopening: Promise<void> | undefined;

  constructor(
    sink: Sink,
    retry: RetryPolicy,
    hooks: DeliveryHooks,
    log: Logger,
    maxInFlight = 1,
    deadLetterTopic = '',
  ) {
    this.sink = sink;
    this.retry = retry;
    this.hooks = hooks;
    this.log = log;
    this.maxInFlight = Math.max(1, maxInFlight);
    this.deadLetterTopic = deadLetterTopic;
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
    let pending: readonly SinkRecord[] = batch.records;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        const persisted = firstFailure !== undefined && Date.now() - firstFailure >= UNKNOWN_TOPIC_AFTER;
        const left = await this.sendIsolating(pending, persisted);
        pending = left.records;
        if (left.err !== undefined) throw left.err;
        if (firstFailure !== undefined)
          this.log.info({ attempt, sink: this.sink.name }, 'log sink accepts again');
        if (this.stalled) {
          this.stalled = false;
          this.hooks.resumed?.();
        }
        return (performance.now() - started) / 1000;
      } catch (e) {
        const err = e instanceof NodewardError ? e : asNodewardError(e);
        const now = Date.now();
        firstFailure ??= now;
        if (this.closing && now >= this.deadline) return undefined;
        if (now - firstFailure >= this.retry.giveUpAfter && !this.stalled) {
          this.stalled = true;
          this.hooks.stalled?.(
            new NodewardError(
              'SINK_UNAVAILABLE',
              `${this.sink.name} sink failed for ${now - firstFailure} ms (${attempt} attempts): ${err.message}`,
              { cause: err, details: { ...err.details, attempts: attempt } },
            ),
            now - firstFailure,
          );
          // A client wedged in a bad state gets a new connection (what restarting the module did).
          await this.reopen();
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

  /**
   * Sends the records; on a refusal of a topic or a record, sends the rest without them. Returns
   * the records still to retry, and the retriable failure that left them.
   */
  private async sendIsolating(records: readonly SinkRecord[], persisted: boolean): Promise<Left> {
    try {
      await this.sink.send(records);
      return { records: [], err: undefined };
    } catch (e) {
      const err = e instanceof NodewardError ? e : asNodewardError(e);
      const refusal = refusalOf(err, persisted);
      if (refusal === undefined) return { records, err };
      return this.isolate(records, refusal, err, persisted);
    }
  }

  private async isolate(
    records: readonly SinkRecord[],
    refusal: Refusal,
    err: NodewardError,
    persisted: boolean,
  ): Promise<Left> {
    const byTopic = new Map<string, SinkRecord[]>();
    for (const r of records) {
      const list = byTopic.get(r.topic);
      if (list === undefined) byTopic.set(r.topic, [r]);
      else list.push(r);
    }
    let parts: SinkRecord[][];
    if (byTopic.size > 1) parts = [...byTopic.values()];
    else if (refusal === 'topic' || records.length === 1) {
      await this.refuse(records, refusal, reasonOf(err));
      return { records: [], err: undefined };
    } else {
      const half = Math.ceil(records.length / 2);
      parts = [records.slice(0, half), records.slice(half)];
    }
    const retry: SinkRecord[] = [];
    let last: NodewardError | undefined;
    for (const part of parts) {
      const left = await this.sendIsolating(part, persisted);
      retry.push(...left.records);
      last = left.err ?? last;
    }
    return { records: retry, err: last };
  }

  /** To the dead-letter topic if there is one (a refused record as an envelope: it would be refused again), else dropped. */
  private async refuse(records: readonly SinkRecord[], refusal: Refusal, reason: string): Promise<void> {
    if (this.deadLetterTopic !== '' && records[0]?.topic !== this.deadLetterTopic) {
      const letters = records.map((r) => ({
        topic: this.deadLetterTopic,
        key: r.key,
        value: refusal === 'topic' ? r.value : envelope(r, reason),
      }));
      try {
        await this.sink.send(letters);
        this.hooks.refused?.(records, reason, 'dead_letter');
        return;
      } catch (e) {
        this.log.warn(
          { err: e, topic: this.deadLetterTopic, code: 'SINK_UNAVAILABLE' },
          'dead-letter topic refused the records too; dropping them',
        );
      }
    }
    this.hooks.refused?.(records, reason, 'dropped');
  }

  private reopen(): Promise<void> {
    this.reopening ??= (async () => {
      await this.sink.close().catch(() => {});
      await this.sink
        .open()
        .catch((err: unknown) => this.log.debug({ err }, 'reopening the log sink failed'));
    })().finally(() => {
      this.reopening = undefined;
    });
    return this.reopening;
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

/** A refused record in the dead-letter topic: why, where it was going, its size and first bytes. */
function envelope(r: SinkRecord, reason: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      dead_letter: { reason, topic: r.topic, bytes: r.value.length },
      head: r.value.toString('utf8', 0, Math.min(r.value.length, DEAD_LETTER_HEAD)),
    }),
  );
}
