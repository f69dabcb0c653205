import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createFibrechannelCollector } from './fibrechannel.ts';

describe('fibrechannel collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('labels node_fibrechannel_info with the host attributes, WWNs and port ID without 0x', async () => {
    const samples = await collectSamples(createFibrechannelCollector(settings));
    expect(samples.filter((s) => s.name === 'node_fibrechannel_info').map((s) => s.labels)).toEqual([
      {
        dev_loss_tmo: '30',
        fabric_name: '10000027f8a3c1d2',
        fc_host: 'host11',
        port_id: '0a1f00',
        port_name: '21000024ff7e5b10',
        port_state: 'Online',
        port_type: 'NPort (fabric via point-to-point)',
        speed: '16 Gbit',
        supported_classes: 'Class 3',
        supported_speeds: '4 Gbit, 8 Gbit, 16 Gbit',
        symbolic_name: 'QLE2692 FW:v9.08.02 DVR:v10.02.08.200-k',
      },
      // Attributes this driver does not expose are empty labels.
      {
        dev_loss_tmo: '',
        fabric_name: '',
        fc_host: 'host12',
        port_id: '',
        port_name: '',
        port_state: 'Unknown',
        port_type: 'Unknown',
        speed: 'unknown',
        supported_classes: 'Class 3',
        supported_speeds: '',
        symbolic_name: '',
      },
    ]);
  });

  it('reads the hex statistics and leaves out those the HBA does not implement (all ones)', async () => {
    const samples = await collectSamples(createFibrechannelCollector(settings));
    const host11 = (name: string) => sampleValue(samples, `node_fibrechannel_${name}`, { fc_host: 'host11' });
    expect(host11('rx_frames_total')).toBe(0x1a3f5c2);
    expect(host11('tx_words_total')).toBe(0x3d38a840);
    expect(host11('invalid_tx_words_total')).toBe(28);
    expect(host11('seconds_since_last_reset_total')).toBe(1209600);
    expect(host11('fcp_packet_aborts_total')).toBe(3);
    const names = samples.filter((s) => s.labels.fc_host === 'host11').map((s) => s.name);
    expect(names).not.toContain('node_fibrechannel_dumped_frames_total');
    expect(names).not.toContain('node_fibrechannel_nos_total');
    expect(names).toHaveLength(1 + 12);
  });

  it('reports every counter of a disabled host (port state Unknown, no statistics) as 0', async () => {
    const samples = await collectSamples(createFibrechannelCollector(settings));
    const counters = samples.filter(
      (s) => s.labels.fc_host === 'host12' && s.name !== 'node_fibrechannel_info',
    );
    expect(counters).toHaveLength(14);
    expect(counters.every((s) => s.value === 0)).toBe(true);
  });

  it('reports no data without an FC HBA', async () => {
    await expect(
      collectSamples(createFibrechannelCollector(settingsFor(fixture('bare/proc')))),
    ).rejects.toThrow(/no data/);
  });
});
