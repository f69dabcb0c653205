import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family, type Labels, NoDataError } from '../collector.ts';
import { listDir, readAttribute } from './sysfs.ts';
import { parseUint, utf8 } from './sysfs-parse.ts';

const INFO = family(
  'node_nvme_info',
  'gauge',
  'Non-numeric data from /sys/class/nvme/<device>, value is always 1.',
);
const NAMESPACE_INFO = family(
  'node_nvme_namespace_info',
  'gauge',
  'Information about NVMe namespaces. Value is always 1',
);
const CAPACITY = family(
  'node_nvme_namespace_capacity_bytes',
  'gauge',
  'Capacity of the NVMe namespace in bytes. Computed as namespace_size * namespace_logical_block_size',
);
const SIZE = family(
  'node_nvme_namespace_size_bytes',
  'gauge',
  'Size of the NVMe namespace in bytes. Available in /sys/class/nvme/<device>/<namespace>/size',
);
const USED = family(
  'node_nvme_namespace_used_bytes',
  'gauge',
  'Used space of the NVMe namespace in bytes. Available in /sys/class/nvme/<device>/<namespace>/nuse',
);
const BLOCK_SIZE = family(
  'node_nvme_namespace_logical_block_size_bytes',
  'gauge',
  'Logical block size of the NVMe namespace in bytes. Usually 4Kb. Available in /sys/class/nvme/<device>/<namespace>/queue/logical_block_size',
);

/** nvme0n1 → namespace 1; unanchored as in procfs (a controller's nvme0c0n1 paths do not match). */
const NAMESPACE = /nvme\d+n(\d+)/;

/**
 * A file procfs requires. node_exporter reports a missing one as no data for the whole collector
 * (errors.Is(err, ErrNotExist)), so do we.
 */
function required(path: string): string {
  const text = readAttribute(path);
  if (text === undefined) throw new NoDataError(`${path} does not exist`);
  return text;
}

/** A count procfs parses leniently: anything but digits is 0. */
const blocks = (path: string) => parseUint(required(path), 10) ?? 0n;

/**
 * /sys/class/nvme/nvmeN: the controller's identity, and per namespace (nvmeNnM) its size, use and
 * block size. node_exporter multiplies `size` by the logical block size although the block layer
 * counts it in 512-byte sectors: on a 4 KiB-formatted namespace its size and capacity are 8 times
 * too large. Kept, so the series match.
 */
export function createNvmeCollector(settings: MetricsConfig): Collector {
  const root = `${settings.sysRoot}/class/nvme`;
  return {
    families: [INFO, NAMESPACE_INFO, CAPACITY, SIZE, USED, BLOCK_SIZE],
    async collect(emit) {
      const controllers = listDir(root);
      if (controllers === undefined) throw new NoDataError(`${root} does not exist`);
      // Emitted once all are read: a missing file found halfway means no data at all.
      const samples: [Family, number, Labels][] = [];
      for (const device of controllers) {
        const dir = `${root}/${device}`;
        samples.push([
          INFO,
          1,
          {
            cntlid: required(`${dir}/cntlid`),
            device,
            firmware_revision: utf8(required(`${dir}/firmware_rev`)),
            model: utf8(required(`${dir}/model`)),
            serial: utf8(required(`${dir}/serial`)),
            state: required(`${dir}/state`),
          },
        ]);
        for (const entry of listDir(dir) ?? []) {
          const nsid = NAMESPACE.exec(entry)?.[1];
          if (nsid === undefined) continue;
          const ns = `${dir}/${entry}`;
          const used = blocks(`${ns}/nuse`);
          const size = blocks(`${ns}/size`);
          const blockSize = blocks(`${ns}/queue/logical_block_size`);
          // Only multipath (ANA) namespaces have one.
          const ana_state = readAttribute(`${ns}/ana_state`) ?? 'unknown';
          const labels = { device, nsid };
          samples.push([NAMESPACE_INFO, 1, { ana_state, device, nsid }]);
          samples.push([CAPACITY, Number(size * blockSize), labels]);
          samples.push([SIZE, Number(size * blockSize), labels]);
          samples.push([USED, Number(used * blockSize), labels]);
          samples.push([BLOCK_SIZE, Number(blockSize), labels]);
        }
      }
      for (const [f, value, labels] of samples) emit(f, value, labels);
    },
  };
}
