import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createLoadavgCollector, parseLoadavg } from './loadavg.ts';

const read = (...p: string[]) => readFileSync(fixture(...p), 'utf8');

describe('loadavg', () => {
  it('reads the three averages', async () => {
    expect(parseLoadavg(read('host/proc/loadavg'))).toEqual([0.27, 0.18, 0.1]);
    const samples = await collectSamples(createLoadavgCollector(settingsFor(fixture('bare/proc'))));
    expect(samples.map((s) => [s.name, s.value])).toEqual([
      ['node_load1', 1.5],
      ['node_load5', 0.75],
      ['node_load15', 0.25],
    ]);
  });

  it('rejects a truncated file', () => {
    expect(() => parseLoadavg('0.5 0.4')).toThrow(/15m/);
  });
});
