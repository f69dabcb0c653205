import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { imageCommand } from '../../deploy/layout.ts';
import { cgroupDirs, existingCgroupDirs } from '../lab/cri/cgroups.ts';
import { runOk } from '../lab/exec.ts';
import { Lab } from '../lab/scope.ts';
import { waitFor } from '../lab/wait.ts';
import { type DaemonSetNode, nodeDirEntries, startDaemonSetNode } from './daemonset-node.ts';
import {
  e2eSkipReason,
  LISTEN_PORT,
  listenAndLog,
  parseLine,
  randomSuffix,
  type ShippedRecord,
  tcpRead,
  waitTcpOk,
} from './node.ts';

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
    expect(agent.linux?.security_context?.readonly_rootfs).toBe(true);
    // The etcd client Secret: files of mode 0400 (TLS) and the password as env (secretKeyRef).
    expect(agent.envs?.find((e) => e.key === 'NODEWARD_NETWORK__ETCD__PASSWORD')?.value).toBe(
      node.etcd.password,
    );
    const etcdMount = agent.mounts?.find((m) => m.container_path === '/etc/nodeward/etcd');
    expect((statSync(join(etcdMount!.host_path, 'client.key')).mode & 0o777).toString(8)).toBe('400');
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
    // The gratuitous ARP's arp_notify, set inside each pod's netns after the ADD (announcements.ts).
    for (const p of pods) {
      const netns = node.nodePath(p.netns!);
      await waitFor(
        async () =>
          (
            await runOk('nsenter', [`--net=${netns}`, 'cat', '/proc/sys/net/ipv4/conf/eth0/arp_notify'])
          ).trim() === '1',
        { what: `arp_notify in ${p.name}`, timeoutMs: 10_000 },
      );
    }

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
    // container_file_descriptors reads other processes' /proc/<pid>/fd (CAP_SYS_PTRACE).
    const fds = samples.get('container_file_descriptors') ?? [];
    for (const p of pods) {
      expect(cpu.some((s) => s.labels['pod'] === p.name && s.labels['container'] === 'app')).toBe(true);
      const fd = fds.find((s) => s.labels['pod'] === p.name && s.labels['container'] === 'app');
      expect(fd?.value).toBeGreaterThan(0);
    }

    // The image's ENV (deploy/Dockerfile: malloc arenas) reaches the agent's process.
    const agentPids = cgroupDirs(`${pod.cgroupParent}/${pod.containers.get('agent')!.id}`)
      .map((dir) => join(dir, 'cgroup.procs'))
      .filter((file) => existsSync(file))
      .flatMap((file) => readFileSync(file, 'utf8').split('\n').filter(Boolean));
    expect(agentPids.length).toBeGreaterThan(0);
    const environ = readFileSync(`/proc/${agentPids[0]}/environ`, 'utf8').split('\0');
    const imageEnv = Object.entries(imageCommand().env).map(([k, v]) => `${k}=${v}`);
    expect(imageEnv).toContain('MALLOC_ARENA_MAX=2');
    for (const pair of imageEnv) expect(environ).toContain(pair);

    expect(pod.containers.get('agent')!.restarts).toBe(0);
    // A fresh install logs no error and no warning but the expected one (no API server to ask).
    const complaints = node
      .agentLog()
      .split('\n')
      .filter((l) => /"level":"(warn|error|fatal)"/.test(l) && !l.includes('ipam gc: the cluster GC'));
    expect(complaints).toEqual([]);
    for (const p of pods) await node.kubelet.removePod(p);
    expect((await node.ipamCheck()).problems).toEqual([]);
  }, 240_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail')
      console.log(`--- agent log (end) ---\n${node?.agentLog().slice(-8000)}`);
  });

  it('a log burst at full speed: the agent ships it within its memory limit, not restarted', async () => {
    const pod = node.agentPod!;
    const agent = pod.containers.get('agent')!;
    const limit = Number(pod.configs.get('agent')!.linux?.resources?.memory_limit_in_bytes);
    const sent = async () =>
      (await node.scrape()).get('nodeward_logs_lines_sent_total')?.reduce((n, s) => n + s.value, 0) ?? 0;
    const before = await sent();
    // 4 writers × 2 streams × 40,000 lines of 200 bytes, as fast as the shell writes them.
    const LINES = 40_000;
    const ns = `burst-${randomSuffix()}`;
    const writers = await Promise.all(
      [0, 1, 2, 3].map(() =>
        node.kubelet.runPod({
          namespace: ns,
          containers: [{ name: 'app', env: { LINES: String(LINES), RATE: '0', LENGTH: '200' } }],
        }),
      ),
    );
    const total = writers.length * 2 * LINES;
    const started = Date.now();
    await waitFor(async () => (await sent()) - before >= total, {
      what: `${total} lines sent (nodeward_logs_lines_sent_total)`,
      timeoutMs: 180_000,
      intervalMs: 1000,
    });
    const seconds = (Date.now() - started) / 1000;
    const peak = agent.memoryPeak() ?? Number.NaN;
    console.log(
      `burst: ${total} lines of 200 bytes in ${seconds.toFixed(1)} s (${Math.round(total / seconds)} lines/s); agent memory peak ${(peak / 2 ** 20).toFixed(0)} MiB of its ${(limit / 2 ** 20).toFixed(0)} MiB limit`,
    );
    expect(agent.restarts).toBe(0);
    expect(agent.terminations).toEqual([]);
    if (!Number.isNaN(peak)) expect(peak).toBeLessThan(limit);
    for (const w of writers) await node.kubelet.removePod(w);
  }, 300_000);

  // The config the later scenarios run with (the config-change scenario edits it).
  let config: Record<string, unknown>;

  it('config change: editing the ConfigMap rolls the agent and the new value is in effect', async () => {
    const before = node.agentPod!;
    config = node.labConfig();
    const logs = config['logs'] as { kafka: Record<string, unknown> };
    logs.kafka['topic'] = 'edited.{namespace}';
    const objects = await node.render({ config });
    const configMaps = objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name);
    expect(configMaps).toHaveLength(1);
    expect(configMaps[0]).toMatch(/^nodeward-config-[0-9a-f]{10}$/);
    // An unchanged render does not roll; the edited one does, to a new pod.
    expect(await node.rollout(await node.render())).toBe(false);
    expect(await node.rollout(objects)).toBe(true);
    const after = node.agentPod!;
    expect(after.uid).not.toBe(before.uid);
    expect(after.containers.get('agent')!.restarts).toBe(0);

    const ns = `edited-${randomSuffix()}`;
    const pod = await node.kubelet.runPod({
      namespace: ns,
      containers: [{ name: 'app', env: { LINES: '20', RATE: '100' } }],
    });
    const records = await waitFor(
      async () => {
        const r = await node.records(`edited.${ns}`);
        return r.length >= 40 ? r : undefined;
      },
      { what: `40 records in edited.${ns}`, timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect(records).toHaveLength(40);
    expect(await node.records(`logs.${ns}`)).toEqual([]);
    await node.kubelet.removePod(pod);
  }, 240_000);

  it('rolling upgrade under churn: no pod creation fails for good, no address leaked or duplicated, no line lost', async () => {
    await node.tagImage('2');
    const objects = await node.render({ config, tag: '2' });
    const ns = `upgrade-${randomSuffix()}`;
    const topic = `edited.${ns}`;
    // Writers alive across the upgrade: 20 lines/s per stream for ≈ 30 s.
    const LINES = 600;
    const RATE = 20;
    const writers = await Promise.all(
      [0, 1, 2].map(() =>
        node.kubelet.runPod({
          namespace: ns,
          owner: { kind: 'Deployment', name: 'writer' },
          containers: [{ name: 'app', env: { LINES: String(LINES), RATE: String(RATE) } }],
        }),
      ),
    );

    // Churn: pods created and removed the whole time, as many at once as CHURN.
    let churning = true;
    const created: { ip: string; attempts: number; teardownRetries: number }[] = [];
    const failures: string[] = [];
    const churn = async () => {
      while (churning) {
        try {
          const p = await node.kubelet.runPod({
            namespace: ns,
            owner: { kind: 'Deployment', name: 'churn' },
            containers: [{ name: 'app', env: { LINES: '1' } }],
          });
          const record = { ip: p.ip, attempts: p.sandboxAttempts, teardownRetries: 0 };
          created.push(record);
          // Alive together with the writers: two live pods never share an address.
          const live = [...node.kubelet.pods.values()].filter((x) => x.phase === 'Running').map((x) => x.ip);
          expect(new Set(live).size).toBe(live.length);
          await new Promise((r) => setTimeout(r, 500));
          await node.kubelet.removePod(p);
          record.teardownRetries = p.teardownErrors.length;
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    // NetworkReady false streaks, sampled every 100 ms.
    let notReadySince: number | undefined;
    let longestNotReady = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const ready = (await node.networkReady()).ready;
        const now = Date.now();
        if (!ready) notReadySince ??= now;
        else if (notReadySince !== undefined) {
          longestNotReady = Math.max(longestNotReady, now - notReadySince);
          notReadySince = undefined;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const churners = [churn(), churn()];
    await new Promise((r) => setTimeout(r, 5000));
    const upgradeStart = Date.now();
    expect(await node.rollout(objects)).toBe(true);
    const upgradeMs = Date.now() - upgradeStart;
    await new Promise((r) => setTimeout(r, 8000));
    churning = false;
    await Promise.all(churners);
    sampling = false;
    await sampler;

    const retried = created.filter((c) => c.attempts > 1).length;
    const terminating = created.filter((c) => c.teardownRetries > 0).length;
    console.log(
      `upgrade: ${upgradeMs} ms from SIGTERM of the old agent to the new one ready; NetworkReady false for at most ${longestNotReady} ms; ${created.length} pods created during churn, ${retried} needed a retry; ${terminating} removals waited for the new agent`,
    );
    expect(failures).toEqual([]);
    expect(created.length).toBeGreaterThan(5);
    expect(longestNotReady).toBeLessThanOrEqual(upgradeMs + 1000);
    const image = node.agentPod!.configs.get('agent')!.image.image;
    expect(image).toBe('nodeward.lab/nodeward:2');

    // Every line of the writers, exactly once but for a restart's redelivery (≈ 1 s of lines).
    const expected = writers.length * 2 * LINES;
    const writerPods = new Set(writers.map((w) => w.name));
    // Each writer line by the pod of its file name (loss and duplicates whatever the metadata
    // said); the churn pods' lines share the topic and are not counted.
    const tally = (records: ShippedRecord[]) => {
      const byKey = new Map<string, number>();
      let withoutOwner = 0;
      for (const r of records) {
        const line = parseLine(r.message);
        if (!line || !writerPods.has(r.labels.pod ?? '')) continue;
        if (r.labels.deployment !== 'writer') withoutOwner++;
        const key = `${r.labels.pod}/${line.stream}/${line.seq}`;
        byKey.set(key, (byKey.get(key) ?? 0) + 1);
      }
      return { byKey, withoutOwner };
    };
    const { byKey, withoutOwner } = await waitFor(
      async () => {
        const t = tally(await node.records(topic));
        return t.byKey.size >= expected ? t : undefined;
      },
      { what: `the writers' ${expected} lines in ${topic}`, timeoutMs: 120_000, intervalMs: 2000 },
    );
    expect(byKey.size).toBe(expected);
    const duplicates = [...byKey.values()].filter((n) => n > 1).length;
    console.log(
      `upgrade: ${expected} lines shipped, ${duplicates} twice, ${withoutOwner} without the Deployment label`,
    );
    if (withoutOwner > 0)
      console.log(
        `the new agent's warnings:\n${node
          .agentLog()
          .split('\n')
          .filter((l) => /"level":"(warn|error)"/.test(l))
          .join('\n')}`,
      );
    // Every line with its Deployment label: the new agent fetched pod metadata before reading.
    expect(withoutOwner).toBe(0);
    // Per stream at most ≈ 1 s of lines again (RATE per stream, 6 streams).
    expect(duplicates).toBeLessThanOrEqual(RATE * 6);

    // The agent stayed within its memory limit: no restart, no OOM kill.
    const agent = node.agentPod!.containers.get('agent')!;
    expect(agent.restarts).toBe(0);
    const limit = Number(node.agentPod!.configs.get('agent')!.linux?.resources?.memory_limit_in_bytes);
    const peak = agent.memoryPeak();
    if (peak !== undefined) {
      console.log(
        `upgrade: the new agent's memory peak ${(peak / 2 ** 20).toFixed(0)} MiB of its ${(limit / 2 ** 20).toFixed(0)} MiB limit`,
      );
      expect(peak).toBeLessThan(limit);
    }
    for (const w of writers) await node.kubelet.removePod(w);
    expect((await node.ipamCheck()).problems).toEqual([]);
  }, 300_000);

  it('uninstall: the conflist goes, running pods keep their network, nothing is left but the state dir', async () => {
    const ns = `uninstall-${randomSuffix()}`;
    const pod = await node.kubelet.runPod({
      namespace: ns,
      containers: [{ name: 'app', command: listenAndLog(), env: { LINES: '1' } }],
    });
    await waitTcpOk(pod.ip, LISTEN_PORT, `pod ${pod.name} on ${LISTEN_PORT}`);
    const objects = await node.render({ config, tag: '2' });
    const agent = node.agentPod!;
    await node.uninstall();

    expect(existsSync(node.nodePath(CONFLIST))).toBe(false);
    const ready = await node.networkReady();
    expect(ready.ready).toBe(false);
    // The running pod keeps its address and answers.
    expect(await node.podAddresses(pod)).toEqual([pod.ip]);
    expect((await tcpRead(pod.ip, LISTEN_PORT)).trim()).toBe('ok');
    // Nothing left on the node but the documented: the state dir, the shim, no socket, no agent cgroup.
    expect(nodeDirEntries(node, '/run/nodeward')).toEqual([]);
    expect(nodeDirEntries(node, '/etc/cni/net.d')).toEqual([]);
    expect(nodeDirEntries(node, '/var/lib/nodeward').length).toBeGreaterThan(0);
    expect(existingCgroupDirs(agent.cgroupParent)).toEqual([]);

    // Reinstalled, the node takes pods again and the old pod is torn down normally.
    await node.install(objects);
    await waitFor(async () => (await node.networkReady()).ready, { what: 'NetworkReady', timeoutMs: 20_000 });
    await node.kubelet.removePod(pod);
    expect((await node.ipamCheck()).problems).toEqual([]);
  }, 240_000);
});
