import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createFilefdCollector, parseFileNr } from './filefd.ts';

const read = (...p: string[]) => readFileSync(fixture(...p), 'utf8');

describe('filefd', () => {
  it('reads allocated and maximum, skipping the always-0 middle column', async () => {
    expect(parseFileNr(read('host/proc/sys/fs/file-nr'))).toEqual({ allocated: 658, maximum: 2466170 });
    const samples = await collectSamples(createFilefdCollector(settingsFor(fixture('bare/proc'))));
    expect(sampleValue(samples, 'node_filefd_allocated')).toBe(1024);
    expect(sampleValue(samples, 'node_filefd_maximum')).toBe(65536);
  });

  it('rejects a short file', () => {
    expect(() => parseFileNr(read('odd/file-nr-short'))).toThrow(/expected 3 numbers/);
  });
});
