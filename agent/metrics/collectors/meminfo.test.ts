import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createMeminfoCollector, parseMeminfo } from './meminfo.ts';

const read = (...p: string[]) => readFileSync(fixture(...p), 'utf8');

describe('parseMeminfo', () => {
  it("derives node_exporter's field names: parentheses to _, kB to _bytes in bytes", () => {
    const fields = parseMeminfo(read('host/proc/meminfo'));
    expect(fields.get('MemTotal_bytes')).toBe(24684084 * 1024);
    expect(fields.get('Active_anon_bytes')).toBe(1568 * 1024);
    expect(fields.get('Hugepagesize_bytes')).toBe(2048 * 1024);
    // No unit: no suffix, no scaling.
    expect(fields.get('HugePages_Total')).toBe(0);
    expect(fields.has('HugePages_Total_bytes')).toBe(false);
  });

  it('leaves out fields an older kernel does not print instead of reporting 0', () => {
    const fields = parseMeminfo(read('bare/proc/meminfo'));
    expect(fields.has('MemAvailable_bytes')).toBe(false);
    expect(fields.has('Active_anon_bytes')).toBe(false);
    expect(fields.get('MemFree_bytes')).toBe(512000 * 1024);
  });

  it('rejects malformed lines and values', () => {
    expect(() => parseMeminfo(read('odd/meminfo-no-colon'))).toThrow(/malformed/);
    expect(() => parseMeminfo(read('odd/meminfo-not-a-number'))).toThrow(/MemTotal/);
  });
});

describe('meminfo collector', () => {
  it("registers one family per field of the running kernel, with node_exporter's HELP", () => {
    const { families } = createMeminfoCollector(settingsFor(fixture('host/proc')));
    const byName = new Map(families.map((f) => [f.name, f]));
    expect(byName.get('node_memory_Active_anon_bytes')).toEqual({
      name: 'node_memory_Active_anon_bytes',
      type: 'gauge',
      help: 'Memory information field Active_anon_bytes.',
    });
    expect(byName.has('node_memory_HugePages_Total')).toBe(true);
    expect(families.length).toBe(read('host/proc/meminfo').trim().split('\n').length);
  });

  it('emits each field once', async () => {
    const samples = await collectSamples(createMeminfoCollector(settingsFor(fixture('bare/proc'))));
    expect(samples.map((s) => s.name)).toContain('node_memory_MemTotal_bytes');
    expect(samples).toHaveLength(15);
  });

  it('fails every scrape, loudly, when meminfo was unreadable at start', async () => {
    const collector = createMeminfoCollector(settingsFor(fixture('missing')));
    expect(collector.families).toEqual([]);
    await expect(collectSamples(collector)).rejects.toThrow(/ENOENT/);
  });
});
