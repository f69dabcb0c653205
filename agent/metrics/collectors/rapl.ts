import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family, NoDataError } from '../collector.ts';
import { listDir, readAttribute } from './sysfs.ts';
import { parseUint } from './sysfs-parse.ts';

/** One powercap zone: `package-1` is named package, index 1. */
export interface RaplZone {
  name: string;
  index: number;
  /** The zone's directory, sysRoot included, as node_exporter labels it. */
  path: string;
}

/**
 * The zones of /sys/class/powercap that have a name (intel-rapl itself, the control type, has
 * none). A name ending in -N carries its index; a repeated name without one (dram under each
 * package) is numbered in order of appearance, as procfs does.
 */
export function raplZones(sysRoot: string): RaplZone[] | undefined {
  const root = join(sysRoot, 'class/powercap');
  const entries = listDir(root);
  if (entries === undefined) return undefined;
  const uses = new Map<string, number>();
  const zones: RaplZone[] = [];
  for (const entry of entries) {
    const path = join(root, entry);
    const raw = readAttribute(`${path}/name`);
    if (raw === undefined) continue;
    const parts = raw.split('-');
    const suffix = parts.length === 2 && /^[+-]?\d+$/.test(parts[1]!) ? Number(parts[1]) : undefined;
    const name = suffix === undefined ? raw : parts[0]!;
    const index = suffix ?? uses.get(name) ?? 0;
    // procfs requires each zone's range, though the collector never shows it.
    const range = readAttribute(`${path}/max_energy_range_uj`);
    if (range === undefined) throw new NoDataError(`${path}/max_energy_range_uj is missing or unreadable`);
    if (parseUint(range, 10) === undefined)
      throw new Error(`${path}/max_energy_range_uj: not a number: ${JSON.stringify(range)}`);
    zones.push({ name, index, path });
    uses.set(name, index + 1);
  }
  return zones;
}

/** energy_uj: root's only since Linux 5.10 (CVE-2020-8694), and then no data, not a failure. */
function microjoules(path: string): bigint {
  const file = `${path}/energy_uj`;
  let text: string;
  try {
    text = readFileSync(file, 'latin1').trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new NoDataError(`${file} is not readable`);
    throw err;
  }
  const value = parseUint(text, 10);
  if (value === undefined) throw new Error(`${file}: not a number: ${JSON.stringify(text)}`);
  return value;
}

/** node_exporter's SanitizeMetricName: each run of other characters, with its `_`s, becomes one `_`. */
const sanitize = (name: string) => name.replace(/_*[^0-9A-Za-z_]+_*/g, '_');

/**
 * /sys/class/powercap RAPL zones (Intel, and AMD since Linux 5.8): energy counters in µJ as
 * node_rapl_<zone>_joules_total{index,path}. The zone names come from the CPU, so the families
 * are known only at scrape time; each name keeps one Family object.
 */
export function createRaplCollector(settings: MetricsConfig): Collector {
  const families = new Map<string, Family>();
  const familyOf = (zone: string) => {
    let f = families.get(zone);
    if (!f) {
      f = family(
        `node_rapl_${sanitize(zone)}_joules_total`,
        'counter',
        `Current RAPL ${zone} value in joules`,
      );
      families.set(zone, f);
    }
    return f;
  };
  return {
    families: [],
    dynamic: true,
    async collect(emit) {
      const zones = raplZones(settings.sysRoot);
      if (zones === undefined) throw new NoDataError('no /sys/class/powercap');
      // Read all before emitting: an unreadable counter means no data for every zone.
      const values = zones.map((zone) => Number(microjoules(zone.path)) / 1e6);
      zones.forEach((zone, i) => {
        emit(familyOf(zone.name), values[i]!, { index: String(zone.index), path: zone.path });
      });
    },
  };
}
