import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { metricsSchema } from '../../../shared/config/index.ts';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createInfinibandCollector } from './infiniband.ts';

const tmp = mkdtempSync(join(tmpdir(), 'nodeward-infiniband-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('infiniband collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('reports each HCA and its ports’ state, physical state and rate', async () => {
    const samples = await collectSamples(createInfinibandCollector(settings));
    expect(samples.filter((s) => s.name === 'node_infiniband_info').map((s) => s.labels)).toEqual([
      { board_id: 'MT_1090120019', device: 'mlx4_0', firmware_version: '2.42.5000', hca_type: 'MT4099' },
      { board_id: 'MT_0000000223', device: 'mlx5_0', firmware_version: '20.37.1014', hca_type: 'MT4123' },
    ]);
    const port = (name: string, device: string, port: string) =>
      sampleValue(samples, `node_infiniband_${name}`, { device, port });
    expect(port('state_id', 'mlx5_0', '1')).toBe(4);
    expect(port('physical_state_id', 'mlx5_0', '1')).toBe(5);
    expect(port('rate_bytes_per_second', 'mlx5_0', '1')).toBe(25e9);
    expect(port('state_id', 'mlx4_0', '2')).toBe(1);
    expect(port('physical_state_id', 'mlx4_0', '2')).toBe(3);
    expect(port('rate_bytes_per_second', 'mlx4_0', '2')).toBe(1.25e9);
  });

  it('reads counters, 64-bit counters_ext and hw_counters, data counters in octets (4 × the words)', async () => {
    const samples = await collectSamples(createInfinibandCollector(settings));
    const port = (name: string, device: string, port = '1') =>
      sampleValue(samples, `node_infiniband_${name}`, { device, port });
    expect(port('port_data_received_bytes_total', 'mlx5_0')).toBe(4 * 9318572045);
    expect(port('port_data_transmitted_bytes_total', 'mlx5_0')).toBe(4 * 8720144731);
    expect(port('port_packets_received_total', 'mlx5_0')).toBe(47103882);
    expect(port('port_discards_transmitted_total', 'mlx5_0')).toBe(12);
    expect(port('vl15_dropped_total', 'mlx5_0')).toBe(0);
    expect(port('legacy_data_received_bytes_total', 'mlx4_0')).toBe(4 * 27394815503);
    expect(port('legacy_packets_transmitted_total', 'mlx4_0')).toBe(98311071);
    expect(port('out_of_sequence_packets_received_total', 'mlx5_0')).toBe(17);
    expect(port('rx_write_requests_total', 'mlx5_0')).toBe(4410021);
    // 12 ms: node_exporter divides as integers.
    expect(port('lifespan_seconds', 'mlx5_0')).toBe(0);
  });

  it('leaves out counters a port does not have, and "N/A (no PMA)"', async () => {
    const samples = await collectSamples(createInfinibandCollector(settings));
    const of = (device: string, port: string) =>
      samples.filter((s) => s.labels.device === device && s.labels.port === port).map((s) => s.name);
    expect(of('mlx4_0', '2')).not.toContain('node_infiniband_symbol_error_total');
    expect(of('mlx4_0', '1')).not.toContain('node_infiniband_lifespan_seconds');
    expect(of('mlx5_0', '1')).not.toContain('node_infiniband_legacy_data_received_bytes_total');
  });

  it('reports no data, and no partial series, when a port lacks a file node_exporter requires', async () => {
    const sys = join(tmp, 'sys');
    cpSync(fixture('host/sys/class/infiniband'), join(sys, 'class/infiniband'), { recursive: true });
    rmSync(join(sys, 'class/infiniband/mlx5_0/ports/1/rate'));
    const emitted: string[] = [];
    const collector = createInfinibandCollector(metricsSchema.parse({ sysRoot: sys }));
    await expect(collector.collect((f) => emitted.push(f.name))).rejects.toThrow(/no data/);
    expect(emitted).toEqual([]);
  });

  it('reports no data without InfiniBand devices', async () => {
    await expect(
      collectSamples(createInfinibandCollector(settingsFor(fixture('bare/proc')))),
    ).rejects.toThrow(/no data/);
  });
});
