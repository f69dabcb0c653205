import { NodewardError } from '../../shared/errors.ts';

/**
 * The one contract every sink fulfils. `send` resolves only once the records are durable or
 * acknowledged by the peer: checkpoints move on that promise, so a sink that resolves early loses
 * lines on a crash.
 */
export interface SinkRecord {
  readonly topic: string;
  readonly key: string;
  /** The record as one JSON object, no newline. */
  readonly value: string;
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

export function reasonOf(err: unknown): string {
  if (err instanceof NodewardError && typeof err.details['reason'] === 'string') return err.details['reason'];
  return 'unknown';
}

/** One newline-terminated JSON line per record. */
export function jsonLines(records: readonly SinkRecord[]): string {
  let body = '';
  for (const r of records) body += `${r.value}\n`;
  return body;
}
