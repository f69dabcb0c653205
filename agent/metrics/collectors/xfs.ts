import type { MetricsConfig } from '../../../shared/config/index.ts';
import { type Collector, type Family, family } from '../collector.ts';
import { fieldsOf, numberFrom } from '../procfs.ts';
import { listDir, readAttribute } from './sysfs.ts';

interface Stat {
  family: Family;
  /** The line (extent_alloc, abt …) and the value's column in it. */
  line: string;
  column: number;
}

/**
 * node_exporter's families, named after the XFS wiki's Runtime_Stats: each one column of one line
 * of the stats file. All are counters, labelled by device.
 */
const STATS: Stat[] = (
  [
    [
      'extent_allocation_extents_allocated_total',
      'Number of extents allocated for a filesystem.',
      'extent_alloc',
      0,
    ],
    [
      'extent_allocation_blocks_allocated_total',
      'Number of blocks allocated for a filesystem.',
      'extent_alloc',
      1,
    ],
    ['extent_allocation_extents_freed_total', 'Number of extents freed for a filesystem.', 'extent_alloc', 2],
    ['extent_allocation_blocks_freed_total', 'Number of blocks freed for a filesystem.', 'extent_alloc', 3],
    ['allocation_btree_lookups_total', 'Number of allocation B-tree lookups for a filesystem.', 'abt', 0],
    ['allocation_btree_compares_total', 'Number of allocation B-tree compares for a filesystem.', 'abt', 1],
    [
      'allocation_btree_records_inserted_total',
      'Number of allocation B-tree records inserted for a filesystem.',
      'abt',
      2,
    ],
    [
      'allocation_btree_records_deleted_total',
      'Number of allocation B-tree records deleted for a filesystem.',
      'abt',
      3,
    ],
    ['block_mapping_reads_total', 'Number of block map for read operations for a filesystem.', 'blk_map', 0],
    [
      'block_mapping_writes_total',
      'Number of block map for write operations for a filesystem.',
      'blk_map',
      1,
    ],
    ['block_mapping_unmaps_total', 'Number of block unmaps (deletes) for a filesystem.', 'blk_map', 2],
    [
      'block_mapping_extent_list_insertions_total',
      'Number of extent list insertions for a filesystem.',
      'blk_map',
      3,
    ],
    [
      'block_mapping_extent_list_deletions_total',
      'Number of extent list deletions for a filesystem.',
      'blk_map',
      4,
    ],
    [
      'block_mapping_extent_list_lookups_total',
      'Number of extent list lookups for a filesystem.',
      'blk_map',
      5,
    ],
    [
      'block_mapping_extent_list_compares_total',
      'Number of extent list compares for a filesystem.',
      'blk_map',
      6,
    ],
    ['block_map_btree_lookups_total', 'Number of block map B-tree lookups for a filesystem.', 'bmbt', 0],
    ['block_map_btree_compares_total', 'Number of block map B-tree compares for a filesystem.', 'bmbt', 1],
    [
      'block_map_btree_records_inserted_total',
      'Number of block map B-tree records inserted for a filesystem.',
      'bmbt',
      2,
    ],
    [
      'block_map_btree_records_deleted_total',
      'Number of block map B-tree records deleted for a filesystem.',
      'bmbt',
      3,
    ],
    [
      'directory_operation_lookup_total',
      'Number of file name directory lookups which miss the operating systems directory name lookup cache.',
      'dir',
      0,
    ],
    [
      'directory_operation_create_total',
      'Number of times a new directory entry was created for a filesystem.',
      'dir',
      1,
    ],
    // "created" (sic): node_exporter's text.
    [
      'directory_operation_remove_total',
      'Number of times an existing directory entry was created for a filesystem.',
      'dir',
      2,
    ],
    [
      'directory_operation_getdents_total',
      'Number of times the directory getdents operation was performed for a filesystem.',
      'dir',
      3,
    ],
    [
      'inode_operation_attempts_total',
      'Number of times the OS looked for an XFS inode in the inode cache.',
      'ig',
      0,
    ],
    [
      'inode_operation_found_total',
      'Number of times the OS looked for and found an XFS inode in the inode cache.',
      'ig',
      1,
    ],
    [
      'inode_operation_recycled_total',
      'Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled.',
      'ig',
      2,
    ],
    [
      'inode_operation_missed_total',
      'Number of times the OS looked for an XFS inode in the cache, but did not find it.',
      'ig',
      3,
    ],
    [
      'inode_operation_duplicates_total',
      'Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added by another process.',
      'ig',
      4,
    ],
    [
      'inode_operation_reclaims_total',
      'Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose.',
      'ig',
      5,
    ],
    [
      'inode_operation_attribute_changes_total',
      'Number of times the OS explicitly changed the attributes of an XFS inode.',
      'ig',
      6,
    ],
    // The rw line is `rw <write calls> <read calls>`.
    ['read_calls_total', 'Number of read(2) system calls made to files in a filesystem.', 'rw', 1],
    ['write_calls_total', 'Number of write(2) system calls made to files in a filesystem.', 'rw', 0],
    ['vnode_active_total', 'Number of vnodes not on free lists for a filesystem.', 'vnodes', 0],
    ['vnode_allocate_total', 'Number of times vn_alloc called for a filesystem.', 'vnodes', 1],
    ['vnode_get_total', 'Number of times vn_get called for a filesystem.', 'vnodes', 2],
    ['vnode_hold_total', 'Number of times vn_hold called for a filesystem.', 'vnodes', 3],
    ['vnode_release_total', 'Number of times vn_rele called for a filesystem.', 'vnodes', 4],
    ['vnode_reclaim_total', 'Number of times vn_reclaim called for a filesystem.', 'vnodes', 5],
    ['vnode_remove_total', 'Number of times vn_remove called for a filesystem.', 'vnodes', 6],
  ] as const
).map(([name, help, line, column]) => ({
  family: family(`node_xfs_${name}`, 'counter', help),
  line,
  column,
}));

/** How many values procfs requires on each line we read (vnodes gained `free` later: 7 or 8). */
const WIDTHS: Record<string, readonly number[]> = {
  extent_alloc: [4],
  abt: [4],
  blk_map: [7],
  bmbt: [4],
  dir: [4],
  ig: [7],
  rw: [2],
  vnodes: [7, 8],
};

/** A stats file (`extent_alloc 4 3 2 1` …) as line name → values; lines we do not read are left out. */
export function parseXfsStats(text: string, where: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of text.split('\n')) {
    const [name, ...values] = fieldsOf(line);
    if (!name || values.length === 0 || !Object.hasOwn(WIDTHS, name)) continue;
    if (!WIDTHS[name]!.includes(values.length))
      throw new Error(`${where}: ${name}: ${values.length} values, expected ${WIDTHS[name]!.join(' or ')}`);
    out.set(
      name,
      values.map((v) => numberFrom(v, `${where} ${name}`)),
    );
  }
  return out;
}

/**
 * /sys/fs/xfs/<device>/stats/stats (Linux 4.4+), one per mounted XFS filesystem. Not
 * /proc/fs/xfs/stat nor /sys/fs/xfs/stats/stats: those add up every filesystem, and node_exporter
 * reports per device only. A line the kernel does not write counts 0, as there. No XFS mounted is
 * no series and no error, as node_exporter has it.
 */
export function createXfsCollector(settings: MetricsConfig): Collector {
  const root = `${settings.sysRoot}/fs/xfs`;
  return {
    families: STATS.map((s) => s.family),
    async collect(emit) {
      for (const device of listDir(root) ?? []) {
        const path = `${root}/${device}/stats/stats`;
        const text = readAttribute(path);
        // /sys/fs/xfs/stats is the global directory, not a device: it has no stats/stats.
        if (text === undefined) continue;
        const stats = parseXfsStats(text, path);
        const labels = { device };
        for (const s of STATS) emit(s.family, stats.get(s.line)?.[s.column] ?? 0, labels);
      }
    },
  };
}
