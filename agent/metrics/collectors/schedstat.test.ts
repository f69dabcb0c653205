import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createSchedstatCollector } from './schedstat.ts';

describe('schedstat collector', () => {
  it('reads run time, wait time (ns → s) and timeslices per CPU, skipping domain lines', async () => {
    const samples = await collectSamples(createSchedstatCollector(settingsFor(fixture('host/proc'))));
    expect(samples).toHaveLength(6);
    expect(sampleValue(samples, 'node_schedstat_running_seconds_total', { cpu: '0' })).toBe(
      2045936.778163039,
    );
    expect(sampleValue(samples, 'node_schedstat_waiting_seconds_total', { cpu: '1' })).toBe(372977.453386936);
    expect(sampleValue(samples, 'node_schedstat_timeslices_total', { cpu: '1' })).toBe(4681452530);
  });
});
