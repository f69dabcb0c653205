import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family } from '../collector.ts';
import { fieldsOf, numberFrom, readKernelFile } from '../procfs.ts';

/** /proc/stat keys and the family each becomes; `intr` and the rest take their first number. */
const KEYS: Record<string, Family> = {
  intr: family('node_intr_total', 'counter', 'Total number of interrupts serviced.'),
  ctxt: family('node_context_switches_total', 'counter', 'Total number of context switches.'),
  processes: family('node_forks_total', 'counter', 'Total number of forks.'),
  btime: family('node_boot_time_seconds', 'gauge', 'Node boot time, in unixtime.'),
  procs_running: family('node_procs_running', 'gauge', 'Number of processes in runnable state.'),
  procs_blocked: family(
    'node_procs_blocked',
    'gauge',
    'Number of processes blocked waiting for I/O to complete.',
  ),
};

/** The system-wide lines of /proc/stat; a key the kernel does not print is simply absent. */
export function parseStat(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const space = line.indexOf(' ');
    const key = line.slice(0, space);
    if (space < 0 || !Object.hasOwn(KEYS, key)) continue;
    values.set(key, numberFrom(fieldsOf(line.slice(space))[0], `/proc/stat ${key}`));
  }
  return values;
}

export function createStatCollector(settings: MetricsConfig): Collector {
  return {
    families: Object.values(KEYS),
    async collect(emit) {
      for (const [key, value] of parseStat(await readKernelFile(settings.procRoot, 'stat')))
        emit(KEYS[key]!, value);
    },
  };
}
