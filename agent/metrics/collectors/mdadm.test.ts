import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createMdadmCollector } from './mdadm.ts';

describe('mdadm collector', () => {
  it('reports disks, state and sync progress per array', async () => {
    const samples = await collectSamples(createMdadmCollector(settingsFor(fixture('host/proc'))));
    const md = (name: string, device: string, state?: string) =>
      sampleValue(samples, name, state ? { device, state } : { device });
    expect(md('node_md_disks_required', 'md0')).toBe(2);
    expect(md('node_md_disks', 'md0', 'active')).toBe(2);
    expect(md('node_md_state', 'md0', 'active')).toBe(1);
    expect(md('node_md_blocks_synced', 'md0')).toBe(1046528);
    // A failed disk, a spare, and a recovery under way.
    expect(md('node_md_disks', 'md1', 'active')).toBe(1);
    expect(md('node_md_disks', 'md1', 'failed')).toBe(1);
    expect(md('node_md_disks', 'md1', 'spare')).toBe(1);
    expect(md('node_md_state', 'md1', 'recovering')).toBe(1);
    expect(md('node_md_state', 'md1', 'active')).toBe(0);
    expect(md('node_md_blocks', 'md1')).toBe(4190208);
    expect(md('node_md_blocks_synced', 'md1')).toBe(528640);
    // raid0 counts its members.
    expect(md('node_md_disks_required', 'md2')).toBe(2);
    expect(md('node_md_disks', 'md2', 'active')).toBe(2);
  });

  it('reports no data without the md driver', async () => {
    await expect(collectSamples(createMdadmCollector(settingsFor(fixture('bare/proc'))))).rejects.toThrow(
      /no data/,
    );
  });
});
