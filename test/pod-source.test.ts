import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetricsModule } from '../agent/metrics/index.ts';
import { createLogsModule } from '../log-shipper/index.ts';
import { createLogger } from '../shared/logger.ts';
import { Lab, tempDir, waitFor } from './lab/index.ts';
import {
  fakeContainer,
  readRecords,
  startRun,
  testConfig,
  writeLines,
} from './support/log-shipper/harness.ts';
import { fixture, parseExposition } from './support/metrics/testing.ts';
import { startFakeApiServer } from './support/pods/fake-apiserver.ts';
import { startFakeKubelet } from './support/pods/fake-kubelet.ts';

/**
 * The top-level `pods` section feeds the modules from one source. There is no kubelet and no
 * kube-apiserver in the lab: shared/pods/fake-kubelet.ts and fake-apiserver.ts serve JSON shaped
 * exactly like theirs (a v1 PodList; list + watch of core/v1 pods with a field selector).
 */

const lab = new Lab();
afterEach(() => lab.cleanup());

const POD_UID = '0b7c5a2e-9f3d-4c1e-8a6b-2d4f6e8a0c1b';
const ID = '3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a';

describe('pods.source', () => {
  it('kubelet: the metrics module names containers found by cgroup (containerd/CRI-O node)', async () => {
    const dir = await tempDir('pods-kubelet', lab);
    const kubelet = await startFakeKubelet(dir);
    lab.defer('stop the fake kubelet', () => kubelet.close());
    kubelet.add({ namespace: 'shop', name: 'web-0', uid: POD_UID, containers: [{ name: 'nginx', id: ID }] });
    const config = testConfig({
      pods: kubelet.podsConfig({ pollInterval: '200ms' }),
      metrics: {
        procRoot: fixture('host/proc'),
        containers: { source: 'cgroups', cgroupRoot: fixture('cgroup-v2') },
      },
    });
    const module = createMetricsModule({ config, log: createLogger('silent') });
    const run = startRun(module, lab);
    await run.ready;
    const named = async () =>
      parseExposition(await module.registry.metrics())
        .get('container_memory_working_set_bytes')
        ?.samples.find((s) => s.labels['container'] === 'nginx');
    const sample = await waitFor(named, {
      what: 'container_memory_working_set_bytes named from the kubelet',
    });
    expect(sample.labels).toMatchObject({ pod: 'web-0', namespace: 'shop', name: ID });
    await run.stop();
  });

  it('apiserver: log lines get pod labels and the deployment from the watch of this node', async () => {
    const dir = await tempDir('pods-apiserver', lab);
    const api = await startFakeApiServer(dir);
    lab.defer('stop the fake API server', () => api.close());
    const root = join(dir, 'containers');
    const podsDir = join(dir, 'pods');
    const out = join(dir, 'out.jsonl');
    const config = testConfig({
      node: { name: 'node-w' },
      dataDir: join(dir, 'data'),
      pods: api.podsConfig(),
      logs: {
        root,
        sink: 'file',
        file: { path: out },
        pollInterval: '50ms',
        batch: { wait: '20ms' },
        podLabels: ['app'],
      },
    });
    const module = createLogsModule({ config, log: createLogger('silent') });
    const run = startRun(module, lab);
    await run.ready;
    // Bound to this node after the agent started: known from the watch before its first line.
    const id = 'b'.repeat(64);
    const listed = api.add({
      namespace: 'shop',
      name: 'web-7d9f8c6b5-x2k4p',
      node: 'node-w',
      labels: { app: 'web', 'pod-template-hash': '7d9f8c6b5' },
      owner: { kind: 'ReplicaSet', name: 'web-7d9f8c6b5' },
      containers: [{ name: 'app', id }],
    });
    const c = fakeContainer(root, podsDir, 'shop', 'web-7d9f8c6b5-x2k4p', 'app', {
      uid: listed.metadata!.uid!,
      id,
    });
    writeLines(c.file, 'web', 0, 50);
    await waitFor(() => readRecords(out).length >= 50, { what: 'the 50 lines' });
    await run.stop();
    const records = readRecords(out);
    expect(records.length).toBe(50);
    for (const r of records)
      expect(r.labels).toMatchObject({
        namespace: 'shop',
        pod: 'web-7d9f8c6b5-x2k4p',
        container: 'app',
        deployment: 'web',
        pod_labels: { app: 'web' },
      });
    expect(api.requests.list).toBe(1);
  });
});
