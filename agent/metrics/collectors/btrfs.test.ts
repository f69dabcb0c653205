import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { allocationRatio, createBtrfsCollector, parseCommitStats } from './btrfs.ts';

const ROOT = '7d3b6f0e-1c2a-4e8b-9f51-2a6c8d0e4b13';
/** The raid5 filesystem's metadata_uuid, which differs from its directory's fsid. */
const ARRAY = '2b9d7e4f-8a1c-4f3e-a6d5-9c0b2e7f1a34';

describe('btrfs parsing', () => {
  it('knows the space each profile takes per byte of data', () => {
    expect(allocationRatio('single', 1)).toBe(1);
    expect(allocationRatio('dup', 1)).toBe(2);
    expect(allocationRatio('raid1c4', 4)).toBe(4);
    expect(allocationRatio('raid6', 6)).toBe(1.5);
    expect(allocationRatio('mirror9', 2)).toBe(0);
  });

  it('reads commit_stats, and zeros on kernels before 6.0 that lack it', () => {
    expect(
      parseCommitStats('commits 3\nlast_commit_ms 4\nmax_commit_ms 5\ntotal_commit_ms 6\n', 'x'),
    ).toEqual({
      commits: 3,
      last_commit_ms: 4,
      max_commit_ms: 5,
      total_commit_ms: 6,
    });
    expect(parseCommitStats(undefined, 'x').commits).toBe(0);
    expect(() => parseCommitStats('commits many\n', 'x')).toThrow(/unexpected line/);
  });
});

describe('btrfs collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('reports each filesystem by its UUID (metadata_uuid when set), with its label', async () => {
    const samples = await collectSamples(createBtrfsCollector(settings));
    expect(samples.filter((s) => s.name === 'node_btrfs_info').map((s) => s.labels)).toEqual([
      { uuid: ROOT, label: 'root' },
      { uuid: ARRAY, label: '' },
    ]);
    expect(sampleValue(samples, 'node_btrfs_global_rsv_size_bytes', { uuid: ROOT })).toBe(536870912);
    expect(sampleValue(samples, 'node_btrfs_commits_total', { uuid: ROOT })).toBe(48213);
    expect(sampleValue(samples, 'node_btrfs_last_commit_seconds', { uuid: ROOT })).toBe(0.031);
    expect(sampleValue(samples, 'node_btrfs_max_commit_seconds', { uuid: ARRAY })).toBe(15.873);
    expect(sampleValue(samples, 'node_btrfs_commit_seconds_total', { uuid: ARRAY })).toBe(1304.22);
  });

  it('reports allocation per block group type and profile', async () => {
    const samples = await collectSamples(createBtrfsCollector(settings));
    const of = (name: string, uuid: string, block_group_type: string, mode?: string) =>
      sampleValue(
        samples,
        `node_btrfs_${name}`,
        mode ? { uuid, block_group_type, mode } : { uuid, block_group_type },
      );
    expect(of('reserved_bytes', ROOT, 'metadata')).toBe(1572864);
    expect(of('size_bytes', ROOT, 'data', 'single')).toBe(214748364800);
    expect(of('used_bytes', ROOT, 'data', 'single')).toBe(187904819200);
    expect(of('allocation_ratio', ROOT, 'metadata', 'dup')).toBe(2);
    expect(of('used_bytes', ARRAY, 'system', 'raid1c3')).toBe(425984);
    // raid5 over three devices: 3/2 of each byte on disk.
    expect(of('allocation_ratio', ARRAY, 'data', 'raid5')).toBe(1.5);
    expect(of('allocation_ratio', ARRAY, 'metadata', 'raid1c3')).toBe(3);
  });

  it('reports device sizes from sysfs alone, without the ioctl-only series', async () => {
    const samples = await collectSamples(createBtrfsCollector(settings));
    expect(
      samples.filter((s) => s.name === 'node_btrfs_device_size_bytes').map((s) => [s.labels, s.value]),
    ).toEqual([
      [{ uuid: ROOT, device: 'nvme0n1p2' }, 975699968 * 512],
      [{ uuid: ARRAY, device: 'sdb' }, 7814037168 * 512],
      [{ uuid: ARRAY, device: 'sdc' }, 7814037168 * 512],
      [{ uuid: ARRAY, device: 'sdd' }, 7814037168 * 512],
    ]);
    expect(samples.some((s) => /device_(unused_bytes|errors_total)/.test(s.name))).toBe(false);
  });

  it('reports nothing, and no error, without btrfs, as node_exporter (its success stays 1)', async () => {
    expect(await collectSamples(createBtrfsCollector(settingsFor(fixture('bare/proc'))))).toEqual([]);
  });
});
