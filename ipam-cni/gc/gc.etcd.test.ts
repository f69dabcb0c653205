import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Etcd, Lab, skipReason, startEtcd, tempDir, waitFor } from '../../test/lab/index.ts';
import { type AllocateRequest, Ipam } from '../ipam/ipam.ts';
import { addPool } from '../ipam/pools.ts';
import { EtcdStore } from '../store/etcd.ts';
import { ClusterGc, type NodeEvidence } from './cluster.ts';
import { netnsSource } from './liveness.ts';
import { NodeGc } from './node.ts';
import { Presence } from './presence.ts';

/**
 * The IPAM GC against real etcd. Time is a clock the test moves (the grace is 15 minutes); what
 * is checked is read back with etcdctl, not from the GC's own view.
 */

const reason = skipReason({ binaries: ['etcd', 'etcdctl'] });
if (reason) console.warn(`[lab] IPAM GC etcd tests skipped: ${reason} (install etcd-server etcd-client)`);

const lab = new Lab();
const stores: EtcdStore[] = [];
const presences: Presence[] = [];
afterAll(async () => {
  for (const p of presences) await p.close();
  for (const s of stores) await s.close();
  await lab.cleanup();
});

const GRACE = 15 * 60_000;

/** The API server's word for the dead nodes here: their Node objects are deleted (cluster.test.ts covers the rest). */
const deletedNodes: NodeEvidence = { placement: async () => ({ exists: false, pods: [] }) };

class Clock {
  t = 1_000_000;
  now = () => this.t;
  advance(ms: number) {
    this.t += ms;
  }
}

async function etcdctlKeys(etcd: Etcd, prefix: string): Promise<string[]> {
  const out = await etcd.etcdctl(['get', '--prefix', '--keys-only', prefix]);
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.slice(prefix.length));
}

let etcd: Etcd | undefined;
async function setup(): Promise<{ etcd: Etcd; prefix: string; open: () => Promise<EtcdStore> }> {
  etcd ??= await startEtcd({ lab });
  const e = etcd;
  const prefix = `/nodeward-gc-${randomBytes(4).toString('hex')}/ipam/v1/`;
  const open = async () => {
    const s = await EtcdStore.open({
      endpoints: e.endpoints,
      prefix,
      dialTimeoutMs: 1000,
      requestTimeoutMs: 5000,
    });
    stores.push(s);
    return s;
  };
  await addPool(await open(), { name: 'p', cidr: '10.70.0.0/24', gateway: '10.70.0.1', blockSize: 28 });
  return { etcd: e, prefix, open };
}

const req = (id: string, node: string, netns?: string): AllocateRequest => ({
  containerID: id,
  ifName: 'eth0',
  pod: `pod-${id}`,
  namespace: 'default',
  node,
  pool: 'p',
  ...(netns ? { netns } : {}),
});

describe.skipIf(reason)('IPAM GC (real etcd)', () => {
  it('never frees a live address; frees a leaked one only on a second observation past the grace', async () => {
    const { etcd, prefix, open } = await setup();
    const store = await open();
    const ipam = new Ipam({ store });
    const dir = await tempDir('gc', lab);
    const liveNs = join(dir, 'live-netns');
    writeFileSync(liveNs, '');
    const live = await ipam.allocate(req('live', 'n1', liveNs));
    const unknown = await ipam.allocate(req('nonetns', 'n1'));
    const leaked = await ipam.allocate(req('leaked', 'n1', join(dir, 'gone-netns')));
    const otherNode = await ipam.allocate(req('elsewhere', 'n2', join(dir, 'gone-too')));
    const clock = new Clock();
    const gc = new NodeGc({ store, node: 'n1', graceMs: GRACE, sources: [netnsSource()], now: clock.now });

    const first = await gc.round();
    expect(first).toMatchObject({ allocations: 3, newCandidates: 1, released: [] });
    clock.advance(GRACE - 1);
    expect((await gc.round()).released).toEqual([]);
    expect(await etcdctlKeys(etcd, `${prefix}handles/`)).toContain('leaked/eth0');
    clock.advance(1);
    expect((await gc.round()).released).toEqual(['handles/leaked/eth0']);

    const handles = await etcdctlKeys(etcd, `${prefix}handles/`);
    expect(handles.sort()).toEqual(['elsewhere/eth0', 'live/eth0', 'nonetns/eth0']);
    const ips = (await etcdctlKeys(etcd, `${prefix}ips/`)).map((k) => k.split('/').at(-1));
    expect(ips).not.toContain(leaked.ip);
    expect(ips).toEqual(expect.arrayContaining([live.ip, unknown.ip, otherNode.ip]));
    // Many more rounds, far past the grace: the live one (netns exists) and the one nothing can
    // tell about (no netns recorded, no other source) stay.
    for (let i = 0; i < 3; i++) {
      clock.advance(GRACE * 2);
      expect((await gc.round()).released).toEqual([]);
    }
    expect((await etcdctlKeys(etcd, `${prefix}handles/`)).sort()).toEqual([
      'elsewhere/eth0',
      'live/eth0',
      'nonetns/eth0',
    ]);
  });

  it('churn: allocate/release while the GC runs with no grace never frees a live address; leaks go', async () => {
    const { etcd, prefix, open } = await setup();
    const dir = await tempDir('gc-churn', lab);
    const store = await open();
    const ipam = new Ipam({ store });
    // Leaked: their netns never existed and nobody releases them.
    for (let i = 0; i < 5; i++) await ipam.allocate(req(`leak${i}`, 'n1', join(dir, `leak${i}`)));
    // Live: the netns exists before the ADD and goes only after the DEL, as a runtime does it.
    const gc = new NodeGc({ store: await open(), node: 'n1', graceMs: 0, sources: [netnsSource()] });
    let churning = true;
    const rounds: string[] = [];
    let observations = 0;
    const collector = (async () => {
      while (churning) {
        rounds.push(...(await gc.round()).released);
        observations++;
      }
    })();
    const lostReleases: string[] = [];
    await Promise.all(
      [0, 1, 2].map(async (w) => {
        for (let n = 0; n < 15; n++) {
          const id = `w${w}-${n % 4}`;
          const ns = join(dir, id);
          writeFileSync(ns, '');
          await ipam.allocate(req(id, 'n1', ns));
          const r = await ipam.release(id, 'eth0');
          if (!r.released) lostReleases.push(id); // someone else freed it while it was live
          rmSync(ns);
        }
      }),
    );
    // Two more rounds with nothing churning: the leaks are certainly gone.
    churning = false;
    await collector;
    rounds.push(...(await gc.round()).released, ...(await gc.round()).released);
    expect(observations).toBeGreaterThan(3); // the GC really ran during the churn
    expect(lostReleases).toEqual([]);
    expect(rounds.filter((k) => !k.startsWith('handles/leak'))).toEqual([]);
    expect(new Set(rounds)).toEqual(new Set([0, 1, 2, 3, 4].map((i) => `handles/leak${i}/eth0`)));
    expect(await etcdctlKeys(etcd, `${prefix}handles/`)).toEqual([]);
  });

  it('keeps a record re-used between the two observations', async () => {
    const { etcd, prefix, open } = await setup();
    const store = await open();
    const ipam = new Ipam({ store });
    const gone = '/proc/self/ns/gone-a';
    await ipam.allocate(req('reused', 'n1', gone));
    const clock = new Clock();
    const gc = new NodeGc({ store, node: 'n1', graceMs: GRACE, sources: [netnsSource()], now: clock.now });
    expect((await gc.round()).newCandidates).toBe(1);
    // The container's handle is released and written again (a new ADD) while the GC waits.
    await ipam.release('reused', 'eth0');
    await ipam.allocate(req('reused', 'n1', gone));
    clock.advance(GRACE);
    const second = await gc.round();
    expect(second.released).toEqual([]);
    expect(second.changed).toEqual(['handles/reused/eth0']);
    expect(await etcdctlKeys(etcd, `${prefix}handles/`)).toEqual(['reused/eth0']);
    // Its own grace starts over from the second observation.
    clock.advance(GRACE);
    expect((await gc.round()).released).toEqual(['handles/reused/eth0']);
  });

  it('hands an empty block back after the grace, not one that was used meanwhile', async () => {
    const { etcd, prefix, open } = await setup();
    const store = await open();
    const ipam = new Ipam({ store });
    const a = await ipam.allocate(req('a', 'n1', '/proc/self/ns/net'));
    const clock = new Clock();
    const gc = new NodeGc({ store, node: 'n1', graceMs: GRACE, sources: [netnsSource()], now: clock.now });
    expect((await gc.round()).blocksReleased).toEqual([]);
    expect(await etcdctlKeys(etcd, `${prefix}blocks/`)).toHaveLength(1);
    await ipam.release('a', 'eth0');
    await gc.round(); // first observation of the empty block
    clock.advance(GRACE / 2);
    await ipam.allocate(req('b', 'n1', '/proc/self/ns/net')); // used again meanwhile
    clock.advance(GRACE);
    expect((await gc.round()).blocksReleased).toEqual([]);
    await ipam.release('b', 'eth0');
    await gc.round();
    clock.advance(GRACE);
    const last = await gc.round();
    expect(last.blocksReleased).toHaveLength(1);
    expect(await etcdctlKeys(etcd, `${prefix}blocks/`)).toEqual([]);
    // The pool serves again from a newly claimed block.
    const c = await ipam.allocate(req('c', 'n1'));
    expect(c.ip).toBe(a.ip);
  });

  it("frees a dead node's allocations and blocks after its lease expires and the grace passes", async () => {
    const { etcd, prefix, open } = await setup();
    const deadStore = await open();
    const dead = new Presence(deadStore, 'dead', 1);
    presences.push(dead);
    await dead.ensure();
    const deadIpam = new Ipam({ store: deadStore });
    for (const id of ['d1', 'd2', 'd3']) await deadIpam.allocate(req(id, 'dead', '/proc/self/ns/net'));
    const liveStore = await open();
    const alive = new Presence(liveStore, 'alive', 5);
    presences.push(alive);
    await alive.ensure();
    await new Ipam({ store: liveStore }).allocate(req('a1', 'alive'));

    const clock = new Clock();
    const gc = new ClusterGc({
      store: liveStore,
      node: 'alive',
      graceMs: GRACE,
      now: clock.now,
      nodes: deletedNodes,
    });
    expect((await gc.round()).missing).toEqual([]); // the dead node is still alive: its lease holds
    clock.advance(GRACE * 2);
    expect((await gc.round()).collected).toEqual([]);

    dead.abandon(); // the agent crashes: no more keepalives
    await waitFor(async () => !(await etcdctlKeys(etcd, `${prefix}nodes/`)).includes('dead'), {
      what: 'the dead node lease to expire',
      timeoutMs: 10_000,
    });
    const first = await gc.round();
    expect(first).toMatchObject({ missing: ['dead'], collected: [] });
    clock.advance(GRACE - 1);
    expect((await gc.round()).collected).toEqual([]);
    clock.advance(1);
    const freed = await gc.round();
    expect(freed.collected).toEqual(['dead']);
    expect(freed.released).toHaveLength(3);
    expect(freed.blocksReleased).toHaveLength(1);
    expect(await etcdctlKeys(etcd, `${prefix}handles/`)).toEqual(['a1/eth0']);
    expect(await etcdctlKeys(etcd, `${prefix}ips/`)).toHaveLength(1);
    expect(await etcdctlKeys(etcd, `${prefix}blocks/`)).toHaveLength(1);
  });

  it('two agents running the cluster GC at once: one leads, and every record is freed once', async () => {
    const { etcd, prefix, open } = await setup();
    const deadStore = await open();
    const deadIpam = new Ipam({ store: deadStore });
    for (let i = 0; i < 20; i++) await deadIpam.allocate(req(`x${i}`, 'gone'));
    const agents = await Promise.all(
      ['a', 'b'].map(async (node) => {
        const store = await open();
        const presence = new Presence(store, node, 5);
        presences.push(presence);
        const clock = new Clock();
        return {
          presence,
          clock,
          gc: new ClusterGc({ store, node, graceMs: GRACE, now: clock.now, nodes: deletedNodes }),
        };
      }),
    );
    const leads = await Promise.all(agents.map((a) => a.presence.tryLead()));
    expect(leads.filter(Boolean)).toHaveLength(1);
    expect(await etcdctlKeys(etcd, `${prefix}nodes/`)).toEqual(['a', 'b']);
    // Even if both ran it (a leader change mid-round), each record goes in exactly one transaction.
    await Promise.all(agents.map((a) => a.gc.round()));
    for (const a of agents) a.clock.advance(GRACE);
    const rounds = await Promise.all(agents.map((a) => a.gc.round()));
    expect(rounds.flatMap((r) => r.released)).toHaveLength(20);
    expect(new Set(rounds.flatMap((r) => r.released)).size).toBe(20);
    expect(rounds.flatMap((r) => r.blocksReleased).length).toBeGreaterThanOrEqual(1);
    expect(await etcdctlKeys(etcd, `${prefix}handles/`)).toEqual([]);
    expect(await etcdctlKeys(etcd, `${prefix}ips/`)).toEqual([]);
    // The leader's lease going away hands the lead over.
    const leader = agents[leads.indexOf(true)]!;
    const other = agents[leads.indexOf(false)]!;
    await leader.presence.close();
    expect(await other.presence.tryLead()).toBe(true);
  });
});
