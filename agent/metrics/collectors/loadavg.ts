import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { fieldsOf, numberFrom, readKernelFile } from '../procfs.ts';

const LOADS = [
  family('node_load1', 'gauge', '1m load average.'),
  family('node_load5', 'gauge', '5m load average.'),
  family('node_load15', 'gauge', '15m load average.'),
] as const;

/** The 1, 5 and 15 minute load averages from /proc/loadavg. */
export function parseLoadavg(text: string): [number, number, number] {
  const f = fieldsOf(text);
  return [
    numberFrom(f[0], '/proc/loadavg 1m'),
    numberFrom(f[1], '/proc/loadavg 5m'),
    numberFrom(f[2], '/proc/loadavg 15m'),
  ];
}

export function createLoadavgCollector(settings: MetricsConfig): Collector {
  return {
    families: LOADS,
    async collect(emit) {
      const loads = parseLoadavg(await readKernelFile(settings.procRoot, 'loadavg'));
      LOADS.forEach((f, i) => {
        emit(f, loads[i]!);
      });
    },
  };
}
