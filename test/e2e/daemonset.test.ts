import { existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../lab/scope.ts';
import { waitFor } from '../lab/wait.ts';
import { type DaemonSetNode, nodeDirEntries, startDaemonSetNode } from './daemonset-node.ts';
import { e2eSkipReason, listenAndLog, parseLine, randomSuffix } from './node.ts';

/**
 * Scenarios of issue 15 on a node that runs nodeward as Kubernetes does (daemonset-node.ts): the
 * DaemonSet's pod from deploy/'s manifests, over containerd's CRI, from the agent image. They run
 * in order on one node: fresh install, config change, rolling upgrade under churn, uninstall.
 */

const skip = e2eSkipReason();
if (skip) console.warn(`daemonset.test.ts skipped: ${skip}`);

const CONFLIST = '/etc/cni/net.d/10-nodeward.conflist';

describe.skipIf(skip !== undefined)('the DaemonSet from deploy/ on a containerd node', () => {
  const lab = new Lab();
  let node: DaemonSetNode;
  beforeAll(async () => {
    node = await startDaemonSetNode(lab);
  }, 300_000);
  afterAll(() => lab.cleanup(), 180_000);

  it('fresh install: the agent pod becomes ready, the conflist appears, pods get addresses, logs reach Kafka, metrics are scraped', async () => {
    expect(existsSync(node.nodePath(CONFLIST))).toBe(false);
    expect((await node.networkReady()).ready).toBe(false);
    const objects = await node.render();
    const pod = await node.install(objects);

    // What the manifest became at the CRI: host namespaces, the memory limit, the mounts' propagation.
    const agent = pod.configs.get('agent')!;
    expect(agent.linux?.security_context?.namespace_options).toMatchObject({ network: 'NODE', pid: 'NODE' });
    expect(Number(agent.linux?.resources?.memory_limit_in_bytes)).toBeGreaterThan(0);
    expect(agent.mounts?.find((m) => m.container_path === '/run/netns')?.propagation).toBe(
      'PROPAGATION_HOST_TO_CONTAINER',
    );
    // The init container installed the shim; the agent, once ready, the conflist.
    expect(nodeDirEntries(node, '/opt/cni/bin')).toContain('nodeward');
    await waitFor(() => existsSync(node.nodePath(CONFLIST)), { what: 'the conflist', timeoutMs: 20_000 });
    await waitFor(async () => (await node.networkReady()).ready, { what: 'NetworkReady', timeoutMs: 20_000 });

    const ns = `fresh-${randomSuffix()}`;
    const pods = await Promise.all(
      [0, 1, 2].map(() =>
        node.kubelet.runPod({
          namespace: ns,
          owner: { kind: 'Deployment', name: 'web' },
          containers: [{ name: 'app', command: listenAndLog(), env: { LINES: '50', RATE: '50' } }],
        }),
      ),
    );
    const ips = pods.map((p) => p.ip);
    expect(new Set(ips).size).toBe(3);
    for (const ip of ips) expect(node.pool.contains(ip)).toBe(true);
    for (const p of pods) expect(await node.podAddresses(p)).toEqual([p.ip]);

    // 3 pods × 2 streams × 50 lines, labelled with the Deployment.
    const topic = `logs.${ns}`;
    const records = await waitFor(
      async () => {
        const r = await node.records(topic);
        return r.length >= 300 ? r : undefined;
      },
      { what: `300 records in ${topic}`, timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect(records.length).toBe(300);
    expect(new Set(records.map((r) => r.labels.deployment))).toEqual(new Set(['web']));
    expect(records.every((r) => parseLine(r.message) !== undefined)).toBe(true);

    const samples = await node.scrape();
    expect(samples.get('node_load1')?.length).toBe(1);
    const cpu = samples.get('container_cpu_usage_seconds_total') ?? [];
    for (const p of pods)
      expect(cpu.some((s) => s.labels['pod'] === p.name && s.labels['container'] === 'app')).toBe(true);

    expect(pod.containers.get('agent')!.restarts).toBe(0);
    for (const p of pods) await node.kubelet.removePod(p);
    expect((await node.ipamCheck()).problems).toEqual([]);
  }, 240_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail')
      console.log(`--- agent log (end) ---\n${node?.agentLog().slice(-8000)}`);
  });

  it.todo('config change');
});
