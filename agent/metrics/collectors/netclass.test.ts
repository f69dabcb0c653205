import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { createNetclassCollector } from './netclass.ts';
import { createHeldAttributes } from './sysfs.ts';

describe('netclass collector', () => {
  const settings = settingsFor(fixture('host/proc'));

  it('exposes each device property under node_exporter names and units', async () => {
    const samples = await collectSamples(createNetclassCollector(settings));
    const bond = (name: string) => sampleValue(samples, `node_network_${name}`, { device: 'bond0' });
    expect(bond('up')).toBe(1);
    expect(bond('mtu_bytes')).toBe(9000);
    expect(bond('speed_bytes')).toBe(25000 * 125000);
    expect(bond('flags')).toBe(0x1403);
    expect(bond('carrier_changes_total')).toBe(4);
    expect(bond('iface_id')).toBe(6);
    expect(bond('protocol_type')).toBe(1);
    expect(
      samples.find((s) => s.name === 'node_network_info' && s.labels.device === 'bond0')!.labels,
    ).toEqual({
      address: '3c:ec:ef:10:20:30',
      broadcast: 'ff:ff:ff:ff:ff:ff',
      device: 'bond0',
      duplex: 'full',
      ifalias: 'uplink',
      operstate: 'up',
    });
    expect(sampleValue(samples, 'node_network_up', { device: 'lo' })).toBe(0);
  });

  it('leaves out what the kernel refuses for a device that is down, bonding_masters, and a device without operstate (gone since the listing)', async () => {
    const samples = await collectSamples(createNetclassCollector(settings));
    const dummy = samples.filter((s) => s.labels.device === 'dummy0').map((s) => s.name);
    expect(dummy).toContain('node_network_mtu_bytes');
    expect(dummy).not.toContain('node_network_carrier');
    expect(dummy).not.toContain('node_network_speed_bytes');
    expect(samples.some((s) => s.labels.device === 'bonding_masters')).toBe(false);
    expect(new Set(samples.map((s) => s.labels.device))).toEqual(
      new Set(['bond0', 'dummy0', 'enp1s0f0', 'lo']),
    );
  });

  it('follows netclass.deviceExclude', async () => {
    const samples = await collectSamples(
      createNetclassCollector(
        settingsFor(fixture('host/proc'), { netclass: { deviceExclude: '^(lo|bond.*)$' } }),
      ),
    );
    expect(new Set(samples.map((s) => s.labels.device))).toEqual(new Set(['dummy0', 'enp1s0f0']));
  });

  it('reports no data without /sys/class/net', async () => {
    await expect(collectSamples(createNetclassCollector(settingsFor(fixture('bare/proc'))))).rejects.toThrow(
      /no data/,
    );
  });
});

describe('held attribute files', () => {
  it('keeps a device’s files open between reads and closes them once the device is gone', () => {
    const held = createHeldAttributes();
    const dir = fixture('host/sys/class/net/bond0');
    expect(held.read(dir, 'mtu')).toBe('9000');
    expect(held.read(dir, 'mtu')).toBe('9000');
    expect(held.read(dir, 'no_such_attribute')).toBeUndefined();
    expect(held.size).toBe(1);
    held.retain(new Set([dir]));
    expect(held.size).toBe(1);
    held.retain(new Set());
    expect(held.size).toBe(0);
  });
});

describe('held sysfs attribute files', () => {
  it('holds at most the cap open, and still reads every attribute past it', () => {
    const attributes = createHeldAttributes(3);
    const root = fixture('host', 'sys', 'class', 'net');
    const devices = readdirSync(root).filter((d) => d !== 'bonding_masters');
    expect(devices.length).toBeGreaterThan(1);
    let reads = 0;
    for (const device of devices) {
      for (const entry of readdirSync(`${root}/${device}`, { withFileTypes: true })) {
        if (!entry.isFile()) continue;
        const name = entry.name;
        const want = readFileSync(`${root}/${device}/${name}`, 'latin1').trim();
        expect(attributes.read(`${root}/${device}`, name)).toBe(want);
        reads++;
      }
    }
    expect(reads).toBeGreaterThan(3);
    expect(attributes.size).toBe(3);
  });
});
