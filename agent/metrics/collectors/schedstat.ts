import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { labelsBy, readOrNoData } from './sysfs.ts';

const RUNNING = family(
  'node_schedstat_running_seconds_total',
  'counter',
  'Number of seconds CPU spent running a process.',
);
const WAITING = family(
  'node_schedstat_waiting_seconds_total',
  'counter',
  'Number of seconds spent by processing waiting for this CPU.',
);
const TIMESLICES = family(
  'node_schedstat_timeslices_total',
  'counter',
  'Number of timeslices executed by CPU.',
);

/** `cpuN` lines of /proc/schedstat: fields 7–9 are run time (ns), wait time (ns), timeslices. */
export function parseSchedstat(
  text: string,
): { cpu: string; running: number; waiting: number; slices: number }[] {
  const out: { cpu: string; running: number; waiting: number; slices: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+) \d+ \d+ \d+ \d+ \d+ \d+ (\d+) (\d+) (\d+)/.exec(line);
    if (m) out.push({ cpu: m[1]!, running: Number(m[2]), waiting: Number(m[3]), slices: Number(m[4]) });
  }
  return out;
}

export function createSchedstatCollector(settings: MetricsConfig): Collector {
  const cpuLabels = labelsBy((cpu) => ({ cpu }));
  return {
    families: [RUNNING, WAITING, TIMESLICES],
    async collect(emit) {
      // Absent from a kernel built without CONFIG_SCHEDSTATS.
      const text = readOrNoData(settings.procRoot, 'schedstat', 'no /proc/schedstat');
      for (const { cpu, running, waiting, slices } of parseSchedstat(text)) {
        const labels = cpuLabels(cpu);
        emit(RUNNING, running / 1e9, labels);
        emit(WAITING, waiting / 1e9, labels);
        emit(TIMESLICES, slices, labels);
      }
    },
  };
}
