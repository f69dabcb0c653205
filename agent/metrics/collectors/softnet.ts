import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { fieldsOf, readKernelFile } from '../procfs.ts';
import { labelsBy } from './sysfs.ts';

const PROCESSED = family('node_softnet_processed_total', 'counter', 'Number of processed packets');
const DROPPED = family('node_softnet_dropped_total', 'counter', 'Number of dropped packets');
const SQUEEZED = family(
  'node_softnet_times_squeezed_total',
  'counter',
  'Number of times processing packets ran out of quota',
);

/** /proc/net/softnet_stat: one row per online CPU, hex columns; the first three are ours. */
export function parseSoftnet(text: string): [processed: number, dropped: number, squeezed: number][] {
  const rows: [number, number, number][] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const columns = fieldsOf(line);
    if (columns.length < 9)
      throw new Error(`/proc/net/softnet_stat: ${columns.length} columns, expected ≥ 9`);
    const [p, d, s] = columns.slice(0, 3).map((c) => {
      const v = Number.parseInt(c, 16);
      if (!/^[0-9a-f]+$/i.test(c)) throw new Error(`/proc/net/softnet_stat: ${c} is not hex`);
      return v;
    });
    rows.push([p!, d!, s!]);
  }
  return rows;
}

/** `cpu` is the row's index, as node_exporter 1.5 labels it (rows of offline CPUs are not printed). */
export function createSoftnetCollector(settings: MetricsConfig): Collector {
  const cpuLabels = labelsBy((cpu) => ({ cpu }));
  return {
    families: [PROCESSED, DROPPED, SQUEEZED],
    async collect(emit) {
      parseSoftnet(await readKernelFile(settings.procRoot, 'net/softnet_stat')).forEach(([p, d, s], i) => {
        const labels = cpuLabels(String(i));
        emit(PROCESSED, p, labels);
        emit(DROPPED, d, labels);
        emit(SQUEEZED, s, labels);
      });
    },
  };
}
