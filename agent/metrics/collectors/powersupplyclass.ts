import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family, NoDataError } from '../collector.ts';
import { listDir, readAttribute } from './sysfs.ts';
import { listFiles, parseInt64, utf8 } from './sysfs-parse.ts';

const INFO = family('node_power_supply_info', 'gauge', 'info of /sys/class/power_supply/<power_supply>.');

/**
 * Numeric attribute → family and divisor: µA, µV, µW, µWh and µAh to base units, tenths of °C to
 * °C, the rest (percent, seconds, counts, flags) as they are.
 */
const gauge = (file: string, name: string, divisor: number): [string, Family, number] => [
  file,
  family(`node_power_supply_${name}`, 'gauge', `${name} value of /sys/class/power_supply/<power_supply>.`),
  divisor,
];

// biome-ignore format: one attribute per line, as node_exporter lists them
const NUMERIC: [file: string, family: Family, divisor: number][] = [
  gauge('authentic', 'authentic', 1),
  gauge('calibrate', 'calibrate', 1),
  gauge('capacity', 'capacity', 1),
  gauge('capacity_alert_max', 'capacity_alert_max', 1),
  gauge('capacity_alert_min', 'capacity_alert_min', 1),
  gauge('cycle_count', 'cyclecount', 1),
  gauge('online', 'online', 1),
  gauge('present', 'present', 1),
  gauge('time_to_empty_now', 'time_to_empty_seconds', 1),
  gauge('time_to_full_now', 'time_to_full_seconds', 1),
  gauge('current_boot', 'current_boot', 1e6),
  gauge('current_max', 'current_max', 1e6),
  gauge('current_now', 'current_ampere', 1e6),
  gauge('energy_empty', 'energy_empty', 1e6),
  gauge('energy_empty_design', 'energy_empty_design', 1e6),
  gauge('energy_full', 'energy_full', 1e6),
  gauge('energy_full_design', 'energy_full_design', 1e6),
  gauge('energy_now', 'energy_watthour', 1e6),
  gauge('voltage_boot', 'voltage_boot', 1e6),
  gauge('voltage_max', 'voltage_max', 1e6),
  gauge('voltage_max_design', 'voltage_max_design', 1e6),
  gauge('voltage_min', 'voltage_min', 1e6),
  gauge('voltage_min_design', 'voltage_min_design', 1e6),
  gauge('voltage_now', 'voltage_volt', 1e6),
  gauge('voltage_ocv', 'voltage_ocv', 1e6),
  gauge('charge_control_limit', 'charge_control_limit', 1e6),
  gauge('charge_control_limit_max', 'charge_control_limit_max', 1e6),
  gauge('charge_counter', 'charge_counter', 1e6),
  gauge('charge_empty', 'charge_empty', 1e6),
  gauge('charge_empty_design', 'charge_empty_design', 1e6),
  gauge('charge_full', 'charge_full', 1e6),
  gauge('charge_full_design', 'charge_full_design', 1e6),
  gauge('charge_now', 'charge_ampere', 1e6),
  gauge('charge_term_current', 'charge_term_current', 1e6),
  gauge('constant_charge_current', 'constant_charge_current', 1e6),
  gauge('constant_charge_current_max', 'constant_charge_current_max', 1e6),
  gauge('constant_charge_voltage', 'constant_charge_voltage', 1e6),
  gauge('constant_charge_voltage_max', 'constant_charge_voltage_max', 1e6),
  gauge('precharge_current', 'precharge_current', 1e6),
  gauge('input_current_limit', 'input_current_limit', 1e6),
  gauge('power_now', 'power_watt', 1e6),
  gauge('temp', 'temp_celsius', 10),
  gauge('temp_alert_max', 'temp_alert_max_celsius', 10),
  gauge('temp_alert_min', 'temp_alert_min_celsius', 10),
  gauge('temp_ambient', 'temp_ambient_celsius', 10),
  gauge('temp_ambient_max', 'temp_ambient_max_celsius', 10),
  gauge('temp_ambient_min', 'temp_ambient_min_celsius', 10),
  gauge('temp_max', 'temp_max_celsius', 10),
  gauge('temp_min', 'temp_min_celsius', 10),
];

/** Text attribute → node_power_supply_info label, in label order (the supply's name is one too). */
const TEXT: [file: string, label: string][] = [
  ['capacity_level', 'capacity_level'],
  ['charge_type', 'charge_type'],
  ['health', 'health'],
  ['manufacturer', 'manufacturer'],
  ['model_name', 'model_name'],
  ['', 'power_supply'],
  ['scope', 'scope'],
  ['serial_number', 'serial_number'],
  ['status', 'status'],
  ['technology', 'technology'],
  ['type', 'type'],
  ['usb_type', 'usb_type'],
];

/**
 * /sys/class/power_supply/<supply>: mains adapters, batteries, USB ports, UPSes with a kernel
 * driver. An attribute the driver refuses now (a battery not present: ENODEV) is left out; one it
 * fails to read (EIO) fails the scrape, as in node_exporter.
 */
export function createPowersupplyclassCollector(settings: MetricsConfig): Collector {
  const root = `${settings.sysRoot}/class/power_supply`;
  return {
    families: [INFO, ...NUMERIC.map(([, f]) => f)],
    async collect(emit) {
      const supplies = listDir(root);
      if (supplies === undefined) throw new NoDataError(`${root} does not exist`);
      for (const power_supply of supplies) {
        const dir = `${root}/${power_supply}`;
        const files = new Set(listFiles(dir) ?? []);
        const read = (file: string) => (files.has(file) ? readAttribute(`${dir}/${file}`) : undefined);
        const labels = { power_supply };
        for (const [file, f, divisor] of NUMERIC) {
          const text = read(file);
          if (text === undefined) continue;
          const value = parseInt64(text);
          if (value === undefined) throw new Error(`${dir}/${file}: not a number: ${JSON.stringify(text)}`);
          emit(f, divisor === 1 ? value : value / divisor, labels);
        }
        // Only the attributes that have text are labels.
        const info: Record<string, string> = {};
        for (const [file, label] of TEXT) {
          const value = file === '' ? power_supply : read(file);
          if (value) info[label] = utf8(value);
        }
        emit(INFO, 1, info);
      }
    },
  };
}
