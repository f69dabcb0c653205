import zlib from 'node:zlib';
import { z } from 'zod';
import { duration, hostPort, shown, size } from './units.ts';

const SINKS = ['file', 'stdout', 'kafka'] as const;
/** Labels a Kafka topic template may name, as `{namespace}`. */
export const TOPIC_PLACEHOLDERS = ['namespace', 'pod', 'container', 'node'] as const;

export const KAFKA_COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type KafkaCompression = (typeof KAFKA_COMPRESSIONS)[number];

/** zstd is in node:zlib from Node 22.15 / 23.8: say so on an older runtime rather than fail at the first send. */
const zstdAvailable = typeof (zlib as { zstdCompress?: unknown }).zstdCompress === 'function';
const compression = () =>
  z.enum(KAFKA_COMPRESSIONS).refine((value) => value !== 'zstd' || zstdAvailable, {
    message: `zstd needs node:zlib zstd (Node >= 22.15), this is Node ${process.versions.node}`,
  });

/** The `logs` section: the log shipper (log-shipper/). */
export const logsSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Ship container log lines.'),
    root: z
      .string()
      .min(1)
      .default('.nodeward/containers')
      .describe('Directory of container log files (/var/log/containers on a node); created if missing.'),
    sink: z
      .enum(SINKS)
      .default('file')
      .describe('Where lines go: file (logs.file.path), stdout, or kafka (logs.kafka).'),
    readFrom: z
      .enum(['beginning', 'end'])
      .default('beginning')
      .describe(
        'Where to start in files that already exist at the very first start (no checkpoint file at all under dataDir); files that appear later, also while the module was down, are always read from the beginning.',
      ),
    maxLineBytes: size()
      .prefault('64KiB')
      .describe(
        'Longest message shipped as one record; longer lines (and merged partial lines) are split into records flagged truncated.',
      ),
    maxInflightBytes: size()
      .prefault('2MiB')
      .describe(
        'Bytes read but not yet acknowledged by the sink; at this cap tailers pause and the files keep the data. Four default batches: enough to keep the sink busy (measured: 4MiB shipped no faster and peaked ≈ 90 MiB higher in RSS).',
      ),
    pollInterval: duration()
      .prefault('1s')
      .describe(
        'How often an idle file is checked for growth, rotation and truncation; watch events wake it sooner.',
      ),
    rescanInterval: duration()
      .prefault('10s')
      .describe('Full rescan of logs.root, a safety net for missed watch events.'),
    rotateWait: duration()
      .prefault('5s')
      .describe(
        'How long a renamed (rotated) file keeps being read after it last grew, before it is closed.',
      ),
    unknownPodWait: duration()
      .prefault('10s')
      .describe(
        'A file of a pod the pod metadata does not know yet is left unread (its lines wait on disk) until the pod is known, for at most this long: its rules (exclusion, rate limit, multi-line) and workload labels then apply from its first line. After it, or at once while the pod source fails (kubelet or API server unreachable), its lines are shipped with the labels of the file name. 0: no wait.',
      ),
    checkpointInterval: duration()
      .prefault('1s')
      .describe(
        'How often acknowledged offsets are persisted to <dataDir>/logs/checkpoints.json (also on shutdown), when they moved: after a crash, about this much of the lines is shipped again. Measured: ≈ 1.4 ms CPU and 3 ms wall per write of 200 files (tmp + fsync + rename).',
      ),
    flushTimeout: duration()
      .prefault('5s')
      .describe(
        'At shutdown, how long to keep delivering lines already read; what is left is re-read on the next start.',
      ),
    batch: z
      .strictObject({
        maxLines: z.int().min(1).default(2000).describe('Most records in one sink batch.'),
        maxBytes: size()
          .prefault('512KiB')
          .describe(
            'Most bytes in one sink batch (keep below the broker message.max.bytes when uncompressed).',
          ),
        wait: duration()
          .prefault('100ms')
          .describe('How long a batch that is not full waits for more lines.'),
      })
      .prefault({})
      .describe('Batching towards the sink.'),
    retry: z
      .strictObject({
        initialBackoff: duration()
          .prefault('100ms')
          .describe('First wait after a failed send; doubled after each failure.'),
        maxBackoff: duration().prefault('10s').describe('Longest wait between two sends of the same batch.'),
        giveUpAfter: duration()
          .prefault('2m')
          .describe(
            'How long a batch is retried before the module reports not ready (SINK_UNAVAILABLE) and reopens the sink; retries go on, files stay open (nothing is lost, not even files the kubelet deletes meanwhile).',
          ),
      })
      .prefault({})
      .describe('Retries of failed sink sends.'),
    file: z
      .strictObject({
        path: z
          .string()
          .min(1)
          .default('.nodeward/logs.jsonl')
          .describe('File the file sink appends JSON lines to (fsync per batch).'),
      })
      .prefault({})
      .describe('File sink.'),
    kafka: z
      .strictObject({
        brokers: z.array(hostPort()).default([]).describe('Bootstrap brokers, host:port.'),
        topic: z
          .string()
          .min(1)
          .refine(
            (t) =>
              [...t.matchAll(/\{([^}]*)\}/g)].every((m) =>
                (TOPIC_PLACEHOLDERS as readonly string[]).includes(m[1] ?? ''),
              ),
            { error: `a topic template may only use ${TOPIC_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}` },
          )
          .default('logs.{namespace}')
          .describe(
            'Topic template; {namespace}, {pod}, {container} and {node} are replaced (characters Kafka rejects become _).',
          ),
        client: z
          .enum(['kafkajs', 'platformatic'])
          .default('kafkajs')
          .describe(
            'Kafka client library behind the sink: kafkajs, or platformatic (@platformatic/kafka; measured here with less CPU per line and more lines/s than kafkajs, see log-shipper/README.md). Same semantics either way (acks, compression, key, partition, retries, error codes).',
          ),
        clientId: z.string().min(1).default('nodeward').describe('Kafka client id.'),
        deadLetterTopic: z
          .string()
          .default('')
          .describe(
            "Topic for records the brokers refuse for good (topic not authorised, invalid or never created; record too large): a refused topic's records as they were, a refused record as an envelope with the reason and its first KiB. Empty: such records are dropped. Either way counted in nodeward_logs_records_refused_total and logged with the pod; the other records are delivered.",
          ),
        acks: z
          .union([z.literal(-1), z.literal(1)], {
            error: (issue) =>
              `expected -1 (all in-sync replicas) or 1 (leader), got ${shown(issue.input)}; 0 gives no acknowledgement to checkpoint on`,
          })
          .default(-1)
          .describe('Acknowledgement a batch waits for: -1 all in-sync replicas, 1 the leader only.'),
        compression: compression()
          .default('gzip')
          .describe(
            'Batch compression: gzip, snappy, lz4, zstd or none. Both clients support all five; every Kafka broker since 2.1 and every consumer library reads them.',
          ),
        timeout: duration()
          .prefault('30s')
          .describe('Request timeout towards the brokers, and how long the leader may wait for replicas.'),
        inFlight: z
          .int()
          .min(1)
          .max(16)
          .default(1)
          .describe(
            "Batches sent at once; acknowledgements still apply in order, so checkpoints never pass an unacknowledged batch. Above 1, a batch retried (by kafkajs too: a new topic, a leader change) can land after later ones, so a pod's lines may be out of order there. 1: strict order.",
          ),
        tls: z
          .strictObject({
            enabled: z.boolean().default(false).describe('Connect to the brokers over TLS.'),
            caFile: z
              .string()
              .default('')
              .describe("CA bundle (PEM) that signed the brokers' certificates; empty: the system CAs."),
            certFile: z
              .string()
              .default('')
              .describe('Client certificate (PEM) for mutual TLS; empty: none. Needs keyFile.'),
            keyFile: z.string().default('').describe('Private key (PEM) of certFile.'),
            serverName: z
              .string()
              .default('')
              .describe(
                "Name expected in the brokers' certificates (SNI); empty: the host of each broker address.",
              ),
            insecureSkipVerify: z
              .boolean()
              .default(false)
              .describe(
                'Accept any broker certificate (tests only: the traffic can be read by whoever answers).',
              ),
          })
          .prefault({})
          .describe('TLS towards the brokers.'),
        sasl: z
          .strictObject({
            mechanism: z
              .enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512'])
              .default('none')
              .describe('SASL authentication; plain sends the password as is: use it over TLS only.'),
            username: z.string().default('').describe('SASL user name.'),
            passwordFile: z
              .string()
              .default('')
              .describe('File holding the SASL password (a mounted Secret), read when the sink opens.'),
          })
          .prefault({})
          .describe('SASL authentication towards the brokers.'),
      })
      .prefault({})
      .describe('Kafka sink.'),
    podLabels: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Pod labels copied into each record as labels.pod_labels: exact keys, or a prefix ending in * (e.g. "app.kubernetes.io/*"). Needs pods.source.',
      ),
    exclude: z
      .strictObject({
        namespaces: z
          .array(z.string().min(1))
          .default([])
          .describe('Namespaces whose lines are not shipped.'),
        annotation: z
          .string()
          .min(1)
          .default('nodeward.io/logs')
          .describe(
            'Pod annotation that, set to "false", stops shipping the pod\'s lines; "<annotation>.<container>" does it for one container. Needs pods.source.',
          ),
      })
      .prefault({})
      .describe('Lines not shipped at all (read and skipped: checkpoints still move).'),
    rateLimit: z
      .strictObject({
        linesPerSecond: z
          .int()
          .min(0)
          .default(0)
          .describe(
            'Most lines per second shipped per pod (all its containers); the rest are dropped and counted in nodeward_logs_lines_dropped_total. 0: no limit.',
          ),
        burst: z
          .int()
          .min(0)
          .default(0)
          .describe(
            'Lines a pod may ship at once above the rate after being quiet; 0: one second of linesPerSecond.',
          ),
      })
      .prefault({})
      .describe('Per-pod rate limit, so one noisy pod cannot crowd out the node.'),
    multiline: z
      .strictObject({
        annotation: z
          .string()
          .min(1)
          .default('nodeward.io/multiline-start')
          .describe(
            'Pod annotation holding a regular expression (JavaScript syntax) that matches the first line of a record; following lines that do not match (a stack trace) are joined to it with "\\n". "<annotation>.<container>" sets it for one container. Needs pods.source.',
          ),
        timeout: duration()
          .prefault('1s')
          .describe(
            'A grouped record is shipped when no line came for this long (or the next record starts).',
          ),
      })
      .prefault({})
      .describe('Multi-line records (stack traces), per pod by annotation.'),
  })
  .superRefine((logs, ctx) => {
    if (logs.maxLineBytes < 1024) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxLineBytes'],
        message: `must be at least 1KiB, got ${logs.maxLineBytes}`,
      });
    }
    if (logs.enabled && logs.sink === 'kafka' && logs.kafka.brokers.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['kafka', 'brokers'],
        message: 'logs.sink is kafka: list at least one broker host:port',
      });
    }
    const { sasl, tls } = logs.kafka;
    if (sasl.mechanism !== 'none' && (sasl.username === '' || sasl.passwordFile === '')) {
      ctx.addIssue({
        code: 'custom',
        path: ['kafka', 'sasl'],
        message: `mechanism ${sasl.mechanism} needs username and passwordFile`,
      });
    }
    if ((tls.certFile === '') !== (tls.keyFile === '')) {
      ctx.addIssue({
        code: 'custom',
        path: ['kafka', 'tls'],
        message: 'certFile and keyFile go together (mutual TLS)',
      });
    }
    if (logs.batch.maxBytes > logs.maxInflightBytes) {
      ctx.addIssue({
        code: 'custom',
        path: ['batch', 'maxBytes'],
        message: `must not exceed logs.maxInflightBytes (${logs.maxInflightBytes} bytes), got ${logs.batch.maxBytes}`,
      });
    }
  });

export type LogsConfig = z.output<typeof logsSchema>;
