import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createXfsCollector, parseXfsStats } from './xfs.ts';

describe('xfs stats parsing', () => {
  it('keeps the lines it reads, and checks their width as procfs does', () => {
    const stats = parseXfsStats('rw 5 6\nvnodes 1 2 3 4 5 6 7\nxpc 1 2 3\n', 'stats');
    expect(stats.get('rw')).toEqual([5, 6]);
    // Kernels before `free` was added write seven vnode values.
    expect(stats.get('vnodes')).toHaveLength(7);
    expect(stats.has('xpc')).toBe(false);
    expect(() => parseXfsStats('dir 1 2 3\n', 'stats')).toThrow(/dir: 3 values, expected 4/);
    expect(() => parseXfsStats('rw 1 x\n', 'stats')).toThrow(/expected a number/);
  });
});

describe('xfs collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('reports every family per mounted filesystem, not the global stats directory', async () => {
    const collector = createXfsCollector(settings);
    expect(collector.families).toHaveLength(39);
    expect(collector.families.every((f) => f.type === 'counter')).toBe(true);
    const samples = await collectSamples(collector);
    expect([...new Set(samples.map((s) => s.labels.device))]).toEqual(['dm-0', 'sda1']);
    expect(samples).toHaveLength(78);
  });

  it('takes each value from its line and column', async () => {
    const samples = await collectSamples(createXfsCollector(settings));
    const sda1 = (name: string) => sampleValue(samples, `node_xfs_${name}`, { device: 'sda1' });
    expect(sda1('extent_allocation_extents_allocated_total')).toBe(482911);
    expect(sda1('extent_allocation_blocks_freed_total')).toBe(38912044);
    expect(sda1('block_mapping_reads_total')).toBe(91740233);
    expect(sda1('block_mapping_extent_list_deletions_total')).toBe(588012);
    expect(sda1('directory_operation_getdents_total')).toBe(9120457);
    expect(sda1('inode_operation_found_total')).toBe(1845102);
    expect(sda1('inode_operation_attribute_changes_total')).toBe(410233);
    // rw is `write read`.
    expect(sda1('write_calls_total')).toBe(28803112);
    expect(sda1('read_calls_total')).toBe(41002331);
    expect(sda1('vnode_active_total')).toBe(14312);
    expect(sda1('vnode_remove_total')).toBe(688410);
    expect(sampleValue(samples, 'node_xfs_read_calls_total', { device: 'dm-0' })).toBe(3402211);
  });

  it('reports nothing, and no error, without XFS, as node_exporter (its success stays 1)', async () => {
    expect(await collectSamples(createXfsCollector(settingsFor(fixture('bare/proc'))))).toEqual([]);
  });
});
