import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { afterAll, describe, expect, it } from 'vitest';
import { metricsSchema } from '../../../shared/config/index.ts';
import { createLogger } from '../../../shared/logger.ts';
import { freePort, Lab, skipReason, startService, tempDir, waitFor } from '../../../test/lab/index.ts';
import { fixture, snappyUncompress, startReceiver } from '../../../test/support/metrics/testing.ts';
import { type Family, family } from '../collector.ts';
import { createMetrics } from '../index.ts';
import type { Sample } from '../scrape.ts';
import { encodeJsonPush, toJsonPush } from './json.ts';
import { createPusher, createPushStats, type Snapshot } from './push.ts';
import { encodeRemoteWrite, REMOTE_WRITE_HEADERS } from './remote-write.ts';

// prompb's messages, for an independent decoder (protobufjs) to read what we encoded by hand.
const PROMPB = protobuf
  .parse(`
syntax = "proto3";
package prometheus;
message WriteRequest { repeated TimeSeries timeseries = 1; }
message TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
message Label { string name = 1; string value = 2; }
message Sample { double value = 1; int64 timestamp = 2; }
`)
  .root.lookupType('prometheus.WriteRequest');

interface Decoded {
  timeseries: {
    labels: { name: string; value: string }[];
    samples: { value: number; timestamp: string }[];
  }[];
}

const decode = (body: Uint8Array): Decoded =>
  PROMPB.toObject(PROMPB.decode(snappyUncompress(body)), { longs: String, defaults: true }) as Decoded;

const LOAD = family('node_load1', 'gauge', '1m load average.');
const USAGE = family('container_memory_usage_bytes', 'gauge', 'Current memory usage in bytes.');
const snapshot: Snapshot = {
  timestampMs: 1_763_000_000_123,
  families: new Map<Family, Sample[]>([
    [LOAD, [{ value: 0.27 }]],
    [
      USAGE,
      [
        { value: 52428800, labels: { id: '/docker/abc', name: 'web', pod: '', namespace: '', zeta: 'ü' } },
        { value: Number.NaN, labels: { id: '/docker/def', name: 'nan' } },
      ],
    ],
  ]),
};

describe('remote_write encoding', () => {
  it('is a snappy-compressed WriteRequest with sorted labels, no empty values, ms timestamps', () => {
    const { body, headers } = encodeRemoteWrite(
      snapshot,
      { job: 'nodeward', instance: 'n1' },
      { 'X-Extra': '1' },
    );
    expect(headers).toMatchObject({ ...REMOTE_WRITE_HEADERS, 'X-Extra': '1' });
    const decoded = decode(body);
    expect(decoded.timeseries).toHaveLength(3);
    expect(decoded.timeseries[0]).toEqual({
      labels: [
        { name: '__name__', value: 'node_load1' },
        { name: 'instance', value: 'n1' },
        { name: 'job', value: 'nodeward' },
      ],
      samples: [{ value: 0.27, timestamp: '1763000000123' }],
    });
    expect(decoded.timeseries[1]!.labels.map((l) => l.name)).toEqual([
      '__name__',
      'id',
      'instance',
      'job',
      'name',
      'zeta',
    ]);
    expect(decoded.timeseries[1]!.labels.at(-1)).toEqual({ name: 'zeta', value: 'ü' });
    expect(decoded.timeseries[2]!.samples[0]!.value).toBeNaN();
  });

  it('JSON push: one document, samples grouped by family, NaN as null', () => {
    const body = toJsonPush(snapshot, 'n1', { job: 'nodeward' }, /^container_/);
    expect(body).toEqual({
      version: 1,
      node: 'n1',
      timestamp: 1_763_000_000_123,
      labels: { job: 'nodeward' },
      metrics: [
        {
          name: 'container_memory_usage_bytes',
          type: 'gauge',
          help: 'Current memory usage in bytes.',
          samples: [
            {
              labels: { id: '/docker/abc', name: 'web', pod: '', namespace: '', zeta: 'ü' },
              value: 52428800,
            },
            { labels: { id: '/docker/def', name: 'nan' }, value: null },
          ],
        },
      ],
    });
    expect(encodeJsonPush(body, {}).headers['Content-Type']).toBe('application/json');
  });
});

describe('pushing', () => {
  const retry = { initial: 10, max: 40, attempts: 4 };
  const pusherFor = (url: string, stats = createPushStats()) =>
    createPusher({
      target: 'remote_write',
      url,
      interval: 60_000,
      timeout: 2000,
      retry,
      snapshot: async () => snapshot,
      encode: (s) => encodeRemoteWrite(s, { job: 'nodeward' }, {}),
      stats,
      log: createLogger('silent'),
    });

  it('retries 5xx with backoff until accepted, with the spec headers on every try', async () => {
    const receiver = await startReceiver([503, 500, 204]);
    try {
      const stats = createPushStats();
      expect(await pusherFor(`${receiver.url}/api/v1/write`, stats).pushOnce()).toBe(true);
      expect(receiver.requests).toHaveLength(3);
      for (const r of receiver.requests) {
        expect(r.headers['content-encoding']).toBe('snappy');
        expect(r.headers['content-type']).toBe('application/x-protobuf');
        expect(r.headers['x-prometheus-remote-write-version']).toBe('0.1.0');
        expect(decode(r.body).timeseries).toHaveLength(3);
      }
      expect(stats.requests.get('remote_write/success')).toBe(1);
    } finally {
      await receiver.close();
    }
  });

  it('never retries a 4xx, and drops the batch after the last attempt on 5xx', async () => {
    const rejecting = await startReceiver([400]);
    const failing = await startReceiver([503]);
    try {
      const stats = createPushStats();
      expect(await pusherFor(rejecting.url, stats).pushOnce()).toBe(false);
      expect(rejecting.requests).toHaveLength(1);
      expect(await pusherFor(failing.url, stats).pushOnce()).toBe(false);
      expect(failing.requests).toHaveLength(retry.attempts);
      expect(Object.fromEntries(stats.requests)).toEqual({
        'remote_write/rejected': 1,
        'remote_write/failed': 1,
      });
    } finally {
      await Promise.all([rejecting.close(), failing.close()]);
    }
  });

  it('retries 429 (the receiver asks to slow down) and network errors', async () => {
    const receiver = await startReceiver([429, 200]);
    try {
      expect(await pusherFor(receiver.url).pushOnce()).toBe(true);
      expect(receiver.requests).toHaveLength(2);
    } finally {
      await receiver.close();
    }
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    expect(await pusherFor(nobody).pushOnce()).toBe(false);
    // Three waits: 10, 20, 40 ms (+ jitter).
    expect(Date.now() - started).toBeGreaterThanOrEqual(70);
  });
});

const reason = skipReason({ binaries: ['prometheus'] });
if (reason) console.warn(`[lab] remote_write test skipped: ${reason} (install prometheus)`);

describe('a real Prometheus receiving remote_write', () => {
  const lab = new Lab();
  afterAll(() => lab.cleanup());

  it.skipIf(reason)('pushed host series become queryable, with job and instance', async () => {
    // startPrometheus has no switch for the receiver, so it is started here with the lab's parts.
    const dir = await tempDir('prometheus-rw', lab);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const config = join(dir, 'prometheus.yml');
    await writeFile(config, JSON.stringify({ global: { scrape_interval: '1s' }, scrape_configs: [] }));
    const service = startService({
      lab,
      name: 'prometheus',
      dir,
      command: 'prometheus',
      args: [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--web.enable-remote-write-receiver',
      ],
    });
    await waitFor(async () => (await fetch(`${url}/-/ready`)).status === 200, {
      what: 'prometheus ready',
      timeoutMs: 20_000,
      services: [service],
    });

    const settings = metricsSchema.parse({
      procRoot: fixture('host/proc'),
      containers: { enabled: false },
      remoteWrite: { url: `${url}/api/v1/write`, retry: { initial: '100ms', attempts: 3 } },
    });
    const metrics = createMetrics(settings, { log: createLogger('silent'), node: 'node-a' });
    expect(await metrics.remoteWrite!.pushOnce()).toBe(true);

    const query = async (q: string) => {
      const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: q })}`);
      const body = (await res.json()) as {
        data: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      return body.data.result;
    };
    const [load] = await waitFor(
      async () => {
        const r = await query('node_load1');
        return r.length > 0 ? r : undefined;
      },
      { what: 'node_load1 to be queryable', timeoutMs: 10_000 },
    );
    expect(load!.metric).toEqual({ __name__: 'node_load1', job: 'nodeward', instance: 'node-a' });
    expect(Number(load!.value[1])).toBe(0.27);
    // Every pushed series landed: count by name matches what one collection holds.
    const cpus = await query('count(node_cpu_seconds_total{instance="node-a"})');
    expect(Number(cpus[0]!.value[1])).toBeGreaterThan(0);
    const success = await query('sum(nodeward_scrape_collector_success)');
    expect(success).toEqual([]); // self metrics of a scrape are not pushed, only the collectors' series
  });
});
