import type { Labels } from './enrich.ts';
import { FLAG_PARSE_ERROR, FLAG_PARTIAL, FLAG_TRUNCATED, type Stream } from './parse.ts';

/**
 * The record: one JSON object per log line, the same for every sink (schema in README.md).
 * Everything that is the same for all lines of a file is serialized once per file; per line only
 * the time and the message go through JSON.stringify.
 */

export interface LogRecord {
  time: string;
  stream: Stream;
  message: string;
  partial?: true;
  parse_error?: true;
  truncated?: true;
  labels: Labels;
  file: string;
  offset: number;
}

export type Encoder = (
  time: string,
  stream: Stream,
  message: string,
  flags: number,
  offset: number,
) => string;

const FLAG_FIELDS: string[] = [];
for (let flags = 0; flags < 8; flags++) {
  FLAG_FIELDS.push(
    (flags & FLAG_PARTIAL ? ',"partial":true' : '') +
      (flags & FLAG_PARSE_ERROR ? ',"parse_error":true' : '') +
      (flags & FLAG_TRUNCATED ? ',"truncated":true' : ''),
  );
}

export function createEncoder(labels: Labels, file: string): Encoder {
  const tail = `,"labels":${JSON.stringify(labels)},"file":${JSON.stringify(file)},"offset":`;
  return (time, stream, message, flags, offset) =>
    `{"time":${JSON.stringify(time)},"stream":"${stream}","message":${JSON.stringify(message)}${FLAG_FIELDS[flags] ?? ''}${tail}${offset}}`;
}
