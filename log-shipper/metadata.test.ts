import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/logger.ts';
import { type KafkaMock, Lab, skipReason, startKafka, tempDir, waitFor } from '../test/lab/index.ts';
import {
  type FakeContainer,
  fakeContainer,
  startRun,
  testConfig,
  writeLines,
} from '../test/support/log-shipper/harness.ts';
import { startFakeKubelet } from '../test/support/pods/fake-kubelet.ts';
import { createLogsModule } from './index.ts';
import type { LogRecord } from './record.ts';

/**
 * Enrichment end to end: kubelet-shaped pod directories and symlinks, the pods' metadata served by
 * a kubelet-shaped /pods over HTTPS (shared/pods/fake-kubelet.ts: there is no kubelet in the lab),
 * records read back from the librdkafka mock with kcat.
 */

const skip = skipReason({ binaries: ['kcat', 'openssl'] });
if (skip) console.warn(`pod metadata tests skipped: ${skip}`);

const lab = new Lab();
afterEach(() => lab.cleanup());

/** Every test runs with each Kafka client library behind the sink (logs.kafka.client). */
const CLIENTS = ['kafkajs', 'platformatic'] as const;

async function setup(client: (typeof CLIENTS)[number]) {
  const kafka = await startKafka({ lab });
  const dir = await tempDir('logs-meta', lab);
  const kubelet = await startFakeKubelet(dir);
  lab.defer('stop the fake kubelet', () => kubelet.close());
  const root = join(dir, 'containers');
  const pods = join(dir, 'pods');
  mkdirSync(root, { recursive: true });
  const config = testConfig({
    node: { name: 'node-m' },
    dataDir: join(dir, 'data'),
    pods: kubelet.podsConfig({ pollInterval: '200ms', refreshMinInterval: '100ms' }),
    logs: {
      root,
      sink: 'kafka',
      pollInterval: '50ms',
      checkpointInterval: '100ms',
      batch: { wait: '20ms' },
      kafka: { client, brokers: kafka.brokers, topic: 'logs.{namespace}', timeout: '5s' },
      podLabels: ['app', 'team.example.com/*'],
    },
  });
  const module = createLogsModule({
    config,
    log: createLogger((process.env['LOGLEVEL'] ?? 'silent') as 'silent'),
  });
  return { kafka, kubelet, root, pods, config, module };
}

async function records(kafka: KafkaMock, topic: string): Promise<LogRecord[]> {
  try {
    return (await kafka.readTopic(topic, { timeoutMs: 10_000 })).map(
      (r) => JSON.parse(r.value ?? 'null') as LogRecord,
    );
  } catch {
    return [];
  }
}

const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);

function byMessage(got: LogRecord[]): Map<string, LogRecord[]> {
  const m = new Map<string, LogRecord[]>();
  for (const r of got) m.set(r.message, [...(m.get(r.message) ?? []), r]);
  return m;
}

function expectOnceWith(got: Map<string, LogRecord[]>, messages: string[], labels: object): void {
  const wrong = messages.filter((m) => got.get(m)?.length !== 1);
  expect(wrong.slice(0, 5)).toEqual([]);
  for (const m of messages) expect(got.get(m)?.[0]?.labels, m).toEqual(labels);
}

const fileLabels = (c: FakeContainer) => ({
  node: 'node-m',
  namespace: c.namespace,
  pod: c.pod,
  pod_uid: c.uid,
  container: c.container,
  container_id: c.id,
});

describe.skipIf(skip).each(CLIENTS)(
  'log shipper: pod metadata from a kubelet-shaped /pods, Kafka via %s',
  (client) => {
    it('labels every line once with its workload, also for a pod deleted before its lines were read', async () => {
      const { kafka, kubelet, root, pods, module } = await setup(client);
      const web = fakeContainer(root, pods, 'shop', 'web-5f7c9d8b4-q2x7z', 'nginx');
      kubelet.add({
        namespace: 'shop',
        name: web.pod,
        uid: web.uid,
        labels: {
          app: 'web',
          'pod-template-hash': '5f7c9d8b4',
          'team.example.com/owner': 'payments',
          tier: 'x',
        },
        owner: { kind: 'ReplicaSet', name: 'web-5f7c9d8b4' },
        containers: [{ name: 'nginx', id: web.id }],
      });
      writeLines(web.file, 'web', 0, 200);
      const run = startRun(module, lab);
      await run.ready;

      // A pod started after the module: unknown at its first line, fetched on demand.
      const dbPod = kubelet.add({
        namespace: 'shop',
        name: 'db-0',
        owner: { kind: 'StatefulSet', name: 'db' },
        containers: [{ name: 'postgres', id: 'd'.repeat(64) }],
      });
      const db = fakeContainer(root, pods, 'shop', 'db-0', 'postgres', {
        uid: dbPod.metadata!.uid!,
        id: 'd'.repeat(64),
      });
      writeLines(db.file, 'db', 0, 100);

      // A pod that is listed, then deleted (and gone from the list) before its log file is read.
      const scheduled = Math.floor(Date.now() / 60_000);
      const job = kubelet.add({
        namespace: 'batch',
        name: `report-${scheduled}-abcde`,
        owner: { kind: 'Job', name: `report-${scheduled}` },
      });
      const uid = job.metadata!.uid!;
      await waitFor(async () => (await records(kafka, 'logs.shop')).length >= 300, {
        what: 'the first 300 lines',
        timeoutMs: 20_000,
      });
      const listed = kubelet.requests;
      await waitFor(() => kubelet.requests >= listed + 1, { what: 'the module to list the job pod' });
      kubelet.remove(uid);
      const removed = kubelet.requests;
      await waitFor(() => kubelet.requests >= removed + 2, { what: 'the module to see it deleted' });
      // Only now does its log file appear (a slow disk, a module restart: it is read after the pod is gone).
      const gone = fakeContainer(root, pods, 'batch', job.metadata!.name!, 'main', { uid });
      writeLines(gone.file, 'job', 0, 50);

      const shop = await waitFor(
        async () => {
          const got = await records(kafka, 'logs.shop');
          return got.length >= 300 ? got : undefined;
        },
        { what: '300 records on logs.shop', timeoutMs: 20_000 },
      );
      const batch = await waitFor(
        async () => {
          const got = await records(kafka, 'logs.batch');
          return got.length >= 50 ? got : undefined;
        },
        { what: '50 records on logs.batch', timeoutMs: 20_000 },
      );
      await run.stop();

      expect(shop.length).toBe(300);
      expect(batch.length).toBe(50);
      const all = byMessage([...shop, ...batch]);
      expectOnceWith(all, range('web', 0, 200), {
        ...fileLabels(web),
        deployment: 'web',
        replicaset: 'web-5f7c9d8b4',
        pod_labels: { app: 'web', 'team.example.com/owner': 'payments' },
      });
      expectOnceWith(all, range('db', 0, 100), { ...fileLabels(db), statefulset: 'db' });
      expectOnceWith(all, range('job', 0, 50), {
        ...fileLabels(gone),
        job: `report-${scheduled}`,
        cronjob: 'report',
      });
      const metrics = await module.registry.metrics();
      expect(metrics).not.toMatch(/nodeward_logs_lines_without_metadata_total\{[^}]*\} [1-9]/);
    });

    it('keeps shipping while the kubelet fails, labelled from file names and counted, and labels fully once it is back', async () => {
      const { kafka, kubelet, root, pods, module } = await setup(client);
      kubelet.mode = 'unauthorized';
      const api = fakeContainer(root, pods, 'shop', 'api-6b8d7c5f9-k8s2m', 'api');
      kubelet.add({
        namespace: 'shop',
        name: api.pod,
        uid: api.uid,
        labels: { 'pod-template-hash': '6b8d7c5f9' },
        owner: { kind: 'ReplicaSet', name: 'api-6b8d7c5f9' },
        containers: [{ name: 'api', id: api.id }],
      });
      writeLines(api.file, 'api', 0, 100);
      const run = startRun(module, lab);
      await run.ready;
      await waitFor(async () => (await records(kafka, 'logs.shop')).length >= 100, {
        what: 'the first 100 lines',
      });
      const during = await module.registry.metrics();
      expect(during).toMatch(/nodeward_logs_pod_metadata_errors_total\{reason="unauthorized"\} [1-9]/);
      expect(during).toMatch(/nodeward_logs_lines_without_metadata_total\{namespace="shop"\} 100/);

      for (const mode of ['bad_json', 'down'] as const) {
        kubelet.mode = mode;
        const r = kubelet.requests;
        await waitFor(() => kubelet.requests >= r + 1, { what: `a fetch in mode ${mode}` });
      }
      writeLines(api.file, 'api', 100, 150);
      await waitFor(async () => (await records(kafka, 'logs.shop')).length >= 150, { what: '150 lines' });
      kubelet.mode = 'ok';
      const r = kubelet.requests;
      await waitFor(() => kubelet.requests >= r + 2, { what: 'a successful fetch' });
      writeLines(api.file, 'api', 150, 200);
      const got = await waitFor(
        async () => {
          const all = await records(kafka, 'logs.shop');
          return all.length >= 200 ? all : undefined;
        },
        { what: '200 lines' },
      );
      const after = await module.registry.metrics();
      await run.stop();
      expect(got.length).toBe(200);
      const all = byMessage(got);
      expectOnceWith(all, range('api', 0, 150), fileLabels(api));
      expectOnceWith(all, range('api', 150, 200), {
        ...fileLabels(api),
        deployment: 'api',
        replicaset: 'api-6b8d7c5f9',
      });
      for (const reason of ['unauthorized', 'bad_json', 'unreachable'])
        expect(after).toMatch(
          new RegExp(`nodeward_logs_pod_metadata_errors_total\\{reason="${reason}"\\} [1-9]`),
        );
    });
  },
);
