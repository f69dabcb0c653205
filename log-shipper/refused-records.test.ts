import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/logger.ts';
import { Lab, skipReason, startKafka, tempDir, waitFor } from '../test/lab/index.ts';
import { criLine, fakeContainer, testConfig, writeLines } from '../test/support/log-shipper/harness.ts';
import { createLogsMetrics } from './metrics.ts';
import { runPipeline } from './pipeline.ts';
import { createSink, type Sink } from './sink/index.ts';
import { sinkError } from './sink/sink.ts';

/**
 * One namespace's topic is refused for good, and one record is too large, while the other
 * namespaces' records keep flowing. The librdkafka mock refuses neither (it creates any topic and
 * takes records of any size: tried), so the refusal is injected at the client boundary, as the
 * clients report a broker's: the whole mixed batch fails with the Kafka error type.
 */

const skip = skipReason({ binaries: ['kcat'] });
if (skip) console.warn(`refused records tests skipped: ${skip}`);

const lab = new Lab();
afterEach(() => lab.cleanup());

const DENIED = 'logs.denied';
const DEAD_LETTER = 'logs.dead-letter';
const MAX_RECORD = 20 * 1024;

/** The real Kafka sink, refusing as a broker would: a topic not authorised, a record over its limit. */
function refusingSink(inner: Sink): Sink {
  return {
    name: inner.name,
    open: () => inner.open(),
    close: () => inner.close(),
    async send(records) {
      if (records.some((r) => r.topic === DENIED))
        throw sinkError('kafka', 'TOPIC_AUTHORIZATION_FAILED', new Error('Not authorized to access topics'));
      if (records.some((r) => r.value.length > MAX_RECORD))
        throw sinkError(
          'kafka',
          'MESSAGE_TOO_LARGE',
          new Error('The request included a message larger than the max message size'),
        );
      await inner.send(records);
    },
  };
}

describe.skipIf(skip)('log shipper: one bad topic or record stops nothing else', () => {
  it('delivers the other namespaces while one topic is refused and one record is too large; the refused go to the dead-letter topic, counted', async () => {
    const kafka = await startKafka({ lab });
    const dir = await tempDir('logs-refused', lab);
    const root = join(dir, 'containers');
    mkdirSync(root, { recursive: true });
    const config = testConfig({
      node: { name: 'node-r' },
      dataDir: join(dir, 'data'),
      logs: {
        root,
        sink: 'kafka',
        pollInterval: '50ms',
        checkpointInterval: '100ms',
        batch: { wait: '20ms' },
        // Two minutes: the good records must not wait for any give-up.
        retry: { initialBackoff: '50ms', maxBackoff: '500ms', giveUpAfter: '2m' },
        kafka: { brokers: kafka.brokers, topic: 'logs.{namespace}', deadLetterTopic: DEAD_LETTER },
      },
    });
    const log = createLogger('silent');
    const metrics = createLogsMetrics(new Registry());
    const shop = fakeContainer(root, join(dir, 'pods'), 'shop', 'web-1', 'app');
    const denied = fakeContainer(root, join(dir, 'pods'), 'denied', 'job-1', 'worker');
    writeLines(shop.file, 'shop', 0, 100);
    writeLines(denied.file, 'denied', 0, 50);
    appendFileSync(shop.file, criLine(`huge ${'h'.repeat(30 * 1024)}`));
    writeLines(shop.file, 'shop', 100, 200);

    const abort = new AbortController();
    const done = runPipeline(
      { node: config.node.name, dataDir: config.dataDir, logs: config.logs, pods: config.pods },
      {
        log,
        metrics,
        signal: abort.signal,
        setReady: () => {},
        sink: refusingSink(createSink(config.logs, log)),
      },
    );
    done.catch(() => {});
    lab.defer('stop the pipeline', async () => {
      abort.abort();
      await done.catch(() => {});
    });

    const messages = async (topic: string) =>
      (await kafka.readTopic(topic, { timeoutMs: 10_000 }).catch(() => [])).map(
        (r) => JSON.parse(r.value ?? 'null') as { message?: string; dead_letter?: { reason: string } },
      );
    const good = await waitFor(
      async () => ((await messages('logs.shop')).length >= 200 ? messages('logs.shop') : undefined),
      {
        what: 'the 200 shop lines',
        timeoutMs: 20_000,
        intervalMs: 500,
      },
    );
    expect(good.map((r) => r.message).sort()).toEqual(
      Array.from({ length: 200 }, (_, i) => `shop-${i}`).sort(),
    );
    const dead = await waitFor(
      async () => {
        const got = await messages(DEAD_LETTER);
        return got.length >= 51 ? got : undefined;
      },
      { what: 'the refused records on the dead-letter topic', timeoutMs: 10_000, intervalMs: 500 },
    );
    expect(dead.filter((r) => r.message?.startsWith('denied-')).length).toBe(50);
    expect(dead.filter((r) => r.dead_letter?.reason === 'MESSAGE_TOO_LARGE')).toHaveLength(1);
    const refused = (await metrics.recordsRefused.get()).values.map((v) => ({ ...v.labels, n: v.value }));
    expect(refused).toEqual(
      expect.arrayContaining([
        { namespace: 'denied', reason: 'TOPIC_AUTHORIZATION_FAILED', action: 'dead_letter', n: 50 },
        { namespace: 'shop', reason: 'MESSAGE_TOO_LARGE', action: 'dead_letter', n: 1 },
      ]),
    );
    abort.abort();
    await done;
  });
});
