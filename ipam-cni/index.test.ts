import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, expect, it } from 'vitest';
import { configSchema } from '../shared/config/index.ts';
import { createLogger } from '../shared/logger.ts';
import type { RunContext } from '../shared/module.ts';
import { Lab, run, runOk, skipReason, tempDir } from '../test/lab/index.ts';
import { runPlugin } from '../test/support/ipam-cni/run-plugin.ts';
import { appendJournal } from './cni/journal.ts';
import { createNetworkModule, registerCniCommands } from './index.ts';
import { Ipam } from './ipam/ipam.ts';
import { addPool } from './ipam/pools.ts';
import { FileStore } from './store/file.ts';

/**
 * The network module as the agent runs it (file store, a private "host" netns): it replays the
 * journal before serving, answers STATUS, reports readiness and metrics, and stops on abort. And
 * `nodeward cni install` through commander.
 */

const reason = skipReason({ binaries: ['ip', 'nsenter'], root: true });
const lab = new Lab();
afterAll(() => lab.cleanup());

it.skipIf(reason)(
  'network module: journal replayed at start, STATUS, readiness, metrics, clean stop',
  async () => {
    const dir = await tempDir('netmod', lab);
    const hostNs = `nw-mod-${randomBytes(3).toString('hex')}`;
    await runOk('ip', ['netns', 'add', hostNs]);
    lab.defer('netns', () => run('ip', ['netns', 'del', hostNs]));
    const seed = await FileStore.open(join(dir, 'ipam'));
    await addPool(seed, { name: 'local', cidr: '10.33.0.0/24', gateway: '10.33.0.1' });
    // A leaked address of this node (its netns is gone): the module's IPAM GC frees it.
    await new Ipam({ store: seed }).allocate({
      containerID: 'leaked',
      ifName: 'eth0',
      pod: 'p',
      namespace: 'ns',
      node: 'mod-node',
      pool: 'local',
      netns: join(dir, 'no-such-netns'),
    });
    await seed.close();
    const socket = join(dir, 'run', 'cni.sock');
    const journalDir = join(dir, 'journal');
    // A DEL the shim journaled while the agent was away (for a handle that does not exist: DEL forgives).
    appendJournal(journalDir, {
      v: 1,
      command: 'DEL',
      containerID: 'gone',
      netns: '',
      ifName: 'eth0',
      args: '',
      path: '/opt/cni/bin',
      config: '{"cniVersion":"1.0.0","name":"n","type":"nodeward"}',
    });
    const base = configSchema.parse({
      dataDir: dir,
      node: { name: 'mod-node' },
      network: { enabled: true, ipam: { store: 'file', gc: { interval: '50ms', grace: '0s' } } },
    });
    // Works whether or not the schema mounts network.cni: cniConfigOf parses it either way.
    // The agent writes the conflist itself once ready (the DaemonSet's way) and removes it on stop.
    const confDir = join(dir, 'net.d');
    const conflistFile = join(confDir, '10-nodeward.conflist');
    const cni = {
      socket,
      journalDir,
      hostNetns: `/run/netns/${hostNs}`,
      peerSyncInterval: 100,
      conflist: { dir: confDir, binDir: join(dir, 'bin') },
    };
    const config = { ...base, network: { ...base.network, cni } } as typeof base;
    const module = createNetworkModule({ config, log: createLogger('silent') });
    const abort = new AbortController();
    const ready: [boolean, string | undefined][] = [];
    const ctx: RunContext = { signal: abort.signal, setReady: (r, why) => ready.push([r, why]) };
    const running = module.run(ctx);
    const until = async (f: () => boolean) => {
      for (let i = 0; i < 100 && !f(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(f()).toBe(true);
    };
    expect(existsSync(conflistFile)).toBe(false);
    await until(() => ready.some(([r]) => r));
    expect(JSON.parse(readFileSync(conflistFile, 'utf8'))).toMatchObject({
      name: 'nodeward',
      plugins: [{ type: 'nodeward', socket, journalDir }],
    });
    expect(readdirSync(journalDir)).toEqual([]);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o700);
    const status = await runPlugin({
      command: 'STATUS',
      conf: { cniVersion: '1.1.0', name: 'n', type: 'nodeward', socket, journalDir },
    });
    expect(status.code, status.stdout).toBe(0);
    const metrics = await module.registry.metrics();
    expect(metrics).toContain('nodeward_cni_requests_total{verb="STATUS",code="0"} 1');
    expect(metrics).toContain('nodeward_cni_journal_depth 0');
    expect(metrics).toContain('nodeward_ipam_pool_size{pool="local"} 253');
    // Two GC observations (grace 0) and the leaked address is released, counted as kind=node.
    const gcReleased = async () =>
      /nodeward_ipam_gc_releases_total\{kind="node"\} (\d+)/.exec(await module.registry.metrics())?.[1];
    for (let i = 0; i < 100 && (await gcReleased()) !== '1'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await gcReleased()).toBe('1');
    const check = await FileStore.open(join(dir, 'ipam'));
    expect((await check.list('handles/')).entries).toEqual([]);
    await check.close();
    abort.abort();
    await running;
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(conflistFile)).toBe(false);
  },
);

it('cni install: atomic copy + .conflist from config, idempotent', async () => {
  const dir = await tempDir('install', lab);
  const binary = join(dir, 'shim');
  writeFileSync(binary, '#!/bin/sh\n');
  const out: string[] = [];
  const program = new Command('nodeward').exitOverride();
  registerCniCommands(program, {
    stdout: (s) => out.push(s),
    env: {},
    loadConfig: () => {
      const c = configSchema.parse({});
      const cni = { pool: 'pods', networkName: 'k8s-pods', mtu: 9000 };
      return { ...c, network: { ...c.network, cni } } as typeof c;
    },
  });
  const argv = [
    'cni',
    'install',
    '--bin-dir',
    join(dir, 'bin'),
    '--conf-dir',
    join(dir, 'net.d'),
    '--binary',
    binary,
  ];
  await program.parseAsync(argv, { from: 'user' });
  await program.parseAsync(argv, { from: 'user' });
  // No portmap or bandwidth in this bin dir: said at install, and kept in the conflist.
  const notes = [
    `hostPort: off (the portmap plugin is not in ${join(dir, 'bin')})`,
    `the kubernetes.io/ingress-bandwidth and egress-bandwidth annotations: off (the bandwidth plugin is not in ${join(dir, 'bin')})`,
  ];
  expect(out).toEqual([
    `${join(dir, 'bin', 'nodeward')}: installed\n`,
    `${join(dir, 'net.d', '10-nodeward.conflist')}: installed\n`,
    ...notes.map((n) => `note: ${n}\n`),
    `${join(dir, 'bin', 'nodeward')}: unchanged\n`,
    `${join(dir, 'net.d', '10-nodeward.conflist')}: unchanged\n`,
    ...notes.map((n) => `note: ${n}\n`),
  ]);
  expect(statSync(join(dir, 'bin', 'nodeward')).mode & 0o777).toBe(0o755);
  expect(JSON.parse(readFileSync(join(dir, 'net.d', '10-nodeward.conflist'), 'utf8'))).toEqual({
    cniVersion: '1.0.0',
    cniVersions: ['1.0.0', '1.1.0'],
    name: 'k8s-pods',
    plugins: [
      {
        type: 'nodeward',
        socket: '/run/nodeward/cni.sock',
        journalDir: '/var/lib/nodeward/cni-journal',
        timeoutMs: 30_000,
        capabilities: { 'io.kubernetes.cri.pod-annotations': true, ips: true },
        pool: 'pods',
        mtu: 9000,
      },
    ],
    notes,
  });
  expect(readdirSync(join(dir, 'bin'))).toEqual(['nodeward']);
});

it('cni install --no-conflist: the shim only, for a DaemonSet whose agent writes the conflist once ready', async () => {
  const dir = await tempDir('install-shim', lab);
  const binary = join(dir, 'shim');
  writeFileSync(binary, '#!/bin/sh\n');
  const out: string[] = [];
  const program = new Command('nodeward').exitOverride();
  registerCniCommands(program, {
    stdout: (s) => out.push(s),
    env: {},
    loadConfig: () => configSchema.parse({}),
  });
  const confDir = join(dir, 'net.d');
  await program.parseAsync(
    [
      'cni',
      'install',
      '--bin-dir',
      join(dir, 'bin'),
      '--conf-dir',
      confDir,
      '--binary',
      binary,
      '--no-conflist',
    ],
    { from: 'user' },
  );
  expect(out).toEqual([`${join(dir, 'bin', 'nodeward')}: installed\n`]);
  expect(existsSync(confDir)).toBe(false);
});
