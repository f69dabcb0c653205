import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../shared/config/index.ts';
import { NodewardError } from '../shared/errors.ts';
import { registerIpamCommands } from './cli.ts';
import { Ipam } from './ipam/ipam.ts';
import { FileStore } from './store/file.ts';

/** The `nodeward ipam` commands in-process, on the node-local file store, as the agent wires them. */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeward-ipam-cli-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Table columns as single spaces: the widths are not the point here. */
const squeeze = (s: string) => s.replace(/ {2,}/g, ' ');

async function run(...args: string[]): Promise<{ out: string; code: number | undefined }> {
  let out = '';
  const program = new Command('nodeward').exitOverride();
  registerIpamCommands(program, {
    stdout: (s) => {
      out += s;
    },
    withConfigFlags: (cmd) =>
      cmd.option('--set <key=value>', 'config key', (v: string, p: string[]) => [...p, v], []),
    config: (flags) =>
      loadConfig({ env: {}, sets: [`dataDir=${dir}`, ...((flags['set'] as string[]) ?? [])] }),
  });
  process.exitCode = undefined;
  await program.parseAsync(args, { from: 'user' });
  const code = typeof process.exitCode === 'number' ? process.exitCode : undefined;
  process.exitCode = undefined;
  return { out, code };
}

describe('nodeward ipam', () => {
  it('adds, lists, shows, checks, releases and removes', async () => {
    const spec = join(dir, 'pool.yaml');
    await writeFile(
      spec,
      'name: vlan-100\ncidr: 10.100.0.0/24\ngateway: 10.100.0.1\nsegment: { mode: vlan, id: 100 }\n',
    );
    expect((await run('ipam', 'pool', 'add', spec)).out).toBe(
      'pool vlan-100 added: 10.100.0.0/24, 253 usable addresses, blocks of /26\n',
    );

    // The agent allocates through the same store (another FileStore instance on the same directory).
    const store = await FileStore.open(join(dir, 'ipam'));
    const ipam = new Ipam({ store });
    const a = await ipam.allocate({
      containerID: 'c1',
      ifName: 'eth0',
      pod: 'web-0',
      namespace: 'shop',
      node: 'n1',
      pool: 'vlan-100',
      sticky: true,
    });
    await ipam.allocate({
      containerID: 'c2',
      ifName: 'eth0',
      pod: 'api',
      namespace: 'shop',
      node: 'n2',
      pool: 'vlan-100',
    });

    expect(squeeze((await run('ipam', 'pool', 'list')).out)).toBe(
      'POOL CIDR SEGMENT USED KEPT TOTAL NODES STATE\nvlan-100 10.100.0.0/24 vlan 100 2 0 253 2 active\n',
    );
    const show = JSON.parse((await run('ipam', 'show', '-o', 'json')).out);
    expect(show).toEqual([
      expect.objectContaining({
        pool: 'vlan-100',
        used: 2,
        kept: 0,
        total: '253',
        nodes: { n1: { blocks: 1, used: 1 }, n2: { blocks: 1, used: 1 } },
      }),
    ]);
    expect(squeeze((await run('ipam', 'show', '--node', 'n2')).out)).toContain('vlan-100 n2 1 1 2/253');
    expect((await run('ipam', 'pool', 'show', 'vlan-100')).out).toContain('cidr: 10.100.0.0/24');
    expect(await run('ipam', 'check')).toEqual({
      out: 'revision 3: 1 pools, 2 allocated, 0 kept for sticky pods, 2 handles, 0 problems\n',
      code: undefined,
    });

    await expect(run('ipam', 'pool', 'rm', 'vlan-100')).rejects.toMatchObject({ code: 'POOL_IN_USE' });
    // The sticky pod's container goes away: its address is kept for it…
    await ipam.release('c1', 'eth0');
    expect(squeeze((await run('ipam', 'sticky')).out)).toBe(
      `POD POOL IP\nshop/web-0/eth0 vlan-100 ${a.ip}\n`,
    );
    // …until the operator releases it by address.
    expect((await run('ipam', 'release', '--ip', a.ip)).out).toBe(`released ${a.ip} (pool vlan-100)\n`);
    expect((await run('ipam', 'release', '--handle', 'c2/eth0')).out).toMatch(
      /^released 10\.100\.0\.\d+ \(pool vlan-100\)\n$/,
    );
    expect((await run('ipam', 'release', '--handle', 'c2/eth0')).out).toBe('nothing to release\n');
    await expect(run('ipam', 'release')).rejects.toBeInstanceOf(NodewardError);
    expect((await run('ipam', 'pool', 'rm', 'vlan-100')).out).toBe('pool vlan-100 removed\n');
    expect(JSON.parse((await run('ipam', 'check', '-o', 'json')).out)).toMatchObject({
      pools: 0,
      handles: 0,
      problems: [],
    });
    await store.close();
  });

  it('check exits 1 and lists what is inconsistent', async () => {
    const store = await FileStore.open(join(dir, 'ipam'));
    await store.commit({
      conditions: [],
      writes: [
        {
          key: 'handles/ghost/eth0',
          value: JSON.stringify({
            pool: 'p',
            ip: '10.0.0.9',
            block: '10.0.0.0-26',
            sticky: false,
            pod: 'x',
            namespace: 'y',
            node: 'n',
            since: 'now',
          }),
        },
      ],
    });
    const r = await run('ipam', 'check');
    expect(r.code).toBe(1);
    expect(squeeze(r.out)).toContain('handle-without-ip handles/ghost/eth0 no ips/p/10.0.0.0-26/10.0.0.9');
    await store.close();
  });
  it('releases what a check report lists (unless changed since), ignores vteps/ keys, and rm --force frees addresses', async () => {
    const spec = join(dir, 'pool-r.yaml');
    await writeFile(spec, 'name: r\ncidr: 10.200.0.0/24\ngateway: 10.200.0.1\n');
    await run('ipam', 'pool', 'add', spec);
    const store = await FileStore.open(join(dir, 'ipam'));
    const ipam = new Ipam({ store });
    const base = { ifName: 'eth0', pod: 'p', namespace: 'ns', node: 'n1', pool: 'r' };
    const held = await ipam.allocate({ ...base, containerID: 'c2', pod: 'p2' });
    const orphan = await ipam.allocate({ ...base, containerID: 'c3', pod: 'p3' });
    const ghost2 = {
      pool: 'r',
      ip: '10.200.0.77',
      block: '10.200.0.64-26',
      sticky: false,
      pod: 'x',
      namespace: 'y',
      node: 'n',
      since: 'now',
    };
    await store.commit({
      conditions: [],
      writes: [
        { key: 'handles/c3/eth0', delete: true }, // its ip key is now orphaned
        { key: 'handles/ghost2/eth0', value: JSON.stringify(ghost2) },
        // Not IPAM records: VXLAN peers (net/segment.ts) and GC liveness keys live beside them.
        { key: 'vteps/100/n1', value: JSON.stringify({ address: '192.0.2.1' }) },
        { key: 'nodes/n1', value: 'x' },
        { key: 'gc-leader', value: 'n1' },
      ],
    });
    const check = await run('ipam', 'check', '-o', 'json');
    const report = JSON.parse(check.out) as { problems: { key: string; kind: string }[] };
    expect(report.problems.map((p) => `${p.kind} ${p.key}`).sort()).toEqual([
      'handle-without-ip handles/ghost/eth0',
      'handle-without-ip handles/ghost2/eth0',
      `ip-without-handle ips/r/10.200.0.0-26/${orphan.ip}`,
    ]);
    const file = join(dir, 'report.json');
    await writeFile(file, check.out);
    // Changed after the report: it must be skipped.
    await store.commit({
      conditions: [],
      writes: [{ key: 'handles/ghost2/eth0', value: JSON.stringify(ghost2) }],
    });

    const released = await run('ipam', 'release', '--from-report', file, '-o', 'json');
    expect(released.code).toBe(1);
    expect(JSON.parse(released.out)).toEqual(
      expect.arrayContaining([
        { key: 'handles/ghost/eth0', kind: 'handle-without-ip', outcome: 'released' },
        { key: 'handles/ghost2/eth0', kind: 'handle-without-ip', outcome: 'changed' },
        { key: `ips/r/10.200.0.0-26/${orphan.ip}`, kind: 'ip-without-handle', outcome: 'released' },
      ]),
    );
    const after = JSON.parse((await run('ipam', 'check', '-o', 'json')).out) as {
      problems: { key: string }[];
    };
    expect(after.problems.map((p) => p.key)).toEqual(['handles/ghost2/eth0']);
    expect((await store.get(['vteps/100/n1'])).has('vteps/100/n1')).toBe(true);

    await expect(run('ipam', 'pool', 'rm', 'r')).rejects.toMatchObject({
      code: 'POOL_IN_USE',
      message: expect.stringContaining('--force'),
    });
    expect((await run('ipam', 'pool', 'rm', 'r', '--force')).out).toBe(
      'pool r removed (1 address(es) released)\n',
    );
    const left = await store.list('');
    expect(
      left.entries.map((e) => e.key).filter((k) => k.includes(held.ip) || k.startsWith('handles/c2')),
    ).toEqual([]);
    expect(left.entries.some((e) => e.key.startsWith('blocks/r/') || e.key === 'pools/r')).toBe(false);
    await store.close();
  });
});
