import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HOST_COLLECTORS, metricsSchema } from '../../../shared/config/index.ts';
import { createLogger } from '../../../shared/logger.ts';
import { KubeletPodSource } from '../../../shared/pods/index.ts';
import {
  CONTAINERD_BINARIES,
  Lab,
  skipReason,
  startContainerd,
  startKubeletLite,
  startLabCniNetwork,
  tempDir,
  waitFor,
} from '../../../test/lab/index.ts';
import { type ExposedFamily, parseExposition } from '../../../test/support/metrics/testing.ts';
import { createMetrics } from '../index.ts';
import { countCpuList } from './machine.ts';
import { podLookupFrom } from './pods.ts';

const reason = skipReason({
  root: true,
  binaries: [...CONTAINERD_BINARIES, 'findmnt'],
});
if (reason)
  console.warn(`[lab] metrics/containerd tests skipped: ${reason} (install containerd busybox-static)`);

type Families = Map<string, ExposedFamily>;
const find = (families: Families, name: string, labels: Record<string, string>) =>
  families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));

describe('container metrics on a containerd node (kubelet layout, CRI, hybrid cgroups)', () => {
  const lab = new Lab();
  afterAll(() => lab.cleanup());

  it.skipIf(reason)(
    'a pod’s series carry pod, namespace, container and image; processes, threads, fds, writable layer; machine_*; all gone after removal',
    { timeout: 180_000 },
    async () => {
      const net = await startLabCniNetwork({ lab });
      const containerd = await startContainerd({ lab, cniBinDir: net.binDir, cniConfDir: net.confDir });
      const kubelet = await startKubeletLite({ lab, containerd });
      const pods = new KubeletPodSource({
        url: kubelet.url,
        tokenFile: kubelet.tokenFile,
        caFile: '',
        insecureSkipVerify: false,
        timeout: 5000,
        pollInterval: 60_000,
        refreshMinInterval: 0,
        deletedGrace: 60_000,
      });
      await pods.start();
      lab.defer('pod source', () => pods.stop());

      // A Docker socket file nobody answers on (a stray, stale one): auto must not pick Docker.
      const stray = join(await tempDir('metrics-containerd', lab), 'docker.sock');
      writeFileSync(stray, '');
      const settings = metricsSchema.parse({
        collectors: Object.fromEntries(Object.keys(HOST_COLLECTORS).map((n) => [n, false])),
        containers: {
          source: 'auto',
          dockerSocket: stray,
          criSockets: [join(containerd.dir, 'absent.sock'), containerd.socketPath],
          criStatsInterval: '1s',
        },
      });
      const metrics = createMetrics(settings, {
        log: createLogger('silent'),
        node: 'lab-node',
        pods: podLookupFrom(pods),
      });
      const controller = new AbortController();
      // The container source alone: push and alerts have nothing to do here.
      const running = metrics.source!.run(controller.signal);
      lab.defer('metrics run', async () => {
        controller.abort();
        await running;
      });
      const scrape = async () => parseExposition(await metrics.registry.metrics());

      // Writes 3 MiB into its writable layer, then waits with a child: two processes.
      const pod = await kubelet.runPod({
        namespace: 'shop',
        owner: { kind: 'StatefulSet', name: 'web' },
        containers: [
          {
            name: 'app',
            command: ['/bin/sh', '-c', 'head -c 3145728 /dev/zero > /layer.bin; sleep 3600 & wait'],
          },
        ],
      });
      const app = pod.containers[0]!;
      // containerd with the cgroupfs driver: <cgroup_parent>/<container id>, in every hierarchy.
      const labels = {
        id: `${pod.cgroupParent}/${app.id}`,
        name: app.id,
        image: containerd.workloadImage,
        container: 'app',
        pod: pod.name,
        namespace: 'shop',
      };
      expect(pod.cgroupParent).toBe(`/kubepods/besteffort/pod${pod.uid}`);
      const named = await waitFor(
        async () => {
          const f = await scrape();
          return find(f, 'container_memory_usage_bytes', labels) ? f : undefined;
        },
        { what: 'the app container’s series with its pod labels', timeoutMs: 30_000 },
      );
      expect(metrics.source?.kind).toBe('cgroups');
      expect(find(named, 'container_memory_usage_bytes', { name: app.id })!.labels).toEqual(labels);
      expect(find(named, 'container_cpu_usage_seconds_total', { name: app.id })!.labels).toEqual({
        ...labels,
        cpu: 'total',
      });
      // The pod's own cgroup, as the kubelet's cAdvisor shows it.
      expect(
        find(named, 'container_memory_usage_bytes', { id: pod.cgroupParent, container: '', pod: pod.name }),
      ).toBeDefined();
      // Besteffort: no CPU quota, so no CFS series (cAdvisor's condition).
      expect(find(named, 'container_cpu_cfs_periods_total', { name: app.id })).toBeUndefined();
      expect(find(named, 'container_spec_cpu_quota', { name: app.id })).toBeUndefined();

      // Processes: sh and its sleep; threads from the pids hierarchy; fds as /proc lists them.
      const procs = () =>
        readFileSync(`/sys/fs/cgroup/memory${labels.id}/cgroup.procs`, 'utf8').split('\n').filter(Boolean);
      const processes = await waitFor(
        async () => {
          const f = await scrape();
          return find(f, 'container_processes', { name: app.id })?.value === 2 ? f : undefined;
        },
        { what: 'container_processes 2 (sh and sleep)', timeoutMs: 20_000 },
      );
      expect(find(processes, 'container_processes', labels)!.value).toBe(procs().length);
      expect(find(processes, 'container_threads', labels)!.value).toBe(2);
      // Counted again right after each scrape: a fork of sh (its next sleep) briefly adds a process
      // and its inherited fds, so one scrape and one count may straddle it.
      const fds = () => procs().reduce((n, pid) => n + readdirSync(`/proc/${pid}/fd`).length, 0);
      await waitFor(
        async () => {
          const scraped = find(await scrape(), 'container_file_descriptors', labels)?.value;
          const counted = fds();
          return counted > 0 && scraped === counted;
        },
        { what: 'container_file_descriptors equal to the fds /proc lists', timeoutMs: 20_000 },
      );

      // The writable layer, from the CRI once containerd's snapshot syncer (10 s) has measured it.
      const layer = await waitFor(
        async () => {
          const f = await scrape();
          return (find(f, 'container_fs_usage_bytes', { name: app.id })?.value ?? 0) >= 3 * 2 ** 20
            ? f
            : undefined;
        },
        { what: 'container_fs_usage_bytes ≥ 3 MiB for the app container', timeoutMs: 40_000 },
      );
      const device = execFileSync('findmnt', ['-n', '-o', 'SOURCE', '-T', containerd.root], {
        encoding: 'utf8',
      }).trim();
      const usage = find(layer, 'container_fs_usage_bytes', { name: app.id })!;
      expect(usage.labels).toEqual({ ...labels, device });
      expect(usage.value).toBeLessThan(4 * 2 ** 20);
      const fs = statfsSync(containerd.root);
      expect(find(layer, 'container_fs_limit_bytes', { ...labels, device })!.value).toBe(
        fs.blocks * fs.bsize,
      );
      // Only containers have a writable layer: not the pod cgroup.
      expect(find(layer, 'container_fs_usage_bytes', { id: pod.cgroupParent })).toBeUndefined();

      // The machine, as cAdvisor describes it.
      expect(find(layer, 'machine_cpu_cores', {})!.value).toBe(
        countCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8')),
      );
      expect(find(layer, 'machine_memory_bytes', {})!.value).toBe(totalmem());
      expect(find(layer, 'machine_memory_bytes', {})!.labels['boot_id']).toBe(
        readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      );

      // Removed: every series of the pod goes at the next scrape.
      await kubelet.removePod(pod);
      const after = await scrape();
      const left = [...after].flatMap(([name, f]) =>
        f.samples.filter((s) => s.labels['pod'] === pod.name).map(() => name),
      );
      expect(left).toEqual([]);
      expect(find(after, 'machine_cpu_cores', {})).toBeDefined();
    },
  );
});
