import { readFileSync } from 'node:fs';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { labelsBy, listDir, readAttribute } from './sysfs.ts';

const NOW = family('node_time_seconds', 'gauge', 'System time in seconds since epoch (1970).');
const ZONE = family('node_time_zone_offset_seconds', 'gauge', 'System time zone offset in seconds.');
const AVAILABLE = family(
  'node_time_clocksource_available_info',
  'gauge',
  "Available clocksources read from '/sys/devices/system/clocksource'.",
);
const CURRENT = family(
  'node_time_clocksource_current_info',
  'gauge',
  "Current clocksource read from '/sys/devices/system/clocksource'.",
);

/**
 * The zone abbreviations (standard, daylight) of the POSIX TZ string that ends a TZif v2+ file,
 * e.g. "CET-1CEST,M3.5.0,M10.5.0/3" → CET, CEST; "<+03>-3" → +03. Go names the zone this way.
 */
export function zoneAbbreviations(tzif: Buffer): [string, string | undefined] | undefined {
  if (tzif.toString('latin1', 0, 4) !== 'TZif') return undefined;
  const text = tzif.toString('latin1');
  const footer = text.slice(text.lastIndexOf('\n', text.length - 2) + 1).trim();
  const name = /<([^>]+)>|([A-Za-z]{3,})/y;
  const std = name.exec(footer);
  if (!std) return undefined;
  const rest = footer.slice(name.lastIndex).replace(/^[-+]?[\d:]+/, '');
  name.lastIndex = 0;
  const dst = name.exec(rest);
  return [std[1] ?? std[2]!, dst ? (dst[1] ?? dst[2]!) : undefined];
}

/** The local zone as Go's time.Local finds it: $TZ, else /etc/localtime. */
function localZone(): [string, string | undefined] | undefined {
  const tz = process.env.TZ;
  if (tz === '' || tz === 'UTC' || tz === 'UTC0') return ['UTC', undefined];
  const path = tz
    ? tz.startsWith('/')
      ? tz
      : `/usr/share/zoneinfo/${tz.replace(/^:/, '')}`
    : '/etc/localtime';
  try {
    return zoneAbbreviations(readFileSync(path)) ?? ['UTC', undefined];
  } catch {
    return ['UTC', undefined];
  }
}

/** Clock sources as sysfs lists them; `device` is the index among them, as node_exporter has it. */
export function readClockSources(sysRoot: string): { available: string[]; current: string }[] {
  const dir = `${sysRoot}/devices/system/clocksource`;
  const out: { available: string[]; current: string }[] = [];
  for (const name of listDir(dir) ?? []) {
    if (!/^clocksource\d/.test(name)) continue;
    const available = readAttribute(`${dir}/${name}/available_clocksource`);
    const current = readAttribute(`${dir}/${name}/current_clocksource`);
    if (available === undefined || current === undefined) throw new Error(`${dir}/${name}: unreadable`);
    out.push({ available: available.split(/\s+/).filter(Boolean), current });
  }
  return out;
}

export function createTimeCollector(settings: MetricsConfig, now = () => new Date()): Collector {
  // The zone file is read once: the agent's zone changes only with its image.
  const zone = localZone();
  const zoneLabels = labelsBy((time_zone) => ({ time_zone }));
  return {
    families: [NOW, ZONE, AVAILABLE, CURRENT],
    async collect(emit) {
      const t = now();
      const offset = -t.getTimezoneOffset() * 60;
      const january = -new Date(t.getFullYear(), 0, 1).getTimezoneOffset() * 60;
      const july = -new Date(t.getFullYear(), 6, 1).getTimezoneOffset() * 60;
      const daylight = zone?.[1] !== undefined && offset === Math.max(january, july) && january !== july;
      const name = (daylight ? zone?.[1] : zone?.[0]) ?? 'UTC';
      emit(NOW, t.getTime() / 1000);
      emit(ZONE, offset, zoneLabels(name));
      readClockSources(settings.sysRoot).forEach((source, i) => {
        const device = String(i);
        for (const clocksource of source.available) emit(AVAILABLE, 1, { clocksource, device });
        emit(CURRENT, 1, { clocksource: source.current, device });
      });
    },
  };
}
