import { readFile } from 'node:fs/promises';
import {
  CompressionTypes,
  type ICustomPartitioner,
  Kafka,
  type KafkaConfig,
  logLevel,
  type Message,
  Partitioners,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import type { KafkaCompression } from '../../shared/config/index.ts';
import { NodewardError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { kafkajsCompression } from './codecs.ts';
import { isTlsFailure, type Sink, type SinkRecord, sinkError } from './sink.ts';

export interface KafkaSinkOptions {
  /** The client library: kafkajs (this file) or platformatic (kafka-platformatic.ts). */
  client: 'kafkajs' | 'platformatic';
  brokers: string[];
  clientId: string;
  acks: -1 | 1;
  compression: KafkaCompression;
  /** Request timeout, and how long the leader may wait for its replicas. */
  timeout: number;
  tls: {
    enabled: boolean;
    caFile: string;
    certFile: string;
    keyFile: string;
    serverName: string;
    insecureSkipVerify: boolean;
  };
  sasl: {
    mechanism: 'none' | 'plain' | 'scram-sha-256' | 'scram-sha-512';
    username: string;
    passwordFile: string;
  };
}

async function readSecret(key: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new NodewardError('IO', `cannot read ${key} ${file}: ${(err as Error).message}`, {
      cause: err,
      details: { key, file },
    });
  }
}

/** The TLS and SASL part of the kafkajs client config, files read now (at each open: rotated secrets apply on restart). */
export async function kafkaSecurity(
  options: Pick<KafkaSinkOptions, 'tls' | 'sasl'>,
): Promise<Pick<KafkaConfig, 'ssl' | 'sasl'>> {
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  const { tls, sasl } = options;
  if (tls.enabled) {
    out.ssl = {
      rejectUnauthorized: !tls.insecureSkipVerify,
      ...(tls.caFile ? { ca: [await readSecret('logs.kafka.tls.caFile', tls.caFile)] } : {}),
      ...(tls.certFile ? { cert: await readSecret('logs.kafka.tls.certFile', tls.certFile) } : {}),
      ...(tls.keyFile ? { key: await readSecret('logs.kafka.tls.keyFile', tls.keyFile) } : {}),
      ...(tls.serverName ? { servername: tls.serverName } : {}),
    };
  }
  if (sasl.mechanism !== 'none') {
    // A trailing newline is how Secrets written by hand usually end; it is not part of the password.
    const password = (await readSecret('logs.kafka.sasl.passwordFile', sasl.passwordFile)).replace(
      /\r?\n$/,
      '',
    );
    out.sasl = { mechanism: sasl.mechanism, username: sasl.username, password } as SASLOptions;
  }
  return out;
}

/** The Kafka error type (UNKNOWN_TOPIC_OR_PARTITION, …) or the kafkajs error class under retries. */
function kafkaReason(err: unknown): string {
  if (isTlsFailure(err)) return 'tls';
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    const { type, originalError } = e as { type?: unknown; originalError?: unknown };
    if (typeof type === 'string') return type;
    if (originalError instanceof Error) {
      e = originalError;
      continue;
    }
    return e.name.replace(/^KafkaJS/, '') || 'Error';
  }
  return 'unknown';
}

/**
 * kafkajs's default partitioner (murmur2 like the Java client: a key lands on the same partition
 * whoever produces it), remembered per key: every line of a pod has the same key, and hashing it
 * per message was a sixth of the producer's time.
 */
const cachedKeyPartitioner: ICustomPartitioner = () => {
  const partition = Partitioners.DefaultPartitioner();
  const known = new Map<string, number>();
  return (args) => {
    const key = args.message.key;
    if (typeof key !== 'string' || args.message.partition != null) return partition(args);
    const id = `${args.topic}\0${args.partitionMetadata.length}\0${key}`;
    let p = known.get(id);
    if (p === undefined) {
      if (known.size >= 10_000) known.clear();
      p = partition(args);
      known.set(id, p);
    }
    return p;
  };
};

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'warn', // every failed send is also reported, with its code, by the sender
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'debug',
  [logLevel.DEBUG]: 'debug',
};

/**
 * kafkajs producer with sendBatch. Its own retries are kept short: the sender's backoff owns the
 * long waits, counts the failures and holds the checkpoints back meanwhile.
 */
export function createKafkaSink(options: KafkaSinkOptions, log: Logger): Sink {
  const klog = log.child({ component: 'kafkajs' });
  const client = (security: Pick<KafkaConfig, 'ssl' | 'sasl'>) =>
    new Kafka({
      ...security,
      clientId: options.clientId,
      brokers: options.brokers,
      connectionTimeout: Math.min(options.timeout, 10_000),
      requestTimeout: options.timeout,
      retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 1000 },
      logLevel: logLevel.WARN,
      logCreator:
        () =>
        ({ level, log: { message, timestamp: _t, ...extra } }) =>
          klog[LEVELS[level] ?? 'debug'](extra, message),
    });
  let producer: Producer | undefined;
  let compression = CompressionTypes.None;
  return {
    name: 'kafka',
    async open() {
      compression = await kafkajsCompression(options.compression);
      const kafka = client(await kafkaSecurity(options));
      const p = kafka.producer({
        allowAutoTopicCreation: true,
        idempotent: false,
        createPartitioner: cachedKeyPartitioner,
      });
      try {
        await p.connect();
      } catch (err) {
        throw sinkError('kafka', kafkaReason(err), err);
      }
      producer = p;
    },
    async send(records: readonly SinkRecord[]) {
      if (records.length === 0) return;
      if (producer === undefined) throw sinkError('kafka', 'closed', new Error('producer is not connected'));
      const byTopic = new Map<string, Message[]>();
      for (const r of records) {
        let messages = byTopic.get(r.topic);
        if (messages === undefined) {
          messages = [];
          byTopic.set(r.topic, messages);
        }
        messages.push({ key: r.key, value: r.value });
      }
      try {
        await producer.sendBatch({
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
          acks: options.acks,
          timeout: options.timeout,
          compression,
        });
      } catch (err) {
        throw sinkError('kafka', kafkaReason(err), err);
      }
    },
    async close() {
      const p = producer;
      producer = undefined;
      await p?.disconnect();
    },
  };
}
