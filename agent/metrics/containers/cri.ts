import type { ClientHttp2Session } from 'node:http2';

/**
 * A CRI client of one call, ListContainerStats, for the writable layers (cri.proto). gRPC is
 * spoken by hand over node:http2 — a unary call is one HTTP/2 POST with a 5-byte frame header on
 * the message, the status in the trailers — and the few messages are decoded by hand, rather than
 * with @grpc/grpc-js and @grpc/proto-loader as runtime dependencies: loading those two and
 * parsing a .proto measured +31 MiB RSS and ≈ 1 s of start-up here, node:http2 +0.3 MiB (the
 * agent's idle budget is 90 MiB). The socket is dialled only on containerd/CRI-O nodes, at the
 * first scrape.
 */

/** One container's writable layer as the runtime reports it. */
export interface WritableLayerStats {
  readonly containerId: string;
  /** Nanoseconds; 0 while the runtime has not measured the layer yet. */
  readonly timestampNs: number;
  /** The directory the layers are stored under (fs_id.mountpoint); "" if not said. */
  readonly mountpoint: string;
  readonly usedBytes?: number;
  readonly inodesUsed?: number;
}

/** A gRPC status other than OK: `grpcCode` as in grpc/status.proto (12 UNIMPLEMENTED, 14 UNAVAILABLE…). */
export type GrpcError = Error & { readonly grpcCode: number };

const UNIMPLEMENTED = 12;

// --- protobuf wire format: only what the messages above need ---

/** A varint as a number: exact up to 2^53, plenty for byte and inode counts. */
function varint(buf: Uint8Array, at: { pos: number }): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (at.pos >= buf.length) throw new Error('protobuf: truncated varint');
    const b = buf[at.pos++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return value;
    scale *= 128;
  }
  throw new Error('protobuf: varint longer than 10 bytes');
}

/** Calls `field` with each (number, wire type, value) of a message; LEN values as [start, end). */
function fields(
  buf: Uint8Array,
  start: number,
  end: number,
  field: (no: number, value: number | readonly [number, number]) => void,
): void {
  const at = { pos: start };
  while (at.pos < end) {
    const key = varint(buf, at);
    const no = Math.floor(key / 8);
    switch (key & 7) {
      case 0:
        field(no, varint(buf, at));
        break;
      case 1:
        at.pos += 8;
        break;
      case 2: {
        const len = varint(buf, at);
        const from = at.pos;
        at.pos += len;
        if (at.pos > end) throw new Error('protobuf: field runs past its message');
        field(no, [from, at.pos]);
        break;
      }
      case 5:
        at.pos += 4;
        break;
      default:
        throw new Error(`protobuf: unsupported wire type ${key & 7} (field ${no})`);
    }
  }
  if (at.pos !== end) throw new Error('protobuf: truncated message');
}

const utf8 = new TextDecoder();
const isRange = (v: number | readonly [number, number]): v is readonly [number, number] =>
  typeof v !== 'number';

/** UInt64Value { uint64 value = 1 }. */
function uint64Value(buf: Uint8Array, [start, end]: readonly [number, number]): number {
  let value = 0;
  fields(buf, start, end, (no, v) => {
    if (no === 1 && !isRange(v)) value = v;
  });
  return value;
}

function writableLayer(buf: Uint8Array, id: string, [start, end]: readonly [number, number]) {
  let timestampNs = 0;
  let mountpoint = '';
  let usedBytes: number | undefined;
  let inodesUsed: number | undefined;
  fields(buf, start, end, (no, v) => {
    if (no === 1 && !isRange(v)) timestampNs = v;
    else if (no === 2 && isRange(v))
      fields(buf, v[0], v[1], (n, m) => {
        if (n === 1 && isRange(m)) mountpoint = utf8.decode(buf.subarray(m[0], m[1]));
      });
    else if (no === 3 && isRange(v)) usedBytes = uint64Value(buf, v);
    else if (no === 4 && isRange(v)) inodesUsed = uint64Value(buf, v);
  });
  const layer: WritableLayerStats = {
    containerId: id,
    timestampNs,
    mountpoint,
    ...(usedBytes !== undefined ? { usedBytes } : {}),
    ...(inodesUsed !== undefined ? { inodesUsed } : {}),
  };
  return layer;
}

/** ListContainerStatsResponse → the writable layer of each container that has one. */
export function decodeListContainerStatsResponse(buf: Uint8Array): WritableLayerStats[] {
  const out: WritableLayerStats[] = [];
  fields(buf, 0, buf.length, (no, stats) => {
    if (no !== 1 || !isRange(stats)) return;
    let id = '';
    let layer: readonly [number, number] | undefined;
    fields(buf, stats[0], stats[1], (n, v) => {
      if (n === 1 && isRange(v))
        fields(buf, v[0], v[1], (a, idRange) => {
          if (a === 1 && isRange(idRange)) id = utf8.decode(buf.subarray(idRange[0], idRange[1]));
        });
      else if (n === 4 && isRange(v)) layer = v;
    });
    if (id !== '' && layer) out.push(writableLayer(buf, id, layer));
  });
  return out;
}

// --- gRPC over HTTP/2 ---

/** One length-prefixed gRPC message (uncompressed). */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** The message of a unary answer's body (one frame). */
export function grpcMessage(body: Buffer): Buffer {
  if (body.length < 5) throw new Error(`gRPC: answer of ${body.length} bytes, no message frame`);
  if (body[0] !== 0) throw new Error('gRPC: compressed answer (none was offered)');
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) throw new Error('gRPC: truncated message');
  return body.subarray(5, 5 + len);
}

export interface CriClient {
  /** The writable layer of every running container. */
  listContainerStats(timeoutMs?: number): Promise<WritableLayerStats[]>;
  close(): void;
}

/** A client of the runtime's RuntimeService at a unix socket; the connection is made at the first call. */
export function criClient(socketPath: string): CriClient {
  let session: ClientHttp2Session | undefined;
  // v1 first; runtimes older than the kubelet 1.26 default (containerd < 1.5) only have v1alpha2.
  let service = 'runtime.v1.RuntimeService';

  const sessionOf = async (): Promise<ClientHttp2Session> => {
    if (session && !session.closed && !session.destroyed) return session;
    const [{ connect }, net] = await Promise.all([import('node:http2'), import('node:net')]);
    const s = connect('http://localhost', { createConnection: () => net.connect(socketPath) });
    // Errors reach the pending request; the session is dropped and dialled again at the next call.
    const drop = () => {
      if (session === s) session = undefined;
    };
    s.on('error', drop);
    s.on('close', drop);
    s.on('goaway', drop);
    // An idle connection must not keep the agent alive at shutdown.
    s.unref();
    session = s;
    return s;
  };

  const unary = async (method: string, request: Uint8Array, timeoutMs: number): Promise<Buffer> => {
    const s = await sessionOf();
    return new Promise<Buffer>((resolve, reject) => {
      const path = `/${service}/${method}`;
      const req = s.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${timeoutMs}m`,
      });
      let status: string | undefined;
      let message = '';
      const statusFrom = (headers: Record<string, unknown>) => {
        if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
        if (headers['grpc-message'] !== undefined)
          message = decodeURIComponent(String(headers['grpc-message']));
      };
      const chunks: Buffer[] = [];
      req.setTimeout(timeoutMs, () => {
        req.destroy(new Error(`CRI ${path}: no answer in ${timeoutMs} ms`));
      });
      req.on('response', (headers) => {
        const code = headers[':status'];
        if (code !== 200) {
          req.destroy(new Error(`CRI ${path}: HTTP ${code}`));
          return;
        }
        // A trailers-only answer (an error) carries the status in the headers.
        statusFrom(headers);
      });
      req.on('trailers', statusFrom);
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('error', reject);
      req.on('end', () => {
        if (status === undefined) reject(new Error(`CRI ${path}: answer without a grpc-status`));
        else if (status !== '0')
          reject(
            Object.assign(new Error(`CRI ${path}: ${message || `status ${status}`}`), {
              grpcCode: Number(status),
            }),
          );
        else {
          try {
            resolve(grpcMessage(Buffer.concat(chunks)));
          } catch (err) {
            reject(err);
          }
        }
      });
      req.end(grpcFrame(request));
    });
  };

  return {
    async listContainerStats(timeoutMs = 10_000) {
      // ListContainerStatsRequest without a filter: no fields, zero bytes.
      const empty = new Uint8Array(0);
      try {
        return decodeListContainerStatsResponse(await unary('ListContainerStats', empty, timeoutMs));
      } catch (err) {
        if ((err as Partial<GrpcError>).grpcCode !== UNIMPLEMENTED || !service.startsWith('runtime.v1.'))
          throw err;
        service = 'runtime.v1alpha2.RuntimeService';
        return decodeListContainerStatsResponse(await unary('ListContainerStats', empty, timeoutMs));
      }
    },
    close() {
      session?.close();
      session = undefined;
    },
  };
}
