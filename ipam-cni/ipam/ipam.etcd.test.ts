import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { NodewardError } from '../../shared/errors.ts';
import { type Etcd, Lab, skipReason, startEtcd, waitFor } from '../../test/lab/index.ts';
import { runAllocationLoad } from '../../test/support/ipam-cni/allocation-load.ts';
import { EtcdStore } from '../store/etcd.ts';
import { audit } from './audit.ts';
import { type AllocateRequest, Ipam } from './ipam.ts';
import { addPool } from './pools.ts';

/**
 * IPAM against real etcd (test/lab): several agents with their own clients, a 3-member cluster
 * losing its leader, a member that goes away and comes back. What is checked is read from etcd
 * with etcdctl — another client — not from the allocators' view.
 */

const reason = skipReason({ binaries: ['etcd', 'etcdctl'] });
if (reason) console.warn(`[lab] IPAM etcd tests skipped: ${reason} (install etcd-server etcd-client)`);

const lab = new Lab();
const stores: EtcdStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
  await lab.cleanup();
});

async function agent(
  etcd: Etcd,
  prefix: string,
  requestTimeoutMs = 5000,
): Promise<{ store: EtcdStore; ipam: Ipam }> {
  const store = await EtcdStore.open({
    endpoints: etcd.endpoints,
    prefix,
    dialTimeoutMs: 1000,
    requestTimeoutMs,
  });
  stores.push(store);
  return { store, ipam: new Ipam({ store }) };
}

const freshPrefix = () => `/nodeward-test-${randomBytes(4).toString('hex')}/ipam/v1/`;

/** Keys and values under a prefix, read by etcdctl (an independent client). */
async function etcdctlGet(etcd: Etcd, prefix: string): Promise<Map<string, string>> {
  const out = await etcd.etcdctl(['get', '--prefix', prefix]);
  const lines = out.split('\n');
  const kv = new Map<string, string>();
  for (let i = 0; i + 1 < lines.length; i += 2) kv.set(lines[i]!.slice(prefix.length), lines[i + 1]!);
  return kv;
}

/** Every ip key's address, and no address held twice across handles (read from etcd directly). */
async function checkNoDuplicates(etcd: Etcd, prefix: string): Promise<{ ips: number; handles: number }> {
  const ips = await etcdctlGet(etcd, `${prefix}ips/`);
  const handles = await etcdctlGet(etcd, `${prefix}handles/`);
  const byIp = new Map<string, string>();
  for (const [key, value] of handles) {
    const { pool, ip } = JSON.parse(value) as { pool: string; ip: string };
    const other = byIp.get(`${pool}/${ip}`);
    if (other) throw new Error(`duplicate: ${pool} ${ip} held by ${other} and ${key}`);
    byIp.set(`${pool}/${ip}`, key);
  }
  const ipNames = [...ips.keys()].map((k) =>
    k.split('/').slice(0, 1).concat(k.split('/').slice(2)).join('/'),
  );
  expect(new Set(ipNames).size).toBe(ips.size);
  return { ips: ips.size, handles: handles.size };
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

describe.skipIf(Boolean(reason))('IPAM on a 3-member etcd', () => {
  it('3 agents × 32 in flight, 10,000 allocations, leader killed and restarted mid-run: every one unique or retriable', async () => {
    const etcd = await startEtcd({ lab, members: 3 });
    const prefix = freshPrefix();
    const agents = await Promise.all(
      ['n1', 'n2', 'n3'].map(async (node) => ({ node, ...(await agent(etcd, prefix, 3000)) })),
    );
    await addPool(agents[0]!.store, { name: 'p', cidr: '10.64.0.0/18', gateway: '10.64.0.1', blockSize: 26 });

    const load = runAllocationLoad({ agents, pool: 'p', concurrency: 32, total: 10_000, runId: 'run1' });
    // Mid-run: SIGKILL the leader, let the survivors elect another, bring the old one back.
    await waitFor(async () => (await etcdctlGet(etcd, `${prefix}handles/`)).size > 2000, {
      what: '2,000 allocations',
      timeoutMs: 60_000,
    });
    const leader = await etcd.leader();
    await etcd.kill(leader);
    await new Promise((r) => setTimeout(r, 1500));
    await etcd.restart(leader);
    const result = await load;

    const failures = [...result.failed.entries()];
    console.log(
      `[ipam] 3 agents on 3 members with a leader kill: ${result.succeeded.length} ok, failed ${JSON.stringify(failures.map(([c, f]) => [c, f.count]))} in ${(result.elapsedMs / 1000).toFixed(1)} s`,
    );
    for (const [code, f] of failures) expect(f.retriable, `${code}: ${f.example}`).toBe(true);
    expect(new Set(result.succeeded.map((s) => s.ip)).size).toBe(result.succeeded.length);
    expect(result.succeeded.length).toBeGreaterThan(9000);

    // Read from etcd directly: no address twice, and every acknowledged allocation is there.
    const direct = await checkNoDuplicates(etcd, prefix);
    const handles = await etcdctlGet(etcd, `${prefix}handles/`);
    for (const s of result.succeeded)
      expect(JSON.parse(handles.get(`${s.containerID}/eth0`) ?? '{}').ip).toBe(s.ip);
    // A failed allocation may have landed (its answer was lost with the leader): then completely.
    expect(direct.ips).toBe(direct.handles);
    expect((await audit(agents[0]!.store)).problems).toEqual([]);
    // Each agent allocated in its own blocks: few blocks per node, not one per allocation.
    const blocks = await etcdctlGet(etcd, `${prefix}blocks/p/`);
    expect(blocks.size).toBeLessThanOrEqual(Math.ceil(direct.ips / 63) + 3);
  }, 180_000);
});

describe.skipIf(Boolean(reason))('IPAM on one etcd member', () => {
  let etcd: Etcd;
  const setup = async (pool: unknown = { name: 'p', cidr: '10.0.0.0/24', gateway: '10.0.0.1' }) => {
    etcd ??= await startEtcd({ lab, members: 1 });
    const prefix = freshPrefix();
    const a = await agent(etcd, prefix, 1000);
    await addPool(a.store, pool);
    return { ...a, prefix };
  };

  it('ADD is idempotent; the conflicting requested IP names its holder; exhaustion names pool and usage', async () => {
    const { ipam } = await setup({ name: 'small', cidr: '10.9.0.0/29', gateway: '10.9.0.1' });
    const first = await ipam.allocate(req(1, { pool: 'small' }));
    expect(await ipam.allocate(req(1, { pool: 'small' }))).toEqual({ ...first, existing: true });
    const conflict = await rejection(ipam.allocate(req(2, { pool: 'small', requestedIP: first.ip })));
    expect(conflict.code).toBe('IP_CONFLICT');
    expect(conflict.message).toContain(
      `IP ${first.ip} in pool small is held by pod default/pod-1 (container c1`,
    );
    for (let i = 2; i < 6; i++) await ipam.allocate(req(i, { pool: 'small' }));
    const full = await rejection(ipam.allocate(req(6, { pool: 'small' })));
    expect(full.code).toBe('POOL_EXHAUSTED');
    expect(full.message).toContain('pool small is exhausted: 5 of 5 addresses in use');
    await ipam.release('c3', 'eth0');
    expect((await ipam.allocate(req(6, { pool: 'small' }))).ip).toBe('10.9.0.4');
  });

  it('etcd down: STORE_UNAVAILABLE (retriable), nothing half-written; back up: the same client carries on', async () => {
    const { ipam, store, prefix } = await setup();
    for (let i = 0; i < 5; i++) await ipam.allocate(req(i));

    // Kill etcd while a burst is in flight: some allocations land, the rest fail retriably.
    const burst = Promise.allSettled(Array.from({ length: 40 }, (_, i) => ipam.allocate(req(100 + i))));
    await new Promise((r) => setTimeout(r, 5));
    await etcd.kill(0);
    const settled = await burst;
    const during = await Promise.allSettled([ipam.allocate(req(200)), ipam.release('c1', 'eth0')]);
    for (const r of [...settled, ...during]) {
      if (r.status === 'rejected') {
        expect(r.reason).toBeInstanceOf(NodewardError);
        expect((r.reason as NodewardError).code).toBe('STORE_UNAVAILABLE');
        expect((r.reason as NodewardError).retriable).toBe(true);
      }
    }
    expect(during.every((r) => r.status === 'rejected')).toBe(true);
    expect((during[0] as PromiseRejectedResult).reason.message).toMatch(
      /^etcd at http:\/\/127\.0\.0\.1:\d+ did not answer the IPAM/,
    );

    await etcd.restart(0);
    // The same Ipam and etcd client, not recreated: it reconnects by itself.
    const back = await waitFor(
      async () => {
        try {
          return await ipam.allocate(req(300));
        } catch (err) {
          if (err instanceof NodewardError && err.code === 'STORE_UNAVAILABLE') return false;
          throw err;
        }
      },
      { what: 'an allocation after etcd came back', timeoutMs: 20_000 },
    );
    expect(back.existing).toBe(false);
    // Repeating the ADDs of the burst: those that landed come back as existing, the rest get new
    // addresses; no address twice, no handle without its address.
    const retried = await Promise.all(Array.from({ length: 40 }, (_, i) => ipam.allocate(req(100 + i))));
    for (const [i, r] of settled.entries())
      if (r.status === 'fulfilled') expect(retried[i]).toEqual({ ...r.value, existing: true });
    const report = await audit(store);
    expect(report.problems).toEqual([]);
    expect(report.handles).toBe(5 + 40 + 1);
    await checkNoDuplicates(etcd, prefix);
  }, 60_000);
});
