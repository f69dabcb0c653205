import { afterAll, expect, it } from 'vitest';
import { Lab, type LiteContainer, type LitePod, waitFor } from '../lab/index.ts';
import { e2eSkipReason, type MetricSample, phases, randomSuffix, startNode } from './node.ts';

/**
 * Scenario 5, metrics: the agent finds containers by the cgroups containerd made under
 * kubelet-lite's pod cgroups (/kubepods/besteffort/pod<uid>/<id>: no Docker on this node), names
 * them from kubelet-lite's /pods, and serves container_* series on /metrics for every running
 * container, labelled pod, namespace, container and image; a removed pod's series go.
 */

const reason = e2eSkipReason();
if (reason) console.warn(`[e2e] metrics skipped: ${reason}`);
const lab = new Lab();
afterAll(() => lab.cleanup(), 300_000);

/** Series every running container must have (cAdvisor names). */
const SERIES = ['container_cpu_usage_seconds_total', 'container_memory_working_set_bytes'];

it.skipIf(reason)(
  'container_* series for every running container, named from the cgroups; gone with the pod',
  async () => {
    const t = phases('metrics');
    const node = await startNode({ lab });
    t.mark('node up');
    const namespace = `metrics-${randomSuffix()}`;
    const idle = (name: string) => ({ name, env: { LINES: '1', RATE: '0' } });
    const pods = await Promise.all([
      node.kubelet.runPod({
        namespace,
        owner: { kind: 'Deployment', name: 'web' },
        containers: [idle('app'), idle('sidecar')],
      }),
      node.kubelet.runPod({
        namespace,
        name: 'db-0',
        owner: { kind: 'StatefulSet', name: 'db' },
        containers: [idle('db')],
      }),
      node.kubelet.runPod({ namespace, name: 'tool', qos: 'burstable', containers: [idle('main')] }),
    ]);
    t.mark('pods made');
    const containers = pods.flatMap((pod) => pod.containers.map((c) => ({ pod, c })));
    expect(containers).toHaveLength(4);

    const ours = (samples: MetricSample[] | undefined) =>
      (samples ?? []).filter((s) => s.labels['namespace'] === namespace);
    const find = (samples: MetricSample[] | undefined, pod: LitePod, c: LiteContainer) =>
      ours(samples).find(
        (s) => s.labels['name'] === c.id && s.labels['container'] === c.name && s.labels['pod'] === pod.name,
      );

    let metrics = await node.scrape();
    await waitFor(
      async () => {
        metrics = await node.scrape();
        return SERIES.every((name) => containers.every(({ pod, c }) => find(metrics.get(name), pod, c)));
      },
      {
        what: `${SERIES.join(', ')} for the ${containers.length} containers`,
        timeoutMs: 60_000,
        services: [node.agent],
      },
    );
    for (const name of SERIES) {
      for (const { pod, c } of containers) {
        const s = find(metrics.get(name), pod, c)!;
        expect(s.labels, `${name} of ${pod.name}/${c.name}`).toMatchObject({
          id: `${pod.cgroupParent}/${c.id}`,
          name: c.id,
          image: node.containerd.workloadImage,
          container: c.name,
          pod: pod.name,
          namespace,
        });
        expect(s.value).toBeGreaterThan(0);
      }
      // The pods' own cgroups too (container="", as the kubelet's cAdvisor shows them).
      for (const pod of pods) {
        const podSeries = ours(metrics.get(name)).find((s) => s.labels['id'] === pod.cgroupParent);
        expect(podSeries?.labels, `${name} of pod ${pod.name}`).toMatchObject({
          pod: pod.name,
          container: '',
          namespace,
        });
      }
    }
    // Only containers of this node's pods, each once per series (the pause containers are unnamed).
    const named = ours(metrics.get('container_memory_working_set_bytes')).filter(
      (s) => s.labels['container'] !== '',
    );
    expect(named.map((s) => s.labels['name']).sort()).toEqual(containers.map(({ c }) => c.id).sort());

    t.mark('series checked');
    const [web, db, tool] = pods as [LitePod, LitePod, LitePod];
    await node.kubelet.removePod(db);
    await waitFor(
      async () => {
        metrics = await node.scrape();
        return ![...metrics.entries()].some(
          ([name, samples]) =>
            name.startsWith('container_') && ours(samples).some((s) => s.labels['pod'] === db.name),
        );
      },
      { what: `every container_* series of ${db.name} to go`, timeoutMs: 60_000, services: [node.agent] },
    );
    for (const name of SERIES)
      for (const pod of [web, tool])
        for (const c of pod.containers)
          expect(find(metrics.get(name), pod, c), `${name} of ${pod.name}/${c.name}`).toBeDefined();

    await node.kubelet.removePod(web);
    await node.kubelet.removePod(tool);
    await waitFor(
      async () => {
        metrics = await node.scrape();
        return ![...metrics.entries()].some(
          ([name, samples]) => name.startsWith('container_') && ours(samples).length > 0,
        );
      },
      { what: `every container_* series of ${namespace} to go`, timeoutMs: 60_000, services: [node.agent] },
    );
    t.mark('removed, series gone');
    t.report();
    console.info(`[e2e] ${node.setupTimes}`);
  },
  180_000,
);
