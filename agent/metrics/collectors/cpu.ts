import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { fieldsOf, numberFrom, readKernelFile } from '../procfs.ts';

/** /proc/stat counts in USER_HZ, which the kernel fixes at 100 for userspace on every architecture. */
const USER_HZ = 100;

/** node_exporter's threshold: idle falling this far means the CPU was unplugged and came back. */
const HOTPLUG_JUMP_SECONDS = 3;

export const MODES = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;
type Mode = (typeof MODES)[number];

export interface CpuTimes extends Record<Mode, number> {
  guest: number;
  guestNice: number;
}

const FIELDS = [...MODES, 'guest', 'guestNice'] as const;

const SECONDS = family('node_cpu_seconds_total', 'counter', 'Seconds the CPUs spent in each mode.');
const GUEST = family(
  'node_cpu_guest_seconds_total',
  'counter',
  'Seconds the CPUs spent in guests (VMs) for each mode.',
);

/**
 * Per-CPU times in seconds from /proc/stat, keyed by the kernel's CPU number (offline CPUs are
 * absent, so numbers can skip). Columns an older kernel lacks count as 0, as procfs does.
 */
export function parseCpuTimes(text: string): Map<string, CpuTimes> {
  const cpus = new Map<string, CpuTimes>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu') || line.startsWith('cpu ')) continue;
    const [name, ...columns] = fieldsOf(line);
    const cpu = name!.slice(3);
    if (!/^\d+$/.test(cpu) || columns.length === 0)
      throw new Error(`/proc/stat: malformed line ${JSON.stringify(line)}`);
    const times = {} as CpuTimes;
    FIELDS.forEach((field, i) => {
      const column = columns[i];
      times[field] = column === undefined ? 0 : numberFrom(column, `/proc/stat ${name} ${field}`) / USER_HZ;
    });
    cpus.set(cpu, times);
  }
  return cpus;
}

/**
 * Counters that never go backwards: iowait (and on some hypervisors idle) can dip between reads,
 * and a dip reads as a counter reset to rate(). Keep the highest value seen, unless idle dropped so
 * far that the CPU was hot-unplugged, then start that CPU afresh — node_exporter's rule.
 */
export function monotonic(
  previous: Map<string, CpuTimes>,
  next: Map<string, CpuTimes>,
): Map<string, CpuTimes> {
  const out = new Map<string, CpuTimes>();
  for (const [cpu, now] of next) {
    const before = previous.get(cpu);
    if (!before || before.idle - now.idle >= HOTPLUG_JUMP_SECONDS) {
      out.set(cpu, now);
      continue;
    }
    const kept = {} as CpuTimes;
    for (const field of FIELDS) kept[field] = Math.max(before[field], now[field]);
    out.set(cpu, kept);
  }
  return out;
}

export function createCpuCollector(settings: MetricsConfig): Collector {
  let last = new Map<string, CpuTimes>();
  return {
    families: [SECONDS, GUEST],
    async collect(emit) {
      last = monotonic(last, parseCpuTimes(await readKernelFile(settings.procRoot, 'stat')));
      for (const [cpu, times] of last) {
        for (const mode of MODES) emit(SECONDS, times[mode], { cpu, mode });
        // Guest time is already inside user and nice; node_exporter exposes it on its own too.
        emit(GUEST, times.guest, { cpu, mode: 'user' });
        emit(GUEST, times.guestNice, { cpu, mode: 'nice' });
      }
    },
  };
}
