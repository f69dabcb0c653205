import { describe, expect, it } from 'vitest';
import { NodewardError } from '../shared/errors.ts';
import { createLogger } from '../shared/logger.ts';
import { Batch } from './batch.ts';
import { Sender } from './deliver.ts';
import type { Sink, SinkRecord } from './sink/index.ts';

/**
 * The sender's ordering rule with several batches in flight. The sink here completes sends in an
 * order the test chooses — no real broker can be made to answer out of order on demand; the Kafka
 * tests cover the same code against the mock broker.
 */

function batch(name: string): Batch {
  const b = new Batch();
  b.records.push({ topic: 't', key: 'k', value: Buffer.from(name) });
  return b;
}

interface Pending {
  name: string;
  resolve(): void;
  reject(err: Error): void;
}

function controlledSink(): { sink: Sink; pending: Pending[] } {
  const pending: Pending[] = [];
  const sink: Sink = {
    name: 'kafka',
    open: async () => {},
    close: async () => {},
    send: (records: readonly SinkRecord[]) =>
      new Promise<void>((resolve, reject) =>
        pending.push({ name: records[0]!.value.toString(), resolve, reject }),
      ),
  };
  return { sink, pending };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('sender with batches in flight', () => {
  it('sends up to inFlight at once and acknowledges strictly in order, holding later acks behind a retried batch', async () => {
    const { sink, pending } = controlledSink();
    const acked: string[] = [];
    const sender = new Sender(
      sink,
      { initialBackoff: 10, maxBackoff: 10, giveUpAfter: 60_000 },
      { acked: (b) => acked.push(b.records[0]!.value.toString()), failed: () => {} },
      createLogger('silent'),
      3,
    );
    const running = sender.run();
    for (const name of ['a', 'b', 'c', 'd']) sender.enqueue(batch(name));
    await tick();
    expect(pending.map((p) => p.name)).toEqual(['a', 'b', 'c']);
    // c and b answer first: nothing is acknowledged before a.
    pending[2]!.resolve();
    pending[1]!.resolve();
    await tick();
    expect(acked).toEqual([]);
    // a fails once and is retried after b and c were delivered (the documented reordering).
    pending[0]!.reject(new NodewardError('SINK_UNAVAILABLE', 'down'));
    await tick();
    await tick();
    expect(acked).toEqual([]);
    // The retry comes after a 10 ms backoff: wait for it rather than for a fixed number of ticks.
    for (let i = 0; i < 400 && !pending.some((p, j) => j > 2 && p.name === 'a'); i++) await tick();
    const retry = pending.find((p, i) => i > 2 && p.name === 'a');
    expect(retry).toBeDefined();
    retry!.resolve();
    await tick();
    expect(acked).toEqual(['a', 'b', 'c']);
    // d went out once a's slot was free.
    pending.find((p) => p.name === 'd')!.resolve();
    sender.close(Date.now() + 1000);
    await running;
    expect(acked).toEqual(['a', 'b', 'c', 'd']);
    expect(sender.queued).toBe(0);
  });

  it('at the close deadline, acknowledges nothing after a batch left undelivered', async () => {
    const { sink, pending } = controlledSink();
    const acked: string[] = [];
    const sender = new Sender(
      sink,
      { initialBackoff: 1000, maxBackoff: 1000, giveUpAfter: 60_000 },
      { acked: (b) => acked.push(b.records[0]!.value.toString()), failed: () => {} },
      createLogger('silent'),
      2,
    );
    const running = sender.run();
    sender.enqueue(batch('a'));
    sender.enqueue(batch('b'));
    await tick();
    pending[1]!.resolve();
    pending[0]!.reject(new NodewardError('SINK_UNAVAILABLE', 'down'));
    await tick();
    sender.close(Date.now() + 20);
    // close() cut the backoff short: a is tried again; that attempt fails past the deadline.
    await tick();
    await new Promise((r) => setTimeout(r, 20));
    const again = pending.filter((p) => p.name === 'a');
    expect(again.length).toBe(2);
    again[1]!.reject(new NodewardError('SINK_UNAVAILABLE', 'still down'));
    await running;
    expect(acked).toEqual([]);
  });
});
