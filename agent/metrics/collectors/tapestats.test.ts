import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { metricsSchema } from '../../../shared/config/index.ts';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createTapestatsCollector } from './tapestats.ts';

const tmp = mkdtempSync(join(tmpdir(), 'nodeward-tape-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('tapestats collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('reports each drive once (stN, not its l/m/a and no-rewind nodes), nanoseconds as seconds', async () => {
    const samples = await collectSamples(createTapestatsCollector(settings));
    expect(new Set(samples.map((s) => s.labels.device))).toEqual(new Set(['st0', 'st1']));
    const st0 = (name: string) => sampleValue(samples, `node_tape_${name}`, { device: 'st0' });
    expect(st0('io_now')).toBe(1);
    expect(st0('io_time_seconds_total')).toBeCloseTo(9247.01108772, 9);
    expect(st0('read_time_seconds_total')).toBeCloseTo(33.788355744, 9);
    expect(st0('write_time_seconds_total')).toBeCloseTo(5233.597394395, 9);
    expect(st0('io_others_total')).toBe(1409);
    expect(st0('read_bytes_total')).toBe(979383912);
    expect(st0('reads_completed_total')).toBe(3741);
    expect(st0('written_bytes_total')).toBe(1496246784000);
    expect(st0('writes_completed_total')).toBe(5707786);
    expect(st0('residual_total')).toBe(19);
    expect(sampleValue(samples, 'node_tape_written_bytes_total', { device: 'st1' })).toBe(0);
  });

  it('reports no data, and no partial series, for a drive without stats/ (Linux < 4.2)', async () => {
    const sys = join(tmp, 'sys');
    cpSync(fixture('host/sys/class/scsi_tape'), join(sys, 'class/scsi_tape'), { recursive: true });
    rmSync(join(sys, 'class/scsi_tape/st1/stats'), { recursive: true });
    const emitted: string[] = [];
    const collector = createTapestatsCollector(metricsSchema.parse({ sysRoot: sys }));
    await expect(collector.collect((f) => emitted.push(f.name))).rejects.toThrow(/no data/);
    expect(emitted).toEqual([]);
  });

  it('reports no data without tape drives', async () => {
    await expect(collectSamples(createTapestatsCollector(settingsFor(fixture('bare/proc'))))).rejects.toThrow(
      /no data/,
    );
  });
});
