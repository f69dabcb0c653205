import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createDiskstatsCollector, parseDiskstats } from './diskstats.ts';

const read = (...p: string[]) => readFileSync(fixture(...p), 'utf8');

describe('parseDiskstats', () => {
  it('reads every device with all the columns its kernel prints', () => {
    const disks = parseDiskstats(read('host/proc/diskstats'));
    const vda = disks.find((d) => d.device === 'vda')!;
    expect(vda).toMatchObject({ major: '254', minor: '0' });
    expect(vda.columns).toHaveLength(17);
    expect(parseDiskstats(read('bare/proc/diskstats'))[0]!.columns).toHaveLength(11);
  });

  it('rejects a line too short to be diskstats', () => {
    expect(() => parseDiskstats(read('odd/diskstats-short'))).toThrow(/malformed/);
  });
});

describe('diskstats collector', () => {
  it("leaves out partitions, loop and ram devices by node_exporter's default", async () => {
    const samples = await collectSamples(createDiskstatsCollector(settingsFor(fixture('host/proc'))));
    const devices = new Set(samples.map((s) => s.labels.device));
    expect([...devices].sort()).toEqual(['dm-0', 'nvme0n1', 'vda']);
  });

  it("scales to node_exporter's units: sectors to bytes, ms to seconds, discards stay sectors", async () => {
    const samples = await collectSamples(createDiskstatsCollector(settingsFor(fixture('host/proc'))));
    const vda = (name: string) => sampleValue(samples, name, { device: 'vda' });
    expect(vda('node_disk_reads_completed_total')).toBe(56781);
    expect(vda('node_disk_reads_merged_total')).toBe(11251);
    expect(vda('node_disk_read_bytes_total')).toBe(5749098 * 512);
    expect(vda('node_disk_read_time_seconds_total')).toBeCloseTo(56.95, 9);
    expect(vda('node_disk_written_bytes_total')).toBe(3504880 * 512);
    expect(vda('node_disk_io_now')).toBe(0);
    expect(vda('node_disk_io_time_seconds_total')).toBeCloseTo(8.816, 9);
    expect(vda('node_disk_io_time_weighted_seconds_total')).toBeCloseTo(76.005, 9);
    expect(vda('node_disk_discarded_sectors_total')).toBe(373664);
    expect(vda('node_disk_flush_requests_total')).toBe(2781);
    expect(vda('node_disk_flush_requests_time_seconds_total')).toBeCloseTo(0.145, 9);
    expect(sampleValue(samples, 'node_disk_info', { device: 'vda' })).toBe(1);
    expect(samples.find((s) => s.name === 'node_disk_info' && s.labels.device === 'vda')!.labels).toEqual({
      device: 'vda',
      major: '254',
      minor: '0',
    });
  });

  it('gives an old kernel no discard or flush series', async () => {
    const samples = await collectSamples(createDiskstatsCollector(settingsFor(fixture('bare/proc'))));
    const names = new Set(samples.map((s) => s.name));
    expect(names.has('node_disk_io_time_weighted_seconds_total')).toBe(true);
    expect(names.has('node_disk_discards_completed_total')).toBe(false);
    expect(names.has('node_disk_flush_requests_total')).toBe(false);
  });

  it('follows diskstats.deviceExclude', async () => {
    const settings = settingsFor(fixture('host/proc'), {
      diskstats: { deviceExclude: '^(loop|zram|nvme|dm-)' },
    });
    const devices = new Set(
      (await collectSamples(createDiskstatsCollector(settings))).map((s) => s.labels.device),
    );
    expect([...devices].sort()).toEqual(['vda', 'vda1']);
  });
});
