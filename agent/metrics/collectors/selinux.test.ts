import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, settingsFor } from '../../../test/support/metrics/testing.ts';
import { configuredMode, createSelinuxCollector } from './selinux.ts';

const host = (overrides: Record<string, unknown> = {}) =>
  settingsFor(fixture('host/proc'), { hostRoot: fixture('host'), ...overrides });

describe('selinux collector', () => {
  it('reads the configured and the current mode when selinuxfs is there', async () => {
    const samples = await collectSamples(createSelinuxCollector(host()));
    expect(Object.fromEntries(samples.map((s) => [s.name, s.value]))).toEqual({
      node_selinux_enabled: 1,
      node_selinux_config_mode: 1,
      node_selinux_current_mode: 0,
    });
    expect(configuredMode('SELINUX=disabled\n')).toBe(-1);
  });

  it('says 0 and nothing else without it', async () => {
    const samples = await collectSamples(createSelinuxCollector(settingsFor(fixture('bare/proc'))));
    expect(samples.map((s) => [s.name, s.value])).toEqual([['node_selinux_enabled', 0]]);
  });
});
