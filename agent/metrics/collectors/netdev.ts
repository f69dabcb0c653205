import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family } from '../collector.ts';
import { fieldsOf, numberFrom, readKernelFile } from '../procfs.ts';

/** /proc/net/dev columns in order, named as node_exporter names them without netlink. */
const COLUMNS = [
  'receive_bytes',
  'receive_packets',
  'receive_errs',
  'receive_drop',
  'receive_fifo',
  'receive_frame',
  'receive_compressed',
  'receive_multicast',
  'transmit_bytes',
  'transmit_packets',
  'transmit_errs',
  'transmit_drop',
  'transmit_fifo',
  'transmit_colls',
  'transmit_carrier',
  'transmit_compressed',
] as const;

const FAMILIES: Family[] = COLUMNS.map((c) =>
  family(`node_network_${c}_total`, 'counter', `Network device statistic ${c}.`),
);

/** Device name → the 16 counters, from /proc/net/dev (two header lines, then `name: values`). */
export function parseNetDev(text: string): Map<string, number[]> {
  const devices = new Map<string, number[]>();
  for (const line of text.split('\n').slice(2)) {
    if (line.trim() === '') continue;
    // Interface names cannot contain ':', and old kernels print no space after it.
    const colon = line.indexOf(':');
    const device = line.slice(0, colon).trim();
    const values = fieldsOf(line.slice(colon + 1));
    if (colon < 0 || device === '' || values.length < COLUMNS.length) {
      throw new Error(`/proc/net/dev: malformed line ${JSON.stringify(line)}`);
    }
    devices.set(
      device,
      values.slice(0, COLUMNS.length).map((v) => numberFrom(v, `/proc/net/dev ${device}`)),
    );
  }
  return devices;
}

export function createNetdevCollector(settings: MetricsConfig): Collector {
  const exclude =
    settings.netdev.deviceExclude === '' ? undefined : new RegExp(settings.netdev.deviceExclude);
  return {
    families: FAMILIES,
    async collect(emit) {
      for (const [device, values] of parseNetDev(await readKernelFile(settings.procRoot, 'net/dev'))) {
        if (exclude?.test(device)) continue;
        const labels = { device };
        values.forEach((v, i) => {
          emit(FAMILIES[i]!, v, labels);
        });
      }
    },
  };
}
