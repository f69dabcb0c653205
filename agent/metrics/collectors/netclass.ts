import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family, NoDataError } from '../collector.ts';
import { createHeldAttributes, listDir } from './sysfs.ts';

const UP = family('node_network_up', 'gauge', "Value is 1 if operstate is 'up', 0 otherwise.");
const INFO = family(
  'node_network_info',
  'gauge',
  'Non-numeric data from /sys/class/net/<iface>, value is always 1.',
);

const property = (name: string, type: 'gauge' | 'counter' = 'gauge') =>
  family(`node_network_${name}`, type, `Network device property: ${name}`);

/** sysfs attribute → family, in node_exporter's order. */
const NUMERIC: [attribute: string, family: Family][] = [
  ['addr_assign_type', property('address_assign_type')],
  ['carrier', property('carrier')],
  ['carrier_changes', property('carrier_changes_total', 'counter')],
  ['carrier_up_count', property('carrier_up_changes_total', 'counter')],
  ['carrier_down_count', property('carrier_down_changes_total', 'counter')],
  ['dev_id', property('device_id')],
  ['dormant', property('dormant')],
  ['flags', property('flags')],
  ['ifindex', property('iface_id')],
  ['iflink', property('iface_link')],
  ['link_mode', property('iface_link_mode')],
  ['mtu', property('mtu_bytes')],
  ['name_assign_type', property('name_assign_type')],
  ['netdev_group', property('net_dev_group')],
  ['speed', property('speed_bytes')],
  ['tx_queue_len', property('transmit_queue_length')],
  ['type', property('protocol_type')],
];

const IFF_UP = 1;
/** Attributes whose show() answers EINVAL unless the device is up (netif_running). */
const NEED_RUNNING = new Set(['carrier', 'dormant', 'speed']);

/** sysfs prints flags and dev_id in hex (0x1003), the rest in decimal. */
function parseValue(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const v = Number(text);
  return Number.isFinite(v) ? v : undefined;
}

/**
 * /sys/class/net/<device>/*: one attribute file per property. An attribute the kernel refuses for
 * this device now (carrier and speed of a downed link: EINVAL) is left out, as node_exporter does.
 */
export function createNetclassCollector(settings: MetricsConfig): Collector {
  const exclude =
    settings.netclass.deviceExclude === '' ? undefined : new RegExp(settings.netclass.deviceExclude);
  const root = `${settings.sysRoot}/class/net`;
  // Label sets of the devices of the last scrape: veths come and go with pods, and a gone device's
  // labels must not stay behind.
  let deviceLabels = new Map<string, { device: string }>();
  const attributes = createHeldAttributes();
  return {
    families: [UP, INFO, ...NUMERIC.map(([, f]) => f)],
    async collect(emit) {
      const devices = listDir(root);
      if (devices === undefined) throw new NoDataError(`${root} does not exist`);
      const seen = new Map<string, { device: string }>();
      const dirs = new Set<string>();
      for (const device of devices) {
        if (device === 'bonding_masters' || exclude?.test(device)) continue;
        const dir = `${root}/${device}`;
        dirs.add(dir);
        const readAttribute = (name: string) => attributes.read(dir, name);
        // A device removed since the listing has no operstate: skip it rather than fail the scrape.
        const operstate = readAttribute('operstate');
        if (operstate === undefined) continue;
        const labels = deviceLabels.get(device) ?? { device };
        seen.set(device, labels);
        emit(UP, operstate === 'up' ? 1 : 0, labels);
        const flags = parseValue(readAttribute('flags'));
        // The kernel refuses some of a device that is not up (EINVAL); asking costs an exception.
        const running = flags === undefined || (flags & IFF_UP) !== 0;
        emit(INFO, 1, {
          address: readAttribute('address') ?? '',
          broadcast: readAttribute('broadcast') ?? '',
          device,
          duplex: running ? (readAttribute('duplex') ?? '') : '',
          ifalias: readAttribute('ifalias') ?? '',
          operstate,
        });
        for (const [attribute, f] of NUMERIC) {
          if (!running && NEED_RUNNING.has(attribute)) continue;
          const v = attribute === 'flags' ? flags : parseValue(readAttribute(attribute));
          if (v === undefined) continue;
          // Mbit/s to bytes/s, in integers as node_exporter computes it (-1 "unknown" → -125000).
          emit(f, attribute === 'speed' ? Math.trunc((v * 1000 * 1000) / 8) : v, labels);
        }
      }
      deviceLabels = seen;
      attributes.retain(dirs);
    },
  };
}
