import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createStatCollector, parseStat } from './stat.ts';

describe('stat', () => {
  it('reads the system-wide counters of /proc/stat', () => {
    const stat = parseStat(readFileSync(fixture('host/proc/stat'), 'utf8'));
    expect(Object.fromEntries(stat)).toEqual({
      intr: 439847,
      ctxt: 1095468,
      btime: 1795313502,
      processes: 10016,
      procs_running: 4,
      procs_blocked: 0,
    });
  });

  it('names them as node_exporter does', async () => {
    const samples = await collectSamples(createStatCollector(settingsFor(fixture('bare/proc'))));
    expect(Object.fromEntries(samples.map((s) => [s.name, s.value]))).toEqual({
      node_intr_total: 1234567,
      node_context_switches_total: 7654321,
      node_boot_time_seconds: 1700000000,
      node_forks_total: 4242,
      node_procs_running: 1,
      node_procs_blocked: 2,
    });
  });

  it('leaves out what the kernel does not print', () => {
    expect([...parseStat('cpu  1 2 3 4\nctxt 9\n').keys()]).toEqual(['ctxt']);
  });
});
