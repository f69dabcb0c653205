import { cpSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { metricsSchema } from '../../../shared/config/index.ts';
import { KubeletPodSource } from '../../../shared/pods/index.ts';
import { Lab, tempDir } from '../../../test/lab/index.ts';
import { collectSamples, fixture, sampleValue } from '../../../test/support/metrics/testing.ts';
import { startFakeKubelet } from '../../../test/support/pods/fake-kubelet.ts';
import { detectCgroupLayout } from './cgroup.ts';
import { CONTAINER_FAMILIES, createContainerCollector, SPEC_REFRESH_MS } from './collector.ts';
import { createCgroupSource } from './kubelet-cgroups.ts';
import { podLookupFrom } from './pods.ts';
import type { PodLookup } from './source.ts';

const POD_UID = '0b7c5a2e-9f3d-4c1e-8a6b-2d4f6e8a0c1b';
const ID = '3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a';

const pods: PodLookup = {
  container: (uid, id) =>
    uid === POD_UID && id === ID
      ? { pod: 'web-0', namespace: 'shop', container: 'nginx', image: 'nginx:1.27' }
      : undefined,
};

function collectorFor(root: string, withPods: boolean | PodLookup = true) {
  const settings = metricsSchema.parse({ procRoot: fixture('host/proc') });
  const layout = detectCgroupLayout(fixture(root));
  const lookup = withPods === true ? pods : withPods === false ? undefined : withPods;
  const source = createCgroupSource(lookup ? { layout, pods: lookup } : { layout });
  return createContainerCollector({
    settings: settings.containers,
    procRoot: settings.procRoot,
    sysRoot: fixture('host/sys'),
    layout,
    source,
    clock: () => 1_700_000_000_000,
  });
}

describe('container collector', () => {
  it('emits cAdvisor names with id,name,image,container,pod,namespace from the kubelet layout + pod lookup', async () => {
    const samples = await collectSamples(collectorFor('cgroup-v2'));
    const id = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_UID.replaceAll('-', '_')}.slice/cri-containerd-${ID}.scope`;
    const labels = { id, name: ID, image: 'nginx:1.27', container: 'nginx', pod: 'web-0', namespace: 'shop' };
    expect(sampleValue(samples, 'container_cpu_usage_seconds_total', { ...labels, cpu: 'total' })).toBe(
      12.345678,
    );
    expect(sampleValue(samples, 'container_memory_working_set_bytes', labels)).toBe(41943040);
    expect(sampleValue(samples, 'container_spec_memory_limit_bytes', labels)).toBe(134217728);
    expect(sampleValue(samples, 'container_spec_cpu_quota', labels)).toBe(50000);
    expect(sampleValue(samples, 'container_cpu_cfs_throttled_seconds_total', labels)).toBe(4.5);
    expect(sampleValue(samples, 'container_last_seen', labels)).toBe(1_700_000_000);
    // Network from the netns of the cgroup's first process (cgroup.procs → 4242), lo left out.
    expect(
      sampleValue(samples, 'container_network_receive_bytes_total', { ...labels, interface: 'eth0' }),
    ).toBe(370349559);
    expect(samples.filter((s) => s.labels['interface'] === 'lo')).toEqual([]);
    expect(sampleValue(samples, 'container_network_transmit_packets_total', { interface: 'eth0' })).toBe(
      5101,
    );
    // Every sample belongs to a declared family; every container label set carries all six
    // identity labels (machine_* describe the node: cAdvisor's machine_id, system_uuid, boot_id).
    const names = new Set(CONTAINER_FAMILIES.map((f) => f.name));
    for (const s of samples) {
      expect(names.has(s.name)).toBe(true);
      if (s.name.startsWith('machine_')) continue;
      expect(Object.keys(s.labels)).toEqual(expect.arrayContaining(Object.keys(labels)));
    }
  });

  it('picks up changed limits within SPEC_REFRESH_MS; CFS counters (cpu.stat, skipped without a quota) with the quota', async () => {
    const lab = new Lab();
    try {
      const root = await tempDir('cgroup-v1', lab);
      cpSync(fixture('cgroup-v1'), root, { recursive: true });
      const layout = detectCgroupLayout(root);
      if (layout.version !== 1) throw new Error('fixture is v1');
      const path = '/docker/e160c4d5be902260120e065c12d1b05aa97efcc560b70168278ef664428e47c9';
      const labels = { id: path, name: 'idle', image: 'busybox', container: '', pod: '', namespace: '' };
      let now = 1_700_000_000_000;
      const settings = metricsSchema.parse({ procRoot: fixture('host/proc') });
      const collector = createContainerCollector({
        settings: settings.containers,
        procRoot: settings.procRoot,
        sysRoot: fixture('host/sys'),
        layout,
        source: { kind: 'docker', list: () => [{ cgroupPath: path, labels }], run: async () => {} },
        clock: () => now,
      });
      const cfs = (samples: Awaited<ReturnType<typeof collectSamples>>) =>
        samples.filter((s) => s.name.startsWith('container_cpu_cfs_')).map((s) => [s.name, s.value]);
      let samples = await collectSamples(collector);
      expect(sampleValue(samples, 'container_spec_memory_limit_bytes', labels)).toBe(0);
      expect(samples.filter((s) => s.name === 'container_spec_cpu_quota')).toEqual([]);
      expect(cfs(samples)).toEqual([]);

      // `docker update --memory 64m --cpus 0.5`, and the container throttled since.
      writeFileSync(`${layout.memory}${path}/memory.limit_in_bytes`, '67108864\n');
      writeFileSync(`${layout.cpu}${path}/cpu.cfs_quota_us`, '50000\n');
      writeFileSync(
        `${layout.cpu}${path}/cpu.stat`,
        'nr_periods 10\nnr_throttled 4\nthrottled_time 2000000000\n',
      );
      now += SPEC_REFRESH_MS - 1;
      samples = await collectSamples(collector);
      expect(sampleValue(samples, 'container_spec_memory_limit_bytes', labels)).toBe(0);
      expect(cfs(samples)).toEqual([]);
      now += 1;
      samples = await collectSamples(collector);
      expect(sampleValue(samples, 'container_spec_memory_limit_bytes', labels)).toBe(67108864);
      expect(sampleValue(samples, 'container_spec_cpu_quota', labels)).toBe(50000);
      expect(cfs(samples)).toEqual([
        ['container_cpu_cfs_periods_total', 10],
        ['container_cpu_cfs_throttled_periods_total', 4],
        ['container_cpu_cfs_throttled_seconds_total', 2],
      ]);
      // With a quota, cpu.stat is read at every scrape, between refreshes too.
      writeFileSync(
        `${layout.cpu}${path}/cpu.stat`,
        'nr_periods 11\nnr_throttled 5\nthrottled_time 3000000000\n',
      );
      now += 1000;
      samples = await collectSamples(collector);
      expect(sampleValue(samples, 'container_cpu_cfs_periods_total', labels)).toBe(11);
      collector.close();
    } finally {
      await lab.cleanup();
    }
  });

  it('without pod metadata the identity labels are empty but the series are there', async () => {
    const samples = await collectSamples(collectorFor('cgroup-v1', false));
    const usage = samples.filter((s) => s.name === 'container_memory_usage_bytes' && s.labels['name'] === ID);
    expect(usage).toHaveLength(1);
    expect(usage[0]!.labels).toMatchObject({ pod: '', namespace: '', container: '', name: ID });
    expect(usage[0]!.value).toBe(52428800);
  });

  it('names containers, image included, from the kubelet /pods (containerStatuses[].image by containerID)', async () => {
    const lab = new Lab();
    const kubelet = await startFakeKubelet(await tempDir('metrics-kubelet', lab));
    try {
      kubelet.add({
        uid: POD_UID,
        namespace: 'shop',
        name: 'web-0',
        containers: [{ name: 'nginx', id: ID, image: 'docker.io/library/nginx:1.27' }],
      });
      const source = new KubeletPodSource({
        url: kubelet.url,
        tokenFile: kubelet.tokenFile,
        caFile: kubelet.caFile,
        insecureSkipVerify: false,
        timeout: 5000,
        pollInterval: 60_000,
        refreshMinInterval: 0,
        deletedGrace: 60_000,
      });
      await source.start();
      try {
        const samples = await collectSamples(collectorFor('cgroup-v1', podLookupFrom(source)));
        const usage = samples.filter((s) => s.name === 'container_memory_usage_bytes');
        expect(usage.map((s) => s.labels)).toEqual(
          expect.arrayContaining([
            {
              id: `/kubepods/burstable/pod${POD_UID}/${ID}`,
              name: ID,
              image: 'docker.io/library/nginx:1.27',
              container: 'nginx',
              pod: 'web-0',
              namespace: 'shop',
            },
            // The pod's own cgroup: no image, as the kubelet's cAdvisor shows it.
            {
              id: `/kubepods/burstable/pod${POD_UID}`,
              name: '',
              image: '',
              container: '',
              pod: 'web-0',
              namespace: 'shop',
            },
          ]),
        );
      } finally {
        source.stop();
      }
    } finally {
      await kubelet.close();
      await lab.cleanup();
    }
  });

  for (const [tree, podPath, containerPath] of [
    ['cgroup-v1', `/kubepods/burstable/pod${POD_UID}`, `/kubepods/burstable/pod${POD_UID}/${ID}`],
    [
      'cgroup-v2',
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_UID.replaceAll('-', '_')}.slice`,
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_UID.replaceAll('-', '_')}.slice/cri-containerd-${ID}.scope`,
    ],
  ] as const) {
    it(`container_fs_* per device, named /dev/<DEVNAME> from sysfs, major:minor when sysfs does not know it (${tree})`, async () => {
      const samples = await collectSamples(collectorFor(tree));
      const sda = { id: containerPath, device: '/dev/sda', container: 'nginx' };
      expect(sampleValue(samples, 'container_fs_reads_bytes_total', sda)).toBe(4915200);
      expect(sampleValue(samples, 'container_fs_writes_bytes_total', sda)).toBe(13926400);
      expect(sampleValue(samples, 'container_fs_reads_total', sda)).toBe(120);
      expect(sampleValue(samples, 'container_fs_writes_total', sda)).toBe(340);
      // 259:0 has no sysfs entry in the fixture: named by its numbers, so that two unknown devices
      // never share a series.
      expect(sampleValue(samples, 'container_fs_reads_total', { id: containerPath, device: '259:0' })).toBe(
        7,
      );
    });

    it(`the pod cgroup itself, as the kubelet's cAdvisor shows it: container="", name="", pod and namespace set (${tree})`, async () => {
      const samples = await collectSamples(collectorFor(tree));
      const pod = { id: podPath, name: '', image: '', container: '', pod: 'web-0', namespace: 'shop' };
      expect(sampleValue(samples, 'container_memory_usage_bytes', pod)).toBe(62914560);
      expect(sampleValue(samples, 'container_cpu_usage_seconds_total', { ...pod, cpu: 'total' })).toBe(14);
      expect(sampleValue(samples, 'container_fs_writes_bytes_total', { ...pod, device: '/dev/sda' })).toBe(
        14000000,
      );
      expect(sampleValue(samples, 'container_start_time_seconds', pod)).toBeGreaterThan(0);
      // The mixin's container!="" filter keeps exactly the containers; the pod's own series are
      // what `container=""` selects. No network series for the pod cgroup (cAdvisor has none).
      const podSeries = samples.filter((s) => s.labels['id'] === podPath);
      expect(podSeries.every((s) => s.labels['container'] === '')).toBe(true);
      expect(podSeries.filter((s) => s.name.startsWith('container_network_'))).toEqual([]);
      expect(
        samples.filter(
          (s) => s.name === 'container_memory_working_set_bytes' && s.labels['container'] !== '',
        ),
      ).toHaveLength(1);
    });
  }
});

describe('network series per network namespace (cgroup layout, no runtime to ask)', () => {
  const root = process.getuid?.() === 0;

  it.skipIf(!root)(
    'one container per netns reports it, the pause (unnamed) one first; the host netns none',
    async () => {
      const { spawn } = await import('node:child_process');
      const pause = spawn('unshare', ['--net', 'sleep', '30'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 300));
      const app = spawn('nsenter', ['-t', String(pause.pid), '-n', 'sleep', '30'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 300));
      const hostEnd = `nwn${process.pid % 100000}`;
      const { runOk } = await import('../../../test/lab/index.ts');
      await runOk('ip', [
        'link',
        'add',
        hostEnd,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        String(pause.pid),
      ]);
      try {
        const settings = metricsSchema.parse({});
        const layout = detectCgroupLayout(fixture('cgroup-v2'));
        const path = (n: string) => `/kubepods.slice/x/${n}`;
        const info = (name: string, container: string, pid: number) => ({
          cgroupPath: path(name),
          pid,
          labels: { id: path(name), name, image: '', container, pod: 'p', namespace: 'n' },
        });
        const infos = [
          info('app', 'app', app.pid!),
          info('pause', '', pause.pid!),
          info('hostnet', 'h', process.pid),
        ];
        // Stats from the fixture's one container, whatever the path: only the network part is under test.
        const fixturePath = (await import('./kubelet-cgroups.ts')).scanKubeletCgroups(
          fixture('cgroup-v2'),
        )[0]!.cgroupPath;
        const collector = createContainerCollector({
          settings: settings.containers,
          procRoot: '/proc',
          layout,
          source: {
            kind: 'cgroups',
            list: () => infos.map((i) => ({ ...i, cgroupPath: fixturePath })),
            run: async () => {},
          },
        });
        const samples = await collectSamples(collector);
        const withNetwork = new Set(
          samples.filter((s) => s.name.startsWith('container_network_')).map((s) => s.labels['name']),
        );
        expect([...withNetwork]).toEqual(['pause']);
      } finally {
        await runOk('ip', ['link', 'del', hostEnd]).catch(() => {});
        pause.kill('SIGKILL');
        app.kill('SIGKILL');
      }
    },
  );
});
