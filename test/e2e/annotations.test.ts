import { afterAll, expect, it } from 'vitest';
import { Lab, type LitePod, type LitePodSpec, waitFor } from '../lab/index.ts';
import {
  bridgePorts,
  e2eSkipReason,
  LISTEN_PORT,
  listenAndLog,
  phases,
  podAddresses,
  randomSuffix,
  startNode,
  waitTcpOk,
} from './node.ts';

/**
 * Scenario 2, annotations through the runtime: kubelet-lite puts them on the sandbox, containerd
 * hands them to the plugin as runtimeConfig["io.kubernetes.cri.pod-annotations"] (a capability
 * the conflist of `cni install` declares), and the agent acts on them: `nodeward.io/ipam-pool`
 * picks a second pool, `nodeward.io/ip` a given address, `nodeward.io/sticky-ip: "true"` keeps the
 * address across re-creation; so does a StatefulSet owner (network.cni.stickyStatefulSets, from
 * kubelet-lite's /pods).
 */

const reason = e2eSkipReason();
if (reason) console.warn(`[e2e] annotations skipped: ${reason}`);
const lab = new Lab();
afterAll(() => lab.cleanup(), 300_000);

it.skipIf(reason)(
  'ipam-pool, ip and sticky-ip annotations take effect; a sticky StatefulSet pod gets its address back',
  async () => {
    const t = phases('annotations');
    const node = await startNode({ lab, pools: 2, stickyStatefulSets: true });
    t.mark('node up');
    const [first, second] = node.pools as [(typeof node.pools)[0], (typeof node.pools)[0]];
    const namespace = `annot-${randomSuffix()}`;
    const containers = [{ name: 'app', command: listenAndLog(), env: { LINES: '1', RATE: '0' } }];
    const run = (spec: Omit<LitePodSpec, 'containers' | 'namespace'>) =>
      node.kubelet.runPod({ namespace, containers, ...spec });
    const reachable = async (pod: LitePod) => {
      expect(await podAddresses(pod)).toEqual([pod.ip]);
      await waitTcpOk(pod.ip, LISTEN_PORT, `pod ${pod.name} at ${pod.ip}`);
    };

    // nodeward.io/ipam-pool: the second pool, on its own bridge.
    const inSecond = await run({ name: 'in-second', annotations: { 'nodeward.io/ipam-pool': second.name } });
    expect(second.contains(inSecond.ip), `${inSecond.ip} in ${second.cidr}`).toBe(true);
    await reachable(inSecond);
    expect(await bridgePorts(second.bridge)).toHaveLength(1);

    // nodeward.io/ip: exactly that address (of the conflist's pool).
    const wanted = first.address(200);
    const fixed = await run({ name: 'fixed', annotations: { 'nodeward.io/ip': wanted } });
    expect(fixed.ip).toBe(wanted);
    await reachable(fixed);

    // Without annotations: the conflist's pool.
    const plain = await run({ name: 'plain' });
    expect(first.contains(plain.ip), `${plain.ip} in ${first.cidr}`).toBe(true);

    // Sticky by annotation (a bare pod) and by owner (a StatefulSet pod).
    const keeperSpec = { name: 'keeper', annotations: { 'nodeward.io/sticky-ip': 'true' } };
    const dbSpec = { name: 'db-0', owner: { kind: 'StatefulSet', name: 'db' } } as const;
    const keeper = await run(keeperSpec);
    const db = await run(dbSpec);
    const stickyPods = (await node.ipamSticky()).map((s) => s.pod.split('/').slice(0, 2).join('/')).sort();
    expect(stickyPods).toEqual([`${namespace}/db-0`, `${namespace}/keeper`]);
    for (const p of [keeper, db, plain]) await reachable(p);

    t.mark('6 pods made, checked');
    for (const p of [keeper, db, plain]) await node.kubelet.removePod(p);
    await waitFor(async () => (await node.ipamShow()).find((u) => u.pool === first.name)?.used === 1, {
      what: 'only the fixed pod holding an address of the first pool',
      timeoutMs: 60_000,
      services: [node.agent],
    });
    const usage = (await node.ipamShow()).find((u) => u.pool === first.name);
    expect({ used: usage?.used, kept: usage?.kept }).toEqual({ used: 1, kept: 2 });

    // Others come and go meanwhile: none of them gets a kept address.
    const others = await Promise.all([
      run({ name: 'other-1' }),
      run({ name: 'other-2' }),
      run({ name: 'other-3' }),
    ]);
    for (const o of others) expect([keeper.ip, db.ip]).not.toContain(o.ip);

    // Made again under the same namespace/name (new UID, new sandbox): the same addresses.
    const keeper2 = await run(keeperSpec);
    const db2 = await run(dbSpec);
    expect(keeper2.uid).not.toBe(keeper.uid);
    expect({ keeper: keeper2.ip, db: db2.ip }).toEqual({ keeper: keeper.ip, db: db.ip });
    await reachable(keeper2);
    await reachable(db2);

    const check = await node.ipamCheck();
    expect(check.problems).toEqual([]);
    // fixed, in-second, the three others, keeper and db-0 again.
    expect(check.allocated).toBe(7);
    t.mark('removed, made again, checked');
    t.report();
    console.info(`[e2e] ${node.setupTimes}`);
  },
  240_000,
);
