import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family } from '../collector.ts';
import { listDir, readAttribute, readNumber } from './sysfs.ts';

const TEMP = family('node_thermal_zone_temp', 'gauge', 'Zone temperature in Celsius');
const CUR_STATE = family(
  'node_cooling_device_cur_state',
  'gauge',
  'Current throttle state of the cooling device',
);
const MAX_STATE = family(
  'node_cooling_device_max_state',
  'gauge',
  'Maximum throttle state of the cooling device',
);

/** /sys/class/thermal: thermal_zoneN (type, temp in m°C) and cooling_deviceN (type, states). */
export function createThermalZoneCollector(settings: MetricsConfig): Collector {
  const root = `${settings.sysRoot}/class/thermal`;
  return {
    families: [TEMP, CUR_STATE, MAX_STATE],
    async collect(emit) {
      const entries = listDir(root) ?? [];
      for (const entry of entries) {
        if (!entry.startsWith('thermal_zone')) continue;
        const type = readAttribute(`${root}/${entry}/type`);
        // A zone whose sensor cannot be read now (ENODATA, EAGAIN) is left out of this scrape.
        const temp = readNumber(`${root}/${entry}/temp`);
        if (type === undefined || temp === undefined) continue;
        emit(TEMP, temp / 1000, { type, zone: entry.slice('thermal_zone'.length) });
      }
      for (const entry of entries) {
        if (!entry.startsWith('cooling_device')) continue;
        const dir = `${root}/${entry}`;
        const type = readAttribute(`${dir}/type`);
        const cur = readNumber(`${dir}/cur_state`);
        const max = readNumber(`${dir}/max_state`);
        if (type === undefined || cur === undefined || max === undefined) continue;
        const labels = { name: entry.slice('cooling_device'.length), type };
        emit(CUR_STATE, cur, labels);
        emit(MAX_STATE, max, labels);
      }
    },
  };
}
