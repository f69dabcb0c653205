import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createTimeCollector, zoneAbbreviations } from './time.ts';

describe('time collector', () => {
  it('reports the time, the zone offset and the clock sources (device = their index)', async () => {
    const at = new Date('2026-05-04T10:00:00.250Z');
    const samples = await collectSamples(createTimeCollector(settingsFor(fixture('host/proc')), () => at));
    expect(sampleValue(samples, 'node_time_seconds')).toBe(at.getTime() / 1000);
    expect(samples.find((s) => s.name === 'node_time_zone_offset_seconds')!.value).toBe(
      -at.getTimezoneOffset() * 60,
    );
    expect(
      samples.filter((s) => s.name === 'node_time_clocksource_available_info').map((s) => s.labels),
    ).toEqual([
      { clocksource: 'tsc', device: '0' },
      { clocksource: 'hpet', device: '0' },
      { clocksource: 'acpi_pm', device: '0' },
    ]);
    expect(
      sampleValue(samples, 'node_time_clocksource_current_info', { clocksource: 'tsc', device: '0' }),
    ).toBe(1);
  });

  it('names the zone from the POSIX TZ string that ends a TZif file', () => {
    const tzif = (footer: string) => Buffer.from(`TZif2\u0000…\nTZif2…\n${footer}\n`, 'latin1');
    expect(zoneAbbreviations(tzif('CET-1CEST,M3.5.0,M10.5.0/3'))).toEqual(['CET', 'CEST']);
    expect(zoneAbbreviations(tzif('<+03>-3'))).toEqual(['+03', undefined]);
    expect(zoneAbbreviations(tzif('UTC0'))).toEqual(['UTC', undefined]);
    expect(zoneAbbreviations(Buffer.from('not a zone file'))).toBeUndefined();
  });
});
