import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logsSchema } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/logger.ts';
import { Lab, skipReason } from '../../test/lab/index.ts';
import { type KafkaTls, startKafkaTls } from '../../test/lab/kafka-tls.ts';
import { sameValues, sendOnce } from '../../test/support/log-shipper/harness.ts';
import { createSink, reasonOf } from './index.ts';

/**
 * logs.kafka.tls with each client against a real TLS handshake: librdkafka's mock broker behind a
 * TLS front-end at the address it advertises (test/lab/kafka-tls.ts). Records are read back over
 * TLS by kcat. SASL cannot be tested here: the mock broker answers no SaslHandshake.
 */

const skip = skipReason({ binaries: ['kcat', 'ip', 'openssl'], root: true });
if (skip) console.warn(`Kafka TLS tests skipped: ${skip}`);

const lab = new Lab();
let kafka: KafkaTls;
beforeAll(async () => {
  if (!skip) kafka = await startKafkaTls({ lab });
});
afterAll(() => lab.cleanup());

const CLIENTS = ['kafkajs', 'platformatic'] as const;

function sinkFor(client: (typeof CLIENTS)[number], tls: Record<string, unknown>) {
  const options = logsSchema.parse({
    sink: 'kafka',
    kafka: { client, brokers: [kafka.broker], timeout: '5s', tls: { enabled: true, ...tls } },
  });
  return createSink(options, createLogger('silent'));
}

describe.skipIf(skip).each(CLIENTS)('Kafka over TLS via %s', (client) => {
  it('ships to a broker whose certificate the configured CA signed', async () => {
    const topic = `tls-${client}`;
    const sink = sinkFor(client, { caFile: kafka.caFile });
    const sent = Array.from({ length: 50 }, (_, i) => ({
      topic,
      key: `pod-${i % 3}`,
      value: Buffer.from(JSON.stringify({ message: `over tls ${i}` })),
    }));
    await sendOnce(sink, sent);
    sameValues(await kafka.readTopic(topic), sent);
  });

  it('refuses a broker certificate no trusted CA signed, unless told to skip verification', async () => {
    const untrusted = sinkFor(client, { caFile: '' });
    const failure = await (async () => {
      await untrusted.open();
      await untrusted.send([{ topic: `tls-refused-${client}`, key: 'k', value: Buffer.from('{}') }]);
    })().then(
      () => undefined,
      (err: unknown) => err,
    );
    await untrusted.close().catch(() => {});
    // Its own reason (the send-error metric's code label), and the handshake's words in the message.
    expect(reasonOf(failure)).toBe('tls');
    expect((failure as Error).message).toContain('self-signed certificate');

    const insecure = sinkFor(client, { caFile: '', insecureSkipVerify: true });
    await insecure.open();
    try {
      await insecure.send([{ topic: `tls-insecure-${client}`, key: 'k', value: Buffer.from('{"ok":1}') }]);
    } finally {
      await insecure.close();
    }
    expect((await kafka.readTopic(`tls-insecure-${client}`)).map((r) => r.value)).toEqual(['{"ok":1}']);
  });
});
