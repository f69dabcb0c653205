import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { rm, symlink } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HOST_COLLECTORS, metricsSchema } from '../../../shared/config/index.ts';
import { createLogger } from '../../../shared/logger.ts';
import {
  importBusybox,
  Lab,
  runOk,
  skipReason,
  startDockerd,
  startPrometheus,
  tempDir,
  waitFor,
} from '../../../test/lab/index.ts';
import { type ExposedFamily, parseExposition } from '../../../test/support/metrics/testing.ts';
import { createMetrics } from '../index.ts';
import { detectCgroupLayout } from './cgroup.ts';

const reason = skipReason({
  root: true,
  binaries: ['dockerd', 'containerd', 'busybox', 'tar', 'umount', 'nsenter', 'ip'],
});
if (reason) console.warn(`[lab] metrics/docker tests skipped: ${reason} (install docker.io busybox-static)`);

const KUBE = {
  'io.kubernetes.pod.name': 'web-0',
  'io.kubernetes.pod.namespace': 'shop',
  'io.kubernetes.container.name': 'spin',
};

/** The sample of a family whose labels include `labels`, or undefined. */
function find(families: Map<string, ExposedFamily>, name: string, labels: Record<string, string>) {
  return families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

describe('container metrics from a real dockerd', () => {
  const lab = new Lab();
  afterAll(() => lab.cleanup());

  it.skipIf(reason)(
    'series appear with kubelet-style labels, CPU rises, limits match, series go on removal, and the events stream survives a daemon restart',
    { timeout: 180_000 },
    async () => {
      const first = await startDockerd({ lab });
      await importBusybox(first.socketPath);
      // The agent dials a symlink, so the daemon behind it can be swapped like a restart.
      const dir = await tempDir('metrics-docker', lab);
      const socket = join(dir, 'docker.sock');
      await symlink(first.socketPath, socket);

      const allHostOff = Object.fromEntries(
        [
          'cpu',
          'meminfo',
          'loadavg',
          'filesystem',
          'diskstats',
          'netdev',
          'pressure',
          'uname',
          'stat',
          'vmstat',
          'filefd',
          'conntrack',
        ].map((n) => [n, false]),
      );
      const settings = metricsSchema.parse({
        collectors: allHostOff,
        containers: { source: 'docker', dockerSocket: socket, reconnectMax: '1s' },
      });
      const metrics = createMetrics(settings, { log: createLogger('silent'), node: 'test-node' });
      const controller = new AbortController();
      const running = metrics.run(controller.signal);
      lab.defer('metrics run', async () => {
        controller.abort();
        await running;
      });
      const scrape = async () => parseExposition(await metrics.registry.metrics());

      const labelArgs = Object.entries(KUBE).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
      const spin = (
        await first.docker([
          'run',
          '--detach',
          '--network',
          'none',
          '--name',
          'spin',
          '--memory',
          '64m',
          '--cpus',
          '0.5',
          ...labelArgs,
          'local/busybox',
          'sh',
          '-c',
          'while :; do :; done',
        ])
      ).trim();
      const idle = (
        await first.docker([
          'run',
          '--detach',
          '--network',
          'none',
          '--name',
          'idle',
          'local/busybox',
          'sleep',
          '300',
        ])
      ).trim();

      const families = await waitFor(
        async () => {
          const f = await scrape();
          return find(f, 'container_memory_usage_bytes', { name: 'idle' }) &&
            find(f, 'container_memory_usage_bytes', { name: 'spin' })
            ? f
            : undefined;
        },
        { what: 'series of both containers', timeoutMs: 20_000 },
      );

      // Identity: cAdvisor's labels, the kubelet's pod labels mapped to pod/namespace/container.
      const cpu1 = find(families, 'container_cpu_usage_seconds_total', { name: 'spin' })!;
      expect(cpu1.labels).toEqual({
        id: `/docker/${spin}`,
        name: 'spin',
        image: 'local/busybox',
        container: 'spin',
        pod: 'web-0',
        namespace: 'shop',
        cpu: 'total',
      });
      expect(find(families, 'container_memory_rss', { name: 'idle' })!.labels).toMatchObject({
        id: `/docker/${idle}`,
        pod: '',
        namespace: '',
        container: '',
      });
      // Limits as set on the command line; none on the idle one.
      expect(find(families, 'container_spec_memory_limit_bytes', { name: 'spin' })!.value).toBe(64 * 2 ** 20);
      expect(find(families, 'container_spec_memory_limit_bytes', { name: 'idle' })!.value).toBe(0);
      expect(find(families, 'container_spec_cpu_quota', { name: 'spin' })!.value).toBe(50_000);
      expect(find(families, 'container_spec_cpu_period', { name: 'spin' })!.value).toBe(100_000);
      expect(find(families, 'container_spec_cpu_quota', { name: 'idle' })).toBeUndefined();
      const ws = find(families, 'container_memory_working_set_bytes', { name: 'spin' })!.value;
      expect(ws).toBeGreaterThan(0);
      expect(ws).toBeLessThanOrEqual(find(families, 'container_memory_usage_bytes', { name: 'spin' })!.value);
      const started = find(families, 'container_start_time_seconds', { name: 'spin' })!.value;
      expect(Math.abs(started - Date.now() / 1000)).toBeLessThan(60);

      // CPU rises at about the quota (0.5 core), and the CFS throttles the busy loop.
      await new Promise((r) => setTimeout(r, 2000));
      const later = await scrape();
      const cpu2 = find(later, 'container_cpu_usage_seconds_total', { name: 'spin' })!;
      const rate = (cpu2.value - cpu1.value) / 2;
      expect(rate).toBeGreaterThan(0.2);
      expect(rate).toBeLessThan(0.8);
      expect(find(later, 'container_cpu_cfs_periods_total', { name: 'spin' })!.value).toBeGreaterThan(0);
      // A period is throttled only when the loop gets its whole quota in it; on a loaded machine
      // (CI runs test files side by side) that can take longer than the 2 s above.
      await waitFor(
        async () =>
          (find(await scrape(), 'container_cpu_cfs_throttled_periods_total', { name: 'spin' })?.value ?? 0) >
          0,
        { what: 'a throttled CFS period of the busy loop', timeoutMs: 60_000, intervalMs: 500 },
      );

      // A real Prometheus scrapes it, and the kubernetes-mixin's query answers.
      if (!skipReason({ binaries: ['prometheus'] })) {
        const server = createServer((_req, res) => {
          metrics.registry.metrics().then(
            (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
            (err: unknown) => res.writeHead(500).end(String(err)),
          );
        });
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        lab.defer('metrics http server', () => new Promise<void>((r) => server.close(() => r())));
        const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
        const prom = await startPrometheus({
          lab,
          scrapeConfigs: [{ job_name: 'nodeward', static_configs: [{ targets: [target] }] }],
        });
        await prom.waitForUp('nodeward');
        const ws = await prom.query('container_memory_working_set_bytes{container!=""}');
        expect(ws.map((s) => s.metric)).toEqual([
          expect.objectContaining({
            container: 'spin',
            pod: 'web-0',
            namespace: 'shop',
            image: 'local/busybox',
          }),
        ]);
        const [scraped] = await prom.query('scrape_samples_scraped{job="nodeward"}');
        const [added] = await prom.query('scrape_samples_post_metric_relabeling{job="nodeward"}');
        expect(added!.value).toBe(scraped!.value);
        await prom.stop();
      }

      // Network from the container's netns: give it a veth and send packets out of it (ARP for a
      // neighbour that never answers: the host end has no address, so host routing is untouched).
      const pid = (await first.docker(['inspect', '--format', '{{.State.Pid}}', idle])).trim();
      const hostEnd = `nwm${process.pid % 100000}`;
      await runOk('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pid]);
      lab.defer('veth', () =>
        runOk('ip', ['link', 'del', hostEnd]).then(
          () => {},
          () => {},
        ),
      );
      await runOk('ip', ['link', 'set', hostEnd, 'up']);
      const inNetns = (args: string[]) => runOk('nsenter', ['-t', pid, '-n', 'ip', ...args]);
      await inNetns(['addr', 'add', '10.77.0.1/24', 'dev', 'eth0']);
      await inNetns(['link', 'set', 'eth0', 'up']);
      await first.docker(['exec', idle, 'ping', '-c', '2', '-W', '1', '10.77.0.2']).catch(() => {});
      const net = await scrape();
      const eth0 = { name: 'idle', interface: 'eth0' };
      expect(find(net, 'container_network_transmit_packets_total', eth0)!.value).toBeGreaterThanOrEqual(1);
      expect(find(net, 'container_network_transmit_bytes_total', eth0)!.value).toBeGreaterThanOrEqual(42);
      expect(find(net, 'container_network_receive_errors_total', eth0)!.value).toBe(0);
      expect(
        find(net, 'container_network_transmit_bytes_total', { name: 'idle', interface: 'lo' }),
      ).toBeUndefined();

      // Removed: its series go at the next scrape.
      await first.docker(['rm', '--force', spin]);
      await waitFor(async () => !find(await scrape(), 'container_memory_usage_bytes', { name: 'spin' }), {
        what: 'series of the removed container to go',
        timeoutMs: 10_000,
      });

      // The daemon "restarts": another one answers on the socket, with another container.
      const second = await startDockerd({ lab });
      await importBusybox(second.socketPath);
      const after = (
        await second.docker([
          'run',
          '--detach',
          '--network',
          'none',
          '--name',
          'after',
          'local/busybox',
          'sleep',
          '300',
        ])
      ).trim();
      await first.stop();
      await rm(socket);
      await symlink(second.socketPath, socket);
      const final = await waitFor(
        async () => {
          const f = await scrape();
          return find(f, 'container_memory_usage_bytes', { name: 'after' }) ? f : undefined;
        },
        { what: 'the container of the restarted daemon', timeoutMs: 20_000 },
      );
      expect(find(final, 'container_memory_usage_bytes', { id: `/docker/${after}` })).toBeDefined();
      expect(find(final, 'container_memory_usage_bytes', { name: 'idle' })).toBeUndefined();
      // And events still flow on the new stream.
      await second.docker(['rm', '--force', after]);
      await waitFor(async () => !find(await scrape(), 'container_memory_usage_bytes', { name: 'after' }), {
        what: 'series of the removed container to go after the restart',
        timeoutMs: 10_000,
      });
    },
  );

  it.skipIf(reason)(
    'a container writing to disk shows rising container_fs_writes_bytes_total on its device',
    { timeout: 120_000 },
    async () => {
      const dockerd = await startDockerd({ lab });
      await importBusybox(dockerd.socketPath);
      const layout = detectCgroupLayout('/sys/fs/cgroup');
      if (layout.version === 1 && layout.blkio === undefined) {
        console.warn('[lab] container_fs_* test skipped: no blkio hierarchy at /sys/fs/cgroup/blkio');
        return;
      }
      if (layout.version === 2 && !readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').includes('io')) {
        console.warn('[lab] container_fs_* test skipped: the io controller is not enabled (cgroup v2)');
        return;
      }
      // The block device behind the volume's directory: the one the writes reach.
      const data = await tempDir('metrics-fs', lab);
      const dev = statSync(data).dev;
      const majorMinor = `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;
      let devname: string;
      try {
        // blkio counts per disk: a partition's I/O shows on its parent disk.
        let sys = realpathSync(`/sys/dev/block/${majorMinor}`);
        if (existsSync(`${sys}/partition`)) sys = dirname(sys);
        devname = /^DEVNAME=(.+)$/m.exec(readFileSync(`${sys}/uevent`, 'utf8'))![1]!;
      } catch {
        console.warn(`[lab] container_fs_* test skipped: ${data} is not on a block device (${majorMinor})`);
        return;
      }
      const settings = metricsSchema.parse({
        collectors: Object.fromEntries(Object.keys(HOST_COLLECTORS).map((n) => [n, false])),
        containers: { source: 'docker', dockerSocket: dockerd.socketPath },
      });
      const metrics = createMetrics(settings, { log: createLogger('silent'), node: 'test-node' });
      const controller = new AbortController();
      const running = metrics.run(controller.signal);
      lab.defer('metrics run', async () => {
        controller.abort();
        await running;
      });
      // A write limit far above what the test writes: on kernels since 6.x the v1 throttle
      // counters (what cAdvisor reads when BFQ/CFQ have none) count only on a queue where
      // blk-throttle was ever configured — a container with --device-write-bps is such a case,
      // and a container without one on an unconfigured disk reads 0, as cAdvisor would show.
      const writer = (
        await dockerd.docker([
          'run',
          '--detach',
          '--network',
          'none',
          '--name',
          'writer',
          '--device-write-bps',
          `/dev/${devname}:1gb`,
          '--volume',
          `${data}:/data`,
          'local/busybox',
          'sh',
          '-c',
          'while :; do dd if=/dev/zero of=/data/f bs=64k count=64 oflag=direct 2>/dev/null; sync; sleep 0.2; done',
        ])
      ).trim();
      const device = `/dev/${devname}`;
      const written = async () => {
        const f = parseExposition(await metrics.registry.metrics());
        return find(f, 'container_fs_writes_bytes_total', { id: `/docker/${writer}`, device })?.value;
      };
      const first = await waitFor(async () => (((await written()) ?? 0) > 0 ? await written() : undefined), {
        what: `container_fs_writes_bytes_total{device="${device}"} of the writing container`,
        timeoutMs: 20_000,
      });
      // It keeps rising, by at least one more dd (64 × 64 KiB, direct: every byte reaches the disk).
      const later = await waitFor(
        async () => {
          const v = (await written()) ?? 0;
          return v >= first! + 64 * 64 * 1024 ? v : undefined;
        },
        { what: 'container_fs_writes_bytes_total to rise by one more dd', timeoutMs: 20_000 },
      );
      expect(later).toBeGreaterThan(first!);
      const f = parseExposition(await metrics.registry.metrics());
      const writes = find(f, 'container_fs_writes_total', { id: `/docker/${writer}`, device })!;
      expect(writes.value).toBeGreaterThan(0);
      expect(writes.labels).toMatchObject({ name: 'writer', image: 'local/busybox' });
      await dockerd.docker(['rm', '--force', writer]);
    },
  );
});
