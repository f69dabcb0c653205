import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createConntrackCollector, parseConntrackStat } from './conntrack.ts';

const read = (...p: string[]) => readFileSync(fixture(...p), 'utf8');

describe('parseConntrackStat', () => {
  it('sums the hex columns over CPUs, finding columns by the header', () => {
    const sums = parseConntrackStat(read('host/proc/net/stat/nf_conntrack'));
    expect(sums.get('found')).toBe(0x1a + 0x06);
    expect(sums.get('invalid')).toBe(0x2bc + 0x44);
    expect(sums.get('insert_failed')).toBe(2);
    expect(sums.get('search_restart')).toBe(0x0b + 0x05);
  });

  it("follows an older kernel's columns (searched, delete_list)", () => {
    const sums = parseConntrackStat(read('odd/nf_conntrack-4.19'));
    expect(sums.get('found')).toBe(0x300);
    expect(sums.get('ignore')).toBe(0x1000);
    expect(sums.get('search_restart')).toBe(3);
  });

  it('rejects a row that does not fit the header', () => {
    expect(() => parseConntrackStat(read('odd/nf_conntrack-short-row'))).toThrow(/2 values under 3 columns/);
  });
});

describe('conntrack collector', () => {
  it("emits node_exporter's names, stats as gauges", async () => {
    const collector = createConntrackCollector(settingsFor(fixture('host/proc')));
    expect(collector.families.every((f) => f.type === 'gauge')).toBe(true);
    const samples = await collectSamples(collector);
    expect(Object.fromEntries(samples.map((s) => [s.name, s.value]))).toEqual({
      node_nf_conntrack_entries: 1234,
      node_nf_conntrack_entries_limit: 262144,
      node_nf_conntrack_stat_found: 32,
      node_nf_conntrack_stat_invalid: 768,
      node_nf_conntrack_stat_ignore: 256,
      node_nf_conntrack_stat_insert: 256,
      node_nf_conntrack_stat_insert_failed: 2,
      node_nf_conntrack_stat_drop: 3,
      node_nf_conntrack_stat_early_drop: 4,
      node_nf_conntrack_stat_search_restart: 16,
    });
  });

  it('gives no series and no error when nf_conntrack is not loaded', async () => {
    await expect(
      collectSamples(createConntrackCollector(settingsFor(fixture('bare/proc')))),
    ).resolves.toEqual([]);
  });
});
