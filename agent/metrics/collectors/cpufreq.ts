import { existsSync } from 'node:fs';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family, type Labels } from '../collector.ts';
import { labelsBy, listDir, readNumber } from './sysfs.ts';

/** cpufreq attribute (kHz) → family (Hz), in node_exporter's order. */
const FILES: [file: string, family: Family][] = [
  ['cpuinfo_cur_freq', family('node_cpu_frequency_hertz', 'gauge', 'Current cpu thread frequency in hertz.')],
  [
    'cpuinfo_min_freq',
    family('node_cpu_frequency_min_hertz', 'gauge', 'Minimum cpu thread frequency in hertz.'),
  ],
  [
    'cpuinfo_max_freq',
    family('node_cpu_frequency_max_hertz', 'gauge', 'Maximum cpu thread frequency in hertz.'),
  ],
  [
    'scaling_cur_freq',
    family('node_cpu_scaling_frequency_hertz', 'gauge', 'Current scaled CPU thread frequency in hertz.'),
  ],
  [
    'scaling_min_freq',
    family('node_cpu_scaling_frequency_min_hertz', 'gauge', 'Minimum scaled CPU thread frequency in hertz.'),
  ],
  [
    'scaling_max_freq',
    family('node_cpu_scaling_frequency_max_hertz', 'gauge', 'Maximum scaled CPU thread frequency in hertz.'),
  ],
];

/**
 * /sys/devices/system/cpu/cpuN/cpufreq/*: a CPU without a cpufreq directory (a VM, a driver not
 * loaded) has no series; cpuinfo_cur_freq is readable by root only.
 */
export function createCpufreqCollector(settings: MetricsConfig): Collector {
  const root = `${settings.sysRoot}/devices/system/cpu`;
  const cpuLabels = labelsBy((entry) => ({ cpu: entry.slice('cpu'.length) }));
  return {
    families: FILES.map(([, f]) => f),
    async collect(emit) {
      for (const entry of listDir(root) ?? []) {
        if (!/^cpu\d+$/.test(entry)) continue;
        const dir = `${root}/${entry}/cpufreq`;
        if (!existsSync(dir)) continue;
        let labels: Labels | undefined;
        for (const [file, f] of FILES) {
          const khz = readNumber(`${dir}/${file}`);
          if (khz === undefined) continue;
          labels ??= cpuLabels(entry);
          emit(f, khz * 1000, labels);
        }
      }
    },
  };
}
