import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family } from '../collector.ts';
import { fieldsOf, numberFrom, readKernelFile } from '../procfs.ts';

/** /proc/diskstats counts sectors of 512 bytes whatever the device's block size. */
const SECTOR_BYTES = 512;
const MS = 1 / 1000;

/**
 * The statistics columns in kernel order with the scale to node_exporter's unit. Kernels print 11
 * (before 4.18), 15 (discards, 4.18) or 17 (flushes, 5.5) of them; absent columns give no series.
 */
const COLUMNS: { family: Family; scale: number }[] = [
  {
    family: family(
      'node_disk_reads_completed_total',
      'counter',
      'The total number of reads completed successfully.',
    ),
    scale: 1,
  },
  {
    family: family('node_disk_reads_merged_total', 'counter', 'The total number of reads merged.'),
    scale: 1,
  },
  {
    family: family('node_disk_read_bytes_total', 'counter', 'The total number of bytes read successfully.'),
    scale: SECTOR_BYTES,
  },
  {
    family: family(
      'node_disk_read_time_seconds_total',
      'counter',
      'The total number of seconds spent by all reads.',
    ),
    scale: MS,
  },
  {
    family: family(
      'node_disk_writes_completed_total',
      'counter',
      'The total number of writes completed successfully.',
    ),
    scale: 1,
  },
  { family: family('node_disk_writes_merged_total', 'counter', 'The number of writes merged.'), scale: 1 },
  {
    family: family(
      'node_disk_written_bytes_total',
      'counter',
      'The total number of bytes written successfully.',
    ),
    scale: SECTOR_BYTES,
  },
  {
    family: family(
      'node_disk_write_time_seconds_total',
      'counter',
      'This is the total number of seconds spent by all writes.',
    ),
    scale: MS,
  },
  { family: family('node_disk_io_now', 'gauge', 'The number of I/Os currently in progress.'), scale: 1 },
  {
    family: family('node_disk_io_time_seconds_total', 'counter', 'Total seconds spent doing I/Os.'),
    scale: MS,
  },
  {
    family: family(
      'node_disk_io_time_weighted_seconds_total',
      'counter',
      'The weighted # of seconds spent doing I/Os.',
    ),
    scale: MS,
  },
  {
    family: family(
      'node_disk_discards_completed_total',
      'counter',
      'The total number of discards completed successfully.',
    ),
    scale: 1,
  },
  {
    family: family('node_disk_discards_merged_total', 'counter', 'The total number of discards merged.'),
    scale: 1,
  },
  // Sectors, not bytes: node_exporter's name and unit.
  {
    family: family(
      'node_disk_discarded_sectors_total',
      'counter',
      'The total number of sectors discarded successfully.',
    ),
    scale: 1,
  },
  {
    family: family(
      'node_disk_discard_time_seconds_total',
      'counter',
      'This is the total number of seconds spent by all discards.',
    ),
    scale: MS,
  },
  {
    family: family(
      'node_disk_flush_requests_total',
      'counter',
      'The total number of flush requests completed successfully',
    ),
    scale: 1,
  },
  {
    family: family(
      'node_disk_flush_requests_time_seconds_total',
      'counter',
      'This is the total number of seconds spent by all flush requests.',
    ),
    scale: MS,
  },
];

const INFO = family('node_disk_info', 'gauge', 'Info of /sys/block/<block_device>.');

export interface DiskStats {
  device: string;
  major: string;
  minor: string;
  /** The statistics columns as printed, unscaled. */
  columns: number[];
}

export function parseDiskstats(text: string): DiskStats[] {
  const disks: DiskStats[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [major, minor, device, ...rest] = fieldsOf(line);
    if (!device || rest.length < 4)
      throw new Error(`/proc/diskstats: malformed line ${JSON.stringify(line)}`);
    disks.push({
      device,
      major: major!,
      minor: minor!,
      columns: rest.map((v) => numberFrom(v, `/proc/diskstats ${device}`)),
    });
  }
  return disks;
}

export function createDiskstatsCollector(settings: MetricsConfig): Collector {
  const exclude = new RegExp(settings.diskstats.deviceExclude);
  return {
    families: [INFO, ...COLUMNS.map((c) => c.family)],
    async collect(emit) {
      for (const disk of parseDiskstats(await readKernelFile(settings.procRoot, 'diskstats'))) {
        if (exclude.test(disk.device)) continue;
        const device = { device: disk.device };
        // node_exporter adds udev's path/wwn/model/serial/revision; without udev they are empty,
        // and Prometheus drops empty labels, so the series is the same.
        emit(INFO, 1, { device: disk.device, major: disk.major, minor: disk.minor });
        const n = Math.min(disk.columns.length, COLUMNS.length);
        for (let i = 0; i < n; i++) emit(COLUMNS[i]!.family, disk.columns[i]! * COLUMNS[i]!.scale, device);
      }
    },
  };
}
