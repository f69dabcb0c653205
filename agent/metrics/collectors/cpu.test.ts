import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectSamples, fixture, sampleValue, settingsFor } from '../../../test/support/metrics/testing.ts';
import { type CpuTimes, createCpuCollector, MODES, monotonic, parseCpuTimes } from './cpu.ts';

const read = (...p: string[]) => readFileSync(fixture(...p), 'utf8');

describe('parseCpuTimes', () => {
  it('reads every mode per CPU in seconds at USER_HZ=100, skipping the aggregate line', () => {
    const cpus = parseCpuTimes(read('host/proc/stat'));
    expect([...cpus.keys()]).toEqual(['0', '1']);
    expect(cpus.get('0')).toEqual({
      user: 43.67,
      nice: 0,
      system: 25.3,
      idle: 517.63,
      iowait: 1.25,
      irq: 0,
      softirq: 0.15,
      steal: 0.4,
      guest: 0,
      guestNice: 0,
    });
  });

  it('counts columns an old kernel does not print as 0 and keys CPUs by their number', () => {
    const cpus = parseCpuTimes(read('bare/proc/stat'));
    // cpu1 is offline: absent, and cpu2 keeps its own number.
    expect([...cpus.keys()]).toEqual(['0', '2']);
    expect(cpus.get('2')).toMatchObject({ user: 45, iowait: 2, irq: 0, softirq: 0, steal: 0, guest: 0 });
    expect(cpus.get('0')).toMatchObject({ softirq: 0.1, steal: 0 });
  });

  it('rejects a non-number and a CPU line without columns', () => {
    expect(() => parseCpuTimes(read('odd/stat-garbage'))).toThrow(/cpu0 system/);
    expect(() => parseCpuTimes(read('odd/stat-cpu-no-columns'))).toThrow(/malformed/);
  });
});

describe('monotonic', () => {
  const times = (over: Partial<CpuTimes>): CpuTimes => ({
    user: 10,
    nice: 0,
    system: 5,
    idle: 100,
    iowait: 3,
    irq: 0,
    softirq: 0,
    steal: 0,
    guest: 0,
    guestNice: 0,
    ...over,
  });

  it('never lets a mode go backwards (iowait dips on tickless kernels)', () => {
    const next = monotonic(new Map([['0', times({})]]), new Map([['0', times({ iowait: 2.9, user: 11 })]]));
    expect(next.get('0')).toMatchObject({ iowait: 3, user: 11 });
  });

  it('starts a CPU afresh when idle falls by 3 s or more (hot-unplug and back)', () => {
    const next = monotonic(new Map([['0', times({})]]), new Map([['0', times({ idle: 1, iowait: 0 })]]));
    expect(next.get('0')).toMatchObject({ idle: 1, iowait: 0 });
  });

  it('forgets CPUs that went offline', () => {
    expect([...monotonic(new Map([['1', times({})]]), new Map([['0', times({})]])).keys()]).toEqual(['0']);
  });
});

describe('cpu collector', () => {
  it('emits node_cpu_seconds_total for 8 modes and node_cpu_guest_seconds_total for 2, per CPU', async () => {
    const samples = await collectSamples(createCpuCollector(settingsFor(fixture('host/proc'))));
    expect(samples.filter((s) => s.name === 'node_cpu_seconds_total')).toHaveLength(2 * MODES.length);
    expect(samples.filter((s) => s.name === 'node_cpu_guest_seconds_total')).toHaveLength(4);
    expect(sampleValue(samples, 'node_cpu_seconds_total', { cpu: '1', mode: 'user' })).toBe(51.24);
    expect(sampleValue(samples, 'node_cpu_guest_seconds_total', { cpu: '1', mode: 'nice' })).toBe(0);
  });
});
