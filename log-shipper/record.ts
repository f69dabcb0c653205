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
) => Buffer;

const FLAG_FIELDS: string[] = [];
for (let flags = 0; flags < 8; flags++) {
  FLAG_FIELDS.push(
    (flags & FLAG_PARTIAL ? ',"partial":true' : '') +
      (flags & FLAG_PARSE_ERROR ? ',"parse_error":true' : '') +
      (flags & FLAG_TRUNCATED ? ',"truncated":true' : ''),
  );
}

/**
 * Where record values are written: large off-heap chunks, each record a view of its bytes. Per
 * record that is one small view object instead of a ≈ 640-byte string that a sink then encodes
 * into a Buffer of its own: the bytes are written once, never copied by the garbage collector
 * while the batch waits for its acknowledgement, and the sink hands them to the client as they
 * are. A chunk is freed once every record in it is (the batches holding them acknowledged), so
 * what it holds is bounded by logs.maxInflightBytes plus one chunk.
 */
export class RecordArena {
  private readonly chunkBytes: number;
  private chunk: Buffer;
  private used = 0;

  constructor(chunkBytes = 256 * 1024) {
    this.chunkBytes = chunkBytes;
    this.chunk = Buffer.allocUnsafeSlow(0);
  }

  /** A chunk with at least `max` free bytes from `start`. */
  reserve(max: number): Buffer {
    if (this.chunk.length - this.used < max) {
      this.chunk = Buffer.allocUnsafeSlow(Math.max(this.chunkBytes, max));
      this.used = 0;
    }
    return this.chunk;
  }

  get start(): number {
    return this.used;
  }

  /** The record written from `start` to `end` of the reserved chunk. */
  commit(end: number): Buffer {
    const value = this.chunk.subarray(this.used, end);
    this.used = end;
    return value;
  }
}

/** One arena for every file: records of all files share the batch, and so the chunks. */
export const recordArena = new RecordArena();

export function createEncoder(labels: Labels, file: string, arena: RecordArena = recordArena): Encoder {
  // The same for every line of the file: encoded once, copied as bytes.
  const tail = Buffer.from(`,"labels":${JSON.stringify(labels)},"file":${JSON.stringify(file)},"offset":`);
  return (time, stream, message, flags, offset) => {
    const head = `{"time":${JSON.stringify(time)},"stream":"${stream}","message":${JSON.stringify(message)}${FLAG_FIELDS[flags] ?? ''}`;
    // UTF-8 takes at most 3 bytes per UTF-16 unit; an offset at most 16 digits.
    const buf = arena.reserve(head.length * 3 + tail.length + 18);
    let p = arena.start;
    p += buf.write(head, p);
    p += tail.copy(buf, p);
    p += buf.write(`${offset}}`, p, 'latin1');
    return arena.commit(p);
  };
}
