import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CniConfig, cniSchema } from '../../shared/config/index.ts';
import { type Etcd, Lab, run, runOk, skipReason, waitFor } from '../../test/lab/index.ts';
import { runPlugin } from '../../test/support/ipam-cni/run-plugin.ts';
import { newNetns, podRequests, startCniTestbed } from '../../test/support/ipam-cni/testbed.ts';
import { Ipam } from '../ipam/ipam.ts';
import { addPool } from '../ipam/pools.ts';
import { hostVethName } from '../net/names.ts';
import { EtcdStore } from '../store/etcd.ts';
import { type CniAgent, startCniAgent } from './agent.ts';
import { type CniMetrics, createCniMetrics } from './metrics.ts';
import type { CniResult } from './server/result.ts';
import { CniError } from './spec.ts';

/**
 * DEL answered once journaled, torn down in the background (./teardown.ts), and gratuitous ARP
 * from the kernel (arp_notify): real etcd, a private "host" netns holding the bridge and host veth
 * ends, a netns per pod. No timing thresholds: the order of stages is observed, not their speed.
 */

const reason =
  skipReason({ binaries: ['etcd', 'etcdctl', 'ip', 'bridge', 'nsenter', 'tcpdump', 'sysctl'] }) ??
  (process.getuid?.() === 0 ? undefined : 'needs root (network namespaces)');
if (reason) console.warn(`[lab] CNI teardown tests skipped: ${reason}`);

const AGENT_PROCESS = resolve(import.meta.dirname, '../../test/support/ipam-cni/agent-process.ts');
const lab = new Lab();
const suffix = randomBytes(3).toString('hex');
const hostNs = `nw-tdh-${suffix}`;
const pool = `td${suffix}`;
const bridge = `nw-${pool}`;
const prefix = `/nodeward-teardown-${suffix}/ipam/v1/`;
const netns: string[] = [];
let etcd: Etcd;
let store: EtcdStore;
let dir: string;
let agent: CniAgent;
let metrics: CniMetrics;
let registry: Registry;
/** "VERB:stage" as the agent reports them, in order. */
const stages: string[] = [];

afterAll(async () => {
  try {
    // Bounded: an agent that does not stop must not keep the namespaces below alive.
    const stopped = agent?.stop().catch(() => {});
    await Promise.race([stopped, new Promise((r) => setTimeout(r, 5000).unref())]);
    await store?.close().catch(() => {});
  } finally {
    await run('ip', ['-force', '-batch', '-'], {
      input: [hostNs, ...netns].map((n) => `netns del ${n}\n`).join(''),
    });
    await lab.cleanup();
  }
}, 60_000);

const cniOf = (name: string): CniConfig =>
  cniSchema.parse({
    socket: join(dir, name, 'cni.sock'),
    journalDir: join(dir, name, 'journal'),
    hostNetns: `/run/netns/${hostNs}`,
    // Ticks only when the test asks for one.
    peerSyncInterval: 3_600_000,
  });

async function openStore(): Promise<EtcdStore> {
  const s = await EtcdStore.open({
    endpoints: etcd.endpoints,
    prefix,
    dialTimeoutMs: 500,
    requestTimeoutMs: 800,
  });
  lab.defer('store', () => s.close().catch(() => {}));
  return s;
}

async function startAgent(name: string, node: string): Promise<CniAgent> {
  const s = await openStore();
  return startCniAgent({
    cni: cniOf(name),
    store: s,
    node,
    ipam: new Ipam({ store: s }),
    metrics,
    onStage: (verb, stage) => stages.push(`${verb}:${stage}`),
  });
}

let pods = 0;
const podNetns = () => newNetns(`nw-tdp${++pods}-${suffix}`, netns);

const request = podRequests({ namespace: 'td', network: 'tdnet', pool: pool });

const ipOf = (r: CniResult) => r.ips[0]!.address.split('/')[0]!;

async function handles(containerID: string): Promise<string[]> {
  const out = await etcd.etcdctl(['get', '--prefix', '--keys-only', `${prefix}handles/${containerID}/`]);
  return out.split('\n').filter(Boolean);
}

async function hostLinks(): Promise<string[]> {
  const out = await runOk('ip', ['-n', hostNs, '-j', 'link', 'show']);
  return (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname);
}

const journal = (name: string) => readdirSync(join(dir, name, 'journal')).filter((n) => n.startsWith('del-'));

describe.skipIf(reason)('DEL torn down in the background', () => {
  beforeAll(async () => {
    ({ dir, etcd, store } = await startCniTestbed(lab, 'cni-teardown', prefix, hostNs));
    await addPool(store, { name: pool, cidr: '10.78.0.0/24', gateway: '10.78.0.1' });
    registry = new Registry();
    metrics = createCniMetrics(registry);
    agent = await startAgent('a1', 'td-node');
  });

  it('an ADD of the same attachment right after its DEL waits for the teardown', async () => {
    const handlers = agent.handlers;
    for (let i = 0; i < 3; i++) {
      const id = `same-${i}-${suffix}`;
      const path = await podNetns();
      await handlers.add(request('ADD', id, path, `same-${i}`));
      stages.length = 0;
      await handlers.del(request('DEL', id, path, `same-${i}`));
      const again = (await handlers.add(request('ADD', id, path, `same-${i}`))) as CniResult;
      // The old pair and address were gone before the ADD went on: the new pair is not removed
      // by the old DEL, and the address is allocated once.
      const settled = stages.indexOf('ADD:settle');
      expect(stages.indexOf('DEL:links')).toBeGreaterThanOrEqual(0);
      expect(stages.indexOf('DEL:links')).toBeLessThan(settled);
      expect(stages.indexOf('DEL:release')).toBeLessThan(settled);
      await handlers.teardowns.idle();
      expect(await hostLinks()).toContain(hostVethName(id, 'eth0'));
      expect(await handles(id)).toEqual([`${prefix}handles/${id}/eth0`]);
      expect(again.interfaces?.[0]?.name).toBe(hostVethName(id, 'eth0'));
      expect(journal('a1')).toEqual([]);
      await handlers.del(request('DEL', id, path, `same-${i}`));
    }
    await handlers.teardowns.idle();
  });

  it('DEL, ADD and DEL of one attachment at once (the runtime gave up on the ADD): no cycle, nothing left', async () => {
    const handlers = agent.handlers;
    const id = `cycle-${suffix}`;
    const path = await podNetns();
    await handlers.add(request('ADD', id, path, 'cycle'));
    // The second DEL is recorded while the ADD waits for the first: the ADD must not wait for it.
    const all = Promise.all([
      handlers.del(request('DEL', id, path, 'cycle')),
      handlers.add(request('ADD', id, path, 'cycle')),
      handlers.del(request('DEL', id, path, 'cycle')),
    ]).then(() => handlers.teardowns.idle());
    // A bound on waiting (not a speed requirement): a cycle never settles.
    await waitFor(() => all.then(() => true), { what: 'DEL, ADD, DEL to settle', timeoutMs: 20_000 });
    expect(await handles(id)).toEqual([]);
    expect(await hostLinks()).not.toContain(hostVethName(id, 'eth0'));
    expect(journal('a1')).toEqual([]);
  });

  it('a teardown that cannot succeed (corrupt record) is moved aside, not retried forever', async () => {
    const handlers = agent.handlers;
    const id = `corrupt-${suffix}`;
    const path = await podNetns();
    await handlers.add(request('ADD', id, path, 'corrupt'));
    await etcd.etcdctl(['put', `${prefix}handles/${id}/eth0`, 'not a record']);
    await handlers.del(request('DEL', id, path, 'corrupt'));
    await handlers.teardowns.idle();
    expect(handlers.teardowns.depth).toBe(0);
    expect(journal('a1')).toEqual([]);
    expect(readdirSync(join(dir, 'a1', 'journal')).filter((n) => n.startsWith('bad-del-'))).toHaveLength(1);
    // The pod is not blocked: a new container of it gets an address.
    const again = (await handlers.add(request('ADD', `${id}-2`, await podNetns(), 'corrupt'))) as CniResult;
    expect(ipOf(again)).toMatch(/^10\.78\.0\./);
    await handlers.del(request('DEL', `${id}-2`, path, 'corrupt'));
    await handlers.teardowns.idle();
    await etcd.etcdctl(['del', `${prefix}handles/${id}/eth0`]);
  });

  it('a DEL that cannot be journaled (the directory is unusable) is torn down before it is answered', async () => {
    const handlers = agent.handlers;
    const id = `nojournal-${suffix}`;
    const path = await podNetns();
    await handlers.add(request('ADD', id, path, 'nojournal'));
    const journalDir = join(dir, 'a1', 'journal');
    renameSync(journalDir, `${journalDir}.away`);
    writeFileSync(journalDir, 'not a directory');
    try {
      await handlers.del(request('DEL', id, path, 'nojournal'));
      // Answered only now, with nothing left to do in the background.
      expect(await handles(id)).toEqual([]);
      expect(await hostLinks()).not.toContain(hostVethName(id, 'eth0'));
      expect(handlers.teardowns.depth).toBe(0);
    } finally {
      rmSync(journalDir);
      renameSync(`${journalDir}.away`, journalDir);
    }
  });

  it("a new container of a sticky pod right after the old one's DEL gets the address back", async () => {
    const sticky = { 'nodeward.io/sticky-ip': 'true' };
    const handlers = agent.handlers;
    const path1 = await podNetns();
    const first = (await handlers.add(request('ADD', `st1-${suffix}`, path1, 'db-0', sticky))) as CniResult;
    await handlers.del(request('DEL', `st1-${suffix}`, path1, 'db-0'));
    // Without waiting for the teardown of the same pod, its address would still be held: 102.
    const path2 = await podNetns();
    const second = (await handlers.add(request('ADD', `st2-${suffix}`, path2, 'db-0', sticky))) as CniResult;
    expect(ipOf(second)).toBe(ipOf(first));
    await handlers.del(request('DEL', `st2-${suffix}`, path2, 'db-0'));
    await handlers.teardowns.idle();
  });

  it('a teardown that fails (store down) stays journaled, blocks an ADD of the same attachment (11), and is retried', async () => {
    const handlers = agent.handlers;
    const id = `down-${suffix}`;
    const path = await podNetns();
    await handlers.add(request('ADD', id, path, 'down'));
    await etcd.kill(0);
    try {
      await handlers.del(request('DEL', id, path, 'down'));
      await handlers.teardowns.idle();
      expect(journal('a1')).toHaveLength(1);
      expect(handlers.teardowns.depth).toBe(1);
      expect(await registry.metrics()).toContain('nodeward_cni_journal_depth 1');
      expect(await registry.metrics()).toMatch(
        /nodeward_cni_teardown_duration_seconds_count\{result="failed"\} [1-9]/,
      );
      // The links went (the kernel needs no store); the address could not.
      expect(await hostLinks()).not.toContain(hostVethName(id, 'eth0'));
      const blocked = await handlers.add(request('ADD', id, path, 'down')).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(blocked).toBeInstanceOf(CniError);
      expect((blocked as CniError).code).toBe(11);
      // CHECK of a deleted attachment fails while its teardown waits.
      const check = await handlers.check({ ...request('ADD', id, path, 'down'), command: 'CHECK' }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(String(check)).toMatch(/teardown is pending/);
    } finally {
      await etcd.restart(0);
    }
    expect(await handles(id)).toEqual([`${prefix}handles/${id}/eth0`]);
    // The store client reconnects on its own schedule: tick (what the agent's timer does) until
    // the retry went through, a bounded number of times.
    for (let i = 0; i < 50 && handlers.teardowns.depth > 0; i++) {
      await agent.tick();
      if (handlers.teardowns.depth > 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(handlers.teardowns.depth).toBe(0);
    expect(journal('a1')).toEqual([]);
    expect(await handles(id)).toEqual([]);
    expect(await registry.metrics()).toContain('nodeward_cni_journal_depth 0');
    // And the attachment can be made again.
    await handlers.add(request('ADD', id, path, 'down'));
    await handlers.del(request('DEL', id, path, 'down'));
    await handlers.teardowns.idle();
    expect(await handles(id)).toEqual([]);
  });

  it('an agent SIGKILLed with teardowns pending replays them at its next start', async () => {
    const cni = cniOf('a2');
    let child: ChildProcess | undefined = spawn(
      process.execPath,
      [AGENT_PROCESS, JSON.stringify({ etcd: etcd.endpoints[0], prefix, cni, node: 'td-node2' })],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    lab.defer('child agent', async () => {
      if (child && child.exitCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    });
    await new Promise<void>((ready, fail) => {
      child!.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && ready());
      child!.once('exit', (code) => fail(new Error(`the agent process exited (${code})`)));
    });
    const conf = {
      cniVersion: '1.0.0',
      name: 'tdnet',
      type: 'nodeward',
      socket: cni.socket,
      journalDir: cni.journalDir,
      ipam: { type: 'nodeward', pool },
    };
    const ids = [`k1-${suffix}`, `k2-${suffix}`];
    const paths = [await podNetns(), await podNetns()];
    for (const [i, id] of ids.entries()) {
      const add = await runPlugin({ command: 'ADD', containerID: id, netns: paths[i], ifName: 'eth0', conf });
      expect(add.code, add.stdout).toBe(0);
    }
    // The store goes away, so the teardowns cannot finish; the DELs are answered all the same.
    await etcd.kill(0);
    try {
      for (const [i, id] of ids.entries()) {
        const del = await runPlugin({
          command: 'DEL',
          containerID: id,
          netns: paths[i],
          ifName: 'eth0',
          conf,
        });
        expect(del.code, del.stdout + del.stderr).toBe(0);
      }
      expect(journal('a2')).toHaveLength(2);
      child.kill('SIGKILL');
      await once(child, 'exit');
      child = undefined;
    } finally {
      await etcd.restart(0);
    }
    for (const id of ids) expect(await handles(id)).toEqual([`${prefix}handles/${id}/eth0`]);
    const again = await startAgent('a2', 'td-node2');
    try {
      expect(again.replayed).toBe(2);
      expect(journal('a2')).toEqual([]);
      for (const id of ids) {
        expect(await handles(id)).toEqual([]);
        expect(await hostLinks()).not.toContain(hostVethName(id, 'eth0'));
      }
    } finally {
      await again.stop();
    }
  });

  it('gratuitous ARP: the pod announces its address on the bridge after ADD (arp_notify)', async () => {
    const handlers = agent.handlers;
    // The bridge exists once the segment served an ADD.
    const warm = await podNetns();
    await handlers.add(request('ADD', `garp0-${suffix}`, warm, 'garp0'));
    const tcpdump = spawn('nsenter', [
      `--net=/run/netns/${hostNs}`,
      '--',
      'tcpdump',
      '-l',
      '-n',
      '-e',
      '-i',
      bridge,
      'arp',
    ]);
    lab.defer('tcpdump', () => {
      if (tcpdump.exitCode === null) tcpdump.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    tcpdump.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    await new Promise<void>((listening, fail) => {
      tcpdump.stderr.on('data', (b: Buffer) => {
        err += b.toString();
        if (err.includes('listening on')) listening();
      });
      tcpdump.once('exit', (code) => fail(new Error(`tcpdump exited (${code}): ${err}`)));
    });
    const path = await podNetns();
    const r = (await handlers.add(request('ADD', `garp1-${suffix}`, path, 'garp1'))) as CniResult;
    const ip = ipOf(r);
    const mac = r.interfaces!.find((i) => i.sandbox !== undefined)!.mac;
    // Frames of the first pod (its own announcement, sent in the background) may come too: the
    // assertion is about this pod's. A bound on waiting for it (not a speed requirement).
    const announced = () =>
      out
        .split('\n')
        .find((l) => l.includes(`${mac} > ff:ff:ff:ff:ff:ff`) && l.includes(`who-has ${ip} tell ${ip}`));
    await waitFor(announced, { what: `the gratuitous ARP of ${ip} from ${mac}`, timeoutMs: 10_000 }).finally(
      () => tcpdump.kill('SIGINT'),
    );
    await once(tcpdump, 'exit');
    expect(announced()).toContain('Request');
  });
});
