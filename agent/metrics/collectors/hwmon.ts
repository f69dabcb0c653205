import { realpathSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, type FamilyType, family, NoDataError } from '../collector.ts';
import { listDir, readAttribute } from './sysfs.ts';

/** The sensor types node_exporter reads; other files of a chip directory are not sensors. */
const SENSOR_TYPES = new Set([
  'vrm',
  'beep_enable',
  'update_interval',
  'in',
  'cpu',
  'fan',
  'pwm',
  'temp',
  'curr',
  'power',
  'energy',
  'humidity',
  'intrusion',
]);

/** Lower case, [a-z0-9:_] only, no leading or trailing `_`: a chip name or name part. */
export const cleanName = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9:_]/g, '_')
    .replace(/^_+|_+$/g, '');

/** `temp1_input` → temp, 1, input; `in0` → in, 0, ''; `beep_enable` → beep_enable, 0, ''. */
export function explodeSensorFile(file: string): { type: string; num: number; property: string } | undefined {
  const m = /^([^0-9]+)([0-9]*)(?:_(.+))?$/.exec(file);
  if (!m) return undefined;
  return { type: m[1]!, num: m[2] ? Number(m[2]) : 0, property: m[3] ?? '' };
}

/** Sensor (`temp1`) → property (`input`, `max`, `label`, '' for a bare file) → raw text. */
type SensorData = Map<string, Map<string, string>>;

function readSensors(dir: string, into: SensorData): void {
  for (const file of listDir(dir) ?? []) {
    const parts = explodeSensorFile(file);
    if (!parts || !SENSOR_TYPES.has(parts.type)) continue;
    const value = readAttribute(`${dir}/${file}`);
    if (value === undefined) continue;
    const sensor = `${parts.type}${parts.num}`;
    let props = into.get(sensor);
    if (!props) {
      props = new Map();
      into.set(sensor, props);
    }
    props.set(parts.property, value);
  }
}

/**
 * A stable chip name: `<bus>_<device>` of the device it belongs to (module load order numbers the
 * hwmonN directories), else its `name` file, else hwmonN — node_exporter's order of preference.
 */
export function chipName(dir: string): string | undefined {
  try {
    const device = realpathSync(`${dir}/device`);
    const devName = cleanName(basename(device));
    const devType = cleanName(basename(dirname(device)));
    if (devType !== '' && devName !== '') return `${devType}_${devName}`;
    if (devName !== '') return devName;
  } catch {
    // No device link: a virtual chip.
  }
  const name = cleanName(readAttribute(`${dir}/name`) ?? '');
  if (name !== '') return name;
  try {
    return cleanName(basename(realpathSync(dir))) || undefined;
  } catch {
    return undefined;
  }
}

interface Reading {
  name: string;
  type: FamilyType;
  help: string;
  value: number;
}

/** The family and value node_exporter makes of one sensor property. */
export function reading(
  sensorType: string,
  element: string,
  hasBare: boolean,
  raw: string,
): Reading | undefined {
  if (raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) return undefined;
  let name = `node_hwmon_${sensorType}`;
  if (element === 'input') {
    if (hasBare) name += '_input';
  } else if (element !== '') name += `_${cleanName(element)}`;
  const g = (n: string, help: string, v: number, type: FamilyType = 'gauge') => ({
    name: n,
    type,
    help,
    value: v,
  });
  if (element === 'fault' || element === 'alarm')
    return g(name, `Hardware sensor ${element} status (${sensorType})`, value);
  if (element === 'beep') return g(`${name}_enabled`, 'Hardware monitor sensor has beeping enabled', value);
  if (sensorType === 'in' || sensorType === 'cpu')
    return g(`${name}_volts`, `Hardware monitor for voltage (${element})`, value * 0.001);
  if (sensorType === 'temp' && element !== 'type')
    return g(`${name}_celsius`, `Hardware monitor for temperature (${element || 'input'})`, value * 0.001);
  if (sensorType === 'curr')
    return g(`${name}_amps`, `Hardware monitor for current (${element})`, value * 0.001);
  if (sensorType === 'energy')
    return g(
      `${name}_joule_total`,
      `Hardware monitor for joules used so far (${element})`,
      value / 1e6,
      'counter',
    );
  if (sensorType === 'power' && element === 'accuracy')
    return g(name, 'Hardware monitor power meter accuracy, as a ratio', value / 1e6);
  if (sensorType === 'power' && /^average_interval(_min|_max)?$/.test(element))
    return g(`${name}_seconds`, `Hardware monitor power usage update interval (${element})`, value * 0.001);
  if (sensorType === 'power')
    return g(`${name}_watt`, `Hardware monitor for power usage in watts (${element})`, value / 1e6);
  if (sensorType === 'humidity')
    return g(
      name,
      `Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) (${element})`,
      value / 1e6,
    );
  if (sensorType === 'fan' && ['input', 'min', 'max', 'target'].includes(element))
    return g(`${name}_rpm`, `Hardware monitor for fan revolutions per minute (${element})`, value);
  return g(name, `Hardware monitor ${sensorType} element ${element}`, value);
}

const CHIP_NAMES = family(
  'node_hwmon_chip_names',
  'gauge',
  'Annotation metric for human-readable chip names',
);
const SENSOR_LABEL = family('node_hwmon_sensor_label', 'gauge', 'Label for given chip and sensor');
const BEEP = family('node_hwmon_beep_enabled', 'gauge', 'Hardware beep enabled');
const VRM = family('node_hwmon_voltage_regulator_version', 'gauge', 'Hardware voltage regulator');
const UPDATE_INTERVAL = family(
  'node_hwmon_update_interval_seconds',
  'gauge',
  'Hardware monitor update interval',
);

/**
 * /sys/class/hwmon/hwmonN (and its device/ directory): one file per sensor property. Which families
 * exist depends on the chips, so the collector is dynamic; each name keeps one Family object.
 */
export function createHwmonCollector(settings: MetricsConfig): Collector {
  const root = `${settings.sysRoot}/class/hwmon`;
  const families = new Map<string, Family>();
  const familyOf = (r: Reading) => {
    let f = families.get(r.name);
    if (!f) {
      f = family(r.name, r.type, r.help);
      families.set(r.name, f);
    }
    return f;
  };
  return {
    families: [CHIP_NAMES, SENSOR_LABEL, BEEP, VRM, UPDATE_INTERVAL],
    dynamic: true,
    async collect(emit) {
      const entries = listDir(root);
      if (entries === undefined) throw new NoDataError(`${root} does not exist`);
      for (const entry of entries) {
        const dir = `${root}/${entry}`;
        try {
          if (!statSync(dir).isDirectory()) continue;
        } catch {
          continue;
        }
        const chip = chipName(dir);
        if (chip === undefined) throw new Error(`could not derive a monitoring name for ${dir}`);
        const data: SensorData = new Map();
        readSensors(dir, data);
        readSensors(`${dir}/device`, data);
        const human = cleanName(readAttribute(`${dir}/name`) ?? '');
        if (human !== '') emit(CHIP_NAMES, 1, { chip, chip_name: human });
        for (const [sensor, props] of data) {
          const type = explodeSensorFile(sensor)!.type;
          const labels = { chip, sensor };
          const label = props.get('label');
          if (label !== undefined) emit(SENSOR_LABEL, 1, { chip, label, sensor });
          const bare = props.get('');
          if (type === 'beep_enable') {
            emit(BEEP, bare === '1' ? 1 : 0, labels);
            continue;
          }
          if (type === 'vrm' || type === 'update_interval') {
            const v = Number(bare);
            if (bare !== undefined && bare !== '' && Number.isFinite(v))
              emit(type === 'vrm' ? VRM : UPDATE_INTERVAL, type === 'vrm' ? v : v * 0.001, labels);
            continue;
          }
          for (const [element, raw] of props) {
            if (element === 'label') continue;
            const r = reading(type, element, bare !== undefined, raw);
            if (r) emit(familyOf(r), r.value, labels);
          }
        }
      }
    },
  };
}
