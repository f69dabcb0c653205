import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { metricsSchema } from '../../../shared/config/index.ts';
import { createLogger } from '../../../shared/logger.ts';
import { collectSamples, fixture, sampleValue } from '../../../test/support/metrics/testing.ts';
import { createFilesystemCollector } from '../collectors/filesystem.ts';
import { createNetdevCollector } from '../collectors/netdev.ts';
import { detectCgroupLayout, readCgroupStats, weightToShares } from './cgroup.ts';
import { createContainerCollector } from './collector.ts';
import { createCgroupSource } from './kubelet-cgroups.ts';
import { countCpuList, readMachineInfo } from './machine.ts';
import { chooseSource, createAutoSource } from './runtime.ts';
import type { ContainerInfo, ContainerSource } from './source.ts';

const ROOT = join(import.meta.dirname, '../../..');
const tmp = mkdtempSync(join(tmpdir(), 'nodeward-fidelity-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;

/** Writes a tree of files ({ 'a/b': 'text' }) under a fresh directory; returns it. */
function tree(files: Record<string, string>): string {
  const root = join(tmp, String(dirs++));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  mkdirSync(root, { recursive: true });
  return root;
}

const UID = '6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f';
const ID = 'c0ffee'.padEnd(64, '0');
const V2_POD = `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replaceAll('-', '_')}.slice`;
const V2_CONTAINER = `${V2_POD}/cri-containerd-${ID}.scope`;

/** A v2 host with one besteffort container: weight 4, no quota, 7 tasks, processes 101 and 102. */
function v2Host(extra: Record<string, string> = {}) {
  const cgroups = tree({
    'cgroup.controllers': 'cpu io memory pids\n',
    [`${V2_CONTAINER}/cpu.stat`]:
      'usage_usec 2000000\nuser_usec 1500000\nsystem_usec 500000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n',
    [`${V2_CONTAINER}/cpu.max`]: 'max 100000\n',
    [`${V2_CONTAINER}/cpu.weight`]: '4\n',
    [`${V2_CONTAINER}/memory.current`]: '1048576\n',
    [`${V2_CONTAINER}/pids.current`]: '7\n',
    [`${V2_CONTAINER}/cgroup.procs`]: '101\n102\n',
    ...extra,
  });
  const proc = tree({
    meminfo: 'MemTotal:       2048 kB\nMemFree:         1024 kB\n',
    stat: 'cpu  1 2 3\ncpu0 1 1 1\ncpu1 1 1 1\nintr 0\n',
    'sys/kernel/random/boot_id': '0b00b1d0-0000-4000-8000-000000000001\n',
    '101/fd/0': '',
    '101/fd/1': '',
    '101/fd/2': '',
    '102/fd/0': '',
    '102/fd/1': '',
  });
  return { cgroups, proc };
}

function collectorOn(
  cgroups: string,
  proc: string,
  opts: { sys?: string; host?: string; source?: ContainerSource } = {},
) {
  const layout = detectCgroupLayout(cgroups);
  const settings = metricsSchema.parse({ procRoot: proc });
  return createContainerCollector({
    settings: settings.containers,
    procRoot: proc,
    sysRoot: opts.sys ?? join(proc, 'no-sys'),
    hostRoot: opts.host ?? join(proc, 'no-host'),
    layout,
    source: opts.source ?? createCgroupSource({ layout }),
    clock: () => 1_700_000_000_000,
  });
}

describe('cAdvisor fidelity', () => {
  it('cpu.weight → container_spec_cpu_shares rounds down as cAdvisor (integer division)', async () => {
    // 2 + 3 × 262142 / 9999 = 80.65: cAdvisor says 80.
    expect(weightToShares(4)).toBe(80);
    expect(weightToShares(5)).toBe(106);
    expect(weightToShares(100)).toBe(2597);
    const { cgroups, proc } = v2Host();
    const samples = await collectSamples(collectorOn(cgroups, proc));
    expect(sampleValue(samples, 'container_spec_cpu_shares', { name: ID })).toBe(80);
  });

  it('container_cpu_cfs_* only for a container with a CPU quota (cAdvisor: Quota != 0)', async () => {
    // cgroup-v1 fixture: the kubepods container has a 50 ms quota, the Docker one none (-1).
    const layout = detectCgroupLayout(fixture('cgroup-v1'));
    const info = (path: string, name: string): ContainerInfo => ({
      cgroupPath: path,
      ownNetwork: false,
      labels: { id: path, name, image: '', container: name, pod: '', namespace: '' },
    });
    const docker = '/docker/e160c4d5be902260120e065c12d1b05aa97efcc560b70168278ef664428e47c9';
    // Both have CFS counters in their cpu.stat: the kernel counts periods for every cgroup.
    expect(readCgroupStats(layout, docker)).toMatchObject({ cpuQuota: 0, cfsPeriods: expect.any(Number) });
    const list = [
      info(docker, 'unlimited'),
      info(
        '/kubepods/burstable/pod0b7c5a2e-9f3d-4c1e-8a6b-2d4f6e8a0c1b/3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a',
        'limited',
      ),
    ];
    const samples = await collectSamples(
      collectorOn(fixture('cgroup-v1'), fixture('host/proc'), {
        source: { kind: 'cgroups', list: () => list, run: async () => {} },
      }),
    );
    const cfs = (name: string) =>
      samples
        .filter((s) => s.name.startsWith('container_cpu_cfs_') && s.labels['name'] === name)
        .map((s) => s.name);
    expect(cfs('unlimited')).toEqual([]);
    expect(cfs('limited').sort()).toEqual([
      'container_cpu_cfs_periods_total',
      'container_cpu_cfs_throttled_periods_total',
      'container_cpu_cfs_throttled_seconds_total',
    ]);
    expect(
      samples.some((s) => s.name === 'container_memory_usage_bytes' && s.labels['name'] === 'unlimited'),
    ).toBe(true);
  });

  it('container_processes (cgroup.procs), container_threads (pids.current), container_file_descriptors (/proc/<pid>/fd)', async () => {
    const { cgroups, proc } = v2Host();
    const samples = await collectSamples(collectorOn(cgroups, proc));
    const labels = { id: `/${V2_CONTAINER}`, name: ID };
    expect(sampleValue(samples, 'container_processes', labels)).toBe(2);
    expect(sampleValue(samples, 'container_threads', labels)).toBe(7);
    expect(sampleValue(samples, 'container_file_descriptors', labels)).toBe(5);
  });

  it('v1 threads come from the pids hierarchy, when it is mounted', () => {
    const v1 = tree({
      'memory/docker/x/memory.usage_in_bytes': '4096\n',
      'pids/docker/x/pids.current': '3\n',
    });
    const layout = detectCgroupLayout(v1);
    expect(layout).toMatchObject({ version: 1, pids: join(v1, 'pids') });
    expect(readCgroupStats(layout, '/docker/x')).toMatchObject({ memoryUsage: 4096, threads: 3 });
  });

  it('machine_cpu_cores and machine_memory_bytes with machine_id, system_uuid, boot_id', async () => {
    const { cgroups, proc } = v2Host();
    const sys = tree({ 'devices/system/cpu/online': '0-3,6\n', 'class/dmi/id/product_uuid': 'EC2A-UUID\n' });
    const host = tree({ 'var/lib/dbus/machine-id': 'd0b5\n' });
    const samples = await collectSamples(collectorOn(cgroups, proc, { sys, host }));
    const labels = {
      machine_id: 'd0b5',
      system_uuid: 'EC2A-UUID',
      boot_id: '0b00b1d0-0000-4000-8000-000000000001',
    };
    expect(samples.filter((s) => s.name.startsWith('machine_'))).toEqual([
      { name: 'machine_cpu_cores', value: 5, labels },
      { name: 'machine_memory_bytes', value: 2048 * 1024, labels },
    ]);
    // Without sysfs: the cpuN lines of /proc/stat; without ids: "" as cAdvisor.
    expect(
      readMachineInfo({ procRoot: proc, sysRoot: join(tmp, 'none'), hostRoot: join(tmp, 'none') }),
    ).toEqual({
      cores: 2,
      memoryBytes: 2048 * 1024,
      labels: { machine_id: '', system_uuid: '', boot_id: '0b00b1d0-0000-4000-8000-000000000001' },
    });
    expect(countCpuList('0\n')).toBe(1);
    expect(countCpuList('0-63,128-191\n')).toBe(128);
  });
});

/** A Docker Engine API stand-in on a unix socket: GET /containers/json, label filters applied. */
async function fakeDocker(
  containers: { Id: string; Labels: Record<string, string> }[],
): Promise<{ socket: string; server: Server; urls: string[] }> {
  const socket = join(tree({}), 'docker.sock');
  const urls: string[] = [];
  const server = createServer((req, res) => {
    urls.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://docker');
    const labels = (JSON.parse(url.searchParams.get('filters') ?? '{}') as { label?: string[] }).label ?? [];
    const found = containers.filter((c) => labels.every((l) => l in c.Labels));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(found));
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { socket, server, urls };
}

describe('source: auto picks Docker only where Docker runs the pods', () => {
  const servers: Server[] = [];
  afterAll(() => {
    for (const s of servers) s.close();
  });
  const kubelet = () => detectCgroupLayout(v2Host().cgroups);
  const plainHost = () =>
    detectCgroupLayout(tree({ 'cgroup.controllers': 'cpu memory\n', 'system.slice/x': '' }));

  it('a Docker socket on a node whose pods another runtime runs (no pod containers in Docker): cgroups', async () => {
    // Docker runs something (an image build), just no pod.
    const docker = await fakeDocker([{ Id: 'b'.repeat(64), Labels: { 'com.docker.compose.project': 'ci' } }]);
    servers.push(docker.server);
    const choice = await chooseSource({ dockerSocket: docker.socket, layout: kubelet() });
    expect(choice.kind).toBe('cgroups');
    // Asked for pod containers only (the kubelet's label), not every container.
    expect(decodeURIComponent(docker.urls[0]!)).toBe(
      '/containers/json?filters={"label":["io.kubernetes.pod.namespace"]}',
    );
  });

  it('Docker running pod containers: docker', async () => {
    const docker = await fakeDocker([
      { Id: 'a'.repeat(64), Labels: { 'io.kubernetes.pod.namespace': 'kube-system' } },
    ]);
    servers.push(docker.server);
    expect(await chooseSource({ dockerSocket: docker.socket, layout: kubelet() })).toMatchObject({
      kind: 'docker',
    });
  });

  it('a stale socket file, or none: cgroups; a Docker host without a kubelet: docker', async () => {
    const stale = join(tree({ 'docker.sock': '' }), 'docker.sock');
    for (const layout of [kubelet(), plainHost()]) {
      expect(await chooseSource({ dockerSocket: stale, layout })).toMatchObject({ kind: 'cgroups' });
      expect(await chooseSource({ dockerSocket: join(tmp, 'absent.sock'), layout })).toMatchObject({
        kind: 'cgroups',
      });
    }
    const docker = await fakeDocker([{ Id: 'c'.repeat(64), Labels: {} }]);
    servers.push(docker.server);
    expect(await chooseSource({ dockerSocket: docker.socket, layout: plainHost() })).toMatchObject({
      kind: 'docker',
    });
  });

  it('the auto source is "auto" until it runs, then the one chosen', async () => {
    const { cgroups } = v2Host();
    const layout = detectCgroupLayout(cgroups);
    const made: string[] = [];
    const auto = createAutoSource({
      dockerSocket: join(tmp, 'absent.sock'),
      layout,
      log: createLogger('silent'),
      create: (kind) => {
        made.push(kind);
        return createCgroupSource({ layout });
      },
    });
    expect(auto.kind).toBe('auto');
    expect(auto.list()).toEqual([]);
    const controller = new AbortController();
    const running = auto.run(controller.signal);
    expect(await auto.decided()).toBe('cgroups');
    expect(auto.kind).toBe('cgroups');
    expect(auto.list().map((i) => i.containerId)).toEqual([ID]);
    expect(made).toEqual(['cgroups']);
    controller.abort();
    await running;
  });

  it('loads no Docker client library (dockerode cost ≈ 20 MiB of idle RSS): the Engine API over node:http', () => {
    const offenders = readdirSync(import.meta.dirname, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .filter((f) =>
        /from 'dockerode'|import\('dockerode'\)/.test(readFileSync(join(import.meta.dirname, f), 'utf8')),
      );
    expect(offenders).toEqual([]);
  });
});

describe('defaults for a node with hundreds of pods', () => {
  it("filesystem: the pods' volume mounts under /var/lib/kubelet/pods are left out by default (kube-prometheus)", async () => {
    const proc = tree({
      '1/mounts': [
        '/dev/vda1 / ext4 rw 0 0',
        '/dev/vdb /var/lib/kubelet xfs rw 0 0',
        `tmpfs /var/lib/kubelet/pods/${UID}/volumes/kubernetes.io~projected/kube-api-access-x2x9q tmpfs rw 0 0`,
        `/dev/vdb /var/lib/kubelet/pods/${UID}/volume-subpaths/cfg/app/0 xfs rw 0 0`,
        '',
      ].join('\n'),
    });
    const settings = metricsSchema.parse({ procRoot: proc });
    const collector = createFilesystemCollector(settings, async () => ({
      bsize: 4096,
      blocks: 10,
      bfree: 5,
      bavail: 4,
      files: 100,
      ffree: 50,
    }));
    const samples = await collectSamples(collector);
    const points = [...new Set(samples.map((s) => s.labels['mountpoint']))];
    expect(points).toEqual(['/', '/var/lib/kubelet']);
  });

  it('netdev (production config): pod veths left out, the node’s own links kept', async () => {
    const doc = parse(readFileSync(join(ROOT, 'deploy/config.production.yaml'), 'utf8')) as {
      metrics: unknown;
    };
    const settings = metricsSchema.parse(doc.metrics);
    const links = [
      'lo',
      'eth0',
      'bond0',
      'bond0.100',
      'vlan100',
      'br100',
      'vxbr7',
      'vx7',
      'nw-default',
      'nw_0123456789ab',
      'nw0123456789a', // ours: hostVethName, nw + 11 hex
      'vethd8a3b2c',
      '0123456789abcde',
    ];
    const zeros = Array.from({ length: 16 }, () => '0').join(' ');
    const proc = tree({
      'net/dev': `Inter-| header\n face | header\n${links.map((l) => `${l}: ${zeros}`).join('\n')}\n`,
    });
    const samples = await collectSamples(createNetdevCollector({ ...settings, procRoot: proc }));
    expect([...new Set(samples.map((s) => s.labels['device']))]).toEqual(links.slice(0, 10));
    // The embedded default stays node_exporter's: everything.
    const all = await collectSamples(createNetdevCollector(metricsSchema.parse({ procRoot: proc })));
    expect(new Set(all.map((s) => s.labels['device'])).size).toBe(links.length);
  });
});
