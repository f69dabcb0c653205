import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { NodewardError } from '../../shared/errors.ts';
import { type Etcd, Lab, skipReason, startEtcd } from '../../test/lab/index.ts';
import { EtcdStore } from '../store/etcd.ts';
import { FileStore } from '../store/file.ts';
import { MemoryStore } from '../store/memory.ts';
import type { Commit, CommitResult, Store } from '../store/store.ts';
import { audit } from './audit.ts';
import { type AllocateRequest, Ipam } from './ipam.ts';
import { addPool, removePool } from './pools.ts';

/** A store that counts commits, to see group commit at work. */
class Counting implements Store {
  readonly kind: Store['kind'];
  commits = 0;
  readonly inner: Store;
  constructor(inner: Store) {
    this.inner = inner;
    this.kind = inner.kind;
  }
  get(keys: readonly string[]) {
    return this.inner.get(keys);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  commit(c: Commit): Promise<CommitResult> {
    this.commits++;
    return this.inner.commit(c);
  }
  close() {
    return this.inner.close();
  }
}

const req = (i: number | string, extra: Partial<AllocateRequest> = {}): AllocateRequest => ({
  containerID: `c${i}`,
  ifName: 'eth0',
  pod: `pod-${i}`,
  namespace: 'default',
  node: 'node-a',
  pool: 'p',
  ...extra,
});

async function rejection(p: Promise<unknown>): Promise<NodewardError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof NodewardError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

const kinds: [string, () => Promise<{ store: Store; cleanup: () => Promise<void> }>][] = [
  ['memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} })],
  [
    'file',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'nodeward-ipam-'));
      return { store: await FileStore.open(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  ],
];

// The same semantics on etcd (one member of the test lab), each test under a fresh prefix.
const etcdMissing = skipReason({ binaries: ['etcd', 'etcdctl'] });
const lab = new Lab();
let etcd: Promise<Etcd> | undefined;
afterAll(() => lab.cleanup());
if (!etcdMissing) {
  kinds.push([
    'etcd',
    async () => {
      etcd ??= startEtcd({ lab, members: 1 });
      const store = await EtcdStore.open({
        endpoints: (await etcd).endpoints,
        prefix: `/ipam-test-${randomBytes(4).toString('hex')}/`,
        dialTimeoutMs: 2000,
        requestTimeoutMs: 5000,
      });
      return { store, cleanup: async () => {} };
    },
  ]);
}

describe.each(kinds)('IPAM semantics (%s store)', (_, open) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  // One block per pool where a test names addresses: which block a node claims first depends
  // on its name (claimStart).
  async function setup(
    pools: unknown[] = [{ name: 'p', cidr: '10.0.0.0/24', gateway: '10.0.0.1', blockSize: 24 }],
  ) {
    const { store, cleanup } = await open();
    cleanups.push(async () => {
      await store.close();
      await cleanup();
    });
    for (const p of pools) await addPool(store, p);
    return { store, ipam: new Ipam({ store }) };
  }

  it('hands out the lowest free address with what the CNI result needs', async () => {
    const { ipam } = await setup([
      {
        name: 'p',
        cidr: '10.0.0.0/24',
        blockSize: 24,
        gateway: '10.0.0.1',
        segment: { mode: 'vlan', id: 100 },
        routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }],
        dns: { nameservers: ['10.0.0.53'] },
      },
    ]);
    expect(await ipam.allocate(req(1))).toEqual({
      pool: 'p',
      ip: '10.0.0.2',
      family: 4,
      cidr: '10.0.0.0/24',
      prefixLength: 24,
      gateway: '10.0.0.1',
      routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }],
      dns: { nameservers: ['10.0.0.53'], search: [], options: [] },
      segment: { mode: 'vlan', id: 100 },
      // VLAN: the data-centre router is the gateway, not the node.
      nodeGateway: false,
      containerID: 'c1',
      ifName: 'eth0',
      existing: false,
    });
    expect((await ipam.allocate(req(2))).ip).toBe('10.0.0.3');
  });

  it('is idempotent per (containerID, ifName), also for concurrent repeats', async () => {
    const { ipam, store } = await setup();
    const first = await ipam.allocate(req(1));
    const again = await ipam.allocate(req(1, { pod: 'whatever', pool: 'p' }));
    expect(again).toEqual({ ...first, existing: true });
    const other = await ipam.allocate(req(1, { ifName: 'net1' }));
    expect(other.ip).not.toBe(first.ip);
    const burst = await Promise.all(Array.from({ length: 6 }, () => ipam.allocate(req(9))));
    expect(new Set(burst.map((a) => a.ip)).size).toBe(1);
    expect((await audit(store)).allocated).toBe(3);
  });

  it('answers a repeated ADD from its handle even when its pool would now be refused', async () => {
    const { ipam } = await setup();
    const first = await ipam.allocate(req(1));
    const again = await ipam.allocate(req(1, { pool: undefined, selection: { annotationPool: 'nope' } }));
    expect(again).toEqual({ ...first, existing: true });
  });

  it('exhausts a /29 with its gateway after 5 addresses, naming pool and usage; a release frees one', async () => {
    const { ipam } = await setup([{ name: 'small', cidr: '10.9.0.0/29', gateway: '10.9.0.1' }]);
    const got = [];
    for (let i = 0; i < 5; i++) got.push((await ipam.allocate(req(i, { pool: 'small' }))).ip);
    expect(got).toEqual(['10.9.0.2', '10.9.0.3', '10.9.0.4', '10.9.0.5', '10.9.0.6']);
    const err = await rejection(ipam.allocate(req(5, { pool: 'small' })));
    expect(err.code).toBe('POOL_EXHAUSTED');
    expect(err.retriable).toBe(false);
    expect(err.message).toBe(
      'pool small is exhausted: 5 of 5 addresses in use (10.9.0.0/29; blocks of /29 per node: node-a: 1); release addresses, widen its ranges or add a pool',
    );
    expect(await ipam.release('c2', 'eth0')).toEqual({
      released: true,
      pool: 'small',
      ip: '10.9.0.4',
      kept: false,
    });
    expect((await ipam.allocate(req(5, { pool: 'small' }))).ip).toBe('10.9.0.4');
  });

  it('exhausts correctly when the last addresses are asked for together', async () => {
    const { ipam, store } = await setup([{ name: 'small', cidr: '10.9.0.0/29', gateway: '10.9.0.1' }]);
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => ipam.allocate(req(i, { pool: 'small' }))),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(ok).toHaveLength(5);
    expect(failed.map((r) => (r.reason as NodewardError).code)).toEqual([
      'POOL_EXHAUSTED',
      'POOL_EXHAUSTED',
      'POOL_EXHAUSTED',
    ]);
    expect((await audit(store)).problems).toEqual([]);
  });

  it('release: unknown handles succeed, a second release is a no-op', async () => {
    const { ipam, store } = await setup();
    expect(await ipam.release('nope', 'eth0')).toEqual({ released: false });
    await ipam.allocate(req(1));
    expect((await ipam.release('c1', 'eth0')).released).toBe(true);
    expect(await ipam.release('c1', 'eth0')).toEqual({ released: false });
    const report = await audit(store);
    expect(report).toMatchObject({ allocated: 0, handles: 0, problems: [] });
  });

  it('requested IPs: granted when free, refused naming the holder when not', async () => {
    const { ipam } = await setup();
    expect((await ipam.allocate(req(1, { requestedIP: '10.0.0.77' }))).ip).toBe('10.0.0.77');
    const err = await rejection(ipam.allocate(req(2, { requestedIP: '10.0.0.77', namespace: 'other' })));
    expect(err.code).toBe('IP_CONFLICT');
    expect(err.message).toMatch(
      /^IP 10\.0\.0\.77 in pool p is held by pod default\/pod-1 \(container c1, interface eth0, node node-a, since .*\); release it first/,
    );
    const gw = await rejection(ipam.allocate(req(3, { requestedIP: '10.0.0.1' })));
    expect(gw.code).toBe('IP_UNUSABLE');
    expect(gw.message).toContain('10.0.0.1 is the gateway of pool p');
    // The dynamic allocator steps around the requested address.
    const dyn = [];
    for (let i = 10; i < 90; i++) dyn.push((await ipam.allocate(req(i))).ip);
    expect(dyn).not.toContain('10.0.0.77');
  });

  it('sticky pods get their address back, and nobody else gets it meanwhile', async () => {
    const { ipam, store } = await setup([{ name: 'p', cidr: '10.0.0.0/28', gateway: '10.0.0.1' }]);
    const web0 = { pod: 'web-0', namespace: 'shop', sticky: true } as const;
    const first = await ipam.allocate(req('a', web0));
    expect(await ipam.release('ca', 'eth0')).toMatchObject({ released: true, kept: true });
    // Another pod does not get it.
    const other = await ipam.allocate(req('x'));
    expect(other.ip).not.toBe(first.ip);
    // The pod, re-created with a new container, does.
    const back = await ipam.allocate(req('b', web0));
    expect(back).toMatchObject({ ip: first.ip, existing: false });
    // While it runs, a second container for the same pod cannot take it.
    const dup = await rejection(ipam.allocate(req('c', web0)));
    expect(dup.code).toBe('IP_CONFLICT');
    expect(dup.message).toContain(`IP ${first.ip} in pool p is held by pod shop/web-0 (container cb`);
    // Asking for another address is refused while the sticky one exists.
    await ipam.release('cb', 'eth0');
    const moved = await rejection(ipam.allocate(req('d', { ...web0, requestedIP: '10.0.0.9' })));
    expect(moved.code).toBe('IP_CONFLICT');
    expect(moved.message).toContain(`pod shop/web-0 keeps IP ${first.ip} (sticky) but asks for 10.0.0.9`);
    expect((await audit(store)).problems).toEqual([]);
  });

  it('pool selection: selectors are enforced whatever the annotation says', async () => {
    const { ipam } = await setup([
      { name: 'p', cidr: '10.0.0.0/24' },
      {
        name: 'vlan-7',
        blockSize: 24,
        cidr: '10.7.0.0/24',
        segment: { mode: 'vlan', id: 7 },
        namespaceSelector: { matchLabels: { 'nodeward.io/vlan-7': 'yes' } },
      },
    ]);
    const err = await rejection(
      ipam.allocate(
        req(1, {
          pool: undefined,
          selection: { annotationPool: 'vlan-7', networkPool: 'p' },
          namespaceLabels: { team: 'x' },
        }),
      ),
    );
    expect(err.code).toBe('POOL_NOT_ALLOWED');
    expect(err.message).toContain(
      'pool vlan-7 (pod annotation nodeward.io/ipam-pool) may not be used: its namespaceSelector does not admit namespace default',
    );
    const ok = await ipam.allocate(
      req(2, {
        pool: undefined,
        selection: { annotationPool: 'vlan-7' },
        namespaceLabels: { 'nodeward.io/vlan-7': 'yes' },
      }),
    );
    expect(ok).toMatchObject({ pool: 'vlan-7', ip: '10.7.0.1', segment: { mode: 'vlan', id: 7 } });
    const none = await rejection(
      ipam.allocate(req(3, { pool: undefined, selection: { namespacePool: 'gone' } })),
    );
    expect(none.code).toBe('POOL_NOT_FOUND');
  });

  it('per-node blocks; a node whose blocks are full and that finds no free block borrows', async () => {
    const { ipam, store } = await setup([{ name: 'p', cidr: '10.0.0.0/28', blockSize: 30 }]);
    // 4 blocks of 4 addresses (network and broadcast of the /28 are not usable).
    const a = await ipam.allocate(req(1, { node: 'a' }));
    const b = await ipam.allocate(req(2, { node: 'b' }));
    expect([a.ip, b.ip]).toEqual(['10.0.0.1', '10.0.0.4']);
    const more = [];
    for (let i = 3; i < 14; i++) more.push((await ipam.allocate(req(i, { node: i % 2 ? 'a' : 'b' }))).ip);
    expect(new Set([a.ip, b.ip, ...more]).size).toBe(13);
    const blocks = (await store.list('blocks/p/')).entries.map((e) => [e.key, JSON.parse(e.value).node]);
    expect(blocks).toEqual([
      ['blocks/p/10.0.0.0-30', 'a'],
      ['blocks/p/10.0.0.12-30', 'b'],
      ['blocks/p/10.0.0.4-30', 'b'],
      ['blocks/p/10.0.0.8-30', 'a'],
    ]);
    // 14 usable, 13 taken: node a's blocks are full and none is left to claim, so it borrows
    // the last address from node b's block.
    expect((await ipam.allocate(req(99, { node: 'a' }))).ip).toBe('10.0.0.14');
    const ips = (await store.list('ips/p/')).entries;
    expect(ips).toHaveLength(14);
    expect((await audit(store)).problems).toEqual([]);
  });

  it('groups the allocations that arrive together into few transactions', async () => {
    const { store: inner } = await setup([]);
    const store = new Counting(inner);
    await addPool(store, { name: 'p', cidr: '10.0.0.0/22', blockSize: 26 });
    const ipam = new Ipam({ store });
    const before = store.commits;
    const got = await Promise.all(Array.from({ length: 64 }, (_, i) => ipam.allocate(req(i))));
    expect(new Set(got.map((a) => a.ip)).size).toBe(64);
    expect(store.commits - before).toBeLessThanOrEqual(4);
  });

  it('several agents on separate instances, concurrently: no duplicates, no inconsistency', async () => {
    const { store } = await setup([{ name: 'p', cidr: '10.0.0.0/24', blockSize: 28 }]);
    const agents = ['a', 'b', 'c'].map((node) => ({ node, ipam: new Ipam({ store }) }));
    const got = await Promise.all(
      agents.flatMap(({ node, ipam }) =>
        Array.from({ length: 60 }, (_, i) => ipam.allocate(req(`${node}${i}`, { node }))),
      ),
    );
    expect(new Set(got.map((a) => a.ip)).size).toBe(180);
    const report = await audit(store);
    expect(report).toMatchObject({ allocated: 180, handles: 180, problems: [] });
  });

  it('recovers when its cached view is stale (another instance took addresses in its block)', async () => {
    const { store } = await setup([{ name: 'p', cidr: '10.0.0.0/24', blockSize: 24 }]);
    const one = new Ipam({ store });
    const two = new Ipam({ store }); // same node name: a restarted agent beside an old one
    await one.allocate(req(1));
    for (let i = 2; i < 6; i++) await two.allocate(req(i));
    const next = await one.allocate(req(6));
    expect(next.ip).toBe('10.0.0.6');
    expect((await audit(store)).problems).toEqual([]);
  });

  it('serves IPv6 pools', async () => {
    const { ipam } = await setup([
      { name: 'v6', cidr: 'fd00:10::/116', gateway: 'fd00:10::1', blockSize: 116 },
    ]);
    expect((await ipam.allocate(req(1, { pool: 'v6' }))).ip).toBe('fd00:10::2');
    expect((await ipam.allocate(req(2, { pool: 'v6', requestedIP: 'FD00:10:0::ABC' }))).ip).toBe(
      'fd00:10::abc',
    );
    const dup = await rejection(ipam.allocate(req(3, { pool: 'v6', requestedIP: 'fd00:10::abc' })));
    expect(dup.code).toBe('IP_CONFLICT');
  });

  it('finds a pool added after it first read the pools', async () => {
    const { ipam, store } = await setup();
    await ipam.allocate(req(1));
    await addPool(store, { name: 'late', cidr: '10.5.0.0/24' });
    expect((await ipam.allocate(req(2, { pool: 'late' }))).pool).toBe('late');
  });

  it('pool add and remove: duplicates, overlaps and pools in use are refused', async () => {
    const { ipam, store } = await setup();
    expect((await rejection(addPool(store, { name: 'p', cidr: '10.1.0.0/24' }))).code).toBe('POOL_EXISTS');
    const overlap = await rejection(addPool(store, { name: 'q', cidr: '10.0.0.128/25' }));
    expect(overlap.code).toBe('POOL_OVERLAP');
    expect(overlap.message).toBe(
      'pool q (10.0.0.128/25) overlaps p (10.0.0.0/24); set allowOverlap: true if they are on different segments',
    );
    expect((await rejection(addPool(store, { name: 'r', cidr: '10.0.0.0/33' }))).code).toBe('POOL_INVALID');
    await ipam.allocate(req(1));
    const inUse = await rejection(removePool(store, 'p'));
    expect(inUse.code).toBe('POOL_IN_USE');
    expect(inUse.message).toContain(
      'pool p has 1 address(es) allocated (10.0.0.2 held by default/pod-1 (container c1, node node-a))',
    );
    // Still usable after the refused removal.
    expect((await ipam.allocate(req(2))).ip).toBe('10.0.0.3');
    await ipam.release('c1', 'eth0');
    await ipam.release('c2', 'eth0');
    await removePool(store, 'p');
    expect((await store.list('')).entries.map((e) => e.key)).toEqual(['pool-index']);
    expect((await rejection(ipam.allocate(req(3)))).code).toBe('POOL_NOT_FOUND');
  });

  it('refuses requests that cannot be keys', async () => {
    const { ipam } = await setup();
    for (const bad of [
      { containerID: '' },
      { containerID: 'a/b' },
      { ifName: 'averyveryverylongname' },
      { namespace: '../x' },
    ]) {
      const err = await rejection(ipam.allocate({ ...req(1), ...bad }));
      expect(err.code).toBe('IPAM_REQUEST_INVALID');
    }
  });
});
