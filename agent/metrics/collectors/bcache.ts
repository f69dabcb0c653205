import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, type FamilyType, family } from '../collector.ts';
import { listDir, readAttribute } from './sysfs.ts';

const f = (name: string, type: FamilyType, help: string) => family(`node_bcache_${name}`, type, help);

// Per cache set ({uuid}), from /sys/fs/bcache/<uuid>/ and its internal/.
const AVERAGE_KEY_SIZE = f(
  'average_key_size_sectors',
  'gauge',
  'Average data per key in the btree (sectors).',
);
const BTREE_CACHE_SIZE = f(
  'btree_cache_size_bytes',
  'gauge',
  'Amount of memory currently used by the btree cache.',
);
const CACHE_AVAILABLE = f(
  'cache_available_percent',
  'gauge',
  'Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).',
);
const CONGESTED = f('congested', 'gauge', 'Congestion.');
const ROOT_USAGE = f(
  'root_usage_percent',
  'gauge',
  'Percentage of the root btree node in use (tree depth increases if too high).',
);
const TREE_DEPTH = f('tree_depth', 'gauge', 'Depth of the btree.');
const ACTIVE_JOURNAL_ENTRIES = f(
  'active_journal_entries',
  'gauge',
  'Number of journal entries that are newer than the index.',
);
const BTREE_NODES = f('btree_nodes', 'gauge', 'Total nodes in the btree.');
const BTREE_READ_DURATION = f('btree_read_average_duration_seconds', 'gauge', 'Average btree read duration.');
const CACHE_READ_RACES = f(
  'cache_read_races_total',
  'counter',
  'Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. where the pointer was stale after the read completed.',
);

// Per backing device ({uuid, backing_device}): bdevN/, its writeback_rate_debug and stats_total/.
const DIRTY_DATA = f(
  'dirty_data_bytes',
  'gauge',
  'Amount of dirty data for this backing device in the cache.',
);
const DIRTY_TARGET = f(
  'dirty_target_bytes',
  'gauge',
  'Current dirty data target threshold for this backing device in bytes.',
);
const WRITEBACK_RATE = f(
  'writeback_rate',
  'gauge',
  'Current writeback rate for this backing device in bytes.',
);
const PROPORTIONAL = f(
  'writeback_rate_proportional_term',
  'gauge',
  'Current result of proportional controller, part of writeback rate',
);
const INTEGRAL = f(
  'writeback_rate_integral_term',
  'gauge',
  'Current result of integral controller, part of writeback rate',
);
const WRITEBACK_CHANGE = f(
  'writeback_change',
  'gauge',
  'Last writeback rate change step for this backing device.',
);
const BYPASSED = f(
  'bypassed_bytes_total',
  'counter',
  'Amount of IO (both reads and writes) that has bypassed the cache.',
);
const CACHE_READAHEADS = f('cache_readaheads_total', 'counter', 'Count of times readahead occurred.');

/** stats_total/ files counted per IO, with their families. */
const PERIOD_COUNTS: [file: string, family: Family][] = [
  ['cache_hits', f('cache_hits_total', 'counter', 'Hits counted per individual IO as bcache sees them.')],
  [
    'cache_misses',
    f('cache_misses_total', 'counter', 'Misses counted per individual IO as bcache sees them.'),
  ],
  ['cache_bypass_hits', f('cache_bypass_hits_total', 'counter', 'Hits for IO intended to skip the cache.')],
  [
    'cache_bypass_misses',
    f('cache_bypass_misses_total', 'counter', 'Misses for IO intended to skip the cache.'),
  ],
  [
    'cache_miss_collisions',
    f(
      'cache_miss_collisions_total',
      'counter',
      'Instances where data insertion from cache miss raced with write (data already present).',
    ),
  ],
];

// Per cache device ({uuid, cache_device}): cacheN/.
const IO_ERRORS = f(
  'io_errors',
  'gauge',
  'Number of errors that have occurred, decayed by io_error_halflife.',
);
const METADATA_WRITTEN = f(
  'metadata_written_bytes_total',
  'counter',
  'Sum of all non data writes (btree writes and all other metadata).',
);
const WRITTEN = f('written_bytes_total', 'counter', 'Sum of all data that has been written to the cache.');

const UNITS: Record<string, number> = {
  k: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40,
  P: 2 ** 50,
  E: 2 ** 60,
  Z: 2 ** 70,
  Y: 2 ** 80,
};

const strictFloat = (text: string, where: string) => {
  const value = text === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(value)) throw new Error(`${where}: expected a number, got ${JSON.stringify(text)}`);
  return value;
};

/**
 * A value as the kernel's bch_hprint writes it ("12.3G", "0.1k", or a plain integer), in units.
 * The digit after the point counts 1024ths in steps of ~102 (t·10/1024): read as procfs reads it,
 * digit / 10.24, so values equal node_exporter's. An unknown unit letter gives 0, as there.
 */
export function dehumanize(text: string, where = 'bcache'): number {
  if (text === '') throw new Error(`${where}: empty value`);
  const unit = text[text.length - 1]!;
  if (unit > '9') {
    const [whole = '', fraction] = text.slice(0, -1).split('.');
    let mantissa = strictFloat(whole, where);
    if (fraction !== undefined) mantissa += strictFloat(fraction, where) / 10.24;
    return Math.trunc(mantissa * (UNITS[unit] ?? 0));
  }
  return Math.trunc(strictFloat(text, where));
}

/** writeback_rate_debug's signed terms ("-45.2k", "-3.9M/sec"). */
export const dehumanizeSigned = (text: string, where?: string) =>
  text.startsWith('-') ? -dehumanize(text.slice(1), where) : dehumanize(text, where);

export interface WritebackRateDebug {
  rate: number;
  dirty: number;
  target: number;
  proportional: number;
  integral: number;
  change: number;
}

/** bdevN/writeback_rate_debug: `rate:\t\t1.5M/sec`, `target:\t\t8.1G`, `change:\t\t-3.9M/sec` … */
export function parseWritebackRateDebug(text: string, where: string): WritebackRateDebug {
  const out: WritebackRateDebug = { rate: 0, dirty: 0, target: 0, proportional: 0, integral: 0, change: 0 };
  for (const line of text.split('\n')) {
    const key = line.slice(0, line.indexOf(':'));
    const value = line
      .trim()
      .split(/\s+/)
      .pop()!
      .replace(/\/sec$/, '');
    if (key === 'rate' || key === 'dirty' || key === 'target') out[key] = dehumanize(value, where);
    else if (key === 'proportional' || key === 'integral' || key === 'change')
      out[key] = dehumanizeSigned(value, where);
  }
  return out;
}

/**
 * One value file: node_exporter (procfs) takes a file that is absent as 0, so a kernel without
 * one of them still shows the series. An empty or unparsable file is an error.
 */
const value = (path: string) => {
  const text = readAttribute(path);
  return text === undefined ? 0 : dehumanize(text, path);
};

/**
 * /sys/fs/bcache/<set uuid>/: the set, its backing devices (bdevN) and cache devices (cacheN).
 * No set is no series and no error, as node_exporter has it (its glob finds nothing). The
 * priority_stats families stay out: node_exporter reads them only with --collector.bcache.priorityStats,
 * off by default, because the kernel walks every bucket to write that file.
 */
export function createBcacheCollector(settings: MetricsConfig): Collector {
  const root = `${settings.sysRoot}/fs/bcache`;
  return {
    families: [
      AVERAGE_KEY_SIZE,
      BTREE_CACHE_SIZE,
      CACHE_AVAILABLE,
      CONGESTED,
      ROOT_USAGE,
      TREE_DEPTH,
      ACTIVE_JOURNAL_ENTRIES,
      BTREE_NODES,
      BTREE_READ_DURATION,
      CACHE_READ_RACES,
      DIRTY_DATA,
      DIRTY_TARGET,
      WRITEBACK_RATE,
      PROPORTIONAL,
      INTEGRAL,
      WRITEBACK_CHANGE,
      BYPASSED,
      ...PERIOD_COUNTS.map(([, fam]) => fam),
      CACHE_READAHEADS,
      IO_ERRORS,
      METADATA_WRITTEN,
      WRITTEN,
    ],
    async collect(emit) {
      // Set directories are named by UUID; register, register_quiet … are files without a dash.
      for (const uuid of (listDir(root) ?? []).filter((e) => e.includes('-'))) {
        const set = `${root}/${uuid}`;
        const labels = { uuid };
        emit(AVERAGE_KEY_SIZE, value(`${set}/average_key_size`), labels);
        emit(BTREE_CACHE_SIZE, value(`${set}/btree_cache_size`), labels);
        emit(CACHE_AVAILABLE, value(`${set}/cache_available_percent`), labels);
        emit(CONGESTED, value(`${set}/congested`), labels);
        emit(ROOT_USAGE, value(`${set}/root_usage_percent`), labels);
        emit(TREE_DEPTH, value(`${set}/tree_depth`), labels);
        emit(ACTIVE_JOURNAL_ENTRIES, value(`${set}/internal/active_journal_entries`), labels);
        emit(BTREE_NODES, value(`${set}/internal/btree_nodes`), labels);
        // The file is in microseconds, but node_exporter scales it as nanoseconds (× 1e-9):
        // kept, so its series and ours agree.
        emit(BTREE_READ_DURATION, value(`${set}/internal/btree_read_average_duration_us`) * 1e-9, labels);
        emit(CACHE_READ_RACES, value(`${set}/internal/cache_read_races`), labels);
        const entries = listDir(set) ?? [];
        for (const bdev of entries.filter((e) => /^bdev\d/.test(e))) {
          const dir = `${set}/${bdev}`;
          const labels = { uuid, backing_device: bdev };
          const debug = readAttribute(`${dir}/writeback_rate_debug`);
          if (debug === undefined) throw new Error(`${dir}/writeback_rate_debug: unreadable`);
          const rate = parseWritebackRateDebug(debug, `${dir}/writeback_rate_debug`);
          emit(DIRTY_DATA, value(`${dir}/dirty_data`), labels);
          emit(DIRTY_TARGET, rate.target, labels);
          emit(WRITEBACK_RATE, rate.rate, labels);
          emit(PROPORTIONAL, rate.proportional, labels);
          emit(INTEGRAL, rate.integral, labels);
          emit(WRITEBACK_CHANGE, rate.change, labels);
          emit(BYPASSED, value(`${dir}/stats_total/bypassed`), labels);
          for (const [file, fam] of PERIOD_COUNTS) emit(fam, value(`${dir}/stats_total/${file}`), labels);
          // Only where readahead happened, as node_exporter: newer kernels removed bcache's own
          // readahead, and the count with it.
          const readaheads = value(`${dir}/stats_total/cache_readaheads`);
          if (readaheads !== 0) emit(CACHE_READAHEADS, readaheads, labels);
        }
        for (const cache of entries.filter((e) => /^cache\d/.test(e))) {
          const dir = `${set}/${cache}`;
          const labels = { uuid, cache_device: cache };
          emit(IO_ERRORS, value(`${dir}/io_errors`), labels);
          emit(METADATA_WRITTEN, value(`${dir}/metadata_written`), labels);
          emit(WRITTEN, value(`${dir}/written`), labels);
        }
      }
    },
  };
}
