import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../shared/config/index.ts';
import { createLogger } from '../shared/logger.ts';
import { Lab, tempDir, waitFor } from '../test/lab/index.ts';
import {
  criLine,
  type FakeContainer,
  fakeContainer,
  readRecords,
  startRun,
  testConfig,
  writeLines,
} from '../test/support/log-shipper/harness.ts';
import { type FakeKubelet, type FakePodSpec, startFakeKubelet } from '../test/support/pods/fake-kubelet.ts';
import { createLogsModule } from './index.ts';
import { checkpointPath } from './pipeline.ts';

/**
 * The pod rules (pod-rules.ts), end to end into the file sink: exclusion (namespace list,
 * pod annotation, per container), the per-pod rate limit, multi-line grouping by a start pattern
 * from a pod annotation. Pod metadata from a kubelet-shaped /pods (test/support/pods/fake-kubelet.ts).
 */

const lab = new Lab();
afterEach(() => lab.cleanup());

type LogsInput = NonNullable<ConfigInput['logs']>;

async function setup(logs: LogsInput = {}) {
  const dir = await tempDir('logs-route', lab);
  const kubelet = await startFakeKubelet(dir, { tls: false });
  lab.defer('stop the fake kubelet', () => kubelet.close());
  const root = join(dir, 'containers');
  const pods = join(dir, 'pods');
  const out = join(dir, 'out.jsonl');
  mkdirSync(root, { recursive: true });
  const config = testConfig({
    node: { name: 'node-r' },
    dataDir: join(dir, 'data'),
    pods: kubelet.podsConfig({ pollInterval: '200ms', refreshMinInterval: '50ms' }),
    logs: {
      root,
      sink: 'file',
      file: { path: out },
      pollInterval: '50ms',
      checkpointInterval: '100ms',
      batch: { wait: '20ms' },
      ...logs,
    },
  });
  const module = createLogsModule({ config, log: createLogger('silent') });
  return { kubelet, root, pods, out, config, module };
}

/** A pod listed by the kubelet, with one log file per container. */
function pod(
  kubelet: FakeKubelet,
  root: string,
  pods: string,
  spec: Omit<FakePodSpec, 'containers'> & { containers?: string[] },
): FakeContainer[] {
  const names = spec.containers ?? ['app'];
  const ids = names.map((_, i) => `${i}`.repeat(64).slice(0, 64).replace(/^./, 'a'));
  const listed = kubelet.add({ ...spec, containers: names.map((name, i) => ({ name, id: ids[i]! })) });
  return names.map((name, i) =>
    fakeContainer(root, pods, spec.namespace, spec.name, name, { uid: listed.metadata!.uid!, id: ids[i]! }),
  );
}

function savedOffsets(dataDir: string): Map<string, number> {
  if (!existsSync(checkpointPath(dataDir))) return new Map();
  const saved = JSON.parse(readFileSync(checkpointPath(dataDir), 'utf8')) as {
    files: { realPath: string; offset: number }[];
  };
  return new Map(saved.files.map((f) => [f.realPath, f.offset]));
}

const metricValue = (text: string, series: string) => {
  const escaped = series.replace(/[{}"=,.]/g, (c) => `\\${c}`);
  return Number(new RegExp(`^${escaped} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
};

describe('log shipper: exclusion, rate limit and multi-line records, per pod', () => {
  it('skips excluded namespaces, pods and containers, and still moves their checkpoints', async () => {
    const { kubelet, root, pods, out, config, module } = await setup({
      exclude: { namespaces: ['kube-system'] },
    });
    const [sys] = pod(kubelet, root, pods, { namespace: 'kube-system', name: 'coredns-1' });
    const [quiet] = pod(kubelet, root, pods, {
      namespace: 'shop',
      name: 'quiet',
      annotations: { 'nodeward.io/logs': 'false' },
    });
    const [app, sidecar] = pod(kubelet, root, pods, {
      namespace: 'shop',
      name: 'web',
      containers: ['app', 'sidecar'],
      annotations: { 'nodeward.io/logs.sidecar': 'False' },
    });
    for (const c of [sys!, quiet!, app!, sidecar!]) writeLines(c.file, c.pod + c.container, 0, 100);
    const run = startRun(module, lab);
    await run.ready;
    await waitFor(() => readRecords(out).length >= 100, { what: "the web app's lines" });
    await waitFor(
      () =>
        [sys!, quiet!, app!, sidecar!].every(
          (c) => savedOffsets(config.dataDir).get(c.file) === statSync(c.file).size,
        ),
      { what: 'every checkpoint at the end of its file' },
    );
    const metrics = await module.registry.metrics();
    await run.stop();
    const got = readRecords(out);
    expect(got.length).toBe(100);
    expect(new Set(got.map((r) => `${r.labels.pod}/${r.labels.container}`))).toEqual(new Set(['web/app']));
    expect(
      metricValue(metrics, 'nodeward_logs_lines_dropped_total{namespace="kube-system",reason="excluded"}'),
    ).toBe(100);
    expect(
      metricValue(metrics, 'nodeward_logs_lines_dropped_total{namespace="shop",reason="excluded"}'),
    ).toBe(200);
  });

  it('limits lines per second per pod across its containers, counting what it drops', async () => {
    const { kubelet, root, pods, out, module } = await setup({
      rateLimit: { linesPerSecond: 200, burst: 100 },
    });
    const [a, b] = pod(kubelet, root, pods, { namespace: 'shop', name: 'noisy', containers: ['a', 'b'] });
    const [calm] = pod(kubelet, root, pods, { namespace: 'shop', name: 'calm' });
    const run = startRun(module, lab);
    await run.ready;
    const started = Date.now();
    writeLines(a!.file, 'a', 0, 1500);
    writeLines(b!.file, 'b', 0, 1500);
    // The calm pod writes 150 lines over ≈ 1.5 s: well under its own budget.
    for (let i = 0; i < 15; i++) {
      writeLines(calm!.file, 'calm', i * 10, i * 10 + 10);
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitFor(
      async () => {
        const m = await module.registry.metrics();
        const noisy = readRecords(out).filter((r) => r.labels.pod === 'noisy').length;
        return (
          noisy +
            metricValue(m, 'nodeward_logs_lines_dropped_total{namespace="shop",reason="rate_limit"}') ===
          3000
        );
      },
      { what: 'every noisy line shipped or dropped' },
    );
    await waitFor(() => readRecords(out).filter((r) => r.labels.pod === 'calm').length === 150, {
      what: 'the calm pod',
    });
    const elapsed = (Date.now() - started) / 1000;
    await run.stop();
    const noisy = readRecords(out).filter((r) => r.labels.pod === 'noisy').length;
    // The burst, then the rate for as long as lines kept coming: far below 3000.
    expect(noisy).toBeGreaterThanOrEqual(100);
    expect(noisy).toBeLessThanOrEqual(100 + 200 * elapsed + 1);
  });

  it('groups stack traces by the pod’s start pattern, per container, and never checkpoints inside a record', async () => {
    const { kubelet, root, pods, out, config, module } = await setup({ multiline: { timeout: '1s' } });
    const [java, plain] = pod(kubelet, root, pods, {
      namespace: 'shop',
      name: 'java',
      containers: ['app', 'plain'],
      annotations: { 'nodeward.io/multiline-start.app': '^\\d{4}-\\d\\d-\\d\\d ' },
    });
    const lines = (file: string, ...messages: string[]) =>
      appendFileSync(file, messages.map((m) => criLine(m)).join(''));
    lines(
      java!.file,
      'preamble',
      '2026-11-22 ERROR boom',
      '\tat a(A.java:1)',
      '\tat b(B.java:2)',
      '2026-11-22 INFO ok',
    );
    lines(plain!.file, '2026-11-22 x', '\tat y');
    const run = startRun(module, lab);
    await run.ready;
    // The last record is shipped after the timeout, no next start line needed.
    await waitFor(() => readRecords(out).length >= 5, { what: '5 records' });
    const first = readRecords(out);
    expect(first.filter((r) => r.labels.container === 'app').map((r) => r.message)).toEqual([
      'preamble',
      '2026-11-22 ERROR boom\n\tat a(A.java:1)\n\tat b(B.java:2)',
      '2026-11-22 INFO ok',
    ]);
    // No annotation for this container: line by line.
    expect(first.filter((r) => r.labels.container === 'plain').map((r) => r.message)).toEqual([
      '2026-11-22 x',
      '\tat y',
    ]);

    // A record still open at shutdown is not checkpointed past its first line: read again whole.
    await waitFor(() => savedOffsets(config.dataDir).get(java!.file) === statSync(java!.file).size, {
      what: 'the checkpoint at the end',
    });
    const before = statSync(java!.file).size;
    await run.stop();
    const run2 = startRun(module, lab);
    await run2.ready;
    lines(java!.file, '2026-11-22 ERROR again', '\tat c(C.java:3)');
    await waitFor(() => savedOffsets(config.dataDir).get(java!.file) === before, { what: 'a checkpoint' });
    await new Promise((r) => setTimeout(r, 100));
    await run2.stop();
    expect(savedOffsets(config.dataDir).get(java!.file)).toBe(before);
    const run3 = startRun(module, lab);
    await run3.ready;
    lines(java!.file, '\tat d(D.java:4)', '2026-11-22 INFO done');
    await waitFor(() => readRecords(out).length >= 7, { what: '7 records' });
    await new Promise((r) => setTimeout(r, 500));
    await run3.stop();
    expect(
      readRecords(out)
        .slice(5)
        .map((r) => r.message),
    ).toEqual(['2026-11-22 ERROR again\n\tat c(C.java:3)\n\tat d(D.java:4)', '2026-11-22 INFO done']);
  });

  it('waits for the metadata of a pod it does not know yet: its rules and labels apply from its first line', async () => {
    const { kubelet, root, pods, out, module } = await setup({ unknownPodWait: '2s' });
    const run = startRun(module, lab);
    await run.ready;
    // The runtime writes before the kubelet's /pods lists the pod.
    const ids = { quiet: 'b'.repeat(64), web: 'c'.repeat(64), ghost: 'd'.repeat(64) };
    const quiet = fakeContainer(root, pods, 'shop', 'quiet-1', 'app', { id: ids.quiet });
    const web = fakeContainer(root, pods, 'shop', 'web-5d8f9c7b6-x2x9q', 'app', { id: ids.web });
    const ghost = fakeContainer(root, pods, 'shop', 'ghost-1', 'app', { id: ids.ghost });
    for (const c of [quiet, web, ghost]) writeLines(c.file, c.pod, 0, 20);
    // Several fetches and polls: read at once, these lines would have left already.
    await new Promise((r) => setTimeout(r, 700));
    expect(readRecords(out)).toEqual([]);
    kubelet.add({
      namespace: 'shop',
      name: quiet.pod,
      uid: quiet.uid,
      annotations: { 'nodeward.io/logs': 'false' },
      containers: [{ name: 'app', id: ids.quiet }],
    });
    kubelet.add({
      namespace: 'shop',
      name: web.pod,
      uid: web.uid,
      owner: { kind: 'ReplicaSet', name: 'web-5d8f9c7b6' },
      labels: { 'pod-template-hash': '5d8f9c7b6' },
      containers: [{ name: 'app', id: ids.web }],
    });
    // The ghost is never listed: after unknownPodWait its lines go with the file name's labels.
    await waitFor(() => readRecords(out).length >= 40, { what: '40 lines', timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    await run.stop();
    const got = readRecords(out);
    const byPod = (name: string) => got.filter((r) => r.labels.pod === name);
    expect(got).toHaveLength(40);
    expect(byPod(quiet.pod)).toEqual([]);
    expect(byPod(web.pod).map((r) => r.labels.deployment)).toEqual(Array(20).fill('web'));
    expect(
      byPod(ghost.pod).map((r) => [r.labels.namespace, r.labels.container, r.labels.deployment]),
    ).toEqual(Array(20).fill(['shop', 'app', undefined]));
  });
});
