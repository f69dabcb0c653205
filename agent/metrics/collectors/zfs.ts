import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family, NoDataError } from '../collector.ts';
import { fieldsOf, readKernelFileSync } from '../procfs.ts';
import { listDir, unavailable } from './sysfs.ts';

/**
 * The kstat files node_exporter reads under /proc/spl/kstat/zfs, by the subsystem it names their
 * families with (node_zfs_arc_hits from arcstats' hits). A file this ZFS version lacks
 * (vdev_cache_stats went in 2.2, xuio_stats earlier) is skipped.
 */
const KSTATS: [subsystem: string, file: string][] = [
  ['abd', 'abdstats'],
  ['arc', 'arcstats'],
  ['dbuf', 'dbufstats'],
  ['dmu_tx', 'dmu_tx'],
  ['dnode', 'dnodestats'],
  ['fm', 'fm'],
  ['vdev_cache', 'vdev_cache_stats'],
  ['vdev_mirror', 'vdev_mirror_stats'],
  ['xuio', 'xuio_stats'],
  ['zfetch', 'zfetchstats'],
  ['zil', 'zil'],
];

const POOL_STATES = ['online', 'degraded', 'faulted', 'offline', 'removed', 'unavail', 'suspended'];

const POOL_STATE = family('node_zfs_zpool_state', 'gauge', 'kstat.zfs.misc.state');

/**
 * A kstat file, or undefined when this ZFS version (or a pool being exported) lacks it. Read to
 * the end, not as one attribute: arcstats passes 10 KiB.
 */
function readKstat(path: string): string | undefined {
  try {
    return readKernelFileSync(path);
  } catch (err) {
    if (unavailable(err)) return undefined;
    throw err;
  }
}

/** node_exporter's family name part of a kstat field: `erpt-dropped` → erpt_dropped. */
export const metricName = (field: string) => field.replace(/-/g, '_');

/**
 * The named values of a kstat file: a header line, `name type data`, then `<name> <type> <value>`.
 * node_exporter reports types 4 (uint64) and 3 (int64) of the module's files, only 4 of an objset;
 * strings (type 7, an objset's dataset_name) are returned apart.
 */
export function parseKstat(text: string, where: string, types: readonly string[] = ['3', '4']) {
  const values = new Map<string, number>();
  const strings = new Map<string, string>();
  let started = false;
  for (const line of text.split('\n')) {
    const parts = fieldsOf(line);
    if (!started) {
      started = parts.length === 3 && parts[0] === 'name' && parts[1] === 'type' && parts[2] === 'data';
      continue;
    }
    if (parts.length < 3) continue;
    const [name, type, value] = parts as [string, string, string];
    if (types.includes(type)) {
      if (!(type === '4' ? /^\d+$/ : /^-?\d+$/).test(value))
        throw new Error(
          `${where}: ${name}: expected an integer of kstat type ${type}, got ${JSON.stringify(value)}`,
        );
      values.set(name, Number(value));
    } else if (type === '7') {
      // The rest of the line: a dataset name may hold spaces.
      strings.set(name, /^\s*\S+\s+\S+\s+(.*)$/.exec(line)![1]!.trimEnd());
    }
  }
  if (!started) throw new Error(`${where}: no "name type data" header`);
  return { values, strings };
}

/**
 * A pool's io kstat (ZFS before 2.1, which removed it): a header line of field names starting with
 * nread, then a line of values.
 */
export function parsePoolIo(text: string, where: string): Map<string, number> {
  const out = new Map<string, number>();
  let fields: string[] | undefined;
  for (const line of text.split('\n')) {
    const parts = fieldsOf(line);
    if (!fields) {
      if (parts.length >= 12 && parts[0] === 'nread') fields = parts;
      continue;
    }
    if (parts.length === 1 && parts[0] === '') continue;
    fields.forEach((field, i) => {
      const value = parts[i];
      if (value === undefined || !/^\d+$/.test(value))
        throw new Error(`${where}: ${field}: expected an unsigned integer, got ${JSON.stringify(value)}`);
      out.set(field, Number(value));
    });
  }
  return out;
}

/**
 * /proc/spl/kstat/zfs: the module's kstat files, and per pool its io, objset-* (one per dataset)
 * and state. The families are those of the files, untyped with the kstat path as HELP as
 * node_exporter has them, so the collector is dynamic; each name keeps one Family object.
 */
export function createZfsCollector(settings: MetricsConfig): Collector {
  const root = `${settings.procRoot}/spl/kstat/zfs`;
  const families = new Map<string, Family>();
  const familyOf = (name: string, help: string) => {
    let f = families.get(name);
    if (!f) {
      f = family(name, 'untyped', help);
      families.set(name, f);
    }
    return f;
  };
  return {
    families: [POOL_STATE],
    dynamic: true,
    async collect(emit) {
      const entries = listDir(root);
      // No zfs module loaded: node_exporter's ErrNoData.
      if (entries === undefined) throw new NoDataError(`${root} does not exist`);
      for (const [subsystem, file] of KSTATS) {
        const text = readKstat(`${root}/${file}`);
        if (text === undefined) continue;
        for (const [name, value] of parseKstat(text, `${root}/${file}`).values)
          emit(
            familyOf(`node_zfs_${subsystem}_${metricName(name)}`, `kstat.zfs.misc.${file}.${name}`),
            value,
          );
      }
      // Pools are the directories; the kstat files above are files and have no io, objset-*, state.
      const pools = entries.filter((e) => listDir(`${root}/${e}`) !== undefined);
      for (const zpool of pools) {
        const io = readKstat(`${root}/${zpool}/io`);
        if (io === undefined) continue;
        for (const [field, value] of parsePoolIo(io, `${root}/${zpool}/io`))
          emit(familyOf(`node_zfs_zpool_${metricName(field)}`, `kstat.zfs.misc.io.${field}`), value, {
            zpool,
          });
      }
      for (const zpool of pools) {
        for (const file of (listDir(`${root}/${zpool}`) ?? []).filter((e) => e.startsWith('objset-'))) {
          const text = readKstat(`${root}/${zpool}/${file}`);
          if (text === undefined) continue;
          const { values, strings } = parseKstat(text, `${root}/${zpool}/${file}`, ['4']);
          // node_exporter cuts the name at the first occurrence of its text in the line, which
          // goes wrong for a pool named like a part of "dataset_name" (data, set): we take the column.
          const labels = { zpool, dataset: strings.get('dataset_name') ?? '' };
          for (const [name, value] of values)
            emit(
              familyOf(`node_zfs_zpool_dataset_${metricName(name)}`, `kstat.zfs.misc.objset.${name}`),
              value,
              labels,
            );
        }
      }
      for (const zpool of pools) {
        const text = readKstat(`${root}/${zpool}/state`);
        if (text === undefined) continue;
        const state = text.split('\n')[0]!.toLowerCase();
        for (const s of POOL_STATES) emit(POOL_STATE, state === s ? 1 : 0, { zpool, state: s });
      }
    },
  };
}
