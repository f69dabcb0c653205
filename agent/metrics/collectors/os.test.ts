import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createOsCollector, parseOsRelease } from './os.ts';

const host = (overrides: Record<string, unknown> = {}) =>
  settingsFor(fixture('host/proc'), { hostRoot: fixture('host'), ...overrides });

describe('os collector', () => {
  it("labels node_os_info with os-release's keys and node_os_version with major.minor", async () => {
    const samples = await collectSamples(createOsCollector(host()));
    expect(samples.find((s) => s.name === 'node_os_info')!.labels).toEqual({
      build_id: '',
      id: 'ubuntu',
      id_like: 'debian',
      image_id: '',
      image_version: '',
      name: 'Ubuntu',
      pretty_name: 'Ubuntu 22.04.4 LTS',
      variant: '',
      variant_id: '',
      version: '22.04.4 LTS (Jammy Jellyfish)',
      version_codename: 'jammy',
      version_id: '22.04',
    });
    expect(sampleValue(samples, 'node_os_version', { id: 'ubuntu', id_like: 'debian', name: 'Ubuntu' })).toBe(
      22.04,
    );
  });

  it('unquotes values and reports no data without os-release', async () => {
    expect(parseOsRelease(`A="x \\"y\\""\nB='z'\n`)).toEqual(
      new Map([
        ['A', 'x "y"'],
        ['B', 'z'],
      ]),
    );
    await expect(collectSamples(createOsCollector(host({ hostRoot: fixture('bare') })))).rejects.toThrow(
      /no data/,
    );
  });
});
