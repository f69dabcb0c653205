import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family } from '../collector.ts';
import { fieldsOf, isAbsent, numberFrom, readKernelFile } from '../procfs.ts';

const ENTRIES = family(
  'node_nf_conntrack_entries',
  'gauge',
  'Number of currently allocated flow entries for connection tracking.',
);
const LIMIT = family(
  'node_nf_conntrack_entries_limit',
  'gauge',
  'Maximum size of connection tracking table.',
);

/**
 * Columns of /proc/net/stat/nf_conntrack, summed over CPUs. `gauge` though they only grow: that is
 * how node_exporter types them, and dashboards built on it use them as it does.
 */
const STATS: Record<string, Family> = {
  found: family('node_nf_conntrack_stat_found', 'gauge', 'Number of searched entries which were successful.'),
  invalid: family(
    'node_nf_conntrack_stat_invalid',
    'gauge',
    'Number of packets seen which can not be tracked.',
  ),
  ignore: family(
    'node_nf_conntrack_stat_ignore',
    'gauge',
    'Number of packets seen which are already connected to a conntrack entry.',
  ),
  insert: family('node_nf_conntrack_stat_insert', 'gauge', 'Number of entries inserted into the list.'),
  insert_failed: family(
    'node_nf_conntrack_stat_insert_failed',
    'gauge',
    'Number of entries for which list insertion was attempted but failed.',
  ),
  drop: family('node_nf_conntrack_stat_drop', 'gauge', 'Number of packets dropped due to conntrack failure.'),
  early_drop: family(
    'node_nf_conntrack_stat_early_drop',
    'gauge',
    'Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.',
  ),
  search_restart: family(
    'node_nf_conntrack_stat_search_restart',
    'gauge',
    'Number of conntrack table lookups which had to be restarted due to hashtable resizes.',
  ),
};

/**
 * Sums each column over the per-CPU rows. The header names the columns and differs between kernel
 * versions, so columns are found by name; values are hexadecimal.
 */
export function parseConntrackStat(text: string): Map<string, number> {
  const [header, ...rows] = text.split('\n').filter((l) => l.trim() !== '');
  const sums = new Map<string, number>();
  if (!header) return sums;
  const names = fieldsOf(header);
  for (const row of rows) {
    const values = fieldsOf(row);
    if (values.length !== names.length) {
      throw new Error(`/proc/net/stat/nf_conntrack: ${values.length} values under ${names.length} columns`);
    }
    names.forEach((name, i) => {
      const v = Number.parseInt(values[i]!, 16);
      if (!Number.isFinite(v))
        throw new Error(`/proc/net/stat/nf_conntrack: ${name} is not hex: ${values[i]}`);
      sums.set(name, (sums.get(name) ?? 0) + v);
    });
  }
  return sums;
}

/** The file's content, or undefined when nf_conntrack is not loaded (or not in this netns). */
async function optional(root: string, path: string): Promise<string | undefined> {
  try {
    return await readKernelFile(root, path);
  } catch (err) {
    if (isAbsent(err)) return undefined;
    throw err;
  }
}

export function createConntrackCollector(settings: MetricsConfig): Collector {
  return {
    families: [ENTRIES, LIMIT, ...Object.values(STATS)],
    async collect(emit) {
      const [count, max, stat] = await Promise.all([
        optional(settings.procRoot, 'sys/net/netfilter/nf_conntrack_count'),
        optional(settings.procRoot, 'sys/net/netfilter/nf_conntrack_max'),
        optional(settings.procRoot, 'net/stat/nf_conntrack'),
      ]);
      if (count !== undefined) emit(ENTRIES, numberFrom(count.trim(), 'nf_conntrack_count'));
      if (max !== undefined) emit(LIMIT, numberFrom(max.trim(), 'nf_conntrack_max'));
      if (stat === undefined) return;
      for (const [column, sum] of parseConntrackStat(stat)) {
        if (Object.hasOwn(STATS, column)) emit(STATS[column]!, sum);
      }
    },
  };
}
