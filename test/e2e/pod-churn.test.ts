import { existsSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { hostVethName } from '../../ipam-cni/net/names.ts';
import { Lab, type LitePodSpec, run, waitFor } from '../lab/index.ts';
import {
  bridgePorts,
  e2eSkipReason,
  inBatches,
  LISTEN_PORT,
  listenAndLog,
  phases,
  podAddresses,
  randomSuffix,
  startNode,
  tcpReadFromPod,
  waitTcpOk,
} from './node.ts';

/**
 * Scenario 1, pod churn: 30 pods (Deployment, StatefulSet and bare ones) made by kubelet-lite
 * through containerd's CRI and our CNI shim, 5 at a time, then removed 5 at a time. Every pod gets
 * its own address from the pool, on eth0 in its netns; the host and the other pods reach it over
 * TCP; afterwards no veth, handle, netns or address is left.
 */

const reason = e2eSkipReason();
if (reason) console.warn(`[e2e] pod churn skipped: ${reason}`);
const lab = new Lab();
afterAll(() => lab.cleanup(), 300_000);

const PODS = 30;
const AT_ONCE = 5;

it.skipIf(reason)(
  `${PODS} pods ${AT_ONCE} at a time: distinct addresses, reachable from the host and each other; nothing left after removal`,
  async () => {
    const t = phases('pod churn');
    const node = await startNode({ lab });
    t.mark('node up');
    const pool = node.pools[0]!;
    const namespace = `churn-${randomSuffix()}`;
    const specs: LitePodSpec[] = Array.from({ length: PODS }, (_, i) => {
      const containers = [{ name: 'app', command: listenAndLog(), env: { LINES: '2', RATE: '0' } }];
      switch (i % 3) {
        case 0:
          return {
            namespace,
            owner: { kind: 'Deployment', name: 'web' },
            labels: { app: 'web' },
            containers,
          };
        case 1:
          return { namespace, name: `db-${i}`, owner: { kind: 'StatefulSet', name: 'db' }, containers };
        default:
          return { namespace, name: `bare-${i}`, containers };
      }
    });

    const pods = await inBatches(specs, AT_ONCE, (spec) => node.kubelet.runPod(spec));
    t.mark(`${PODS} pods made`);

    // Distinct addresses, all from the pool (never its gateway), each on eth0 in its own netns.
    const ips = pods.map((p) => p.ip);
    expect(new Set(ips).size).toBe(PODS);
    for (const ip of ips) {
      expect(pool.contains(ip), `${ip} in ${pool.cidr}`).toBe(true);
      expect(ip).not.toBe(pool.gateway);
    }
    const inNetns = await inBatches(pods, AT_ONCE, (p) => podAddresses(p));
    expect(inNetns).toEqual(ips.map((ip) => [ip]));
    expect(new Set(pods.map((p) => p.netns)).size).toBe(PODS);
    expect((await bridgePorts(pool.bridge)).length).toBe(PODS);
    const usage = (await node.ipamShow()).find((u) => u.pool === pool.name);
    expect(usage?.used).toBe(PODS);
    expect(usage?.nodes[node.nodeName]?.used).toBe(PODS);

    // The host reaches every pod; every pod reaches the next one.
    await inBatches(pods, AT_ONCE, (p) =>
      waitTcpOk(p.ip, LISTEN_PORT, `pod ${p.name} at ${p.ip} from the host`),
    );
    const answers = await inBatches(pods, AT_ONCE, async (p, i) => {
      const peer = pods[(i + 1) % PODS]!;
      let answer = '';
      await waitFor(
        async () => {
          answer = (await tcpReadFromPod(p, peer.ip, LISTEN_PORT)).trim();
          return answer === 'ok';
        },
        { what: `${peer.ip} from inside ${p.name}`, timeoutMs: 60_000, intervalMs: 200 },
      ).catch(() => {});
      return answer;
    });
    expect(answers).toEqual(pods.map(() => 'ok'));
    t.mark('checked');

    await inBatches(pods, AT_ONCE, (p) => node.kubelet.removePod(p));
    t.mark('removed');

    // DEL is answered once journaled; the veth and the address go right after, in the background.
    await waitFor(async () => (await bridgePorts(pool.bridge)).length === 0 && node.journal().length === 0, {
      what: 'every pod veth off the bridge and the DEL journal drained',
      timeoutMs: 60_000,
      services: [node.agent],
    });
    expect((await node.containerd.cri.call('ListPodSandbox', {})).items).toEqual([]);
    for (const p of pods) {
      expect(existsSync(p.netns!), `netns of ${p.name}`).toBe(false);
      const veth = hostVethName(p.sandboxId, 'eth0');
      expect((await run('ip', ['link', 'show', veth])).code, `host veth ${veth} of ${p.name}`).not.toBe(0);
    }
    const check = await node.ipamCheck();
    expect(check.problems).toEqual([]);
    expect({ allocated: check.allocated, handles: check.handles, kept: check.kept }).toEqual({
      allocated: 0,
      handles: 0,
      kept: 0,
    });
    const after = (await node.ipamShow()).find((u) => u.pool === pool.name);
    expect({ used: after?.used, kept: after?.kept }).toEqual({ used: 0, kept: 0 });
    t.mark('nothing left');
    t.report();
    console.info(`[e2e] ${node.setupTimes}`);
  },
  480_000,
);
