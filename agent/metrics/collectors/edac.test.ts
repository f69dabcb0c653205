import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createEdacCollector } from './edac.ts';

describe('edac collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('counts errors per controller, csrow ("unknown" for those not placed) and channel', async () => {
    const samples = await collectSamples(createEdacCollector(settings));
    const value = (name: string, labels: Record<string, string>) =>
      sampleValue(samples, `node_edac_${name}`, labels);
    expect(value('correctable_errors_total', { controller: '0' })).toBe(9);
    expect(value('uncorrectable_errors_total', { controller: '0' })).toBe(1);
    expect(value('csrow_correctable_errors_total', { controller: '0', csrow: 'unknown' })).toBe(1);
    expect(value('csrow_correctable_errors_total', { controller: '0', csrow: '0' })).toBe(6);
    expect(value('csrow_uncorrectable_errors_total', { controller: '0', csrow: '0' })).toBe(1);
    expect(value('csrow_correctable_errors_total', { controller: '0', csrow: '1' })).toBe(2);
    const channel = { controller: '0', csrow: '0', channel: '0' };
    expect(value('channel_correctable_errors_total', channel)).toBe(5);
    expect(value('channel_uncorrectable_errors_total', channel)).toBe(1);
  });

  it('labels channels by DIMM as node_exporter cleans the label; no ue_count, no uncorrectable series', async () => {
    const samples = await collectSamples(createEdacCollector(settings));
    const channels = samples
      .filter((s) => s.name === 'node_edac_channel_correctable_errors_total')
      .map((s) => s.labels);
    expect(channels).toEqual([
      { channel: '0', controller: '0', csrow: '0', dimm_label: 'CPU_SrcID0_MC0_Chan0_DIMM0' },
      { channel: '1', controller: '0', csrow: '0', dimm_label: 'CPU_SrcID0_MC0_Chan1_DIMM0' },
      { channel: '0', controller: '0', csrow: '1', dimm_label: 'mc0_csrow1_channel0' },
    ]);
    expect(
      samples.filter(
        (s) => s.name === 'node_edac_channel_uncorrectable_errors_total' && s.labels.csrow === '1',
      ),
    ).toEqual([]);
  });

  it('reports a controller without csrows (dimmN drivers) by its totals only', async () => {
    const samples = await collectSamples(createEdacCollector(settings));
    expect(samples.filter((s) => s.labels.controller === '1').map((s) => [s.name, s.labels.csrow])).toEqual([
      ['node_edac_correctable_errors_total', undefined],
      ['node_edac_csrow_correctable_errors_total', 'unknown'],
      ['node_edac_uncorrectable_errors_total', undefined],
      ['node_edac_csrow_uncorrectable_errors_total', 'unknown'],
    ]);
  });

  // node_exporter finds no mc* and reports success: a node without EDAC is not a failed scrape.
  it('has no series and no error without EDAC', async () => {
    await expect(collectSamples(createEdacCollector(settingsFor(fixture('bare/proc'))))).resolves.toEqual([]);
  });
});
