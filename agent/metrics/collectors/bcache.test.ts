import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createBcacheCollector, dehumanize, dehumanizeSigned, parseWritebackRateDebug } from './bcache.ts';

const UUID = '5f8a3c21-7d4e-4b19-9e26-3a1c0b7d44e8';

describe('bcache values', () => {
  it('reads bch_hprint values as procfs does: one digit after the point, in 1024ths / 10.24', () => {
    expect(dehumanize('1870')).toBe(1870);
    expect(dehumanize('0.2k')).toBe(200);
    expect(dehumanize('12.0k')).toBe(12288);
    expect(dehumanize('1.5M')).toBe(1560576);
    expect(dehumanizeSigned('-45.2k')).toBe(-46280);
    expect(dehumanize('3.0?')).toBe(0);
    expect(() => dehumanize('')).toThrow(/empty/);
    expect(() => dehumanize('n/a')).toThrow(/expected a number/);
  });

  it('takes the last field of each writeback_rate_debug line, without /sec', () => {
    expect(
      parseWritebackRateDebug(
        'rate:\t\t4.0k/sec\ntarget:\t\t2.0G\nchange:\t\t-1.0k/sec\nnext io:\t-5ms\n',
        'x',
      ),
    ).toEqual({ rate: 4096, dirty: 0, target: 2 * 2 ** 30, proportional: 0, integral: 0, change: -1024 });
  });
});

describe('bcache collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('reports the cache set, in bytes and seconds as node_exporter scales them', async () => {
    const samples = await collectSamples(createBcacheCollector(settings));
    const set = (name: string) => sampleValue(samples, `node_bcache_${name}`, { uuid: UUID });
    expect(set('average_key_size_sectors')).toBe(200);
    expect(set('btree_cache_size_bytes')).toBe(142 * 2 ** 20 + 3 * 102400);
    expect(set('cache_available_percent')).toBe(97);
    expect(set('congested')).toBe(0);
    expect(set('root_usage_percent')).toBe(4);
    expect(set('tree_depth')).toBe(2);
    expect(set('active_journal_entries')).toBe(3);
    expect(set('btree_nodes')).toBe(1412);
    // The file says 1870 µs; node_exporter multiplies by 1e-9, and so do we.
    expect(set('btree_read_average_duration_seconds')).toBeCloseTo(1870e-9, 15);
    expect(set('cache_read_races_total')).toBe(2);
  });

  it('reports each backing device, with its writeback controller and stats_total', async () => {
    const samples = await collectSamples(createBcacheCollector(settings));
    const bdev = (name: string, backing_device: string) =>
      sampleValue(samples, `node_bcache_${name}`, { uuid: UUID, backing_device });
    expect(bdev('dirty_data_bytes', 'bdev0')).toBe(10 * 2 ** 30 + 3 * 104857600);
    expect(bdev('dirty_target_bytes', 'bdev0')).toBe(8 * 2 ** 30 + 104857600);
    expect(bdev('writeback_rate', 'bdev0')).toBe(1560576);
    expect(bdev('writeback_rate_proportional_term', 'bdev0')).toBe(26724);
    expect(bdev('writeback_rate_integral_term', 'bdev0')).toBe(2 ** 20 + 4 * 102400);
    expect(bdev('writeback_change', 'bdev0')).toBe(12288);
    expect(bdev('bypassed_bytes_total', 'bdev0')).toBe(3 * 2 ** 30 + 5 * 104857600);
    expect(bdev('cache_hits_total', 'bdev0')).toBe(1293047);
    expect(bdev('cache_misses_total', 'bdev0')).toBe(48121);
    expect(bdev('cache_bypass_hits_total', 'bdev0')).toBe(1024);
    expect(bdev('cache_bypass_misses_total', 'bdev0')).toBe(0);
    expect(bdev('cache_miss_collisions_total', 'bdev0')).toBe(15);
    expect(bdev('writeback_rate', 'bdev1')).toBe(4096);
    expect(bdev('writeback_rate_proportional_term', 'bdev1')).toBe(-46280);
    expect(bdev('dirty_data_bytes', 'bdev1')).toBe(512 * 2 ** 20);
    // Readaheads only where there were some.
    expect(bdev('cache_readaheads_total', 'bdev1')).toBe(37);
    expect(samples.filter((s) => s.name === 'node_bcache_cache_readaheads_total')).toHaveLength(1);
  });

  it('reports each cache device, without the priority_stats node_exporter leaves off by default', async () => {
    const samples = await collectSamples(createBcacheCollector(settings));
    const cache = (name: string) =>
      sampleValue(samples, `node_bcache_${name}`, { uuid: UUID, cache_device: 'cache0' });
    expect(cache('io_errors')).toBe(0);
    expect(cache('metadata_written_bytes_total')).toBe(2 * 2 ** 30 + 3 * 104857600);
    expect(cache('written_bytes_total')).toBe(41 * 2 ** 30 + 7 * 104857600);
    expect(samples.some((s) => s.name.includes('priority'))).toBe(false);
  });

  it('reports nothing, and no error, without bcache, as node_exporter (its success stays 1)', async () => {
    expect(await collectSamples(createBcacheCollector(settingsFor(fixture('bare/proc'))))).toEqual([]);
  });
});
