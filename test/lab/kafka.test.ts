import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { skipReason } from './bin.ts';
import { startKafka } from './kafka.ts';
import { Lab } from './scope.ts';
import { waitFor } from './wait.ts';

const reason = skipReason({ binaries: ['kcat'] });
if (reason) console.warn(`[lab] kafka tests skipped: ${reason} (install kcat)`);

interface Seen {
  partition: number;
  key: string | null;
  value: string | null;
}

const byPosition = (a: Seen & { offset: number }, b: Seen & { offset: number }) =>
  a.partition - b.partition || a.offset - b.offset;

describe('kafka lab', () => {
  const lab = new Lab();
  afterAll(() => lab.cleanup());

  it.skipIf(reason)('kafkajs writes (acks -1, gzip) are read back alike by kafkajs and by kcat', async () => {
    const kafka = await startKafka({ lab, brokers: 3 });
    expect(kafka.brokers).toHaveLength(3);
    const client = new Kafka({ clientId: 'lab-smoke', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
    const topic = 'lab-smoke';
    const sent = Array.from({ length: 200 }, (_, i) => ({ key: `k${i % 7}`, value: `value-${i}` }));

    const producer = client.producer();
    await producer.connect();
    lab.defer('kafkajs producer', () => producer.disconnect());
    await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: sent });

    const viaKcat = await kafka.readTopic(topic);

    // A short session keeps the mock from holding a departed member ≈ 30 s; a short fetch wait
    // lets disconnect() return at once instead of after a 5 s long poll. (The group's first join
    // still takes ≈ 3 s: the mock coordinator waits that long for more members.)
    const consumer = client.consumer({
      groupId: 'lab-smoke',
      sessionTimeout: 6000,
      heartbeatInterval: 500,
      maxWaitTimeInMs: 100,
    });
    await consumer.connect();
    lab.defer('kafkajs consumer', () => consumer.disconnect());
    await consumer.subscribe({ topic, fromBeginning: true });
    const viaKafkajs: (Seen & { offset: number })[] = [];
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        viaKafkajs.push({
          partition,
          offset: Number(message.offset),
          key: message.key?.toString() ?? null,
          value: message.value?.toString() ?? null,
        });
      },
    });
    await waitFor(() => viaKafkajs.length >= sent.length, {
      what: `kafkajs to consume ${sent.length} records`,
      timeoutMs: 30_000,
      services: [kafka.service],
    });
    await consumer.disconnect();

    const strip = ({ partition, key, value }: Seen) => ({ partition, key, value });
    expect(viaKafkajs.sort(byPosition).map(strip)).toEqual(viaKcat.sort(byPosition).map(strip));
    const sortKV = (xs: { key: string | null; value: string | null }[]) =>
      xs.map((x) => `${x.key}=${x.value}`).sort();
    expect(sortKV(viaKcat)).toEqual(sortKV(sent));
    // Same key, same partition: the keyed partitioner is what ordering per pod rests on.
    const partitionOf = new Map<string | null, Set<number>>();
    for (const r of viaKcat) partitionOf.set(r.key, (partitionOf.get(r.key) ?? new Set()).add(r.partition));
    for (const partitions of partitionOf.values()) expect(partitions.size).toBe(1);
  });
});
