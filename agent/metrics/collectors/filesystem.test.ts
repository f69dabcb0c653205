import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createFilesystemCollector, parseMounts, type Statfs } from './filesystem.ts';

const read = (...p: string[]) => readFileSync(fixture(...p), 'utf8');

const STAT = { bsize: 4096, blocks: 1000, bfree: 600, bavail: 500, files: 100, ffree: 40 };

/** A statfs that answers STAT for every path and records what it was asked. */
function fakeStatfs(answer: (path: string) => Promise<typeof STAT> = async () => STAT) {
  const calls: string[] = [];
  const statfs: Statfs = (path) => {
    calls.push(path);
    return answer(path);
  };
  return { statfs, calls };
}

describe('parseMounts', () => {
  it('decodes fstab(5) escapes in mount points and reads the ro option', () => {
    expect(parseMounts(read('odd/mounts-escaped'))).toEqual([
      { device: '/dev/sdb1', mountPoint: '/mnt/My Share', fsType: 'ext4', readonly: false },
      { device: '/dev/sdb2', mountPoint: '/mnt/tab\tand\\slash', fsType: 'xfs', readonly: true },
    ]);
  });
});

describe('filesystem collector', () => {
  it("leaves the kubelet's per-pod volume mounts out by default (hundreds per node, as kube-prometheus does)", async () => {
    const samples = await collectSamples(
      createFilesystemCollector(settingsFor(fixture('host/proc')), fakeStatfs().statfs),
    );
    const mountpoints = samples
      .filter((s) => s.name === 'node_filesystem_size_bytes')
      .map((s) => s.labels.mountpoint);
    expect(mountpoints).toContain('/');
    expect(mountpoints.filter((m) => m?.startsWith('/var/lib/kubelet/pods/'))).toEqual([]);
  });

  it("keeps the mounts node_exporter's default exclusions keep, once each", async () => {
    const { statfs, calls } = fakeStatfs();
    // node_exporter's own default; ours also leaves out the kubelet's per-pod volume mounts (below).
    const nodeExporterDefault =
      '^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)';
    const samples = await collectSamples(
      createFilesystemCollector(
        settingsFor(fixture('host/proc'), { filesystem: { mountPointsExclude: nodeExporterDefault } }),
        statfs,
      ),
    );
    const mountpoints = samples
      .filter((s) => s.name === 'node_filesystem_size_bytes')
      .map((s) => s.labels.mountpoint);
    expect(mountpoints).toEqual([
      '/',
      '/boot/efi',
      '/run',
      '/var/lib/kubelet/pods/0d5e/volumes/kubernetes.io~projected/kube-api-access-x',
      '/mnt/My Share',
    ]);
    expect(calls).toEqual(mountpoints);
  });

  it('reports sizes in bytes, inode counts, read-only and no device error', async () => {
    const { statfs } = fakeStatfs();
    const samples = await collectSamples(
      createFilesystemCollector(settingsFor(fixture('host/proc')), statfs),
    );
    const efi = { device: '/dev/vda1', fstype: 'vfat', mountpoint: '/boot/efi' };
    expect(samples.filter((s) => s.labels.mountpoint === '/boot/efi')).toEqual(
      [
        ['node_filesystem_device_error', 0],
        ['node_filesystem_readonly', 1],
        ['node_filesystem_size_bytes', 4096 * 1000],
        ['node_filesystem_free_bytes', 4096 * 600],
        ['node_filesystem_avail_bytes', 4096 * 500],
        ['node_filesystem_files', 100],
        ['node_filesystem_files_free', 40],
      ].map(([name, value]) => ({ name, value, labels: efi })),
    );
  });

  it('turns a statfs error into device_error 1 with only readonly beside it', async () => {
    const { statfs } = fakeStatfs(async (path) => {
      if (path === '/run') throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
      return STAT;
    });
    const samples = await collectSamples(
      createFilesystemCollector(settingsFor(fixture('host/proc')), statfs),
    );
    const run = samples.filter((s) => s.labels.mountpoint === '/run');
    expect(run.map((s) => [s.name, s.value])).toEqual([
      ['node_filesystem_device_error', 1],
      ['node_filesystem_readonly', 0],
    ]);
  });

  it('does not let a hung mount hang the scrape, nor ask it again until its call returns', async () => {
    let release: (s: typeof STAT) => void = () => {};
    const hung = new Promise<typeof STAT>((resolve) => {
      release = resolve;
    });
    const { statfs, calls } = fakeStatfs((path) => (path === '/mnt/My Share' ? hung : Promise.resolve(STAT)));
    const collector = createFilesystemCollector(
      settingsFor(fixture('host/proc'), { filesystem: { mountTimeout: '50ms' } }),
      statfs,
    );
    const share = { device: '//nas/share', fstype: 'cifs', mountpoint: '/mnt/My Share' };

    const started = performance.now();
    const first = await collectSamples(collector);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(sampleValue(first, 'node_filesystem_device_error', share)).toBe(1);
    expect(sampleValue(first, 'node_filesystem_device_error', { mountpoint: '/' })).toBe(0);

    const second = await collectSamples(collector);
    expect(sampleValue(second, 'node_filesystem_device_error', share)).toBe(1);
    expect(calls.filter((p) => p === '/mnt/My Share')).toHaveLength(1);

    release(STAT);
    await hung;
    const third = await collectSamples(collector);
    expect(sampleValue(third, 'node_filesystem_device_error', share)).toBe(0);
    expect(sampleValue(third, 'node_filesystem_size_bytes', share)).toBe(4096 * 1000);
    expect(calls.filter((p) => p === '/mnt/My Share')).toHaveLength(2);
  });

  it('statfs-es under hostRoot and labels with the host path', async () => {
    const { statfs, calls } = fakeStatfs();
    const settings = settingsFor(fixture('host/proc'), { hostRoot: '/host/root' });
    const samples = await collectSamples(createFilesystemCollector(settings, statfs));
    expect(calls).toContain('/host/root/boot/efi');
    expect(calls).toContain('/host/root/');
    expect(sampleValue(samples, 'node_filesystem_size_bytes', { mountpoint: '/boot/efi' })).toBe(4096 * 1000);
  });

  it('strips hostRoot from mount points listed under it, as node_exporter does with --path.rootfs', async () => {
    const proc = mkdtempSync(join(tmpdir(), 'nodeward-mounts-'));
    try {
      mkdirSync(join(proc, '1'));
      writeFileSync(
        join(proc, '1', 'mounts'),
        '/dev/vda /host/root ext4 rw 0 0\n/dev/vdb /host/rootless ext4 rw 0 0\n',
      );
      const { statfs, calls } = fakeStatfs();
      const samples = await collectSamples(
        createFilesystemCollector(settingsFor(proc, { hostRoot: '/host/root/' }), statfs),
      );
      expect(
        samples.filter((s) => s.name === 'node_filesystem_size_bytes').map((s) => s.labels.mountpoint),
      ).toEqual(['/', '/host/rootless']);
      expect(calls).toEqual(['/host/root/', '/host/root/host/rootless']);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  it("falls back to the agent's own mount table when PID 1's is hidden (hidepid)", async () => {
    const { statfs, calls } = fakeStatfs();
    await collectSamples(createFilesystemCollector(settingsFor(fixture('bare/proc')), statfs));
    expect(calls).toEqual(['/']);
  });
});
