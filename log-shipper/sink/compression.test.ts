import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logsSchema } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/logger.ts';
import { type KafkaMock, Lab, skipReason, startKafka } from '../../test/lab/index.ts';
import { storedBatches } from '../../test/lab/kafka-batches.ts';
import { sameValues, sendOnce } from '../../test/support/log-shipper/harness.ts';
import { createSink } from './index.ts';
import type { SinkRecord } from './sink.ts';

/**
 * logs.kafka.compression with each client, against librdkafka's mock broker (one broker: the
 * leader of every partition): every record reads back intact through kcat (an independent
 * client that decompresses), and a raw Fetch shows the broker stored batches of that codec,
 * smaller than the records — so a client that silently sent them uncompressed would fail here.
 */

const skip = skipReason({ binaries: ['kcat'] });
if (skip) console.warn(`compression tests skipped: ${skip}`);

const lab = new Lab();
let kafka: KafkaMock;
beforeAll(async () => {
  if (!skip) kafka = await startKafka({ lab, brokers: 1 });
});
afterAll(() => lab.cleanup());

const CODECS = ['gzip', 'snappy', 'lz4', 'zstd', 'none'] as const;
const CLIENTS = ['kafkajs', 'platformatic'] as const;
/** The mock's auto-created topics have 4 partitions. */
const PARTITIONS = [0, 1, 2, 3];

function records(topic: string, n: number): SinkRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    topic,
    key: `pod-${i % 5}`,
    // Log lines compress well: most bytes repeat from one record to the next.
    value: Buffer.from(
      JSON.stringify({
        time: '2026-11-22T04:00:00.000000000Z',
        stream: 'stdout',
        message: `request ${i} served`,
        labels: { namespace: 'codecs', pod: `pod-${i % 5}` },
      }),
    ),
  }));
}

describe.skipIf(skip).each(CLIENTS)('Kafka batch compression via %s', (client) => {
  it.each(CODECS)('%s: records intact, batches stored with that codec', async (codec) => {
    const topic = `codec-${client}-${codec}`;
    const options = logsSchema.parse({
      sink: 'kafka',
      kafka: { client, brokers: kafka.brokers, compression: codec },
    });
    const sink = createSink(options, createLogger('silent'));
    const sent = records(topic, 2000);
    await sendOnce(sink, sent);

    sameValues(await kafka.readTopic(topic), sent);

    const batches = await storedBatches(kafka.brokers[0]!, topic, PARTITIONS);
    expect(batches.length).toBeGreaterThan(0);
    expect(new Set(batches.map((b) => b.codec))).toEqual(new Set([codec]));
    const stored = batches.reduce((n, b) => n + b.bytes, 0);
    const raw = sent.reduce((n, r) => n + r.value.length, 0);
    if (codec === 'none') expect(stored).toBeGreaterThan(raw);
    else expect(stored).toBeLessThan(raw / 3);
  });
});
