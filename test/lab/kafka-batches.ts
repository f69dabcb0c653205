import { connect } from 'node:net';

/**
 * What a broker stored, batch by batch: one Fetch (v4, the first version with v2 record batches)
 * over a plain socket, so a test can see the compression codec each producer batch carries (bits
 * 0–2 of the batch attributes) — consumers decompress transparently and cannot tell. Written
 * against the Kafka protocol spec; only for tests, against a single-broker mock (the leader of
 * every partition).
 */

export const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

export interface StoredBatch {
  partition: number;
  codec: (typeof CODECS)[number] | `unknown_${number}`;
  /** Bytes of the batch as stored (compressed). */
  bytes: number;
}

function fetchRequest(topic: string, partitions: readonly number[]): Buffer {
  const clientId = Buffer.from('nodeward-test');
  const name = Buffer.from(topic);
  const body = Buffer.alloc(4 + 4 + 4 + 4 + 1 + 4 + 2 + name.length + 4 + partitions.length * 16);
  let p = 0;
  p = body.writeInt32BE(-1, p); // replica_id
  p = body.writeInt32BE(500, p); // max_wait_ms
  p = body.writeInt32BE(1, p); // min_bytes
  p = body.writeInt32BE(64 << 20, p); // max_bytes
  p = body.writeInt8(0, p); // isolation_level
  p = body.writeInt32BE(1, p); // topics
  p = body.writeInt16BE(name.length, p);
  p += name.copy(body, p);
  p = body.writeInt32BE(partitions.length, p);
  for (const partition of partitions) {
    p = body.writeInt32BE(partition, p);
    p = body.writeBigInt64BE(0n, p); // fetch_offset
    p = body.writeInt32BE(64 << 20, p); // partition_max_bytes
  }
  const header = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
  let h = 0;
  h = header.writeInt16BE(1, h); // Fetch
  h = header.writeInt16BE(4, h);
  h = header.writeInt32BE(1, h); // correlation id
  h = header.writeInt16BE(clientId.length, h);
  clientId.copy(header, h);
  const size = Buffer.alloc(4);
  size.writeInt32BE(header.length + body.length);
  return Buffer.concat([size, header, body]);
}

function parseFetchResponse(r: Buffer): StoredBatch[] {
  const out: StoredBatch[] = [];
  let p = 4 + 4; // correlation id, throttle_time_ms
  const topics = r.readInt32BE(p);
  p += 4;
  for (let t = 0; t < topics; t++) {
    p += 2 + r.readInt16BE(p);
    const partitions = r.readInt32BE(p);
    p += 4;
    for (let i = 0; i < partitions; i++) {
      const partition = r.readInt32BE(p);
      const error = r.readInt16BE(p + 4);
      if (error !== 0) throw new Error(`Fetch: partition ${partition} error ${error}`);
      p += 4 + 2 + 8 + 8; // partition, error, high watermark, last stable offset
      const aborted = r.readInt32BE(p);
      p += 4 + Math.max(0, aborted) * 16;
      const size = r.readInt32BE(p);
      p += 4;
      const end = p + Math.max(0, size);
      while (p + 12 <= end) {
        const length = r.readInt32BE(p + 8);
        if (p + 12 + length > end) break; // a partial batch at the end of the fetch
        const attributes = r.readInt16BE(p + 8 + 4 + 4 + 1 + 4); // after epoch, magic, crc
        const codec = attributes & 7;
        out.push({ partition, codec: CODECS[codec] ?? `unknown_${codec}`, bytes: 12 + length });
        p += 12 + length;
      }
      p = end;
    }
  }
  return out;
}

/** Every batch stored in `partitions` of `topic` on `broker` (host:port of a single-broker cluster). */
export function storedBatches(
  broker: string,
  topic: string,
  partitions: readonly number[],
): Promise<StoredBatch[]> {
  const [host, port] = [
    broker.slice(0, broker.lastIndexOf(':')),
    Number(broker.slice(broker.lastIndexOf(':') + 1)),
  ];
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => socket.write(fetchRequest(topic, partitions)));
    const chunks: Buffer[] = [];
    let got = 0;
    socket.setTimeout(10_000, () => socket.destroy(new Error('Fetch: no answer within 10 s')));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got < 4) return;
      const all = Buffer.concat(chunks);
      const size = all.readInt32BE(0);
      if (all.length < 4 + size) return;
      socket.end();
      try {
        resolve(parseFetchResponse(all.subarray(4, 4 + size)));
      } catch (err) {
        reject(err);
      }
    });
    socket.on('error', reject);
  });
}
