import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOST_COLLECTORS } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/logger.ts';
import {
  compileTimexHelper,
  type ExposedFamily,
  parseExposition,
  settingsFor,
} from '../../test/support/metrics/testing.ts';
import { createHostRegistry } from './index.ts';

/**
 * Side by side with the real node_exporter (Debian's prometheus-node-exporter) on this machine,
 * run with its default collectors (less systemd, which needs D-Bus) and our filters, reading
 * /proc/net/dev (not netlink) as we do, and both reading one textfile directory. Every family it
 * exposes here must be ours too, with the same TYPE, HELP and label names, except those listed in
 * MISSING (printed with their reasons); values read at the same moment must agree within the
 * tolerance of their kind (see `tolerance`).
 */

const BINARY = '/usr/bin/prometheus-node-exporter';

/** node_exporter's families we do not expose, and why. The test prints those it met. */
const MISSING: [RegExp, string][] = [
  [/^node_exporter_build_info$/, "node_exporter's own build; nodeward has its own build info"],
];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** node_* families and the textfile's (not go_*, process_*, promhttp_*), without empty labels. */
function nodeFamilies(text: string): Map<string, ExposedFamily> {
  const lines = text.split('\n').filter((l) => /^(# (HELP|TYPE) )?(node_|textfile_test_)/.test(l));
  const families = parseExposition(lines.join('\n'));
  for (const f of families.values()) {
    for (const s of f.samples) {
      for (const [k, v] of Object.entries(s.labels)) if (v === '') delete s.labels[k];
    }
  }
  return families;
}

const series = (f: ExposedFamily | undefined) =>
  (f?.samples ?? []).map((s) => JSON.stringify(s.labels)).sort();
const labelNames = (f: ExposedFamily) => [...new Set(f.samples.flatMap((s) => Object.keys(s.labels)))].sort();

/** Where two reads a few milliseconds apart may differ, by family: 0 = must be equal. */
function tolerance(name: string, type: string | undefined, value: number, memTotal: number): number {
  // Per collector duration: ours and theirs time different code.
  if (name === 'node_scrape_collector_duration_seconds') return Number.POSITIVE_INFINITY;
  // The clock moves between the two reads (≤ 2 s on this loaded VM).
  if (name === 'node_time_seconds') return 2;
  // The kernel's NTP state (adjtimex) in those ≤ 2 s. The kernel adds 500 µs a second to maxerror
  // (until 16 s, where it stays), and its PLL slews away at most 1/4 of the offset a second
  // (offset >> (2 + constant)): ≤ 7/16 of the earlier read in 2 s, so within |value| of either
  // read. freq and esterror move only when the daemon (chrony, ntpd, timesyncd) writes, every 32 s
  // or more while the reads are milliseconds apart: a settled daemon's step, 1 ppm and 1 ms.
  // status, tick, constant, sync_status, tai and the PPS values hold still.
  if (name === 'node_timex_maxerror_seconds') return 2 * 500e-6;
  if (name === 'node_timex_offset_seconds') return Math.abs(value);
  if (name === 'node_timex_frequency_adjustment_ratio') return 1e-6;
  if (name === 'node_timex_estimated_error_seconds') return 1e-3;
  if (name.startsWith('node_timex_')) return 0;
  // CPU, pressure and scheduler seconds: 2 CPUs run ≤ 2 s each between reads on a loaded machine.
  if (/_seconds_total$/.test(name) && /^node_(cpu|pressure|schedstat)_/.test(name)) return 2 + 0.001 * value;
  // Memory and filesystem space move with whatever else the machine runs (tests in parallel).
  if (/^node_memory_/.test(name)) return 0.05 * memTotal;
  if (/^node_filesystem_(free|avail)_bytes$/.test(name)) return 512 * 2 ** 20;
  if (/^node_filesystem_files_free$/.test(name)) return 10_000;
  // Gauges of activity: processes, sockets, queues, descriptors, conntrack, ARP, load, disk queue.
  if (/^node_(procs_|nf_conntrack_entries$|arp_entries|disk_io_now)/.test(name)) return 50;
  // Open files of the whole machine: a parallel test suite opens and closes hundreds in a moment.
  if (name === 'node_filefd_allocated') return 1000;
  if (/^node_sockstat_.*_mem_bytes$/.test(name)) return 1024 * 4096;
  if (/^node_sockstat_/.test(name) || name === 'node_netstat_Tcp_CurrEstab') return 50;
  if (name === 'node_udp_queues') return 1 << 20;
  if (/^node_load/.test(name)) return 0.5;
  // Counters (and node_exporter's untyped netstat/vmstat counters): what a busy node adds in a
  // second — 1 % plus a floor (bytes move faster than packets and events).
  if (type === 'counter' || type === 'untyped' || /^node_nf_conntrack_stat_/.test(name)) {
    return 0.01 * Math.abs(value) + (/bytes|Octets|sectors|_ms|pg|time/i.test(name) ? 10 * 2 ** 20 : 5000);
  }
  // Everything else (info series, device properties, limits, sizes, boot time) holds still.
  return 0;
}

describe.skipIf(!existsSync(BINARY))('same output as node_exporter', () => {
  const textfileDir = mkdtempSync(join(tmpdir(), 'nodeward-textfile-'));
  writeFileSync(
    join(textfileDir, 'test.prom'),
    '# HELP textfile_test_ok A test series.\n# TYPE textfile_test_ok gauge\ntextfile_test_ok{kind="a"} 1\ntextfile_test_ok{kind="b",extra="x"} 2\n',
  );
  const settings = settingsFor('/proc', { textfile: { directory: textfileDir } });
  let timex: ReturnType<typeof compileTimexHelper> | undefined;
  let exporter: ChildProcess | undefined;
  let theirs: Map<string, ExposedFamily>;
  let ours: Map<string, ExposedFamily>;
  let earlier: Map<string, ExposedFamily>;

  beforeAll(async () => {
    const port = await freePort();
    exporter = spawn(
      BINARY,
      [
        `--web.listen-address=127.0.0.1:${port}`,
        '--no-collector.systemd',
        '--no-collector.netdev.netlink',
        '--collector.netdev.device-exclude=',
        `--collector.diskstats.device-exclude=${settings.diskstats.deviceExclude}`,
        `--collector.filesystem.mount-points-exclude=${settings.filesystem.mountPointsExclude}`,
        `--collector.filesystem.fs-types-exclude=${settings.filesystem.fsTypesExclude}`,
        `--collector.netstat.fields=${settings.netstat.fields}`,
        `--collector.textfile.directory=${textfileDir}`,
      ],
      { stdio: 'ignore' },
    );
    const url = `http://127.0.0.1:${port}/metrics`;
    timex = compileTimexHelper();
    const registry = createHostRegistry(
      { ...settings, timex: { helper: timex.helper } },
      createLogger('silent'),
    );
    // Warm (first reads, JIT), and note the network devices already there: one created by a test
    // running alongside changes carrier, speed and state within milliseconds of appearing.
    earlier = nodeFamilies(await registry.metrics());
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; ; i++) {
      try {
        const res = await fetch(url);
        [theirs, ours] = await Promise.all([
          res.text().then(nodeFamilies),
          registry.metrics().then(nodeFamilies),
        ]);
        break;
      } catch (err) {
        if (i > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  afterAll(() => {
    exporter?.kill();
    rmSync(textfileDir, { recursive: true, force: true });
    timex?.remove();
  });

  const missing = (name: string) => MISSING.find(([re]) => re.test(name))?.[1];

  it('has every family node_exporter has, with the same TYPE, HELP and labels (MISSING printed)', () => {
    const skipped = [...theirs.keys()].filter((n) => missing(n) !== undefined);
    console.log(
      `families: node_exporter ${theirs.size}, nodeward ${ours.size}; skipped ${skipped.length}:\n${skipped.map((n) => `  ${n}: ${missing(n)}`).join('\n')}`,
    );
    for (const [name, f] of theirs) {
      if (missing(name) !== undefined) continue;
      const mine = ours.get(name);
      expect(mine, name).toBeDefined();
      expect(mine!.type, name).toBe(f.type);
      expect(mine!.help, name).toBe(f.help);
      if (f.samples.length > 0) expect(labelNames(mine!), name).toEqual(labelNames(f));
    }
  });

  it('has no family node_exporter lacks, except those of newer node_exporter versions', () => {
    const newer = new Set(['node_pressure_irq_stalled_seconds_total']);
    const extra = [...ours.keys()].filter((n) => !theirs.has(n) && !newer.has(n));
    expect(extra).toEqual([]);
  });

  it('has the same series where the machine holds still', () => {
    // Mounts and network devices come and go with other tests; compare them on / and lo only.
    // Collectors are ours or theirs alone in node_scrape_collector_* (MISSING, and containers).
    const moving = /^node_(filesystem|network|arp|scrape_collector)_/;
    for (const [name, f] of theirs) {
      if (!moving.test(name) && missing(name) === undefined)
        expect(series(ours.get(name)), name).toEqual(series(f));
    }
    expect(series(ours.get('node_filesystem_size_bytes'))).toContain(
      series(theirs.get('node_filesystem_size_bytes')).find((s) => s.includes('"mountpoint":"/"}')),
    );
    for (const f of ['node_network_receive_bytes_total', 'node_network_up', 'node_network_mtu_bytes']) {
      expect(series(ours.get(f)), f).toContain('{"device":"lo"}');
      expect(series(theirs.get(f)), f).toContain('{"device":"lo"}');
    }
    const collectors = (m: Map<string, ExposedFamily>) =>
      m.get('node_scrape_collector_success')!.samples.map((s) => s.labels.collector!);
    expect(collectors(ours).sort()).toEqual(Object.keys(HOST_COLLECTORS).sort());
    expect(collectors(theirs)).toEqual(expect.arrayContaining(Object.keys(HOST_COLLECTORS)));
  });

  it('has the same values, read at the same moment, within the tolerance of each family', () => {
    const memTotal = theirs.get('node_memory_MemTotal_bytes')!.samples[0]!.value;
    // A device is settled when it was there 0.5 s before and both describe it alike (operstate,
    // address): one that a parallel test is creating or tearing down changes within milliseconds.
    const info = (m: Map<string, ExposedFamily>) =>
      new Map(m.get('node_network_info')!.samples.map((s) => [s.labels.device, JSON.stringify(s.labels)]));
    const [before, mineInfo, theirInfo] = [info(earlier), info(ours), info(theirs)];
    const settled = new Set(
      [...before.keys()].filter(
        (d) => before.get(d) === mineInfo.get(d) && mineInfo.get(d) === theirInfo.get(d),
      ),
    );
    const off: string[] = [];
    let compared = 0;
    let young = 0;
    for (const [name, f] of theirs) {
      if (missing(name) !== undefined) continue;
      const mine = new Map(ours.get(name)!.samples.map((s) => [JSON.stringify(s.labels), s.value]));
      for (const s of f.samples) {
        const key = JSON.stringify(s.labels);
        const value = mine.get(key);
        if (value === undefined) continue; // a series of a moving family (a veth, a mount) or collector
        if (name.startsWith('node_network_') && !settled.has(s.labels.device)) {
          young++;
          continue;
        }
        compared++;
        const allowed = tolerance(name, f.type, s.value, memTotal);
        const equal = Object.is(value, s.value) || (Number.isNaN(value) && Number.isNaN(s.value));
        if (!equal && !(Math.abs(value - s.value) <= allowed))
          off.push(`${name}${key}: ours ${value}, node_exporter ${s.value} (allowed ±${allowed})`);
      }
    }
    console.log(
      `values compared: ${compared} series; outside tolerance: ${off.length}; skipped ${young} of network devices not settled (new, or changing between the reads)`,
    );
    expect(off).toEqual([]);
    expect(compared).toBeGreaterThan(300);
    for (const name of ['node_memory_MemTotal_bytes', 'node_boot_time_seconds', 'node_filefd_maximum']) {
      expect(ours.get(name)!.samples, name).toEqual(theirs.get(name)!.samples);
    }
    expect(ours.get('node_uname_info')!.samples).toEqual(theirs.get('node_uname_info')!.samples);
    expect(ours.get('node_os_info')!.samples).toEqual(theirs.get('node_os_info')!.samples);
    const timexFamilies = [...theirs.keys()].filter((n) => n.startsWith('node_timex_'));
    expect(timexFamilies).toHaveLength(17);
    for (const name of timexFamilies) expect(ours.get(name)!.samples, name).toHaveLength(1);
    for (const name of [
      'node_timex_status',
      'node_timex_tick_seconds',
      'node_timex_loop_time_constant',
      'node_timex_sync_status',
      'node_timex_tai_offset_seconds',
    ]) {
      expect(ours.get(name)!.samples, name).toEqual(theirs.get(name)!.samples);
    }
  });
});
