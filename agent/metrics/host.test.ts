import { readFileSync, statfsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/logger.ts';
import { type ExposedFamily, parseExposition, settingsFor } from '../../test/support/metrics/testing.ts';
import { createHostRegistry } from './index.ts';

/**
 * Correctness against this machine's kernel: the registry's output next to the files it came from,
 * read by the test itself just before and just after the scrape. Tolerances:
 * - static values (MemTotal, boot time, file-max, conntrack limit, uname, statfs size): exact;
 * - counters (cpu, context switches, vmstat, net bytes): between the before and after reads
 *   (cpu with 0.02 s slack: the kernel's per-CPU times can lag a tick between two readers);
 * - load averages move between reads by at most what 5 s of load can add: within 1.0.
 */

const proc = (path: string) => readFileSync(`/proc/${path}`, 'utf8');
const kernelStat = (key: string) =>
  Number(
    /^(\S+) (\d+)/m.exec(
      proc('stat')
        .split('\n')
        .find((l) => l.startsWith(`${key} `))!,
    )![2],
  );
const cpuLines = () =>
  new Map(
    proc('stat')
      .split('\n')
      .filter((l) => /^cpu\d/.test(l))
      .map((l) => {
        const [name, ...v] = l.trim().split(/\s+/);
        return [name!.slice(3), v.map(Number)] as const;
      }),
  );

async function scrape() {
  const registry = createHostRegistry(settingsFor('/proc'), createLogger('silent'));
  return parseExposition(await registry.metrics());
}

const one = (families: Map<string, ExposedFamily>, name: string, labels: Record<string, string> = {}) => {
  const found = families
    .get(name)
    ?.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found?.length !== 1)
    throw new Error(`${found?.length ?? 0} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]!.value;
};

describe('host collectors on this machine', () => {
  it('match the kernel exactly for static values', async () => {
    const families = await scrape();
    const memTotalKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(proc('meminfo'))![1]);
    expect(one(families, 'node_memory_MemTotal_bytes')).toBe(memTotalKb * 1024);
    expect(one(families, 'node_boot_time_seconds')).toBe(kernelStat('btime'));
    expect(one(families, 'node_filefd_maximum')).toBe(Number(proc('sys/fs/file-nr').trim().split(/\s+/)[2]));
    const uname = families.get('node_uname_info')!.samples[0]!.labels;
    expect(uname.release).toBe(proc('sys/kernel/osrelease').trim());
    expect(uname.version).toBe(proc('sys/kernel/version').trim());
    expect(uname.nodename).toBe(proc('sys/kernel/hostname').trim());
    expect(uname.sysname).toBe(proc('sys/kernel/ostype').trim());
    const root = statfsSync('/');
    expect(one(families, 'node_filesystem_size_bytes', { mountpoint: '/' })).toBe(root.blocks * root.bsize);
    expect(one(families, 'node_filesystem_device_error', { mountpoint: '/' })).toBe(0);
    let conntrackMax: number | undefined;
    try {
      conntrackMax = Number(proc('sys/net/netfilter/nf_conntrack_max'));
    } catch {}
    if (conntrackMax === undefined)
      expect(families.get('node_nf_conntrack_entries_limit')!.samples).toEqual([]);
    else expect(one(families, 'node_nf_conntrack_entries_limit')).toBe(conntrackMax);
  });

  it('report every CPU and mode between the kernel values read before and after', async () => {
    const before = cpuLines();
    const families = await scrape();
    const after = cpuLines();
    const modes = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'];
    expect(families.get('node_cpu_seconds_total')!.samples).toHaveLength(after.size * modes.length);
    for (const [cpu, b] of before) {
      modes.forEach((mode, i) => {
        const v = one(families, 'node_cpu_seconds_total', { cpu, mode });
        expect(v, `${cpu} ${mode}`).toBeGreaterThanOrEqual(b[i]! / 100 - 0.02);
        expect(v, `${cpu} ${mode}`).toBeLessThanOrEqual(after.get(cpu)![i]! / 100 + 0.02);
      });
    }
  });

  it('report counters between the kernel values read before and after', async () => {
    const vmstat = (f: string) => Number(new RegExp(`^${f} (\\d+)`, 'm').exec(proc('vmstat'))![1]);
    const loBytes = () => Number(/^\s*lo:\s*(\d+)/m.exec(proc('net/dev'))![1]);
    const before = { ctxt: kernelStat('ctxt'), pgfault: vmstat('pgfault'), lo: loBytes() };
    const families = await scrape();
    const after = { ctxt: kernelStat('ctxt'), pgfault: vmstat('pgfault'), lo: loBytes() };
    const within = (v: number, key: keyof typeof before) => {
      expect(v, key).toBeGreaterThanOrEqual(before[key]);
      expect(v, key).toBeLessThanOrEqual(after[key]);
    };
    within(one(families, 'node_context_switches_total'), 'ctxt');
    within(one(families, 'node_vmstat_pgfault'), 'pgfault');
    within(one(families, 'node_network_receive_bytes_total', { device: 'lo' }), 'lo');
    const load1 = Number(proc('loadavg').split(' ')[0]);
    expect(Math.abs(one(families, 'node_load1') - load1)).toBeLessThanOrEqual(1);
  });

  it('list the block devices of /proc/diskstats minus the default exclusion', async () => {
    const families = await scrape();
    const kernel = proc('diskstats')
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[2]!)
      .filter((d) => !/^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$/.test(d));
    const ours = families.get('node_disk_info')!.samples.map((s) => s.labels.device);
    expect(ours.sort()).toEqual(kernel.sort());
  });

  it('never let a cpu counter go backwards across scrapes of one registry', async () => {
    const registry = createHostRegistry(settingsFor('/proc'), createLogger('silent'));
    let previous = new Map<string, number>();
    for (let i = 0; i < 5; i++) {
      const samples = parseExposition(await registry.metrics()).get('node_cpu_seconds_total')!.samples;
      const now = new Map(samples.map((s) => [`${s.labels.cpu}/${s.labels.mode}`, s.value]));
      for (const [key, v] of previous) expect(now.get(key)!, key).toBeGreaterThanOrEqual(v);
      previous = now;
      await new Promise((r) => setTimeout(r, 20));
    }
  });
});
