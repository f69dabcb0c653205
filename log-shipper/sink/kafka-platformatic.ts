import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { MessageToProduce, Partitioner, Producer, SASLOptions } from '@platformatic/kafka';
import { NodewardError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { type KafkaSinkOptions, kafkaSecurity } from './kafka.ts';
import { isTlsFailure, type Sink, type SinkRecord, sinkError } from './sink.ts';

type Message = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;
type BufferProducer = Producer<Buffer, Buffer, Buffer, Buffer>;

/**
 * The Kafka error type behind a @platformatic/kafka error (UNKNOWN_TOPIC_OR_PARTITION, … from a
 * broker response, however deep in its MultipleErrors/cause chain), else the client's own code
 * without its prefix (NETWORK, TIMEOUT, USER, …).
 */
export function platformaticReason(err: unknown): string {
  if (isTlsFailure(err)) return 'tls';
  let fallback: string | undefined;
  const seen = new Set<unknown>();
  const visit = (e: unknown, depth: number): string | undefined => {
    if (!(e instanceof Error) || depth > 6 || seen.has(e)) return undefined;
    seen.add(e);
    const { apiId, code, errors, cause } = e as {
      apiId?: unknown;
      code?: unknown;
      errors?: unknown;
      cause?: unknown;
    };
    if (typeof apiId === 'string') return apiId;
    // The class's code first: a TimeoutError's instance code says NETWORK.
    const own = (e.constructor as { code?: unknown }).code ?? code;
    if (typeof own === 'string' && own.startsWith('PLT_KFK_') && own !== 'PLT_KFK_MULTIPLE')
      fallback ??= own.slice('PLT_KFK_'.length);
    for (const inner of Array.isArray(errors) ? errors : []) {
      const found = visit(inner, depth + 1);
      if (found !== undefined) return found;
    }
    return visit(cause, depth + 1);
  };
  const found = visit(err, 0);
  if (found !== undefined) return found;
  if (fallback !== undefined) return fallback;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? code.replace(/^PLT_KFK_/, '') : err.name || 'Error';
  }
  return 'unknown';
}

/**
 * The TLS and SASL options read by kafkaSecurity (kafkajs's shape: node TLS options as `ssl`,
 * lower-case mechanism) in @platformatic/kafka's shape (`tls`, upper-case mechanism).
 */
export function platformaticSecurity(security: Awaited<ReturnType<typeof kafkaSecurity>>): {
  tls?: TlsOptions;
  sasl?: SASLOptions;
} {
  const out: { tls?: TlsOptions; sasl?: SASLOptions } = {};
  if (security.ssl) out.tls = security.ssl as TlsOptions;
  if (security.sasl) {
    const { mechanism, username, password } = security.sasl as {
      mechanism: string;
      username: string;
      password: string;
    };
    out.sasl = { mechanism: mechanism.toUpperCase() as SASLOptions['mechanism'], username, password };
  }
  return out;
}

/** The error as a sink failure, its message ending with the first underlying cause ("metadata failed 2 times: connect ECONNREFUSED …"). */
function failure(err: unknown) {
  let leaf: unknown = err;
  for (let depth = 0; depth < 6 && leaf instanceof Error; depth++) {
    const { errors, cause } = leaf as { errors?: unknown; cause?: unknown };
    const next = Array.isArray(errors) && errors.length > 0 ? errors[0] : cause;
    if (!(next instanceof Error)) break;
    leaf = next;
  }
  const reason = platformaticReason(err);
  if (leaf === err || !(err instanceof Error) || !(leaf instanceof Error))
    return sinkError('kafka', reason, err);
  return sinkError(
    'kafka',
    reason,
    new Error(`${err.message.replace(/\.$/, '')}: ${leaf.message}`, { cause: err }),
  );
}

/**
 * murmur2 of the key, positive, like the Java client and kafkajs (the library's own default
 * partitioner skips the sign mask, so a key would land elsewhere than with kafkajs), remembered
 * per key: every line of a pod has the same key (the same Buffer, from the sink's key cache).
 */
export function cachedKeyPartitioner<K = Buffer, V = Buffer, HK = Buffer, HV = Buffer>(
  murmur2: (data: Buffer) => number,
): Partitioner<K, V, HK, HV> {
  const known = new Map<K, number>();
  return (message, key) => {
    const id = message.key;
    if (id === undefined || key === undefined) return 0;
    let p = known.get(id);
    if (p === undefined) {
      if (known.size >= 10_000) known.clear();
      p = murmur2(key) & 0x7fffffff;
      known.set(id, p);
    }
    return p;
  };
}

/**
 * @platformatic/kafka producer (logs.kafka.client: platformatic), the same contract as the kafkajs
 * sink: acks and compression per send, key = the record's key, not idempotent (the librdkafka mock
 * refuses idempotent producers, and the sender owns retries and order), one short retry inside the
 * client, `send` resolves once the brokers acknowledged every partition's batch. Loaded on open, so
 * the kafkajs default never pays for it.
 */
export function createPlatformaticKafkaSink(options: KafkaSinkOptions, log: Logger): Sink {
  const klog = log.child({ component: 'platformatic-kafka' });
  let producer: BufferProducer | undefined;
  /** A pod's key, encoded once: every line of a pod has it. */
  const keys = new Map<string, Buffer>();
  // The client has all five codecs built in (gzip and zstd from node:zlib, snappy and lz4 in wasm).
  const { compression } = options;
  return {
    name: 'kafka',
    async open() {
      const lib = await import('@platformatic/kafka').catch((err: unknown) => {
        // A bundle without the wasm-utils alias (README, Kafka) ends here: not a broker problem.
        throw new NodewardError(
          'INTERNAL',
          `cannot load @platformatic/kafka (logs.kafka.client: platformatic): ${(err as Error).message}`,
          { cause: err },
        );
      });
      const p: BufferProducer = new lib.Producer({
        clientId: options.clientId,
        bootstrapBrokers: options.brokers,
        // Keys and values are Buffers already (values: record.ts), passed as they are.
        idempotent: false,
        acks: options.acks,
        compression,
        autocreateTopics: true,
        partitioner: cachedKeyPartitioner((data) => lib.murmur2(data)),
        // The produce request's timeout (how long the leader waits for replicas) and the client's.
        timeout: options.timeout,
        requestTimeout: options.timeout,
        connectTimeout: Math.min(options.timeout, 10_000),
        retries: 1,
        retryDelay: 100,
        ...platformaticSecurity(await kafkaSecurity(options)),
      });
      try {
        // Connects to the bootstrap brokers now, as kafkajs's connect() does: a wrong address fails here.
        await p.metadata({ topics: [] });
      } catch (err) {
        await p.close(true).catch(() => {});
        throw failure(err);
      }
      producer = p;
    },
    async send(records: readonly SinkRecord[]) {
      if (records.length === 0) return;
      if (producer === undefined) throw sinkError('kafka', 'closed', new Error('producer is not connected'));
      const messages: Message[] = new Array(records.length);
      for (let i = 0; i < records.length; i++) {
        const r = records[i] as SinkRecord;
        let key = keys.get(r.key);
        if (key === undefined) {
          if (keys.size >= 10_000) keys.clear();
          key = Buffer.from(r.key);
          keys.set(r.key, key);
        }
        messages[i] = { topic: r.topic, key, value: r.value };
      }
      try {
        await producer.send({ messages, acks: options.acks, compression });
      } catch (err) {
        throw failure(err);
      }
    },
    async close() {
      const p = producer;
      producer = undefined;
      if (p === undefined) return;
      // A socket towards a hung broker whose receive window is full never finishes closing: the
      // shutdown does not wait for it longer than a request would (nothing unacknowledged is lost).
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), Math.min(options.timeout, 5000));
        timer.unref();
      });
      try {
        if ((await Promise.race([p.close(true), gaveUp])) === 'timeout')
          klog.warn(
            { timeoutMs: Math.min(options.timeout, 5000) },
            'the Kafka producer did not close in time',
          );
      } catch (err) {
        klog.warn({ err }, 'closing the Kafka producer failed');
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
