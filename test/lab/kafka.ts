import { readFile } from 'node:fs/promises';
import { runOk } from './exec.ts';
import { type Service, startService } from './proc.ts';
import type { Lab } from './scope.ts';
import { tempDir } from './tmp.ts';
import { waitFor } from './wait.ts';

export interface KafkaOptions {
  lab: Lab;
  brokers?: number;
}

export interface KafkaRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  timestamp: number;
}

export interface KafkaMock {
  /** host:port of each mock broker. */
  readonly brokers: string[];
  /** The same, comma-joined, as kcat and librdkafka want it. */
  readonly bootstrap: string;
  readonly service: Service;
  /** Every record of a topic, read by kcat: an independent client to check a producer against. */
  readTopic(topic: string, opts?: { timeoutMs?: number }): Promise<KafkaRecord[]>;
  stop(): Promise<void>;
}

/**
 * librdkafka's mock cluster, hosted by a kcat consumer that idles on a topic. Its brokers are real
 * implementations of the protocol (topics auto-create with 4 partitions, RF 3), but it trims a
 * partition past ≈ 5 MB of uncompressed data: a no-loss test must stay under that or compress.
 */
export async function startKafka(opts: KafkaOptions): Promise<KafkaMock> {
  // kafkajs prints a multi-line notice on every producer otherwise.
  process.env['KAFKAJS_NO_PARTITIONER_WARNING'] ??= '1';
  const dir = await tempDir('kafka', opts.lab);
  const service = startService({
    lab: opts.lab,
    name: 'kcat-mock',
    dir,
    command: 'kcat',
    // biome-ignore format: one flag and its value per line
    args: [
      '-b', '127.0.0.1:1',
      '-X', `test.mock.num.brokers=${opts.brokers ?? 3}`,
      '-C', '-t', 'keepalive', '-o', 'end', '-q',
    ],
  });
  // The mock picks its own ports and announces them once on stderr.
  const bootstrap = await waitFor(
    async () => /replaced with ([0-9.:,]+)/.exec(await readFile(service.logPath, 'utf8'))?.[1],
    { what: 'the kcat mock cluster to announce its brokers', timeoutMs: 10_000, services: [service] },
  );
  return {
    brokers: bootstrap.split(','),
    bootstrap,
    service,
    readTopic: (topic, readOpts) => readTopic(bootstrap, topic, readOpts?.timeoutMs),
    stop: async () => {
      await service.stop();
    },
  };
}

interface KcatEnvelope {
  topic: string;
  partition: number;
  offset: number;
  ts: number;
  key: string | null;
  payload: string | null;
}

async function readTopic(bootstrap: string, topic: string, timeoutMs = 20_000): Promise<KafkaRecord[]> {
  // -J wraps each record in a JSON envelope, so keys and values with any bytes parse unambiguously;
  // -e exits at the end of every partition.
  const out = await runOk('kcat', ['-C', '-b', bootstrap, '-t', topic, '-o', 'beginning', '-e', '-J', '-q'], {
    timeoutMs,
  });
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const e = JSON.parse(line) as KcatEnvelope;
      return {
        topic: e.topic,
        partition: e.partition,
        offset: e.offset,
        key: e.key,
        value: e.payload,
        timestamp: e.ts,
      };
    });
}
