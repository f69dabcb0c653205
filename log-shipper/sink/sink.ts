import { NodewardError } from '../../shared/errors.ts';

/**
 * The one contract every sink fulfils. `send` resolves only once the records are durable or
 * acknowledged by the peer: checkpoints move on that promise, so a sink that resolves early loses
 * lines on a crash.
 */
export interface SinkRecord {
  readonly topic: string;
  readonly key: string;
  /** The record as one JSON object, no newline, UTF-8 (a view of a shared chunk: record.ts). */
  readonly value: Buffer;
}

export interface Sink {
  readonly name: SinkName;
  open(): Promise<void>;
  send(records: readonly SinkRecord[]): Promise<void>;
  close(): Promise<void>;
}

export const SINK_NAMES = ['file', 'stdout', 'kafka'] as const;
export type SinkName = (typeof SINK_NAMES)[number];

/**
 * A failed send as a registry error. `reason` is the low-cardinality cause (an errno, a Kafka error
 * type) that metrics count by; the message keeps the detail.
 */
export function sinkError(sink: SinkName, reason: string, err: unknown): NodewardError {
  const message = err instanceof Error ? err.message : String(err);
  return new NodewardError('SINK_UNAVAILABLE', `${sink} sink: ${message}`, {
    cause: err,
    details: { sink, reason },
  });
}

const TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/;
/** Certificate verification in the words of Node's TLS errors; not "TLS" alone ("socket disconnected before secure TLS connection" is a reset). */
const TLS_MESSAGE = /certificate|self[- ]signed|unable to verify|altnames/i;
const NETWORK_CODE = /^(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH)$/;

/**
 * Whether a client's error comes from the TLS handshake (an untrusted or expired certificate, a
 * name mismatch): both clients wrap it in their own connection errors, by cause, originalError or
 * a list, and sometimes keep only its message. Its own reason, `tls`, tells the operator to look
 * at logs.kafka.tls rather than at the network.
 */
export function isTlsFailure(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 6) return false;
  const { code, cause, originalError, errors } = err as {
    code?: unknown;
    cause?: unknown;
    originalError?: unknown;
    errors?: unknown;
  };
  if (typeof code === 'string') {
    if (TLS_CODE.test(code)) return true;
    if (NETWORK_CODE.test(code)) return false;
  }
  if (TLS_MESSAGE.test(err.message)) return true;
  return [cause, originalError, ...(Array.isArray(errors) ? errors : [])].some((e) =>
    isTlsFailure(e, depth + 1),
  );
}

export type Refusal = 'topic' | 'record';

/** Kafka errors that refuse a topic for good: sending again, or sending the other topics' records along, cannot help. */
const TOPIC_REFUSALS = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'INVALID_TOPIC_EXCEPTION',
  'POLICY_VIOLATION',
  'INVALID_REPLICATION_FACTOR',
]);
/** Kafka errors that refuse a record (or a request holding it) for good. */
const RECORD_REFUSALS = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD']);

/**
 * Whether a failed send was a permanent refusal of a topic or of a record, rather than a failure
 * to retry. UNKNOWN_TOPIC_OR_PARTITION is retriable in Kafka (a topic being created); once it
 * `persisted` (the broker creates no topics, or not that one) it refuses the topic.
 */
export function refusalOf(err: unknown, persisted = false): Refusal | undefined {
  const reason = reasonOf(err);
  if (TOPIC_REFUSALS.has(reason)) return 'topic';
  if (RECORD_REFUSALS.has(reason)) return 'record';
  if (persisted && reason === 'UNKNOWN_TOPIC_OR_PARTITION') return 'topic';
  return undefined;
}

export function reasonOf(err: unknown): string {
  if (err instanceof NodewardError && typeof err.details['reason'] === 'string') return err.details['reason'];
  return 'unknown';
}

/** One newline-terminated JSON line per record. */
export function jsonLines(records: readonly SinkRecord[]): Buffer {
  let bytes = 0;
  for (const r of records) bytes += r.value.length + 1;
  const body = Buffer.allocUnsafe(bytes);
  let p = 0;
  for (const r of records) {
    p += r.value.copy(body, p);
    body[p++] = 0x0a;
  }
  return body;
}
