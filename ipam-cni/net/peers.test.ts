import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Etcd, kernelHasVxlan, Lab, run, runOk, skipReason, startEtcd } from '../../test/lab/index.ts';
import { EtcdStore } from '../store/etcd.ts';
import { netnsRunner } from './exec.ts';
import { Segments, vtepKey } from './segment.ts';

/**
 * VXLAN peers coming and going, with the segment code in real network namespaces (one per node,
 * a veth as uplink each) and real etcd: a node that stops cleanly deletes its vtep key, and the
 * others remove its flood entry at their next sync once the grace has passed.
 */

const reason =
  skipReason({ binaries: ['etcd', 'etcdctl', 'ip', 'bridge', 'nsenter'] }) ??
  (process.getuid?.() === 0 ? undefined : 'needs root (network namespaces)');
if (reason) console.warn(`[lab] VXLAN peer tests skipped: ${reason}`);

const lab = new Lab();
const suffix = randomBytes(3).toString('hex');
const prefix = `/nodeward-peers-${suffix}/ipam/v1/`;
const nodes = ['a', 'b', 'c'] as const;
const nsOf = (n: string) => `nw-peer${n}-${suffix}`;
const addressOf = (n: string) => `10.91.0.${nodes.indexOf(n as (typeof nodes)[number]) + 1}`;
const VNI = 300;
const segment = { mode: 'vxlan' as const, id: VNI };
let etcd: Etcd;
const stores: EtcdStore[] = [];
let clock = 0;

afterAll(async () => {
  for (const s of stores) await s.close().catch(() => {});
  await run('ip', ['-force', '-batch', '-'], { input: nodes.map((n) => `netns del ${nsOf(n)}\n`).join('') });
  await lab.cleanup();
});

async function node(name: string, peerGraceMs: number, livenessKeys = false): Promise<Segments> {
  const store = await EtcdStore.open({
    endpoints: etcd.endpoints,
    prefix,
    dialTimeoutMs: 1000,
    requestTimeoutMs: 3000,
  });
  stores.push(store);
  return new Segments({
    host: netnsRunner(`/run/netns/${nsOf(name)}`),
    store,
    node: `node-${name}`,
    master: 'up0',
    localAddress: undefined,
    vxlanPort: 4789,
    mtu: undefined,
    peerGraceMs,
    livenessKeys,
    now: () => clock,
  });
}

/** Destinations of the all-zero (flood) fdb entries on the node's VXLAN device. */
async function floods(name: string, vni = VNI): Promise<string[]> {
  const out = await runOk('bridge', ['-n', nsOf(name), '-j', 'fdb', 'show', 'dev', `vx${vni}`]);
  return (JSON.parse(out || '[]') as { mac: string; dst?: string }[])
    .filter((f) => f.mac === '00:00:00:00:00:00' && f.dst)
    .map((f) => f.dst!)
    .sort();
}

describe.skipIf(reason)('VXLAN peers that leave', () => {
  beforeAll(async () => {
    const vx = await kernelHasVxlan();
    if (!vx.ok) throw new Error(vx.reason);
    etcd = await startEtcd({ lab });
    for (const n of nodes) {
      await runOk('ip', ['netns', 'add', nsOf(n)]);
      await runOk('ip', ['-n', nsOf(n), 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0p']);
      await runOk('ip', ['-n', nsOf(n), 'link', 'set', 'up0p', 'up']);
      await runOk('ip', ['-n', nsOf(n), 'addr', 'add', `${addressOf(n)}/24`, 'dev', 'up0']);
      await runOk('ip', ['-n', nsOf(n), 'link', 'set', 'up0', 'up']);
    }
  });

  it('a peer whose key is deleted (clean stop) loses its flood entry at the next sync after the grace', async () => {
    const a = await node('a', 10_000);
    const b = await node('b', 0);
    const c = await node('c', 0);
    await a.ensure(segment, 'vx');
    await b.ensure(segment, 'vx');
    await c.ensure(segment, 'vx');
    await a.refresh();
    expect(await floods('a')).toEqual([addressOf('b'), addressOf('c')]);
    expect((await a.refresh()).find((h) => h.segment === `vxlan/${VNI}`)?.peers).toBe(2);

    // b stops cleanly: its key goes, and only its.
    await b.unpublish();
    const keys = await etcd.etcdctl(['get', '--prefix', '--keys-only', `${prefix}vteps/${VNI}/`]);
    expect(keys.split('\n').filter(Boolean)).toEqual([
      `${prefix}${vtepKey(VNI, 'node-a')}`,
      `${prefix}${vtepKey(VNI, 'node-c')}`,
    ]);

    // Within a's grace (an agent restart), the entry stays; c (grace 0) drops it at once.
    await a.refresh();
    await c.refresh();
    expect(await floods('a')).toEqual([addressOf('b'), addressOf('c')]);
    expect(await floods('c')).toEqual([addressOf('a')]);

    // b comes back within the grace (adopting its existing links): the entry never went.
    clock += 5_000;
    const b2 = await node('b', 0);
    expect(await b2.adopt([{ name: 'vx', segment }])).toBe(1);
    await a.refresh();
    clock += 6_000;
    await a.refresh();
    expect(await floods('a')).toEqual([addressOf('b'), addressOf('c')]);
    await c.refresh();
    expect(await floods('c')).toEqual([addressOf('a'), addressOf('b')]);

    // b leaves for good (stops cleanly, never comes back): gone once the grace has passed.
    await b2.unpublish();
    await a.refresh();
    clock += 9_999;
    await a.refresh();
    expect(await floods('a')).toEqual([addressOf('b'), addressOf('c')]);
    clock += 1;
    const health = await a.refresh();
    expect(await floods('a')).toEqual([addressOf('c')]);
    expect(health.find((h) => h.segment === `vxlan/${VNI}`)?.peers).toBe(1);
  });

  it('with liveness keys: a peer whose presence lease ended (no clean stop) loses its flood entry', async () => {
    const seg = { mode: 'vxlan' as const, id: 301 };
    const live = (n: string) => `${prefix}nodes/node-${n}`;
    await etcd.etcdctl(['put', live('a'), 'x']);
    await etcd.etcdctl(['put', live('c'), 'x']);
    const a = await node('a', 0, true);
    const c = await node('c', 0, true);
    await a.ensure(seg, 'vx301');
    await c.ensure(seg, 'vx301');
    await a.refresh();
    expect(await floods('a', 301)).toEqual([addressOf('c')]);
    // c crashes: its vtep key stays, its liveness key goes with its lease.
    await etcd.etcdctl(['del', live('c')]);
    await a.refresh();
    expect(await floods('a', 301)).toEqual([]);
    await etcd.etcdctl(['put', live('c'), 'x']);
    await a.refresh();
    expect(await floods('a', 301)).toEqual([addressOf('c')]);
  });
});
