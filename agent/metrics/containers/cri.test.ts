import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../shared/logger.ts';
import {
  type CriClient,
  criClient,
  decodeListContainerStatsResponse,
  grpcFrame,
  type WritableLayerStats,
} from './cri.ts';
import { createWritableLayers, mountOf } from './writable-layer.ts';

const PROTO = join(import.meta.dirname, 'cri.proto');
const root = protobuf.loadSync(PROTO);
const Response = root.lookupType('runtime.v1.ListContainerStatsResponse');
const ID_A = 'a'.repeat(64);
const ID_B = 'b'.repeat(64);
const LAYERS = '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs';
/** Nanoseconds since 1970: past 2^53, so a string for protobufjs. */
const TIMESTAMP = '1733240000123456789';

/** An answer as containerd writes it, cpu and memory included (skipped by our decoder). */
function answer(): Uint8Array {
  const stats = {
    stats: [
      {
        attributes: { id: ID_A },
        writableLayer: {
          timestamp: TIMESTAMP,
          fsId: { mountpoint: LAYERS },
          usedBytes: { value: 2 ** 40 + 12345 },
          inodesUsed: { value: 17 },
        },
      },
      // Not measured yet: timestamp 0, used 0.
      { attributes: { id: ID_B }, writableLayer: { fsId: { mountpoint: LAYERS }, usedBytes: { value: 0 } } },
    ],
  };
  // The fields we skip, as a runtime sends them: cpu (2) and memory (3) messages, labels (3) of
  // the attributes, an unknown varint.
  const Full = protobuf
    .parse(`
    syntax = "proto3";
    message UInt64Value { uint64 value = 1; }
    message CpuUsage { int64 timestamp = 1; UInt64Value usage_core_nano_seconds = 2; }
    message Attributes { string id = 1; map<string, string> labels = 3; }
    message Extra { Attributes attributes = 1; CpuUsage cpu = 2; CpuUsage memory = 3; uint64 future = 99; }
    message List { repeated Extra stats = 1; }
  `)
    .root.lookupType('List');
  const extra = Full.encode(
    Full.fromObject({
      stats: [
        {
          attributes: { id: ID_A, labels: { 'io.kubernetes.pod.name': 'web-0' } },
          cpu: { timestamp: 5, usageCoreNanoSeconds: { value: 99 } },
          memory: { timestamp: 6 },
          future: 7,
        },
      ],
    }),
  ).finish();
  const ours = Response.encode(Response.fromObject(stats)).finish();
  // Protobuf merges repeated fields across concatenated messages: the extra stats entry is a third one.
  return Buffer.concat([ours, extra]);
}

describe('CRI ListContainerStats codec (cri.proto, by hand)', () => {
  it('decodes what protobufjs encodes from cri.proto: id, mountpoint, used bytes, inodes, timestamp', () => {
    const decoded = decodeListContainerStatsResponse(answer());
    expect(decoded).toEqual<WritableLayerStats[]>([
      {
        containerId: ID_A,
        // Nanoseconds since 1970 are past 2^53: only "measured or not" matters, not the last digits.
        timestampNs: expect.any(Number),
        mountpoint: LAYERS,
        usedBytes: 2 ** 40 + 12345,
        inodesUsed: 17,
      },
      { containerId: ID_B, timestampNs: 0, mountpoint: LAYERS, usedBytes: 0 },
      // Other fields skipped, whatever their wire type; a stats entry without a layer is none.
    ]);
    expect(Math.abs(decoded[0]!.timestampNs / Number(TIMESTAMP) - 1)).toBeLessThan(1e-12);
  });

  it('fails on a truncated answer rather than reading garbage', () => {
    const bytes = answer();
    expect(() => decodeListContainerStatsResponse(bytes.subarray(0, 30))).toThrow(/protobuf/);
  });
});

/** A gRPC server on a unix socket that answers ListContainerStats under the services given. */
async function fakeRuntime(
  dir: string,
  handle: (path: string, stream: ServerHttp2Stream) => void,
): Promise<{ socket: string; server: Http2Server; calls: string[] }> {
  const socket = join(dir, `cri-${Math.random().toString(36).slice(2)}.sock`);
  const calls: string[] = [];
  const server = createServer();
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    calls.push(path);
    stream.on('data', () => {});
    stream.on('end', () => handle(path, stream));
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { socket, server, calls };
}

const ok = (stream: ServerHttp2Stream, message: Uint8Array) => {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(grpcFrame(message));
};
const status = (stream: ServerHttp2Stream, code: number, message: string) =>
  // Trailers-only, as grpc-go answers an error.
  stream.respond(
    {
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': String(code),
      'grpc-message': encodeURIComponent(message),
    },
    { endStream: true },
  );

describe('CRI client (gRPC over node:http2)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodeward-cri-'));
  const servers: Http2Server[] = [];
  const clients: CriClient[] = [];
  afterAll(() => {
    for (const c of clients) c.close();
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('calls runtime.v1 ListContainerStats with an empty request and decodes the answer', async () => {
    const runtime = await fakeRuntime(dir, (_path, stream) => ok(stream, answer()));
    servers.push(runtime.server);
    const client = criClient(runtime.socket);
    clients.push(client);
    const layers = await client.listContainerStats(2000);
    expect(layers.map((l) => l.containerId)).toEqual([ID_A, ID_B]);
    expect(runtime.calls).toEqual(['/runtime.v1.RuntimeService/ListContainerStats']);
    // The connection is reused.
    await client.listContainerStats(2000);
    expect(runtime.calls).toHaveLength(2);
  });

  it('falls back to runtime.v1alpha2 when v1 is UNIMPLEMENTED (containerd < 1.5), and reports gRPC errors', async () => {
    const runtime = await fakeRuntime(dir, (path, stream) =>
      path.startsWith('/runtime.v1alpha2.')
        ? ok(stream, answer())
        : status(stream, 12, 'unknown service runtime.v1.RuntimeService'),
    );
    servers.push(runtime.server);
    const client = criClient(runtime.socket);
    clients.push(client);
    expect(await client.listContainerStats(2000)).toHaveLength(2);
    expect(runtime.calls).toEqual([
      '/runtime.v1.RuntimeService/ListContainerStats',
      '/runtime.v1alpha2.RuntimeService/ListContainerStats',
    ]);

    const failing = await fakeRuntime(dir, (_path, stream) => status(stream, 14, 'shim gone: ünavailable'));
    servers.push(failing.server);
    const other = criClient(failing.socket);
    clients.push(other);
    const err = await other.listContainerStats(2000).catch((e: unknown) => e);
    expect(err).toMatchObject({ grpcCode: 14, message: expect.stringContaining('shim gone: ünavailable') });
  });

  it('rejects when nothing listens on the socket', async () => {
    const client = criClient(join(dir, 'nobody.sock'));
    clients.push(client);
    await expect(client.listContainerStats(1000)).rejects.toThrow();
  });
});

describe('writable layers (container_fs_usage_bytes / _limit_bytes from the CRI)', () => {
  const mounts = [
    { device: '/dev/vda1', mountPoint: '/', fsType: 'ext4', readonly: false },
    { device: '/dev/vdb', mountPoint: '/var/lib/containerd', fsType: 'xfs', readonly: false },
    { device: '/dev/vdc', mountPoint: '/var/lib/containerd2', fsType: 'xfs', readonly: false },
  ];

  it("a layer's filesystem is its longest mount-point prefix, on path boundaries", () => {
    expect(mountOf(LAYERS, mounts)?.device).toBe('/dev/vdb');
    expect(mountOf('/var/lib/containerd2/x', mounts)?.device).toBe('/dev/vdc');
    expect(mountOf('/var/lib/containerdx', mounts)?.device).toBe('/dev/vda1');
  });

  const procRoot = mkdtempSync(join(tmpdir(), 'nodeward-cri-proc-'));
  afterAll(() => rmSync(procRoot, { recursive: true, force: true }));

  it('usage per container with its device and capacity; unmeasured layers left out; asked once per interval; errors drop the numbers', async () => {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(join(procRoot, '1'), { recursive: true });
    // The client is a stand-in; the socket only has to exist.
    writeFileSync(join(procRoot, 'cri.sock'), '');
    writeFileSync(
      join(procRoot, '1/mounts'),
      '/dev/vda1 / ext4 rw 0 0\n/dev/vdb /var/lib/containerd xfs rw 0 0\n',
    );
    let calls = 0;
    let fail = false;
    const statfsPaths: string[] = [];
    const layers = createWritableLayers({
      sockets: [join(procRoot, 'absent.sock'), join(procRoot, 'cri.sock')],
      procRoot,
      hostRoot: '/host/root',
      intervalMs: 60_000,
      log: createLogger('silent'),
      client: () => ({
        listContainerStats: async () => {
          calls++;
          if (fail) throw new Error('runtime down');
          return decodeListContainerStatsResponse(answer());
        },
        close: () => {},
      }),
      statfs: async (path) => {
        statfsPaths.push(path);
        return { blocks: 1000, bsize: 4096 };
      },
    });
    await layers.refresh(0);
    expect(layers.get(ID_A)).toEqual({
      device: '/dev/vdb',
      usageBytes: 2 ** 40 + 12345,
      limitBytes: 4_096_000,
    });
    expect(layers.get(ID_B)).toBeUndefined();
    expect(statfsPaths).toEqual([`/host/root${LAYERS}`]);
    await layers.refresh(59_000);
    expect(calls).toBe(1);
    fail = true;
    await layers.refresh(60_000);
    // The second answer is awaited in the background; the next refresh sees its outcome.
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toBe(2);
    expect(layers.get(ID_A)).toBeUndefined();
  });
});
