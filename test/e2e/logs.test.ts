import { readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, expect, it } from 'vitest';
import { Lab, type LitePod, type RotatedLog, waitFor } from '../lab/index.ts';
import { e2eSkipReason, parseLine, phases, randomSuffix, type ShippedRecord, startNode } from './node.ts';

/**
 * Scenario 4, logs: workloads print numbered lines on stdout and stderr, some over 16 KiB (which
 * containerd writes as P parts and an F); kubelet-lite rotates the files at 64 KiB as the kubelet
 * does (rename, ReopenContainerLog, gzip of the older ones); the agent ships every line to the
 * Kafka mock exactly once, whole, labelled with namespace, pod, container and deployment. Read
 * back with kcat. Volume: ≈ 1 MB per container, ≈ 3 MB in all over the topic's partitions (keyed by
 * pod), far under the mock's ≈ 5 MB per-partition trim.
 */

const reason = e2eSkipReason();
if (reason) console.warn(`[e2e] logs skipped: ${reason}`);
const lab = new Lab();
afterAll(() => lab.cleanup(), 300_000);

const MAX_SIZE = 64 * 1024;
const LONG_LENGTH = 40_000;

interface Writer {
  name: string;
  lines: number;
  length: number;
  longEvery: number;
}

const APP: Writer = { name: 'app', lines: 300, length: 150, longEvery: 30 };
const SIDECAR: Writer = { name: 'sidecar', lines: 200, length: 100, longEvery: 0 };

const container = (w: Writer) => ({
  name: w.name,
  env: {
    LINES: String(w.lines),
    RATE: '100',
    LENGTH: String(w.length),
    LONG_EVERY: String(w.longEvery),
    LONG_LENGTH: String(LONG_LENGTH),
    PREFIX: w.name,
  },
});

it.skipIf(reason)(
  'every line reaches Kafka once, whole and labelled, through rotations with gzip',
  async () => {
    const t = phases('logs');
    const node = await startNode({ lab, rotation: { maxSize: MAX_SIZE, maxFiles: 4 } });
    t.mark('node up');
    const namespace = `logs-${randomSuffix()}`;
    const rotations: RotatedLog[] = [];
    const gzSeen = new Set<string>();
    let rotating = true;
    // The kubelet's log manager, on a short period; gzip of the older rotations seen as they come.
    const rotator = (async () => {
      while (rotating) {
        rotations.push(...(await node.kubelet.rotateLogs()));
        for (const r of rotations)
          for (const f of safeReaddir(dirname(r.log)))
            if (f.endsWith('.gz')) gzSeen.add(`${dirname(r.log)}/${f}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    lab.defer('stop rotating', async () => {
      rotating = false;
      await rotator.catch(() => {});
    });

    const pods: { pod: LitePod; deployment: string; writers: Writer[] }[] = [];
    const started = await Promise.all([
      node.kubelet.runPod({
        namespace,
        owner: { kind: 'Deployment', name: 'web' },
        containers: [container(APP)],
      }),
      node.kubelet.runPod({
        namespace,
        owner: { kind: 'Deployment', name: 'web' },
        containers: [container(APP)],
      }),
      node.kubelet.runPod({
        namespace,
        owner: { kind: 'Deployment', name: 'api' },
        containers: [container(APP), container(SIDECAR)],
      }),
    ]);
    pods.push(
      { pod: started[0], deployment: 'web', writers: [APP] },
      { pod: started[1], deployment: 'web', writers: [APP] },
      { pod: started[2], deployment: 'api', writers: [APP, SIDECAR] },
    );
    t.mark('pods made');
    const expected = new Map<string, { length: number; deployment: string }>();
    for (const { pod, deployment, writers } of pods)
      for (const w of writers)
        for (const stream of ['stdout', 'stderr'])
          for (let seq = 1; seq <= w.lines; seq++) {
            const long = w.longEvery > 0 && seq % w.longEvery === 0;
            expected.set(`${pod.name}/${w.name}/${stream}/${seq}`, {
              length: long ? LONG_LENGTH : w.length,
              deployment,
            });
          }

    const keyOf = (r: ShippedRecord) => {
      const line = parseLine(r.message);
      return line
        ? `${r.labels.pod}/${r.labels.container}/${line.stream}/${line.seq}`
        : `unparsed:${r.message.slice(0, 60)}`;
    };
    let records: ShippedRecord[] = [];
    await waitFor(
      async () => {
        records = await node.records(namespace);
        const seen = new Set(records.map(keyOf));
        return [...expected.keys()].every((k) => seen.has(k));
      },
      {
        what: `${expected.size} lines on logs.${namespace}`,
        timeoutMs: 90_000,
        intervalMs: 1000,
        services: [node.agent],
      },
    ).catch((err: unknown) => {
      const seen = new Set(records.map(keyOf));
      const lost = [...expected.keys()].filter((k) => !seen.has(k));
      throw new Error(
        `${lost.length} of ${expected.size} lines missing, e.g. ${lost.slice(0, 5).join(', ')}`,
        {
          cause: err,
        },
      );
    });
    t.mark(`${expected.size} lines on Kafka`);
    rotating = false;
    await rotator;

    // Exactly once, nothing else on the topic.
    const counts = new Map<string, number>();
    for (const r of records) counts.set(keyOf(r), (counts.get(keyOf(r)) ?? 0) + 1);
    const doubled = [...counts].filter(([, n]) => n > 1).map(([k, n]) => `${k} ×${n}`);
    const unexpected = [...counts.keys()].filter((k) => !expected.has(k));
    expect({ doubled: doubled.slice(0, 10), unexpected: unexpected.slice(0, 10) }).toEqual({
      doubled: [],
      unexpected: [],
    });
    expect(records).toHaveLength(expected.size);

    // Whole (P parts merged with their F), labelled.
    const byPod = new Map(pods.map((p) => [p.pod.name, p.pod]));
    for (const r of records) {
      const want = expected.get(keyOf(r))!;
      const pod = byPod.get(String(r.labels.pod))!;
      expect(r.message.length, keyOf(r)).toBe(want.length);
      expect(r.stream).toBe(parseLine(r.message)!.stream);
      expect({ partial: r.partial, truncated: r.truncated, parse_error: r.parse_error }).toEqual({
        partial: undefined,
        truncated: undefined,
        parse_error: undefined,
      });
      expect(r.labels).toMatchObject({
        namespace,
        pod: pod.name,
        pod_uid: pod.uid,
        container: expect.stringMatching(/^(app|sidecar)$/),
        deployment: want.deployment,
        node: node.nodeName,
      });
      expect(r.labels.container_id).toBe(pod.containers.find((c) => c.name === r.labels.container)?.id);
    }

    // The rotations happened, with gzip: every container of ≈ 1 MB was rotated more than once.
    const apps = pods.flatMap(({ pod }) => pod.containers.filter((c) => c.name === 'app'));
    for (const c of apps) expect(rotations.filter((r) => r.containerId === c.id).length).toBeGreaterThan(1);
    expect(gzSeen.size).toBeGreaterThan(0);
    // containerd did split the long lines: P parts are on disk (in the files kubelet-lite kept).
    const onDisk = apps.flatMap((c) =>
      safeReaddir(dirname(c.logPath)).map((f) => {
        const path = `${dirname(c.logPath)}/${f}`;
        const data = readFileSync(path);
        return (f.endsWith('.gz') ? gunzipSync(data) : data).toString('utf8');
      }),
    );
    expect(onDisk.some((text) => / std(out|err) P /.test(text))).toBe(true);
    // Every record names the file it came from: the live log or one of its rotations.
    const files = new Set(records.map((r) => r.file.replace(/\/0\.log(\.\d{8}-\d{6}(\.gz)?)?$/, '/0.log')));
    expect([...files].sort()).toEqual(pods.flatMap(({ pod }) => pod.containers.map((c) => c.logPath)).sort());
    t.mark('checked');
    t.report();
    console.info(`[e2e] ${node.setupTimes}`);
  },
  240_000,
);

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
