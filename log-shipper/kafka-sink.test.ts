import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/logger.ts';
import {
  type KafkaMock,
  type KafkaRecord,
  Lab,
  skipReason,
  startKafka,
  tempDir,
  waitFor,
} from '../test/lab/index.ts';
import { fakeContainer, startRun, testConfig, writeLines } from '../test/support/log-shipper/harness.ts';
import { createLogsModule } from './index.ts';
import { checkpointPath } from './pipeline.ts';
import type { LogRecord } from './record.ts';

const skip = skipReason({ binaries: ['kcat'] });
if (skip) console.warn(`kafka sink tests skipped: ${skip}`);

const lab = new Lab();
afterEach(() => lab.cleanup());

/** Every test runs with each Kafka client library behind the sink (logs.kafka.client). */
const CLIENTS = ['kafkajs', 'platformatic'] as const;
type Client = (typeof CLIENTS)[number];

async function setup(
  client: Client,
  overrides: { timeout?: string; giveUpAfter?: string; maxInflightBytes?: string } = {},
) {
  const kafka = await startKafka({ lab });
  const dir = await tempDir('logs-kafka', lab);
  const root = join(dir, 'containers');
  const pods = join(dir, 'pods');
  mkdirSync(root, { recursive: true });
  const config = testConfig({
    node: { name: 'node-k' },
    dataDir: join(dir, 'data'),
    logs: {
      root,
      sink: 'kafka',
      pollInterval: '50ms',
      checkpointInterval: '100ms',
      maxInflightBytes: overrides.maxInflightBytes ?? '16MiB',
      batch: { wait: '20ms', maxBytes: '64KiB' },
      retry: { initialBackoff: '50ms', maxBackoff: '500ms', giveUpAfter: overrides.giveUpAfter ?? '2m' },
      kafka: {
        client,
        brokers: kafka.brokers,
        topic: 'logs.{namespace}',
        timeout: overrides.timeout ?? '5s',
      },
    },
  });
  const module = createLogsModule({
    config,
    log: createLogger((process.env['LOGLEVEL'] ?? 'silent') as 'silent'),
  });
  return { kafka, root, pods, config, module };
}

async function records(kafka: KafkaMock, topic: string): Promise<(KafkaRecord & { record: LogRecord })[]> {
  try {
    const got = await kafka.readTopic(topic, { timeoutMs: 10_000 });
    return got.map((r) => ({ ...r, record: JSON.parse(r.value ?? 'null') as LogRecord }));
  } catch {
    return []; // not created yet
  }
}

function savedOffsets(dataDir: string): Map<string, number> {
  const saved = JSON.parse(readFileSync(checkpointPath(dataDir), 'utf8')) as {
    files: { realPath: string; offset: number }[];
  };
  return new Map(saved.files.map((f) => [f.realPath, f.offset]));
}

const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe.skipIf(skip).each(CLIENTS)(
  'log shipper → kafka via %s (librdkafka mock cluster, read back with kcat)',
  (client) => {
    it('ships to the namespace topic, keyed by pod uid, a pod in order on one partition', async () => {
      const { kafka, root, pods, module } = await setup(client);
      const a = fakeContainer(root, pods, 'shop', 'web-1', 'nginx');
      const b = fakeContainer(root, pods, 'shop', 'web-2', 'nginx');
      const c = fakeContainer(root, pods, 'billing', 'job-1', 'run');
      writeLines(a.file, 'a', 0, 300);
      const run = startRun(module, lab);
      await run.ready;
      writeLines(b.file, 'b', 0, 300);
      writeLines(c.file, 'c', 0, 100);
      const atLeast = async (topic: string, n: number) => {
        const got = await records(kafka, topic);
        return got.length >= n ? got : undefined;
      };
      const shop = await waitFor(() => atLeast('logs.shop', 600), {
        what: '600 records on logs.shop',
        timeoutMs: 20_000,
      });
      const billing = await waitFor(() => atLeast('logs.billing', 100), {
        what: '100 records on logs.billing',
      });
      await run.stop();

      expect(shop.map((r) => r.record.message).sort()).toEqual(
        [...range('a', 300), ...range('b', 300)].sort(),
      );
      expect(billing.map((r) => r.record.message).sort()).toEqual(range('c', 100).sort());
      for (const pod of [a, b]) {
        const mine = shop.filter((r) => r.record.labels.pod === pod.pod);
        expect(new Set(mine.map((r) => r.key))).toEqual(new Set([pod.uid]));
        expect(new Set(mine.map((r) => r.partition)).size).toBe(1);
        const seq = mine
          .sort((x, y) => x.offset - y.offset)
          .map((r) => Number(r.record.message.split('-')[1]));
        expect(seq).toEqual([...seq].sort((x, y) => x - y));
      }
      expect(billing[0]?.record.labels).toMatchObject({
        node: 'node-k',
        namespace: 'billing',
        pod_uid: c.uid,
      });
    });

    it('holds checkpoints while Kafka is stopped, pauses reading, recovers, outlasts giveUpAfter without a restart, and loses nothing', async () => {
      const { kafka, root, pods, config, module } = await setup(client, {
        timeout: '500ms',
        giveUpAfter: '3s',
        maxInflightBytes: '256KiB',
      });
      const a = fakeContainer(root, pods, 'shop', 'web-1', 'nginx');
      writeLines(a.file, 'a', 0, 100);
      const size1 = readFileSync(a.file).length;
      const run1 = startRun(module, lab);
      await run1.ready;
      await waitFor(async () => (await records(kafka, 'logs.shop')).length >= 100, {
        what: 'the first 100 lines',
      });
      await waitFor(() => savedOffsets(config.dataDir).get(a.file) === size1, {
        what: 'the first checkpoint',
      });

      // SIGSTOP: the broker keeps its connections open and answers nothing, like a hung machine.
      const broker = kafka.service.pid;
      let stopped = false;
      const pause = () => {
        process.kill(broker, 'SIGSTOP');
        stopped = true;
      };
      const resume = () => {
        process.kill(broker, 'SIGCONT');
        stopped = false;
      };
      lab.defer('resume the mock broker', () => {
        if (stopped) resume();
      });

      // 1. A short outage within giveUpAfter: reading pauses at the in-flight cap, checkpoints hold,
      //    and the same run delivers everything once the broker answers again.
      pause();
      writeLines(a.file, 'a', 100, 8100);
      const size2 = readFileSync(a.file).length;
      await waitFor(
        async () => /nodeward_logs_sink_errors_total\{[^}]*\} [1-9]/.test(await module.registry.metrics()),
        {
          what: 'a failed send',
        },
      );
      const during = await module.registry.metrics();
      const bytesRead = Number(/nodeward_logs_bytes_read_total\{namespace="shop"\} (\d+)/.exec(during)?.[1]);
      const inflight = Number(/nodeward_logs_inflight_bytes (\d+)/.exec(during)?.[1]);
      // In flight: the cap, plus the record that crossed it. Read ahead: at most one read buffer.
      expect(inflight).toBeGreaterThan(0);
      expect(inflight).toBeLessThan(256 * 1024 + 4096);
      expect(bytesRead - size1).toBeLessThanOrEqual(256 * 1024);
      expect(size2 - size1).toBeGreaterThan(256 * 1024);
      expect(savedOffsets(config.dataDir).get(a.file)).toBe(size1);
      resume();
      await waitFor(() => savedOffsets(config.dataDir).get(a.file) === size2, {
        what: 'every line of the outage to be acknowledged',
        timeoutMs: 20_000,
      });

      // 2. An outage longer than giveUpAfter (3 s): the run goes on (no module restart: the files
      //    being read stay open), checkpoints hold, and it delivers once the broker is back.
      pause();
      writeLines(a.file, 'a', 8100, 8200);
      let ended = false;
      void run1.done.then(
        () => (ended = true),
        () => (ended = true),
      );
      await new Promise((r) => setTimeout(r, 4500));
      expect(ended).toBe(false);
      expect(savedOffsets(config.dataDir).get(a.file)).toBe(size2);
      resume();
      writeLines(a.file, 'a', 8200, 8250);
      const size3 = readFileSync(a.file).length;
      const shop = await waitFor(
        async () => {
          const got = await records(kafka, 'logs.shop');
          const seen = new Set(got.map((r) => r.record.message));
          return range('a', 8250).every((m) => seen.has(m)) ? got : undefined;
        },
        { what: 'all 8250 lines after Kafka came back', timeoutMs: 20_000 },
      );
      await waitFor(() => savedOffsets(config.dataDir).get(a.file) === size3, {
        what: 'the checkpoint to catch up',
      });
      await run1.stop();
      // At-least-once: a batch the stopped broker received but never acknowledged appears again;
      // lines acknowledged before an outage never do.
      const count = new Map<string, number>();
      for (const r of shop) count.set(r.record.message, (count.get(r.record.message) ?? 0) + 1);
      expect(range('a', 100).filter((m) => count.get(m) !== 1)).toEqual([]);
      console.info(
        `kafka outages (${client}): ${shop.length - 8250} duplicate records of ${8250 - 100} lines sent during them`,
      );
    });
  },
);
