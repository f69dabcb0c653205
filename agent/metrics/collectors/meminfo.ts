import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family } from '../collector.ts';
import { fieldsOf, numberFrom, readKernelFile, readKernelFileSync } from '../procfs.ts';

/**
 * /proc/meminfo as node_exporter names it: `Active(anon): 1528 kB` → `Active_anon_bytes` = 1564672;
 * a field without a unit (HugePages_Total) keeps its name and value. A field the kernel does not
 * print is absent, never 0.
 */
export function parseMeminfo(text: string): Map<string, number> {
  const fields = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [rawKey, rawValue, unit, ...rest] = fieldsOf(line);
    if (!rawKey?.endsWith(':') || rest.length > 0)
      throw new Error(`/proc/meminfo: malformed line ${JSON.stringify(line)}`);
    const key = rawKey.slice(0, -1).replace(/\((.*)\)/, '_$1');
    const value = numberFrom(rawValue, `/proc/meminfo ${key}`);
    // The kernel prints "kB" but means KiB.
    if (unit === undefined) fields.set(key, value);
    else fields.set(`${key}_bytes`, value * 1024);
  }
  return fields;
}

function familyOf(field: string): Family {
  const name = `node_memory_${field}`;
  return family(name, name.endsWith('_total') ? 'counter' : 'gauge', `Memory information field ${field}.`);
}

/**
 * The fields are read once at creation to register one family each: which fields /proc/meminfo
 * prints depends only on the running kernel's build, so it cannot change without a reboot.
 */
export function createMeminfoCollector(settings: MetricsConfig): Collector {
  let known: string[] = [];
  try {
    known = [...parseMeminfo(readKernelFileSync(settings.procRoot, 'meminfo')).keys()];
  } catch {
    // No families to register; collect() reports the problem at every scrape.
  }
  const families = new Map(known.map((field) => [field, familyOf(field)]));
  return {
    families: [...families.values()],
    async collect(emit) {
      const fields = parseMeminfo(await readKernelFile(settings.procRoot, 'meminfo'));
      if (families.size === 0)
        throw new Error('/proc/meminfo was unreadable when the agent started: no fields registered');
      for (const [field, value] of fields) {
        const f = families.get(field);
        if (f) emit(f, value);
      }
    },
  };
}
