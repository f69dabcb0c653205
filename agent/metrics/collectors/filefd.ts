import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { fieldsOf, numberFrom, readKernelFile } from '../procfs.ts';

const ALLOCATED = family('node_filefd_allocated', 'gauge', 'File descriptor statistics: allocated.');
const MAXIMUM = family('node_filefd_maximum', 'gauge', 'File descriptor statistics: maximum.');

/** /proc/sys/fs/file-nr: allocated, unused (always 0 since Linux 2.6), maximum. */
export function parseFileNr(text: string): { allocated: number; maximum: number } {
  const f = fieldsOf(text);
  if (f.length < 3) throw new Error(`/proc/sys/fs/file-nr: expected 3 numbers, got ${JSON.stringify(text)}`);
  return { allocated: numberFrom(f[0], 'file-nr allocated'), maximum: numberFrom(f[2], 'file-nr maximum') };
}

export function createFilefdCollector(settings: MetricsConfig): Collector {
  return {
    families: [ALLOCATED, MAXIMUM],
    async collect(emit) {
      const { allocated, maximum } = parseFileNr(await readKernelFile(settings.procRoot, 'sys/fs/file-nr'));
      emit(ALLOCATED, allocated);
      emit(MAXIMUM, maximum);
    },
  };
}
