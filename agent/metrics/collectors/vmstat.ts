import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family } from '../collector.ts';
import { fieldsOf, numberFrom, readKernelFile, readKernelFileSync } from '../procfs.ts';

/** The /proc/vmstat fields whose names match `fields`, in file order. */
export function parseVmstat(text: string, fields: RegExp): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [name, value] = fieldsOf(line);
    if (!name || !fields.test(name)) continue;
    values.set(name, numberFrom(value, `/proc/vmstat ${name}`));
  }
  return values;
}

/**
 * Families are fixed at creation from the running kernel's field list, which only a reboot changes.
 * `untyped` as node_exporter has it: the set mixes counters (pgfault) with gauges on other kernels.
 */
export function createVmstatCollector(settings: MetricsConfig): Collector {
  const fields = new RegExp(settings.vmstat.fields);
  const families = new Map<string, Family>();
  try {
    for (const name of parseVmstat(readKernelFileSync(settings.procRoot, 'vmstat'), fields).keys()) {
      families.set(name, family(`node_vmstat_${name}`, 'untyped', `/proc/vmstat information field ${name}.`));
    }
  } catch {
    // No families to register; collect() reports the problem at every scrape.
  }
  return {
    families: [...families.values()],
    async collect(emit) {
      const values = parseVmstat(await readKernelFile(settings.procRoot, 'vmstat'), fields);
      if (families.size === 0 && values.size > 0) {
        throw new Error('/proc/vmstat was unreadable when the agent started: no fields registered');
      }
      for (const [name, value] of values) {
        const f = families.get(name);
        if (f) emit(f, value);
      }
    },
  };
}
