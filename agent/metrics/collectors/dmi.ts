import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, family, type Labels, NoDataError } from '../collector.ts';
import { readAttribute } from './sysfs.ts';
import { listFiles, utf8 } from './sysfs-parse.ts';

const INFO = family(
  'node_dmi_info',
  'gauge',
  "A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, bios_version, board_asset_tag, board_name, board_serial, board_vendor, board_version, chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, product_family, product_name, product_serial, product_sku, product_uuid, product_version, system_vendor if provided by DMI.",
);

/** /sys/class/dmi/id file → label, in label order; chassis_type is never a label. */
const LABELS: [file: string, label: string][] = [
  ['bios_date', 'bios_date'],
  ['bios_release', 'bios_release'],
  ['bios_vendor', 'bios_vendor'],
  ['bios_version', 'bios_version'],
  ['board_asset_tag', 'board_asset_tag'],
  ['board_name', 'board_name'],
  ['board_serial', 'board_serial'],
  ['board_vendor', 'board_vendor'],
  ['board_version', 'board_version'],
  ['chassis_asset_tag', 'chassis_asset_tag'],
  ['chassis_serial', 'chassis_serial'],
  ['chassis_vendor', 'chassis_vendor'],
  ['chassis_version', 'chassis_version'],
  ['product_family', 'product_family'],
  ['product_name', 'product_name'],
  ['product_serial', 'product_serial'],
  ['product_sku', 'product_sku'],
  ['product_uuid', 'product_uuid'],
  ['product_version', 'product_version'],
  ['sys_vendor', 'system_vendor'],
];

/**
 * The labels of node_dmi_info: one per file the firmware filled in (an empty file is an empty
 * label, as in node_exporter). The serials and product_uuid are root's only; read by anyone else
 * they are left out rather than failing. Undefined without /sys/class/dmi (ARM boards, some VMs).
 */
export function readDmi(sysRoot: string): Labels | undefined {
  const dir = `${sysRoot}/class/dmi/id`;
  const files = listFiles(dir);
  if (files === undefined) return undefined;
  const present = new Set(files);
  const labels: Record<string, string> = {};
  for (const [file, label] of LABELS) {
    if (!present.has(file)) continue;
    const value = readAttribute(`${dir}/${file}`);
    if (value !== undefined) labels[label] = utf8(value);
  }
  return labels;
}

export function createDmiCollector(settings: MetricsConfig): Collector {
  // Read once, as node_exporter does: DMI tables do not change until the next boot.
  let labels: Labels | undefined;
  return {
    families: [INFO],
    async collect(emit) {
      labels ??= readDmi(settings.sysRoot) ?? {};
      if (Object.keys(labels).length === 0) throw new NoDataError('no DMI information in /sys/class/dmi/id');
      emit(INFO, 1, labels);
    },
  };
}
