import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { fieldsOf, readKernelFile } from '../procfs.ts';

const ENTRIES = family('node_arp_entries', 'gauge', 'ARP entries by device');

/** /proc/net/arp: a header, then one neighbour per line, the device in the last column. */
export function parseArp(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const columns = fieldsOf(line);
    if (columns.length < 6) throw new Error(`/proc/net/arp: unexpected line ${JSON.stringify(line)}`);
    if (columns[0] === 'IP') continue;
    const device = columns[columns.length - 1]!;
    counts.set(device, (counts.get(device) ?? 0) + 1);
  }
  return counts;
}

export function createArpCollector(settings: MetricsConfig): Collector {
  return {
    families: [ENTRIES],
    async collect(emit) {
      for (const [device, n] of parseArp(await readKernelFile(settings.procRoot, 'net/arp')))
        emit(ENTRIES, n, { device });
    },
  };
}
