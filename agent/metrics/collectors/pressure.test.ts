import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createPressureCollector, parsePressure } from './pressure.ts';

describe('pressure', () => {
  it('reads total= of each line in seconds (the kernel counts microseconds)', () => {
    const cpu = parsePressure(readFileSync(fixture('host/proc/pressure/cpu'), 'utf8'));
    expect(cpu.get('some')).toBe(23.162608);
    expect(cpu.get('full')).toBe(0);
    // Before 5.13 the cpu file has no "full" line.
    expect([...parsePressure(readFileSync(fixture('odd/pressure-cpu-5.4'), 'utf8'))]).toEqual([
      ['some', 1.5],
    ]);
  });

  it("emits node_exporter's families for the resources present (no irq file here)", async () => {
    const samples = await collectSamples(createPressureCollector(settingsFor(fixture('host/proc'))));
    expect(samples.map((s) => s.name)).toEqual([
      'node_pressure_cpu_waiting_seconds_total',
      'node_pressure_io_waiting_seconds_total',
      'node_pressure_io_stalled_seconds_total',
      'node_pressure_memory_waiting_seconds_total',
      'node_pressure_memory_stalled_seconds_total',
    ]);
    expect(sampleValue(samples, 'node_pressure_cpu_waiting_seconds_total')).toBe(23.162608);
  });

  it('gives no series and no error without PSI', async () => {
    await expect(collectSamples(createPressureCollector(settingsFor(fixture('bare/proc'))))).resolves.toEqual(
      [],
    );
  });

  const dir = mkdtempSync(join(tmpdir(), 'nodeward-psi-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('still fails on a read error that does not mean "no PSI"', async () => {
    mkdirSync(join(dir, 'pressure', 'cpu'), { recursive: true });
    await expect(collectSamples(createPressureCollector(settingsFor(dir)))).rejects.toThrow(/EISDIR/);
  });
});
