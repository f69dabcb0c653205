import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family, type Labels, NoDataError } from '../collector.ts';
import { listDir, readAttribute } from './sysfs.ts';
import { parseUint } from './sysfs-parse.ts';

const stat = (
  file: string,
  name: string,
  type: 'gauge' | 'counter',
  help: string,
  scale = 1,
): [string, Family, number] => [file, family(`node_tape_${name}`, type, help), scale];

/** stats/<file> → family and scale (nanoseconds to seconds), in node_exporter's order; "thean" is its. */
// biome-ignore format: one counter per line, as node_exporter lists them
const STATS: [file: string, family: Family, scale: number][] = [
  stat('in_flight', 'io_now', 'gauge', 'The number of I/Os currently outstanding to this device.'),
  stat('io_ns', 'io_time_seconds_total', 'counter', 'The amount of time spent waiting for all I/O to complete (including read and write). This includes tape movement commands such as seeking between file or set marks and implicit tape movement such as when rewind on close tape devices are used.', 1e-9),
  stat('other_cnt', 'io_others_total', 'counter', 'The number of I/Os issued to the tape drive other than read or write commands. The time taken to complete these commands uses the following calculation io_time_seconds_total-read_time_seconds_total-write_time_seconds_total'),
  stat('read_byte_cnt', 'read_bytes_total', 'counter', 'The number of bytes read from the tape drive.'),
  stat('read_cnt', 'reads_completed_total', 'counter', 'The number of read requests issued to the tape drive.'),
  stat('read_ns', 'read_time_seconds_total', 'counter', 'The amount of time spent waiting for read requests to complete.', 1e-9),
  stat('resid_cnt', 'residual_total', 'counter', 'The number of times during a read or write we found the residual amount to be non-zero. This should mean that a program is issuing a read larger thean the block size on tape. For write not all data made it to tape.'),
  stat('write_byte_cnt', 'written_bytes_total', 'counter', 'The number of bytes written to the tape drive.'),
  stat('write_cnt', 'writes_completed_total', 'counter', 'The number of write requests issued to the tape drive.'),
  stat('write_ns', 'write_time_seconds_total', 'counter', 'The amount of time spent waiting for write requests to complete.', 1e-9),
];

/**
 * /sys/class/scsi_tape/stN/stats (Linux 4.2+). The st driver makes eight device nodes per drive
 * (st0, st0l, st0m, st0a and their n… no-rewind twins) sharing one set of counters: only stN is
 * read, so a drive counts once.
 */
export function createTapestatsCollector(settings: MetricsConfig): Collector {
  const root = `${settings.sysRoot}/class/scsi_tape`;
  return {
    families: STATS.map(([, f]) => f),
    async collect(emit) {
      const entries = listDir(root);
      if (entries === undefined) throw new NoDataError(`${root} does not exist`);
      // Emitted once all are read: a drive without stats/ (kernel < 4.2) means no data at all.
      const samples: [Family, number, Labels][] = [];
      for (const device of entries) {
        if (!/^st\d+$/.test(device)) continue;
        const dir = `${root}/${device}/stats`;
        if (listDir(dir) === undefined) throw new NoDataError(`${dir} does not exist`);
        const labels = { device };
        for (const [file, f, scale] of STATS) {
          // A counter the kernel does not have is 0, as procfs leaves it.
          const text = readAttribute(`${dir}/${file}`);
          const value = text === undefined ? 0n : parseUint(text);
          if (value === undefined) throw new Error(`${dir}/${file}: not a number: ${JSON.stringify(text)}`);
          samples.push([f, scale === 1 ? Number(value) : Number(value) * scale, labels]);
        }
      }
      for (const [f, value, labels] of samples) emit(f, value, labels);
    },
  };
}
