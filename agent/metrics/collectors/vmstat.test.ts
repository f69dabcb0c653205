import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createVmstatCollector, parseVmstat } from './vmstat.ts';

const read = (...p: string[]) => readFileSync(fixture(...p), 'utf8');

describe('vmstat', () => {
  const defaults = new RegExp(settingsFor('/proc').vmstat.fields);

  it("keeps node_exporter's default subset of fields", () => {
    expect([...parseVmstat(read('host/proc/vmstat'), defaults).keys()]).toEqual([
      'pgpgin',
      'pgpgout',
      'pswpin',
      'pswpout',
      'pgfault',
      'pgmajfault',
      'oom_kill',
    ]);
  });

  it('exposes them untyped, as node_exporter does, and only those the kernel has', async () => {
    const collector = createVmstatCollector(settingsFor(fixture('bare/proc')));
    expect(collector.families.find((f) => f.name === 'node_vmstat_pgfault')).toEqual({
      name: 'node_vmstat_pgfault',
      type: 'untyped',
      help: '/proc/vmstat information field pgfault.',
    });
    // This old kernel has no oom_kill: no family, no series.
    expect(collector.families.map((f) => f.name)).not.toContain('node_vmstat_oom_kill');
    const samples = await collectSamples(collector);
    expect(sampleValue(samples, 'node_vmstat_pgmajfault')).toBe(7);
  });

  it('follows vmstat.fields', () => {
    const settings = settingsFor(fixture('host/proc'), { vmstat: { fields: '^nr_free_pages$' } });
    expect(createVmstatCollector(settings).families.map((f) => f.name)).toEqual([
      'node_vmstat_nr_free_pages',
    ]);
  });
});
